// Package lease gives one holder at a time, across processes and replicas,
// the right to work on a key (an order, an account) for a while. A lease is
// a record in a store shared by every replica, written with first-write
// concurrency (insert only, or over the version read): of two replicas
// taking a free lease, one wins. It carries its expiry, so a holder that died
// blocks the key for at most its TTL, after which another may take it over.
//
// A lease is mutual exclusion in time, not a fence: a holder that stalls past
// its expiry (a paused process) may still act after another took over. Hence
// a holder never starts a step that could outlast its lease: Step renews the
// lease once half of it is gone and bounds the step to end Margin before the
// lease does. A takeover then overlaps a live holder only if a step's effect
// lands more than Margin after its deadline, or the replicas' clocks differ
// by more than Margin. What must hold even then belongs in the records
// themselves (ETags, idempotency keys): the lease keeps holders from
// stepping on each other, it does not replace them.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/retry"
)

// Record is a lease as stored: who holds it (a token drawn at each
// acquisition, so two acquisitions by one process are two holders) and until
// when.
type Record struct {
	Token string    `json:"token"`
	Until time.Time `json:"until"`
}

// Store keeps lease records by key, with versions (ETags). Implementations:
// MemStore (one process, and tests), sidecar.LeaseStore (a Dapr state
// store); leasetest.Run is the contract both pass.
type Store interface {
	// Get returns key's record and its version; found is false when there
	// is none.
	Get(ctx context.Context, key string) (r Record, version string, found bool, err error)
	// Put writes r over version, or only if key has no record when version
	// is "". A record that changed meanwhile (or exists, for "") is an
	// apierr Conflict. The store may forget r once r.Until has passed. A
	// version of a key that no longer exists may be refused or written
	// (state.redis writes it): callers read first.
	Put(ctx context.Context, key string, r Record, version string) error
	// Delete removes key's record if it is still at version; a record that
	// changed is an apierr Conflict, no record is no error.
	Delete(ctx context.Context, key, version string) error
}

// Manager hands out leases of Store.
type Manager struct {
	Store Store
	// TTL is how long a lease lasts from its acquisition or renewal.
	TTL time.Duration
	// Wait is how Acquire waits for a lease someone else holds; the zero
	// Policy does not wait. Give it a Total: how long a caller may wait.
	Wait retry.Policy
	// AwaitWait is how AwaitFree waits; without Initial, Retries or Total
	// it waits as Wait does. A caller that only looks at what the holder
	// did can look less often than one that needs the lease: orders'
	// order.created, which arrives while the placing is at work, read the
	// lease from 20 ms on, each read a call to the busiest sidecar of an
	// order (docs/performance.md).
	AwaitWait retry.Policy
	// Now is the clock that leases' expiries are read and written with.
	Now func() time.Time
}

// Margin is the part of a lease a step never uses: a step ends (its context
// is done) at the latest Margin before the lease expires.
func (m *Manager) Margin() time.Duration { return m.TTL / 4 }

// HeldError says that another holder kept the lease for as long as the
// caller could wait. Until is when that holder's lease ends unless renewed.
type HeldError struct {
	Key   string
	Until time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease %s held by another until %s", e.Key, e.Until.Format(time.RFC3339Nano))
}

// ErrLost is the error of a holder whose lease was taken over after it
// expired: it must stop without acting further.
var ErrLost = errors.New("lease lost: expired and taken over")

// Acquire takes key's lease, waiting (m.Wait) while another holds it. It
// returns a *HeldError when the lease stays held; a store failure is
// returned as it is. A free key costs one write.
func (m *Manager) Acquire(ctx context.Context, key string) (*Lease, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	var (
		got  *Lease
		held *HeldError
	)
	retryable := func(err error) bool {
		return errors.As(err, &held) || apierr.CodeOf(err) == apierr.Conflict
	}
	// Each attempt runs on ctx, not on the wait's: the wait's Total bounds
	// the waiting, and an attempt it would cut short would fail for that.
	// Once a live holder was seen, an attempt reads before it writes: a
	// lease still held then costs one read instead of a refused write and
	// a read.
	err = m.Wait.Do(ctx, retryable, func(context.Context) error {
		r := Record{Token: token, Until: m.Now().Add(m.TTL)}
		if held != nil {
			if err := m.holder(ctx, key); err != nil {
				return err
			}
		}
		err := m.Store.Put(ctx, key, r, "")
		if apierr.CodeOf(err) == apierr.Conflict {
			// Taken: by a live holder, or by one whose lease expired.
			cur, version, found, gerr := m.Store.Get(ctx, key)
			switch {
			case gerr != nil:
				return gerr
			case !found:
				return err // released meanwhile: try again
			case cur.Until.After(m.Now()):
				return &HeldError{Key: key, Until: cur.Until}
			}
			r.Until = m.Now().Add(m.TTL)
			err = m.Store.Put(ctx, key, r, version)
		}
		if err != nil {
			return err
		}
		got = &Lease{m: m, key: key, rec: r}
		return nil
	})
	switch {
	case err == nil:
		return got, nil
	case errors.As(err, &held):
		return nil, held
	case apierr.CodeOf(err) == apierr.Conflict:
		// Lost every race to other acquirers.
		return nil, &HeldError{Key: key, Until: m.Now().Add(m.TTL)}
	}
	return nil, err
}

// holder returns a *HeldError if a live holder has key's lease, and nil
// when it is free (no record, or one expired).
func (m *Manager) holder(ctx context.Context, key string) error {
	cur, _, found, err := m.Store.Get(ctx, key)
	switch {
	case err != nil:
		return err
	case found && cur.Until.After(m.Now()):
		return &HeldError{Key: key, Until: cur.Until}
	}
	return nil
}

// AwaitFree waits (m.AwaitWait) until no live holder has key's lease, without
// taking it, reading the record only: for a caller that first wants to see
// what the holder did, and takes the lease only if something is left to do.
// It returns a *HeldError when the lease stays held.
func (m *Manager) AwaitFree(ctx context.Context, key string) error {
	var held *HeldError
	wait := m.AwaitWait
	if wait.Initial == 0 && wait.Retries == 0 && wait.Total == 0 {
		wait = m.Wait
	}
	err := wait.Do(ctx, func(err error) bool { return errors.As(err, &held) }, func(context.Context) error {
		return m.holder(ctx, key)
	})
	if errors.As(err, &held) {
		return held
	}
	return err
}

// Lease is a lease this process holds.
type Lease struct {
	m   *Manager
	key string
	rec Record
}

// Until is when the lease ends unless renewed.
func (l *Lease) Until() time.Time { return l.rec.Until }

// current returns the stored record's version if it is still this lease,
// ErrLost otherwise.
func (l *Lease) current(ctx context.Context) (string, error) {
	cur, version, found, err := l.m.Store.Get(ctx, l.key)
	if err != nil {
		return "", err
	}
	if !found || cur.Token != l.rec.Token {
		return "", ErrLost
	}
	return version, nil
}

// Renew extends the lease to a full TTL from now. ErrLost means another
// holder took it over (it had expired); the caller must stop.
func (l *Lease) Renew(ctx context.Context) error {
	version, err := l.current(ctx)
	if err != nil {
		return err
	}
	r := Record{Token: l.rec.Token, Until: l.m.Now().Add(l.m.TTL)}
	if err := l.m.Store.Put(ctx, l.key, r, version); err != nil {
		if apierr.CodeOf(err) == apierr.Conflict {
			return ErrLost
		}
		return err
	}
	l.rec = r
	return nil
}

// Step prepares the next step of the holder's work: it renews the lease once
// half of it is gone and returns ctx bounded to end Margin before the lease
// does, so that no step outlasts it. ErrLost: the caller must stop.
func (l *Lease) Step(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if l.rec.Until.Sub(l.m.Now()) < l.m.TTL/2 {
		if err := l.Renew(ctx); err != nil {
			return ctx, func() {}, err
		}
	}
	// Contexts know only the system clock: the lease's remaining time,
	// less Margin, from now.
	stepCtx, cancel := context.WithDeadline(ctx, time.Now().Add(l.rec.Until.Sub(l.m.Now())-l.m.Margin()))
	return stepCtx, cancel, nil
}

// Release gives the lease up; one taken over is left alone. It runs even
// when ctx has ended (the caller's request was cancelled), for a short
// while: a lease not released blocks its key until it expires.
func (l *Lease) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	version, err := l.current(ctx)
	if errors.Is(err, ErrLost) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := l.m.Store.Delete(ctx, l.key, version); err != nil && apierr.CodeOf(err) != apierr.Conflict {
		return err
	}
	return nil
}

func newToken() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
