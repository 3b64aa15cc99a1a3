package sidecar_test

import (
	"context"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/sidecar/sidecartest"
)

func TestLeaseStoreContract(t *testing.T) {
	leasetest.Run(t, func(*testing.T) lease.Store {
		return &sidecar.LeaseStore{Client: &sidecartest.State{}, Store: "s", Prefix: "lease:", Now: time.Now}
	})
}

// A lease is written with a TTL a little past its end, so the store drops
// one that nobody released; the lease record counts until then.
func TestLeaseStoreLetsTheStoreDropExpiredLeases(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := &sidecartest.State{Now: func() time.Time { return now }}
	s := &sidecar.LeaseStore{Client: st, Store: "s", Prefix: "lease:", Now: st.Now}
	m := &lease.Manager{Store: s, TTL: 30 * time.Second, Now: st.Now}
	if _, err := m.Acquire(context.Background(), "order:1"); err != nil {
		t.Fatal(err)
	}
	if ttl := st.TTL("lease:order:1"); ttl < 30*time.Second || ttl > 32*time.Second {
		t.Fatalf("TTL %v: want just past the lease's 30 s", ttl)
	}
	now = now.Add(32 * time.Second)
	if len(st.Keys()) != 0 {
		t.Fatalf("keys %v: the expired lease is still stored", st.Keys())
	}
	if _, err := m.Acquire(context.Background(), "order:1"); err != nil {
		t.Fatalf("after the store dropped it: %v", err)
	}
}

func TestSaveJSONAndDeleteJSON(t *testing.T) {
	ctx := context.Background()
	st := &sidecartest.State{}
	if err := sidecar.SaveJSON(ctx, st, "s", "k", thing{N: 1}, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := sidecar.SaveJSON(ctx, st, "s", "k", thing{N: 2}, "", 0); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("insert over a key: %v, want Conflict", err)
	}
	var v thing
	etag, _, _ := sidecar.GetJSON(ctx, st, "s", "k", &v)
	if err := sidecar.SaveJSON(ctx, st, "s", "k", thing{N: 3}, etag, 0); err != nil {
		t.Fatal(err)
	}
	if err := sidecar.SaveJSON(ctx, st, "s", "k", thing{N: 4}, etag, 0); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("write over a stale version: %v, want Conflict", err)
	}
	if err := sidecar.DeleteJSON(ctx, st, "s", "k", etag); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("delete at a stale version: %v, want Conflict", err)
	}
	etag, _, _ = sidecar.GetJSON(ctx, st, "s", "k", &v)
	if err := sidecar.DeleteJSON(ctx, st, "s", "k", etag); err != nil {
		t.Fatal(err)
	}
	if err := sidecar.DeleteJSON(ctx, st, "s", "k", etag); err != nil {
		t.Fatalf("deleting a deleted key: %v", err)
	}
	st.Down = true
	for name, err := range map[string]error{
		"insert": sidecar.SaveJSON(ctx, st, "s", "k", thing{}, "", 0),
		"update": sidecar.SaveJSON(ctx, st, "s", "k", thing{}, "7", 0),
		"delete": sidecar.DeleteJSON(ctx, st, "s", "k", "7"),
	} {
		if apierr.CodeOf(err) != apierr.Unavailable {
			t.Errorf("%s while the store is down: %v, want Unavailable", name, err)
		}
	}
}
