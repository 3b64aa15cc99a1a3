package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// k6Path finds k6 the way the Makefile provides it.
func k6Path() string {
	if p := os.Getenv("K6"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../.bin/k6")
	return p
}

// TestK6Smoke runs loadtest/smoke.js against the running suite, so the load
// test scripts cannot rot: k6 must pass its thresholds and run every
// iteration without a failed request.
func TestK6Smoke(t *testing.T) {
	if _, err := os.Stat(k6Path()); err != nil {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatalf("k6 not found at %s: run `make tools`", k6Path())
		}
		t.Skipf("no k6 at %s", k6Path())
	}
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
