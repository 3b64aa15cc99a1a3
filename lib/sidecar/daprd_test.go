package sidecar_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/internal/daprdtest"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/lib/sidecar"
)

// TestRealDaprdStateStores runs the lease store contract, SaveJSON's TTL and
// ModifyJSON under contention through a real daprd (1.14) on the two state
// stores the suite uses: state.redis (the machine's Redis) and
// state.postgresql v1 (the machine's PostgreSQL, a table of its own,
// dropped afterwards). It finds out what the fake in sidecartest stands for.
func TestRealDaprdStateStores(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daprd")
	}
	bin := daprdtest.Path(t, "../..")
	appID := daprdtest.ID("statetest")
	table := strings.ReplaceAll(appID, "-", "_")
	resources := t.TempDir()
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: state.redis
  version: v1
  metadata:
    - {name: redisHost, value: "127.0.0.1:6379"}
    - {name: keyPrefix, value: appid}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: postgres
spec:
  type: state.postgresql
  version: v1
  metadata:
    - {name: connectionString, value: "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable"}
    - {name: tableName, value: %s}
    - {name: metadataTableName, value: %s_meta}
`, table, table)
	if err := os.WriteFile(filepath.Join(resources, "state.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Drop what this test made: the table, and the Redis keys without a TTL.
		if out, err := exec.Command("psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
			fmt.Sprintf("DROP TABLE IF EXISTS %s; DROP TABLE IF EXISTS %s_meta", table, table)).CombinedOutput(); err != nil {
			t.Logf("dropping %s: %v %s", table, err, out)
		}
		keys, _ := exec.Command("redis-cli", "--scan", "--pattern", appID+"||*").Output()
		for _, k := range strings.Fields(string(keys)) {
			_ = exec.Command("redis-cli", "DEL", k).Run()
		}
	})
	sc := daprdtest.Start(t, bin, appID, 0, resources)
	client, err := sidecar.Dial(sidecar.Local(sc.GRPCPort), sc.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	for _, store := range []string{"redis", "postgres"} {
		t.Run(store, func(t *testing.T) {
			n := 0
			t.Run("lease store contract", func(t *testing.T) {
				leasetest.Run(t, func(*testing.T) lease.Store {
					n++ // each case its own keys
					return &sidecar.LeaseStore{Client: client, Store: store, Prefix: fmt.Sprintf("lease%d:", n), Now: time.Now}
				})
			})
			t.Run("ttl", func(t *testing.T) {
				if err := sidecar.SaveJSON(ctx, client, store, "ttl", thing{N: 1}, "", 90*time.Second); err != nil {
					t.Fatal(err)
				}
				if left := storedTTL(t, ctx, client, store, appID, "ttl"); left < 80*time.Second || left > 91*time.Second {
					t.Fatalf("TTL %v after a write with 90 s", left)
				}
				var v thing
				etag, _, _ := sidecar.GetJSON(ctx, client, store, "ttl", &v)
				if err := sidecar.SaveJSON(ctx, client, store, "ttl", thing{N: 2}, etag, 0); err != nil {
					t.Fatal(err)
				}
				if left := storedTTL(t, ctx, client, store, appID, "ttl"); store == "postgres" && left != 0 {
					// Redis keeps the expiry of a key rewritten without one;
					// PostgreSQL clears it: hence "give it on every write".
					t.Fatalf("postgres: TTL %v after a write without one", left)
				}
			})
			t.Run("modify under contention", func(t *testing.T) {
				type list struct{ IDs []int }
				var wg sync.WaitGroup
				for i := range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := sidecar.ModifyJSON(ctx, client, store, "list", func(l *list) bool {
							l.IDs = append(l.IDs, i)
							return true
						}); err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				var l list
				if _, _, err := sidecar.GetJSON(ctx, client, store, "list", &l); err != nil || len(l.IDs) != 20 {
					t.Fatalf("%d of 20 appends survived (err %v)", len(l.IDs), err)
				}
			})
		})
	}
}

// storedTTL is the time left before key expires in store, as the store says
// (0: it does not expire).
func storedTTL(t *testing.T, ctx context.Context, client interface {
	sidecar.StateGetter
}, store, appID, key string) time.Duration {
	t.Helper()
	if store == "redis" {
		out, err := exec.Command("redis-cli", "TTL", appID+"||"+key).Output()
		if err != nil {
			t.Fatal(err)
		}
		s, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return time.Duration(max(s, 0)) * time.Second
	}
	item, err := client.GetState(ctx, store, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := item.Metadata["ttlExpireTime"]
	if !ok {
		return 0
	}
	at, err := time.Parse(time.RFC3339, exp)
	if err != nil {
		t.Fatal(err)
	}
	return time.Until(at)
}
