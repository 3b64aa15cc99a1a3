package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/daprshop/suite/lib/conf"
)

// policyNames are the policies a Resiliency target names.
type policyNames struct {
	Timeout        string `yaml:"timeout"`
	Retry          string `yaml:"retry"`
	CircuitBreaker string `yaml:"circuitBreaker"`
}

// resiliency is the part of a Dapr Resiliency resource checked here.
type resiliency struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Policies struct {
			Timeouts        map[string]string `yaml:"timeouts"`
			Retries         map[string]any    `yaml:"retries"`
			CircuitBreakers map[string]any    `yaml:"circuitBreakers"`
		} `yaml:"policies"`
		Targets struct {
			Apps       map[string]policyNames `yaml:"apps"`
			Components map[string]struct {
				Inbound  policyNames `yaml:"inbound"`
				Outbound policyNames `yaml:"outbound"`
			} `yaml:"components"`
		} `yaml:"targets"`
	} `yaml:"spec"`
}

// resiliencies reads every Resiliency resource of every local profile and of
// the cluster's manifests, by file.
func resiliencies(t *testing.T) map[string][]resiliency {
	t.Helper()
	out := map[string][]resiliency{}
	for _, root := range []string{"../../components", "../../k8s"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			dec := yaml.NewDecoder(bytes.NewReader(b))
			for {
				var r resiliency
				if err := dec.Decode(&r); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if r.Kind == "Resiliency" {
					out[path] = append(out[path], r)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// defaultPolicy matches the policy names Dapr applies without a target
// naming them (pkg/resiliency/resiliency.go, DefaultRetryTemplate and
// DefaultCircuitBreakerTemplate: Default%sRetryPolicy, ...).
var defaultPolicy = regexp.MustCompile(`^Default[A-Za-z]*(RetryPolicy|CircuitBreakerPolicy)$`)

// TestNoAppRetriesOrBreakers: no Resiliency of any profile or of the cluster
// retries or breaks a call between apps, nor a component's outbound call:
// Dapr 1.14 counts every app reply outside 200-399 (a client's 400, a 404, a
// 409) as a failure of the target, and retries it. Timeouts stay, as long as
// orders' own (one attempt). The breakers and retries are in code.
func TestNoAppRetriesOrBreakers(t *testing.T) {
	var cfg config
	if err := conf.Parse(&cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	files := resiliencies(t)
	for _, want := range []string{"../../components/redis/resiliency.yaml", "../../components/kafka-postgres/resiliency.yaml", "../../k8s/base/dapr/resiliency.yaml"} {
		if len(files[want]) != 1 {
			t.Errorf("%s: %d Resiliency resources, want 1", want, len(files[want]))
		}
	}
	for f, rs := range files {
		for _, r := range rs {
			for name := range r.Spec.Policies.Retries {
				if defaultPolicy.MatchString(name) {
					t.Errorf("%s: retry policy %s applies to every target, apps included", f, name)
				}
			}
			for name := range r.Spec.Policies.CircuitBreakers {
				if defaultPolicy.MatchString(name) {
					t.Errorf("%s: circuit breaker %s applies to every target, apps included", f, name)
				}
			}
			for app, p := range r.Spec.Targets.Apps {
				if p.Retry != "" || p.CircuitBreaker != "" {
					t.Errorf("%s: app %s has retry %q and circuit breaker %q: Dapr 1.14 would count its 4xx", f, app, p.Retry, p.CircuitBreaker)
				}
			}
			for c, p := range r.Spec.Targets.Components {
				if p.Outbound.Retry != "" || p.Outbound.CircuitBreaker != "" {
					t.Errorf("%s: component %s outbound has retry %q and circuit breaker %q: an ETag conflict or a missing key would count", f, c, p.Outbound.Retry, p.Outbound.CircuitBreaker)
				}
			}
			for _, app := range []string{cfg.PaymentsApp, cfg.ProductsApp} {
				d, err := time.ParseDuration(r.Spec.Policies.Timeouts[r.Spec.Targets.Apps[app].Timeout])
				if err != nil || d != cfg.InvokeTimeout {
					t.Errorf("%s: %s timeout %v (%v), want orders' INVOKE_TIMEOUT %s", f, app, d, err, cfg.InvokeTimeout)
				}
			}
		}
	}
}

// TestDefaultsAreDocumented: every breaker, retry and lease setting of
// orders, with its default, is in the tables of docs/resilience.md, as the
// code has it.
func TestDefaultsAreDocumented(t *testing.T) {
	var cfg config
	if err := conf.Parse(&cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/resilience.md")
	if err != nil {
		t.Fatal(err)
	}
	// A row: | what | `NAME`, `NAME` | `default` |
	documented := map[string]string{}
	row := regexp.MustCompile("(?m)^\\|[^|\\n]*\\|([^|\\n]*)\\|\\s*`([^`]*)`\\s*\\|\\s*$")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		for _, n := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(m[1], -1) {
			documented[n[1]] = m[2]
		}
	}
	checked := 0
	for _, pair := range strings.Fields(conf.String(&cfg)) {
		name, value, _ := strings.Cut(pair, "=")
		if !strings.Contains(name, "_BREAKER_") && !strings.Contains(name, "_RETRY_") && name != "INVOKE_TIMEOUT" && !strings.HasPrefix(name, "LEASE_") {
			continue
		}
		checked++
		if got, ok := documented[name]; !ok || got != value {
			t.Errorf("%s defaults to %s in code; docs/resilience.md says %q (documented: %v)", name, value, got, ok)
		}
	}
	if checked != 17 {
		t.Fatalf("%d settings checked, want 17 (2 dependencies, 4 breaker and 3 retry settings each, INVOKE_TIMEOUT and 2 lease settings)", checked)
	}
}
