package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/daprshop/suite/tools/runner/runnertest"
)

// hashes of the binaries, taken in the first profile's run, for comparing
// with the next: switching profile must not change a byte of Go, nor of the
// JavaScript a Node.js service runs.
var (
	hashesMu sync.Mutex
	hashes   = map[string]string{}
)

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// nodeMain is the script a Node.js service's executable (tools/nodeapp.sh's
// wrapper) runs with node, or "" for a Go binary.
func nodeMain(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "#!") {
		return ""
	}
	_, after, ok := strings.Cut(string(b), "exec node \"")
	main, _, ok2 := strings.Cut(after, "\"")
	if !ok || !ok2 {
		t.Fatalf("%s: a script that execs no node \"<main>\"", bin)
	}
	return main
}

// treeHash hashes every file under dir, with its path.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fmt.Fprintf(h, "%s %s\n", strings.TrimPrefix(path, dir), fileHash(t, path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestSameBinariesOnEveryProfile: the processes serving this profile run the
// binaries built once for all profiles, byte for byte: what each running
// process executes (/proc/<pid>/exe; on macOS the path it was started by) is
// hashed and compared across passes; for a Node.js service, the built
// JavaScript (the directory of the script its node runs).
func TestSameBinariesOnEveryProfile(t *testing.T) {
	hashesMu.Lock()
	defer hashesMu.Unlock()
	running := map[string]string{} // executable path -> what to hash: the file the process runs
	for _, p := range runnertest.Tagged(env.marker) {
		pid, cmdline, _ := strings.Cut(p, ": ")
		if f := strings.Fields(cmdline); len(f) > 1 && filepath.Base(f[0]) == "node" {
			running[f[1]] = f[1] // node's script
		}
		if exe, err := os.Readlink("/proc/" + pid + "/exe"); err == nil {
			running[exe] = "/proc/" + pid + "/exe"
		} else if f := strings.Fields(cmdline); runtime.GOOS != "linux" && len(f) > 0 {
			// No /proc (macOS): the runner starts each binary by its absolute path.
			running[f[0]] = f[0]
		}
	}
	for _, a := range env.run.Apps {
		if len(a.Command) == 0 {
			continue // the probe lives in the test process
		}
		built := binaries[a.ID]
		if main := nodeMain(t, built); main != "" {
			built = main
		}
		exe, ok := running[built]
		if !ok {
			t.Fatalf("no process of this run executes the shared build of %s (%s); running: %v", a.ID, built, running)
		}
		h := fileHash(t, exe)
		if built != binaries[a.ID] {
			h = treeHash(t, filepath.Dir(exe))
		}
		if prev, ok := hashes[a.ID]; ok && prev != h {
			t.Fatalf("%s's binary changed between profiles", a.ID)
		}
		hashes[a.ID] = h
	}
	t.Logf("profile %s: %d services on the shared binaries", env.profile, len(hashes))
}

// TestDataIsolation: a sidecar has only its own app's state store loaded, so
// no service can read another service's data, even by asking its sidecar.
func TestDataIsolation(t *testing.T) {
	stores := []string{"users", "products", "orders", "payments", "notifications", "shipping"}
	for _, a := range env.run.Apps {
		for _, owner := range stores {
			status, body := sidecarGet(t, a.ID, "/v1.0/state/"+owner+"-store/probe-key")
			loaded := status == http.StatusNoContent || status == http.StatusOK
			if owner == a.ID && !loaded {
				t.Errorf("%s cannot read its own store: %d %s", a.ID, status, body)
			}
			// NOT_FOUND: the sidecar has other stores; NOT_CONFIGURED: none at all.
			notLoaded := strings.Contains(string(body), "ERR_STATE_STORE_NOT_FOUND") || strings.Contains(string(body), "ERR_STATE_STORE_NOT_CONFIGURED")
			if owner != a.ID && (loaded || !notLoaded) {
				t.Errorf("%s's sidecar answers for %s-store: %d %s", a.ID, owner, status, body)
			}
		}
	}
}

// TestOnlySidecarsGetIn: a sidecar refuses callers without its API token, and
// an app refuses requests that do not come from its sidecar (no app token);
// health endpoints stay open for probes.
func TestOnlySidecarsGetIn(t *testing.T) {
	o := env.run.App("orders")
	daprd := fmt.Sprintf("http://127.0.0.1:%d", o.DaprHTTPPort)
	app := fmt.Sprintf("http://127.0.0.1:%d", o.AppPort)
	cases := []struct {
		name, method, url, token string
		want                     int
	}{
		{"sidecar without token", "GET", daprd + "/v1.0/state/orders-store/x", "", http.StatusUnauthorized},
		{"sidecar, wrong token", "GET", daprd + "/v1.0/state/orders-store/x", "wrong", http.StatusUnauthorized},
		{"sidecar, invoke without token", "GET", daprd + "/v1.0/invoke/orders/method/orders", "", http.StatusUnauthorized},
		{"sidecar with token", "GET", daprd + "/v1.0/state/orders-store/x", o.APIToken, http.StatusNoContent},
		{"sidecar health", "GET", daprd + "/v1.0/healthz", "", http.StatusNoContent},
		{"app directly", "GET", app + "/orders", "", http.StatusUnauthorized},
		{"app, sidecar's API token", "GET", app + "/orders", o.APIToken, http.StatusUnauthorized},
		// Admitted: orders itself answers, 400 for want of an owner (X-User-ID).
		{"app with the app token", "GET", app + "/orders", o.AppToken, http.StatusBadRequest},
		{"app health", "GET", app + "/healthz", "", http.StatusOK},
	}
	for _, tc := range cases {
		if status, body := rawCall(t, tc.method, tc.url, "", tc.token); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
}

// TestPubSubScopes: only orders publishes orders events, only payments
// payments events and only shipping shipments events, whatever another
// sidecar is asked to do.
func TestPubSubScopes(t *testing.T) {
	event := `{"type":"order.paid"}`
	for _, tc := range []struct{ app, topic string }{
		{"products", "orders"}, {"payments", "orders"}, {"gateway", "orders"}, {"users", "orders"},
		{"orders", "payments"}, {"notifications", "payments"}, {"gateway", "payments"}, {"shipping", "orders"},
		{"shipping", "payments"}, {"orders", "shipments"}, {"notifications", "shipments"}, {"gateway", "shipments"},
	} {
		a := env.run.App(tc.app)
		url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/publish/events/%s", a.DaprHTTPPort, tc.topic)
		if status, body := rawCall(t, "POST", url, event, a.APIToken); status != http.StatusForbidden {
			t.Errorf("%s publishing to %s: %d %s, want 403", tc.app, tc.topic, status, body)
		}
	}
}

// TestSecretScopes: each sidecar hands out only the secrets its app needs.
func TestSecretScopes(t *testing.T) {
	allowed := map[string][]string{
		"gateway":  {"jwt-signing-key"},
		"users":    {"jwt-signing-key", "admin-password"},
		"payments": {"payments-provider-key"},
		"shipping": {"shipping-label-key"},
	}
	for _, app := range []string{"gateway", "users", "payments", "orders", "products", "notifications", "shipping"} {
		for _, secret := range []string{"jwt-signing-key", "admin-password", "payments-provider-key", "shipping-label-key"} {
			status, body := sidecarGet(t, app, "/v1.0/secrets/secrets/"+secret)
			want := http.StatusForbidden
			if slices.Contains(allowed[app], secret) {
				want = http.StatusOK
			}
			if status != want {
				t.Errorf("%s reading %s: %d %s, want %d", app, secret, status, body, want)
			}
		}
	}
}
