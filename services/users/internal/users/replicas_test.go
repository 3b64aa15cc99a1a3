package users_test

// Two replicas of users (two Service values, each with its own Limits)
// share the accounts, the limits' stores and the leases: on memory, and on
// the Dapr adapters over sidecartest. The limits must hold as if there were
// one.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/users/internal/dapr"
	"github.com/daprshop/suite/services/users/internal/users"
)

// twoReplicas returns replicas a and b on the flavour's shared stores, the
// accounts' store, and the sidecar (nil on memory). onWait[r], when set,
// runs when replica r waits for an account's lease.
type twoReplicas struct {
	a, b     *users.Service
	accounts *memStore
	state    *sidecartest.State
	mu       sync.Mutex
	onWait   map[*users.Service]func()
}

func newTwoReplicas(t *testing.T, flavour string, clock func() time.Time) *twoReplicas {
	t.Helper()
	r := &twoReplicas{accounts: newStore(), onWait: map[*users.Service]func(){}}
	var addresses, failures, familiar users.LimitStore
	var leases lease.Store
	switch flavour {
	case "memory":
		addresses, failures, familiar = &users.MemStore{Now: clock}, &users.MemStore{Now: clock}, &users.MemStore{Now: clock}
		leases = &lease.MemStore{}
	case "dapr":
		r.state = &sidecartest.State{Now: clock}
		store := func(prefix string) users.LimitStore {
			return &dapr.LimitStore{Client: r.state, Name: "users-store", Prefix: prefix, Now: clock}
		}
		addresses, failures, familiar = store("limit:s:"), store("limit:f:"), store("limit:k:")
		leases = &sidecar.LeaseStore{Client: r.state, Store: "users-store", Prefix: "lease:", Now: clock}
	}
	replica := func() *users.Service {
		svc := &users.Service{Store: r.accounts, Keys: key, BcryptCost: 4, TokenTTL: time.Hour, Now: clock}
		wait := users.LeaseWait()
		wait.Sleep = func(ctx context.Context, d time.Duration) error {
			r.mu.Lock()
			fn := r.onWait[svc]
			r.mu.Unlock()
			if fn != nil {
				fn()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
				return nil
			}
		}
		svc.Limits = &users.Limits{Policy: policy, Now: clock, Addresses: addresses, Failures: failures, Familiar: familiar,
			Leases: &lease.Manager{Store: leases, TTL: users.LeaseTTL, Now: clock, Wait: wait}}
		return svc
	}
	r.a, r.b = replica(), replica()
	accounts(t, r.a)
	return r
}

// A guess on replica b comes while replica a checks the guess before it
// (the account's fifth failure from one address): b waits for a, sees its
// failure and is refused; it never reaches the password.
func TestALoginWaitsForTheOneBeforeItOnAnotherReplica(t *testing.T) {
	for _, flavour := range []string{"memory", "dapr"} {
		t.Run(flavour, func(t *testing.T) {
			c := newClock()
			r := newTwoReplicas(t, flavour, c.now)
			const addr = "203.0.113.7"
			for range policy.FailuresPerSource - 1 {
				if err := login(r.a, "ada@example.com", "wrong password", addr); apierr.CodeOf(err) != apierr.Unauthenticated {
					t.Fatal(err)
				}
			}
			var stopped atomic.Bool
			reached, opened := make(chan struct{}), make(chan struct{})
			r.accounts.beforeLookup = func() { // stops the first lookup only
				if stopped.CompareAndSwap(false, true) {
					close(reached)
					<-opened
				}
			}
			first := make(chan error, 1)
			go func() { first <- login(r.a, "ada@example.com", "wrong password", addr) }()
			<-reached
			lookups := r.accounts.lookups
			var firstErr error
			r.mu.Lock()
			r.onWait[r.b] = func() {
				select {
				case <-opened:
				default:
					close(opened)
					firstErr = <-first
				}
			}
			r.mu.Unlock()
			err := login(r.b, "ada@example.com", "wrong password", addr)
			select {
			case <-opened:
			default:
				close(opened)
				firstErr = <-first
			}
			if apierr.CodeOf(firstErr) != apierr.Unauthenticated {
				t.Errorf("a's guess: %v, want checked", firstErr)
			}
			if apierr.CodeOf(err) != apierr.TooManyRequests {
				t.Errorf("b's guess: %v, want 429: it must see a's failure", err)
			}
			// a's lookup counts once it is let through; b's never comes.
			if n := r.accounts.lookups - lookups; n != 1 {
				t.Errorf("%d lookups of the account while a and b guessed: b's guess reached the store", n)
			}
		})
	}
}

// Parallel guesses spread over two replicas stop at the limits, as on one.
func TestParallelGuessesOnTwoReplicasStopAtTheLimits(t *testing.T) {
	for _, flavour := range []string{"memory", "dapr"} {
		for _, tc := range []struct {
			name string
			addr func(i int) string
			want int
		}{
			{"one address", func(int) string { return "203.0.113.7" }, policy.FailuresPerSource},
			{"many addresses", freshAddr, policy.FailuresPerAccount},
		} {
			t.Run(flavour+"/"+tc.name, func(t *testing.T) {
				c := newClock()
				r := newTwoReplicas(t, flavour, c.now)
				n := 2 * policy.FailuresPerAccount
				got := parallelGuesses(t, []*users.Service{r.a, r.b}, n, tc.addr)
				if got.checked != tc.want || got.refused != n-tc.want {
					t.Fatalf("%d guesses checked, %d refused: want %d and %d", got.checked, got.refused, tc.want, n-tc.want)
				}
			})
		}
	}
}

// TestLoginCostInStateOperations measures what the limits cost a login in
// calls to the state store (the users store's own two reads, email and
// account, come on top), on the Dapr adapters, and holds them to it.
func TestLoginCostInStateOperations(t *testing.T) {
	c := newClock()
	r := newTwoReplicas(t, "dapr", c.now)
	const home, away = "198.51.100.1", "203.0.113.7"
	if err := login(r.a, "ada@example.com", "analytical engine", home); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		password, addr string
		code           apierr.Code
		most           int
	}{
		{"success from a familiar address", "analytical engine", home, "", 11},
		{"failure from a familiar address", "wrong password", home, apierr.Unauthenticated, 12},
		{"success from a new address", "analytical engine", "192.0.2.1", "", 12},
		{"failure from a new address", "wrong password", away, apierr.Unauthenticated, 13},
	} {
		r.state.Ops()
		c.t = c.t.Add(time.Hour) // no bucket in the way
		if err := login(r.a, "ada@example.com", tc.password, tc.addr); apierr.CodeOf(err) != tc.code {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ops := r.state.Ops()
		n := ops["get"] + ops["save"] + ops["delete"]
		t.Logf("%s: %d state operations (%d reads, %d writes, %d deletes)", tc.name, n, ops["get"], ops["save"], ops["delete"])
		if n > tc.most {
			t.Errorf("%s: %d state operations, at most %d", tc.name, n, tc.most)
		}
	}
	for range policy.FailuresPerSource {
		_ = login(r.a, "ada@example.com", "wrong password", away)
	}
	r.state.Ops()
	if err := login(r.a, "ada@example.com", "wrong password", away); apierr.CodeOf(err) != apierr.TooManyRequests {
		t.Fatalf("refused: %v", err)
	}
	ops := r.state.Ops()
	n := ops["get"] + ops["save"] + ops["delete"]
	t.Logf("a refused attempt: %d state operations (%d reads, %d writes)", n, ops["get"], ops["save"])
	if n > 5 || ops["save"] > 2 {
		t.Errorf("a refused attempt: %d state operations, %d writes: at most 5 and 2 (its address, and no lease)", n, ops["save"])
	}
}
