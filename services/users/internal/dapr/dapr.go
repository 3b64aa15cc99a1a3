// Package dapr holds the users adapter over the Dapr sidecar: accounts in the
// service's own state store, with one insert-only key per email address so an
// address can belong to one account only.
package dapr

import (
	"context"
	"encoding/json"

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
