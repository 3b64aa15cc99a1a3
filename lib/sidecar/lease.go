package sidecar

import (
	"context"
	"time"

	"github.com/daprshop/suite/lib/lease"
)

// LeaseClient is the part of the Dapr client LeaseStore needs.
type LeaseClient interface {
	Saver
	Deleter
}

// LeaseStore keeps lease.Records in a Dapr state store under Prefix+key,
// with first-write concurrency and a TTL a little past each lease's end, so
// that the store drops leases nobody released (see SaveJSON).
type LeaseStore struct {
	Client LeaseClient
	Store  string // state store component name
	Prefix string // e.g. "lease:"
	// Now is the clock leases are written with (their TTL runs from it).
	Now func() time.Time
}

var _ lease.Store = (*LeaseStore)(nil)

// Get implements lease.Store.
func (s *LeaseStore) Get(ctx context.Context, key string) (lease.Record, string, bool, error) {
	var r lease.Record
	etag, found, err := GetJSON(ctx, s.Client, s.Store, s.Prefix+key, &r)
	return r, etag, found, err
}

// Put implements lease.Store.
func (s *LeaseStore) Put(ctx context.Context, key string, r lease.Record, version string) error {
	// A second past the end, so a lease is never dropped while it counts.
	ttl := r.Until.Sub(s.Now()) + time.Second
	return SaveJSON(ctx, s.Client, s.Store, s.Prefix+key, r, version, max(ttl, time.Second))
}

// Delete implements lease.Store.
func (s *LeaseStore) Delete(ctx context.Context, key, version string) error {
	return DeleteJSON(ctx, s.Client, s.Store, s.Prefix+key, version)
}
