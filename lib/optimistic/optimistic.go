// Package optimistic is the suite's one read-change-write cycle under
// optimistic concurrency: read a record with its version (the state store's
// ETag), change it, write it back over that version only, and start again
// from the read when another writer got there first, a bounded number of
// times with waits left to chance (lib/retry), so that writers that collided
// do not collide again. Every service's ETag retry loop is this one, with
// this one policy unless its configuration says otherwise.
package optimistic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/retry"
)

// Policy is the policy of a cycle that lost a race: up to 50 retries, the
// waits from 2 ms doubling to 16 ms, each a random part of that (full
// jitter). Fifty writers of one record (fifty orders for one product at
// once) all get through; a record that stays contended longer answers
// Busy.
func Policy() retry.Policy {
	return retry.Policy{Retries: 50, Initial: 2 * time.Millisecond, Max: 16 * time.Millisecond, Jitter: 1}
}

// ErrUnchanged is what a change returns when there is nothing to write:
// Update then returns the record as read, without writing.
var ErrUnchanged = errors.New("optimistic: nothing to write")

// Update runs one read-change-write cycle on a record and returns the record
// as written (or as read, when change returned ErrUnchanged).
//
// read returns the record and its version; write stores it over that
// version and fails with an apierr Conflict when the record changed
// meanwhile (a version "" is the caller's to interpret, typically "insert
// only"). Only such a lost race starts the cycle again, after a wait of p;
// change's own errors (any code, Conflict included) and read's end the cycle
// at once and are returned with the record as change left it. When p's
// retries are spent (or ctx ends during a wait) the answer is an apierr
// Unavailable error naming what ("product prd_...") with a Retry-After.
func Update[T any](ctx context.Context, p retry.Policy, what string,
	read func(ctx context.Context) (T, string, error),
	change func(*T) error,
	write func(ctx context.Context, v T, version string) error,
) (T, error) {
	var v T
	err := p.Do(ctx, isLost, func(ctx context.Context) error {
		var (
			version string
			err     error
		)
		if v, version, err = read(ctx); err != nil {
			return err
		}
		if err := change(&v); err != nil {
			return err
		}
		if err := write(ctx, v, version); err != nil {
			if apierr.CodeOf(err) == apierr.Conflict {
				return lostRace{err}
			}
			return err
		}
		return nil
	})
	var lost lostRace
	switch {
	case errors.Is(err, ErrUnchanged):
		return v, nil
	case errors.As(err, &lost):
		return v, &apierr.Error{Code: apierr.Unavailable, Message: what + " is busy, retry", RetryAfter: time.Second,
			Cause: fmt.Errorf("%s changed under every attempt: %w", what, lost.err)}
	}
	return v, err
}

// lostRace is a write that found the record changed since its read.
type lostRace struct{ err error }

func (l lostRace) Error() string { return "lost a write race: " + l.err.Error() }

func isLost(err error) bool { return errors.As(err, new(lostRace)) }
