package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// k6Path finds k6.
func k6Path() string { return toolPath("K6", "k6") }

// requireK6 skips the test when there is no k6, or fails it when the run
// requires everything (E2E_REQUIRED).
func requireK6(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(k6Path()); err != nil {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatalf("k6 not found at %s: run `make tools`", k6Path())
		}
		t.Skipf("no k6 at %s", k6Path())
	}
}

// TestK6Smoke runs loadtest/smoke.js against the running suite, so the load
// test scripts cannot rot: k6 must pass its thresholds and run every
// iteration without a failed request.
func TestK6Smoke(t *testing.T) {
	requireK6(t)
	summary := filepath.Join(t.TempDir(), "smoke.json")
	cmd := exec.Command(k6Path(), "run", "--quiet", "--no-color", "--summary-export", summary,
		"-e", fmt.Sprintf("BASE_URL=http://127.0.0.1:%d", env.run.App("gateway").AppPort),
		"-e", "ADMIN_EMAIL="+adminEmail, "-e", "ADMIN_PASSWORD="+env.secrets["admin-password"],
		"../loadtest/smoke.js")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("k6 smoke: %v\n%s", err, out)
	}
	var s struct {
		Metrics map[string]struct {
			Count float64 `json:"count"`
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	b, err := os.ReadFile(summary)
	if err != nil || json.Unmarshal(b, &s) != nil {
		t.Fatalf("summary %s: %v", b, err)
	}
	if it := s.Metrics["iterations"].Count; it != 5 {
		t.Fatalf("%v iterations, want 5\n%s", it, out)
	}
	if failed := s.Metrics["http_req_failed"].Value; failed != 0 {
		t.Fatalf("failed request rate %v\n%s", failed, out)
	}
}

// TestK6Stress runs loadtest/stress.js, shortened (10 -> 200 journeys/s over
// 5 s, 200/s for 15 s), against the running suite with its correctness
// thresholds and without its latency ones (LATENCY=0: this machine runs
// other work too): every refusal a 503 or 429 with Retry-After, no other
// 5xx, every accepted order settled and listed exactly once, every
// confirmed order shipped, every Go service under 40 MB resident (shipping,
// on Node.js, under 100 MB). It runs once, on the redis profile's pass (one
// instance of each service, whose /metrics k6 reads).
func TestK6Stress(t *testing.T) {
	if env.profile != "redis" {
		t.Skip("runs once, on the redis profile's pass")
	}
	requireK6(t)
	var metrics []string
	for _, a := range env.run.Apps {
		if a.ID != "e2e-probe" {
			metrics = append(metrics, fmt.Sprintf("%s=http://127.0.0.1:%d/metrics", a.ID, a.AppPort))
		}
	}
	summary := filepath.Join(t.TempDir(), "stress.json")
	cmd := exec.Command(k6Path(), "run", "--quiet", "--no-color", "--summary-export", summary,
		"-e", fmt.Sprintf("BASE_URL=http://127.0.0.1:%d", env.run.App("gateway").AppPort),
		"-e", "ADMIN_EMAIL="+adminEmail, "-e", "ADMIN_PASSWORD="+env.secrets["admin-password"],
		"-e", "METRICS="+strings.Join(metrics, ","), "-e", "LATENCY=0",
		"-e", "RAMP=5s", "-e", "DURATION=15s", "-e", "SETTLE=60s",
		"../loadtest/stress.js")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("k6 stress: %v\n%s", err, out)
	}
	var s struct {
		Metrics map[string]map[string]any `json:"metrics"`
	}
	b, err := os.ReadFile(summary)
	if err != nil || json.Unmarshal(b, &s) != nil {
		t.Fatalf("summary %s: %v", b, err)
	}
	figure := func(metric, stat string) float64 {
		v, _ := s.Metrics[metric][stat].(float64)
		return v
	}
	// k6 passed its thresholds; the figures say what was asked of it.
	accepted := figure("orders_accepted", "count")
	t.Logf("figures: %v orders accepted, refusals p95 %.1f ms, admitted orders p95 %.0f ms, %v requests, shipping at most %.0f MB resident",
		accepted, figure("refused_duration", "p(95)"), figure("admitted_order_duration", "p(95)"), figure("http_reqs", "count"),
		figure("service_rss_mb{service:shipping}", "max"))
	if accepted == 0 || figure("refused_duration", "max") == 0 {
		t.Fatalf("no order accepted or nothing refused: the run did not overload the suite\n%s", out)
	}
}
