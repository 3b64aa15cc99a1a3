package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/daprshop/suite/lib/breaker"
	"github.com/daprshop/suite/lib/conf"
)

// resiliency is the part of a Dapr Resiliency resource the breakers mirror.
type resiliency struct {
	Spec struct {
		Policies struct {
			Timeouts        map[string]string `yaml:"timeouts"`
			CircuitBreakers map[string]struct {
				MaxRequests uint32 `yaml:"maxRequests"`
				Interval    string `yaml:"interval"`
				Timeout     string `yaml:"timeout"`
				Trip        string `yaml:"trip"`
			} `yaml:"circuitBreakers"`
		} `yaml:"policies"`
		Targets struct {
			Apps map[string]struct {
				Timeout        string `yaml:"timeout"`
				CircuitBreaker string `yaml:"circuitBreaker"`
			} `yaml:"apps"`
		} `yaml:"targets"`
	} `yaml:"spec"`
}

var trip = regexp.MustCompile(`^consecutiveFailures > (\d+)$`)

// TestBreakersMirrorResiliency: the in-code breakers and invoke timeout of
// orders have the settings of the Dapr Resiliency policy every profile
// applies to the same calls. The YAML is the source of truth; a change there
// without the same change here (or the reverse) fails this test.
func TestBreakersMirrorResiliency(t *testing.T) {
	var cfg config
	if err := conf.Parse(&cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../components/*/resiliency.yaml")
	if len(files) < 2 {
		t.Fatalf("resiliency files: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r resiliency
		if err := yaml.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for app, code := range map[string]breaker.Config{cfg.PaymentsApp: cfg.PaymentsBreaker, cfg.ProductsApp: cfg.ProductsBreaker} {
			target, ok := r.Spec.Targets.Apps[app]
			if !ok {
				t.Fatalf("%s: no target for app %s", f, app)
			}
			cb, ok := r.Spec.Policies.CircuitBreakers[target.CircuitBreaker]
			if !ok {
				t.Fatalf("%s: app %s has no circuit breaker policy", f, app)
			}
			m := trip.FindStringSubmatch(cb.Trip)
			if m == nil {
				t.Fatalf("%s: trip %q is not of the form the breaker mirrors (consecutiveFailures > N)", f, cb.Trip)
			}
			n, _ := strconv.Atoi(m[1])
			yamlSide := breaker.Config{MaxRequests: cb.MaxRequests, Interval: duration(t, cb.Interval), Timeout: duration(t, cb.Timeout), ConsecutiveFailures: uint32(n)}
			if yamlSide != code {
				t.Errorf("%s: %s breaker %+v in YAML, %+v in code", f, app, yamlSide, code)
			}
			if d := duration(t, r.Spec.Policies.Timeouts[target.Timeout]); d != cfg.InvokeTimeout {
				t.Errorf("%s: invoke timeout for %s is %s in YAML, %s in code", f, app, d, cfg.InvokeTimeout)
			}
		}
	}
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}
