package breaker_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/internal/daprdtest"
)

// TestRealDaprdResiliencyNeverCountsClientErrors puts each Resiliency file
// of the repository (both profiles, Kubernetes) on a real daprd 1.14, its
// products target renamed to a callee of the test's own, and calls that
// callee, which answers 400, a dozen times: each call reaches the app once
// and comes back as its 400. With the policies of before (invokeRetry,
// productsCB) each 400 reached the app three times and the third call was
// answered "circuit breaker is open" without reaching it.
func TestRealDaprdResiliencyNeverCountsClientErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daprd")
	}
	bin := daprdtest.Path(t, "../..")
	callee := daprdtest.ID("cbcallee")
	var hits atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"limit: must be between 1 and 100"}}`))
	})}
	go func() { _ = app.Serve(l) }()
	t.Cleanup(func() { _ = app.Close() })
	daprdtest.Start(t, bin, callee, l.Addr().(*net.TCPAddr).Port, t.TempDir())

	for _, f := range []string{"components/redis/resiliency.yaml", "components/kafka-postgres/resiliency.yaml", "k8s/base/dapr/resiliency.yaml"} {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("../..", f))
			if err != nil {
				t.Fatal(err)
			}
			const target = "\n      products:\n"
			if !strings.Contains(string(b), target) {
				t.Fatalf("no products app target in %s", f)
			}
			resources := t.TempDir()
			renamed := strings.Replace(string(b), target, "\n      "+callee+":\n", 1)
			if err := os.WriteFile(filepath.Join(resources, "resiliency.yaml"), []byte(renamed), 0o600); err != nil {
				t.Fatal(err)
			}
			caller := daprdtest.Start(t, bin, daprdtest.ID("cbcaller"), 0, resources)
			path := "/v1.0/invoke/" + callee + "/method/products?limit=0"
			// mDNS may take a moment to resolve the callee.
			daprdtest.Eventually(20*time.Second, func() bool {
				st, _ := caller.Call(t, http.MethodGet, path, "", nil)
				return st == http.StatusBadRequest
			})
			for i := range 12 {
				before := hits.Load()
				st, body := caller.Call(t, http.MethodGet, path, "", nil)
				if n := hits.Load() - before; st != http.StatusBadRequest || n != 1 {
					t.Fatalf("call %d: %d %s, the app called %d times: want its 400, once", i+1, st, body, n)
				}
			}
		})
	}
}
