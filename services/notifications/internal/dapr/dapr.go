// Package dapr holds the notifications adapter over the Dapr sidecar: one
// insert-only key per notification (its CloudEvent ID) and a per-user list of
// notification IDs, newest first, updated under its ETag.
//
// A user's list is one key that every event about that user rewrites, seven
// per order since shipping joined (four of the order, three of its
// shipment). With up to 100 deliveries in flight per replica, each taking
// its turn at the key, a customer's burst of orders made the writers of that
// key lose race after race until their deliveries timed out (e2e, one
// customer's stream with kills: thousands of retried deliveries, the list
// unreadable for a minute). So within a replica the additions to one user's
// list are committed in groups: one write at a time per user, and whatever
// arrives meanwhile goes into the next write, together.
package dapr

import (
	"context"
	"slices"
	"sync"
	"time"

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

// Store keeps notifications in a Dapr state store. Its zero value but for
// the exported fields is ready to use; it must not be copied after first use.
type Store struct {
	Client StateClient
	Name   string // state store component name
	// MaxPerUser bounds a user's list; the oldest fall off.
	MaxPerUser int

	mu     sync.Mutex
	queues map[string]*queue // by user: the list writes in progress
}

// queue is one user's list writes: whether one is being written, and the
// additions waiting for the next.
type queue struct {
	writing bool
	next    *batch
}

// batch is the IDs one list write adds, and its outcome for each waiter.
type batch struct {
	ids  []string
	done chan struct{}
	err  error
}

// listWriteTimeout bounds one group's write: it runs for every waiter, so
// none of their contexts (which may end) is its own.
const listWriteTimeout = 10 * time.Second

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
	return created, s.index(ctx, n.UserID, n.ID)
}

// index puts id at the head of user's list, with whatever other additions
// to that list this replica has in hand (see the package comment): one
// goroutine per user writes batch after batch while additions keep coming,
// and each caller waits for the write that carries its ID.
func (s *Store) index(ctx context.Context, user, id string) error {
	s.mu.Lock()
	if s.queues == nil {
		s.queues = map[string]*queue{}
	}
	q := s.queues[user]
	if q == nil {
		q = &queue{}
		s.queues[user] = q
	}
	if q.next == nil {
		q.next = &batch{done: make(chan struct{})}
	}
	b := q.next
	b.ids = append(b.ids, id)
	if !q.writing {
		q.writing = true
		// The writes carry the trace of the caller that started them; no
		// caller's end ends them, as they are every waiter's.
		go s.drain(context.WithoutCancel(ctx), user, q)
	}
	s.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain writes q's batches, one after another, until none is waiting.
func (s *Store) drain(ctx context.Context, user string, q *queue) {
	for {
		s.mu.Lock()
		b := q.next
		q.next = nil
		if b == nil {
			q.writing = false
			delete(s.queues, user)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, listWriteTimeout)
		b.err = s.prepend(wctx, user, b.ids)
		cancel()
		close(b.done)
	}
}

// prepend writes ids (in the order they came: the last is the newest) at the
// head of user's list, skipping those already in it.
func (s *Store) prepend(ctx context.Context, user string, ids []string) error {
	return sidecar.ModifyJSON(ctx, s.Client, s.Name, userKey(user), func(l *list) bool {
		var add []string
		for i := len(ids) - 1; i >= 0; i-- {
			if !slices.Contains(l.IDs, ids[i]) && !slices.Contains(add, ids[i]) {
				add = append(add, ids[i])
			}
		}
		if len(add) == 0 {
			return false
		}
		l.IDs = append(add, l.IDs...)
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
