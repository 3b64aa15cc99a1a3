// Package fake holds in-memory stand-ins for the payments service's
// dependencies, for unit tests. Integration tests use the real sidecars.
package fake

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/services/payments/internal/payments"
)

// Store is an in-memory payments.Store with integer ETags that records the
// events its updates publish.
type Store struct {
	mu     sync.Mutex
	m      map[string]payments.Charge
	etags  map[string]int
	next   int // the last ETag given
	Events []payments.Event
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{m: map[string]payments.Charge{}, etags: map[string]int{}}
}

var _ payments.Store = (*Store)(nil)

// Get implements payments.Store.
func (s *Store) Get(ctx context.Context, id string) (payments.Charge, error) {
	c, _, err := s.GetWithETag(ctx, id)
	return c, err
}

// GetWithETag implements payments.Store.
func (s *Store) GetWithETag(_ context.Context, id string) (payments.Charge, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return c, "", apierr.Errorf(apierr.NotFound, "no %s", id)
	}
	return c, fmt.Sprint(s.etags[id]), nil
}

// Create implements payments.Store.
func (s *Store) Create(_ context.Context, c payments.Charge) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c.ID]; ok {
		return "", apierr.Errorf(apierr.Conflict, "exists")
	}
	s.next++
	s.m[c.ID] = c
	s.etags[c.ID] = s.next
	return fmt.Sprint(s.next), nil
}

// Update implements payments.Store.
func (s *Store) Update(_ context.Context, c payments.Charge, etag string, ev *payments.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c.ID]; !ok || etag != fmt.Sprint(s.etags[c.ID]) {
		return apierr.Errorf(apierr.Conflict, "etag %q", etag)
	}
	s.next++
	s.m[c.ID] = c
	s.etags[c.ID] = s.next
	s.Events = append(s.Events, *ev)
	return nil
}

// Claim implements payments.Store.
func (s *Store) Claim(_ context.Context, c payments.Charge, etag string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c.ID]; !ok || etag != fmt.Sprint(s.etags[c.ID]) {
		return "", apierr.Errorf(apierr.Conflict, "etag %q", etag)
	}
	s.next++
	s.m[c.ID] = c
	s.etags[c.ID] = s.next
	return fmt.Sprint(s.next), nil
}

// Leases returns a lease manager on store (replicas share it:
// lease.MemStore) with the clock now, waiting up to 200 times.
func Leases(store lease.Store, now func() time.Time) *lease.Manager {
	return &lease.Manager{Store: store, TTL: payments.DefaultClaimTimeout, Now: now,
		Wait: retry.Policy{Retries: 200, Initial: time.Millisecond, Max: 10 * time.Millisecond, Jitter: 1}}
}

// EventTypes lists the types of the events published so far.
func (s *Store) EventTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.Events {
		out = append(out, e.Type)
	}
	return out
}
