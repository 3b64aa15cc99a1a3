package dapr_test

import (
	"testing"
	"time"

	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/users/internal/dapr"
	"github.com/daprshop/suite/services/users/internal/limittest"
	"github.com/daprshop/suite/services/users/internal/users"
)

func TestLimitStoreContract(t *testing.T) {
	limittest.Run(t, func(_ *testing.T, now func() time.Time) users.LimitStore {
		return &dapr.LimitStore{Client: &sidecartest.State{Now: now}, Name: "users-store", Prefix: "limit:", Now: now}
	})
}

// Every entry is written with a TTL to its expiry: the store drops what no
// longer counts.
func TestLimitStoreEntriesExpireInTheStore(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	st := &sidecartest.State{Now: clock}
	s := &dapr.LimitStore{Client: st, Name: "users-store", Prefix: "limit:", Now: clock}
	if err := s.Put(t.Context(), "p\x01", users.Entry{N: 2, Expires: now.Add(24 * time.Hour)}, ""); err != nil {
		t.Fatal(err)
	}
	keys := st.Keys()
	if len(keys) != 1 || keys[0] != "limit:7001" || st.TTL(keys[0]) != 24*time.Hour {
		t.Fatalf("keys %v, TTL %v: want limit:<hex of the key> for 24 h", keys, st.TTL("limit:7001"))
	}
	now = now.Add(24 * time.Hour)
	if len(st.Keys()) != 0 {
		t.Fatal("the store kept an entry past its expiry")
	}
}
