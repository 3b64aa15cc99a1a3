// Package limittest is the users.LimitStore contract: one suite that the
// in-memory MemStore and the Dapr adapter (on lib/sidecar/sidecartest) both
// pass, so that the store the limits are tested on cannot drift from the
// one the service runs on.
package limittest

import (
	"context"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/services/users/internal/users"
)

// Run checks the contract on stores newStore returns, each empty and on
// the clock given.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) users.LimitStore) {
	ctx := context.Background()
	// Keys are binary digests (users.digest): every byte value occurs.
	key := "p\x00\xff\x01 é\n"
	t.Run("insert, read, write over the version read", func(t *testing.T) {
		c := leasetest.NewClock()
		s := newStore(t, c.Now)
		if _, v, found, err := s.Get(ctx, key); err != nil || found || v != "" {
			t.Fatalf("empty store: found %v version %q err %v", found, v, err)
		}
		e := users.Entry{N: 3, At: c.Now().Add(time.Minute), Expires: c.Now().Add(time.Hour)}
		if err := s.Put(ctx, key, e, ""); err != nil {
			t.Fatal(err)
		}
		got, v1, found, err := s.Get(ctx, key)
		if err != nil || !found || v1 == "" || got.N != 3 || !got.At.Equal(e.At) || !got.Expires.Equal(e.Expires) {
			t.Fatalf("got %+v version %q found %v err %v, want %+v", got, v1, found, err, e)
		}
		if err := s.Put(ctx, key, e, ""); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("insert over an entry: %v, want Conflict", err)
		}
		e.N = 4
		if err := s.Put(ctx, key, e, v1); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, key, users.Entry{N: 9, Expires: e.Expires}, v1); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("write over a stale version: %v, want Conflict", err)
		}
		if got, _, _, _ := s.Get(ctx, key); got.N != 4 {
			t.Fatalf("N = %d after a refused write, want 4", got.N)
		}
		if _, _, found, _ := s.Get(ctx, "other key"); found {
			t.Fatal("keys are not apart")
		}
	})
	t.Run("an expired entry is absent and replaced", func(t *testing.T) {
		c := leasetest.NewClock()
		s := newStore(t, c.Now)
		if err := s.Put(ctx, key, users.Entry{N: 5, Expires: c.Now().Add(90 * time.Second)}, ""); err != nil {
			t.Fatal(err)
		}
		c.Add(90 * time.Second)
		_, v, found, err := s.Get(ctx, key)
		if err != nil || found {
			t.Fatalf("expired entry: found %v err %v", found, err)
		}
		if err := s.Put(ctx, key, users.Entry{N: 1, Expires: c.Now().Add(time.Hour)}, v); err != nil {
			t.Fatalf("a write over the version of an expired entry: %v", err)
		}
		if got, _, found, _ := s.Get(ctx, key); !found || got.N != 1 {
			t.Fatalf("after replacing: %+v found %v", got, found)
		}
	})
	t.Run("delete", func(t *testing.T) {
		c := leasetest.NewClock()
		s := newStore(t, c.Now)
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("deleting nothing: %v", err)
		}
		if err := s.Put(ctx, key, users.Entry{N: 1, Expires: c.Now().Add(time.Hour)}, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, _, found, _ := s.Get(ctx, key); found {
			t.Fatal("found after delete")
		}
		if err := s.Put(ctx, key, users.Entry{N: 1, Expires: c.Now().Add(time.Hour)}, ""); err != nil {
			t.Fatalf("insert after delete: %v", err)
		}
	})
}
