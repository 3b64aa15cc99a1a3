// Package dapr holds the notifications adapter over the Dapr sidecar: one
// insert-only key per notification (its CloudEvent ID) and a per-user list of
// notification IDs, newest first, updated under its ETag.
package dapr

import (
	"context"
	"slices"

	daprc "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

// StateClient is the part of the Dapr client the store uses.
type StateClient interface {
	sidecar.StateGetter
	sidecar.BulkGetter
	SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...daprc.StateOption) error
	SaveStateWithETag(ctx context.Context, store, key string, data []byte, etag string, meta map[string]string, so ...daprc.StateOption) error
}

// Store keeps notifications in a Dapr state store.
type Store struct {
	Client StateClient
	Name   string // state store component name
	// MaxPerUser bounds a user's list; the oldest fall off.
	MaxPerUser int
}

var _ notifications.Store = (*Store)(nil)

func noteKey(id string) string     { return "notification:" + id }
func userKey(userID string) string { return "user:" + userID }

type list struct {
	IDs []string `json:"ids"`
}

// Add implements notifications.Store: the insert-only write of the
// notification decides whether this delivery is the first; the list is then
// completed either way, so a delivery that failed half-way is finished by
// the redelivery.
func (s *Store) Add(ctx context.Context, n notifications.Notification) (bool, error) {
	created, err := sidecar.InsertJSON(ctx, s.Client, s.Name, noteKey(n.ID), n)
	if err != nil {
		return false, err
	}
	if !created {
		// Index what was recorded first, not what this delivery says.
		if _, _, err := sidecar.GetJSON(ctx, s.Client, s.Name, noteKey(n.ID), &n); err != nil {
			return false, err
		}
	}
	return created, sidecar.ModifyJSON(ctx, s.Client, s.Name, userKey(n.UserID), func(l *list) bool {
		if slices.Contains(l.IDs, n.ID) {
			return false
		}
		l.IDs = append([]string{n.ID}, l.IDs...)
		if len(l.IDs) > s.MaxPerUser {
			l.IDs = l.IDs[:s.MaxPerUser]
		}
		return true
	})
}

// ListByUser implements notifications.Store.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]notifications.Notification, error) {
	var l list
	if _, _, err := sidecar.GetJSON(ctx, s.Client, s.Name, userKey(userID), &l); err != nil {
		return nil, err
	}
	keys := make([]string, len(l.IDs))
	for i, id := range l.IDs {
		keys[i] = noteKey(id)
	}
	out, err := sidecar.GetBulkJSON[notifications.Notification](ctx, s.Client, s.Name, keys)
	if out == nil && err == nil {
		out = []notifications.Notification{}
	}
	return out, err
}
