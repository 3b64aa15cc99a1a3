// Package dapr holds the users adapters over the Dapr sidecar: accounts in
// the service's own state store, with one insert-only key per email address
// so an address can belong to one account only, and the login limits'
// entries in the same store, shared by every replica.
package dapr

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"time"

	daprc "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/users/internal/users"
)

// StateClient is the part of the Dapr client the store uses.
type StateClient interface {
	sidecar.StateGetter
	SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...daprc.StateOption) error
	DeleteStateWithETag(ctx context.Context, store, key string, etag *daprc.ETag, meta map[string]string, opts *daprc.StateOptions) error
}

// Store keeps accounts: "user:<id>" records and "email:<address>" claims.
type Store struct {
	Client StateClient
	Name   string // state store component name
}

var _ users.Store = (*Store)(nil)

type emailClaim struct {
	UserID string `json:"user_id"`
}

func emailKey(email string) string { return "email:" + email }
func userKey(id string) string     { return "user:" + id }

// ClaimEmail implements users.Store with a first-write-wins insert.
func (s *Store) ClaimEmail(ctx context.Context, email, userID string) (string, error) {
	inserted, err := sidecar.InsertJSON(ctx, s.Client, s.Name, emailKey(email), emailClaim{UserID: userID})
	if err != nil {
		return "", err
	}
	if !inserted {
		return "", apierr.Errorf(apierr.Conflict, "email taken")
	}
	var claim emailClaim
	etag, _, err := sidecar.GetJSON(ctx, s.Client, s.Name, emailKey(email), &claim)
	return etag, err
}

// ReleaseEmail implements users.Store.
func (s *Store) ReleaseEmail(ctx context.Context, email, etag string) error {
	err := s.Client.DeleteStateWithETag(ctx, s.Name, emailKey(email), &daprc.ETag{Value: etag}, nil,
		&daprc.StateOptions{Concurrency: daprc.StateConcurrencyFirstWrite})
	if err != nil {
		return apierr.Unavailablef(err, "user store unavailable")
	}
	return nil
}

// UserIDByEmail implements users.Store.
func (s *Store) UserIDByEmail(ctx context.Context, email string) (string, error) {
	var claim emailClaim
	_, found, err := sidecar.GetJSON(ctx, s.Client, s.Name, emailKey(email), &claim)
	if err != nil {
		return "", err
	}
	if !found {
		return "", apierr.Errorf(apierr.NotFound, "no account for this email")
	}
	return claim.UserID, nil
}

// Put implements users.Store.
func (s *Store) Put(ctx context.Context, r users.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.Client.SaveState(ctx, s.Name, userKey(r.ID), b, sidecar.JSONMeta()); err != nil {
		return apierr.Unavailablef(err, "user store unavailable")
	}
	return nil
}

// Get implements users.Store.
func (s *Store) Get(ctx context.Context, id string) (users.Record, error) {
	var r users.Record
	_, found, err := sidecar.GetJSON(ctx, s.Client, s.Name, userKey(id), &r)
	if err != nil {
		return users.Record{}, err
	}
	if !found {
		return users.Record{}, apierr.Errorf(apierr.NotFound, "user %s not found", id)
	}
	return r, nil
}

// LimitClient is the part of the Dapr client LimitStore needs.
type LimitClient interface {
	sidecar.Saver
	DeleteState(ctx context.Context, store, key string, meta map[string]string) error
}

// LimitStore keeps login limit entries (users.LimitStore) in the users
// state store under Prefix and the hex of the limits' key (a binary
// digest). Every entry is written with a TTL to its expiry, so the store
// drops what no longer counts (state.redis and state.postgresql v1 honour
// ttlInSeconds; see sidecar.SaveJSON): the store holds as many entries as
// the attempts of the last SourceMemory (a day) made, not more.
type LimitStore struct {
	Client LimitClient
	Name   string // state store component name
	Prefix string // e.g. "limit:"
	Now    func() time.Time
}

var _ users.LimitStore = (*LimitStore)(nil)

// storedEntry is a limit entry as stored.
type storedEntry struct {
	N       int       `json:"n,omitempty"`
	At      time.Time `json:"at"`
	Expires time.Time `json:"expires"`
}

func (s *LimitStore) key(k string) string { return s.Prefix + hex.EncodeToString([]byte(k)) }

// Get implements users.LimitStore.
func (s *LimitStore) Get(ctx context.Context, key string) (users.Entry, string, bool, error) {
	var e storedEntry
	etag, found, err := sidecar.GetJSON(ctx, s.Client, s.Name, s.key(key), &e)
	if err != nil || !found {
		return users.Entry{}, "", false, err
	}
	if !s.Now().Before(e.Expires) {
		// Expired but not dropped yet (TTLs are whole seconds): absent,
		// and replaced by a write over its version.
		return users.Entry{}, etag, false, nil
	}
	return users.Entry(e), etag, true, nil
}

// Put implements users.LimitStore.
func (s *LimitStore) Put(ctx context.Context, key string, e users.Entry, version string) error {
	ttl := max(e.Expires.Sub(s.Now()), time.Second)
	return sidecar.SaveJSON(ctx, s.Client, s.Name, s.key(key), storedEntry(e), version, ttl)
}

// Delete implements users.LimitStore.
func (s *LimitStore) Delete(ctx context.Context, key string) error {
	if err := s.Client.DeleteState(ctx, s.Name, s.key(key), nil); err != nil {
		return apierr.Unavailablef(err, "user store unavailable")
	}
	return nil
}
