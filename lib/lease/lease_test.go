package lease_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/lib/retry"
)

func TestMemStoreContract(t *testing.T) {
	leasetest.Run(t, func(*testing.T) lease.Store { return &lease.MemStore{} })
}

func newManager() (*lease.Manager, *lease.MemStore, *leasetest.Clock) {
	st, c := &lease.MemStore{}, leasetest.NewClock()
	return &lease.Manager{Store: st, TTL: 30 * time.Second, Now: c.Now}, st, c
}

func TestOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	m, st, c := newManager()
	l, err := m.Acquire(ctx, "order:1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops != 1 {
		t.Errorf("a free lease took %d store calls, want 1 (the insert)", st.Ops)
	}
	var held *lease.HeldError
	if _, err := m.Acquire(ctx, "order:1"); !errors.As(err, &held) || !held.Until.Equal(c.Now().Add(30*time.Second)) {
		t.Fatalf("second holder: %v, want a HeldError until the first lease's end", err)
	}
	if _, err := m.Acquire(ctx, "order:2"); err != nil {
		t.Fatalf("another key: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Acquire(ctx, "order:1"); err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

// A holder that stalls past its lease loses it to the next: it learns so
// at its next step, and its release leaves the new holder's lease alone.
func TestAnExpiredLeaseIsTakenOver(t *testing.T) {
	ctx := context.Background()
	m, _, c := newManager()
	stalled, _ := m.Acquire(ctx, "k")
	c.Add(29 * time.Second)
	if _, err := m.Acquire(ctx, "k"); !errors.As(err, new(*lease.HeldError)) {
		t.Fatalf("taken over before its end: %v", err)
	}
	c.Add(2 * time.Second)
	next, err := m.Acquire(ctx, "k")
	if err != nil {
		t.Fatalf("after its end: %v", err)
	}
	if _, _, err := stalled.Step(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("the stalled holder's next step: %v, want ErrLost", err)
	}
	if err := stalled.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("the stalled holder's renewal: %v, want ErrLost", err)
	}
	if err := stalled.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Acquire(ctx, "k"); !errors.As(err, new(*lease.HeldError)) {
		t.Fatalf("the stalled holder's release freed the new holder's lease: %v", err)
	}
	if err := next.Renew(ctx); err != nil {
		t.Fatalf("the new holder: %v", err)
	}
}

// Step renews a lease once half of it is gone and ends its context Margin
// before the lease does.
func TestStepRenewsAndBoundsTheStep(t *testing.T) {
	ctx := context.Background()
	m, st, c := newManager()
	l, _ := m.Acquire(ctx, "k")
	ops := st.Ops
	stepCtx, cancel, err := l.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if st.Ops != ops {
		t.Errorf("a fresh lease was renewed (%d store calls)", st.Ops-ops)
	}
	if dl, ok := stepCtx.Deadline(); !ok || time.Until(dl) > 30*time.Second-m.Margin() {
		t.Fatalf("step deadline %v: want at most TTL-Margin from now", dl)
	}
	c.Add(16 * time.Second)
	if _, cancel, err = l.Step(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if st.Ops == ops || !l.Until().Equal(c.Now().Add(30*time.Second)) {
		t.Fatalf("past half: until %v after %d store calls, want renewed to a full TTL", l.Until(), st.Ops-ops)
	}
}

// Acquire waits while the lease is held and takes it once it is released.
// The wait's sleep releases it: no timing involved.
func TestAcquireWaitsForTheHolder(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager()
	first, _ := m.Acquire(ctx, "k")
	sleeps := 0
	m.Wait = retry.Policy{Retries: 5, Initial: time.Millisecond, Sleep: func(context.Context, time.Duration) error {
		if sleeps++; sleeps == 2 {
			if err := first.Release(ctx); err != nil {
				t.Error(err)
			}
		}
		return nil
	}}
	if _, err := m.Acquire(ctx, "k"); err != nil || sleeps != 2 {
		t.Fatalf("err %v after %d waits, want the lease after 2", err, sleeps)
	}
	// Held throughout: the wait ends with a HeldError.
	m.Wait.Sleep = func(context.Context, time.Duration) error { return nil }
	if _, err := m.Acquire(ctx, "k"); !errors.As(err, new(*lease.HeldError)) {
		t.Fatalf("held throughout: %v", err)
	}
}

// Many acquirers at once, waiting on the real clock: never two holders, and
// each gets its turn.
func TestContendedAcquirersTakeTurns(t *testing.T) {
	m, _, _ := newManager()
	m.Now = time.Now
	m.Wait = retry.Policy{Retries: 1000, Initial: time.Millisecond, Max: 5 * time.Millisecond, Jitter: 1}
	var (
		holders, most atomic.Int32
		wg            sync.WaitGroup
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := m.Acquire(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			n := holders.Add(1)
			for {
				if m := most.Load(); n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(100 * time.Microsecond) // a critical section others could overlap
			holders.Add(-1)
			if err := l.Release(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
}

// countingStore counts the writes a Store is asked for.
type countingStore struct {
	lease.Store
	puts atomic.Int32
}

func (s *countingStore) Put(ctx context.Context, key string, r lease.Record, version string) error {
	s.puts.Add(1)
	return s.Store.Put(ctx, key, r, version)
}

// A waiter polls a held lease by reading it: one refused write, then reads
// until the holder lets go, then the write that takes it.
func TestAcquireWaitsByReading(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager()
	st := &countingStore{Store: m.Store}
	m.Store = st
	first, _ := m.Acquire(ctx, "k")
	sleeps := 0
	m.Wait = retry.Policy{Retries: 10, Initial: time.Millisecond, Sleep: func(context.Context, time.Duration) error {
		if sleeps++; sleeps == 5 {
			if err := first.Release(ctx); err != nil {
				t.Error(err)
			}
		}
		return nil
	}}
	st.puts.Store(0)
	if _, err := m.Acquire(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n := st.puts.Load(); n != 2 {
		t.Fatalf("%d writes over 5 waits, want 2 (the refused one, the one that took the lease)", n)
	}
}

func TestAwaitFree(t *testing.T) {
	ctx := context.Background()
	m, st, clock := newManager()
	if err := m.AwaitFree(ctx, "k"); err != nil {
		t.Fatalf("never taken: %v", err)
	}
	first, _ := m.Acquire(ctx, "k")
	m.Wait = retry.Policy{Retries: 3, Initial: time.Millisecond, Sleep: func(context.Context, time.Duration) error { return nil }}
	if err := m.AwaitFree(ctx, "k"); !errors.As(err, new(*lease.HeldError)) {
		t.Fatalf("held throughout: %v", err)
	}
	sleeps := 0
	m.Wait.Sleep = func(context.Context, time.Duration) error {
		if sleeps++; sleeps == 2 {
			if err := first.Release(ctx); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	if err := m.AwaitFree(ctx, "k"); err != nil || sleeps != 2 {
		t.Fatalf("err %v after %d waits, want free after 2", err, sleeps)
	}
	// It did not take the lease: another acquires it at once.
	if _, _, found, _ := st.Get(ctx, "k"); found {
		t.Fatal("AwaitFree left a record")
	}
	if _, err := m.Acquire(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	// AwaitWait, when set, is how it waits; Acquire still waits as Wait.
	var waits []time.Duration
	m.AwaitWait = retry.Policy{Retries: 2, Initial: 100 * time.Millisecond, Sleep: func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}}
	if err := m.AwaitFree(ctx, "k"); !errors.As(err, new(*lease.HeldError)) || len(waits) != 2 || waits[0] != 100*time.Millisecond {
		t.Fatalf("held throughout: %v after waits %v, want two, the first 100 ms", err, waits)
	}
	sleeps = 0
	if _, err := m.Acquire(ctx, "k"); !errors.As(err, new(*lease.HeldError)) || sleeps != 3 {
		t.Fatalf("Acquire: %v after %d of Wait's waits, want held after 3", err, sleeps)
	}
	// An expired lease is free.
	clock.Add(m.TTL + time.Second)
	m.Wait, m.AwaitWait = retry.Policy{}, retry.Policy{}
	if err := m.AwaitFree(ctx, "k"); err != nil {
		t.Fatalf("expired: %v", err)
	}
}
