package prometheus_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/daprshop/suite/tools/prometheus"
	"github.com/daprshop/suite/tools/runner"
)

const dir = "../../observability/prometheus"

// TestCommittedTargetsMatchTheRunFile: the scrape targets of `make observe`
// are dapr.yaml's app and metrics ports.
func TestCommittedTargetsMatchTheRunFile(t *testing.T) {
	f, err := runner.Load("../../dapr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	services, daprd, err := prometheus.Targets(prometheus.AppsOf(f.Apps))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"services.json": services, "daprd.json": daprd} {
		got, err := os.ReadFile(filepath.Join(dir, "targets", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("targets/%s is not current (%v): run `cd tools && go run ./cmd/observability`", name, err)
		}
	}
	if !strings.Contains(string(daprd), `"127.0.0.1:9193"`) || !strings.Contains(string(services), `"service": "orders"`) {
		t.Fatalf("targets:\n%s\n%s", services, daprd)
	}
}

// TestAlertExpressions: every alert has an expression whose selectors parse.
func TestAlertExpressions(t *testing.T) {
	rules, err := prometheus.Rules(filepath.Join(dir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < 6 {
		t.Fatalf("%d rules", len(rules))
	}
	for _, r := range rules {
		sels, err := prometheus.Selectors(r.Expr)
		if err != nil || len(sels) == 0 || r.Alert == "" {
			t.Errorf("%s: %q: %v", r.Alert, r.Expr, err)
		}
	}
	if _, err := prometheus.Selectors("sum(rate(x[1m]"); err == nil {
		t.Fatal("a broken expression parsed")
	}
}

// TestPromtoolChecks: promtool accepts the configuration and the rules, and
// the rules fire in the cases of alerts_test.yml.
// promtool comes with Prometheus (`make tools` installs Debian's package
// where it can); without it the test is skipped unless PROMTOOL_REQUIRED.
func TestPromtoolChecks(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PROMTOOL_REQUIRED") != "" {
			t.Fatal("promtool not found: install Prometheus (make tools)")
		}
		t.Skip("promtool not found (make tools installs it)")
	}
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "config", filepath.Join(dir, "kubernetes.yml")},
		{"check", "rules", filepath.Join(dir, "alerts.yml")},
		{"test", "rules", filepath.Join(dir, "alerts_test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil && strings.Contains(string(out), "field kubernetes_sd_configs not found") {
			// Debian builds Prometheus without Kubernetes discovery; the k8s
			// module's tests check kubernetes.yml against the manifests.
			t.Logf("this promtool cannot read kubernetes_sd_configs: %s not checked by it", args[len(args)-1])
			continue
		}
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
