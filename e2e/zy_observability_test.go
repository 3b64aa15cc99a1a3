package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/grafana"
	"github.com/daprshop/suite/tools/prometheus"
	"github.com/daprshop/suite/tools/runner"
)

// quietSelectors are alert selectors that match nothing in a healthy run, on
// purpose: they exist only once something is wrong.
var quietSelectors = map[string]string{
	`http_requests_total{code=~"5.."}`:                            "no service answered a 5xx during the observed window",
	`dapr_component_pubsub_ingress_count{process_status="retry"}`: "no event needed a second delivery",
	// What the counters were 10 minutes ago: a run of minutes has no such past.
	`dapr_component_pubsub_ingress_count{process_status="drop"} offset 10m`: "the run is younger than 10 minutes",
}

// quietMetrics are metrics a dashboard names that exist only once something
// went wrong; their panels fall back to a series that always exists.
var quietMetrics = map[string]string{
	// Dapr creates it when a policy is activated: a timeout fired or an
	// event delivery was retried. Calls between apps have no Dapr retries
	// or breakers any more (docs/resilience.md), so a healthy run may have none.
	"dapr_resiliency_activations_total": "no Dapr timeout fired and no delivery was retried",
}

// TestPrometheusSeesEveryPanelAndAlert runs a real Prometheus with the
// repository's configuration and rules against this run, under a short
// load, and asserts that every dashboard query returns data, every metric a
// dashboard names exists (but quietMetrics), every alert expression
// evaluates and every one of its selectors has data (but quietSelectors),
// and that the dead-letter alert fires for a poison event.
func TestPrometheusSeesEveryPanelAndAlert(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatal("prometheus not found: `make tools` installs Debian's package (apt-get install prometheus)")
		}
		t.Skip("prometheus not found (make tools installs it)")
	}
	prom := startPrometheus(t, bin)

	// A short load that touches every service, both outcomes of a charge,
	// a refund, a failed login and a dropped event.
	admin := adminToken(t)
	u, tok := signUp(t)
	expectError(t, gateway(t, ""), "POST", "/api/login", map[string]string{"email": u.Email, "password": "wrong password"}, 401, "unauthenticated")
	p := newProduct(t, admin, 250, 1000)
	pay := invoke(t, "payments")
	for i := range 12 {
		if i == 8 {
			pay.mustCall(t, "PUT", "/provider", map[string]any{"failure_rate": 1}, 200, nil)
		}
		placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1})
		time.Sleep(250 * time.Millisecond)
	}
	pay.mustCall(t, "PUT", "/provider", map[string]any{"failure_rate": 0}, 200, nil)
	cancelPaidOrder(t, admin, tok, 250, 10, 1) // a refund
	publish(t, "orders", poisonPrefix+randomHex(6), map[string]any{"type": "order.paid", "status": "paid"})

	// Dashboards: every query has data, every metric exists.
	type miss struct{ where, query, why string }
	eventually(t, 45*time.Second, func() string {
		var misses []miss
		names := map[string]string{}
		for _, d := range grafana.All() {
			for _, q := range d.Queries() {
				expr := grafana.Expand(q.Expr, "15s", "2m")
				n, err := prom.count(expr)
				if err != nil || n == 0 {
					misses = append(misses, miss{d.UID, expr, fmt.Sprint(n, " series ", err)})
				}
				sels, _ := prometheus.Selectors(expr)
				for _, s := range sels {
					names[metricName.FindString(s)] = d.UID
				}
			}
		}
		for name, uid := range names {
			if _, quiet := quietMetrics[name]; quiet {
				continue
			}
			if n, err := prom.count(fmt.Sprintf(`group({__name__=%q})`, name)); err != nil || n == 0 {
				misses = append(misses, miss{uid, name, "metric does not exist"})
			}
		}
		if len(misses) > 0 {
			return fmt.Sprintf("%d queries without data, first: %+v", len(misses), misses[0])
		}
		return ""
	})

	// Alerts: expressions evaluate, their selectors have data.
	rules, err := prometheus.Rules("../observability/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if _, err := prom.count(r.Expr); err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
		}
		sels, _ := prometheus.Selectors(r.Expr)
		for _, s := range sels {
			if _, quiet := quietSelectors[s]; quiet {
				continue
			}
			if n, err := prom.count(s); err != nil || n == 0 {
				t.Errorf("alert %s: selector %s has no data (%v)", r.Alert, s, err)
			}
		}
	}
	eventually(t, 30*time.Second, func() string {
		firing, err := prom.firing()
		if err != nil {
			return err.Error()
		}
		if !firing["DaprshopDeadLetters"] {
			return fmt.Sprintf("DaprshopDeadLetters is not firing after a poison event (firing: %v)", firing)
		}
		return ""
	})
}

// metricName finds the metric name at the start of a selector.
var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)

// promServer is a Prometheus started for one test.
type promServer struct{ base string }

// startPrometheus starts Prometheus with the repository's configuration,
// scraping this run's services and sidecars every second.
func startPrometheus(t *testing.T, bin string) *promServer {
	t.Helper()
	dir := t.TempDir()
	src := "../observability/prometheus"
	cfg, err := os.ReadFile(filepath.Join(src, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	fast := strings.NewReplacer("scrape_interval: 5s", "scrape_interval: 1s", "evaluation_interval: 5s", "evaluation_interval: 1s").Replace(string(cfg))
	rules, err := os.ReadFile(filepath.Join(src, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The dead-letter alert waits for no `for`; the others are not expected to fire.
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(fast), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	var apps []prometheus.App
	for _, a := range env.run.AllInstances() { // every replica is scraped
		if len(a.Command) > 0 { // the probe has no /metrics of its own
			apps = append(apps, prometheus.App{ID: a.ID, AppPort: a.AppPort, MetricsPort: a.MetricsPort})
		}
	}
	if err := prometheus.WriteTargets(dir, apps); err != nil {
		t.Fatal(err)
	}
	port, err := runner.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	logFile, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = runner.ChildAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &promServer{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	eventually(t, 30*time.Second, func() string {
		n, err := p.count(`up == 1`)
		if err != nil || n != 2*len(apps) {
			return fmt.Sprintf("%d of %d targets up (%v)", n, 2*len(apps), err)
		}
		return ""
	})
	return p
}

// count runs an instant query and returns how many series it gave.
func (p *promServer) count(expr string) (int, error) {
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []json.RawMessage
		}
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr), &r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", expr, r.Error)
	}
	return len(r.Data.Result), nil
}

// firing returns the alerts that fire.
func (p *promServer) firing() (map[string]bool, error) {
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string
				State  string
			}
		}
	}
	if err := p.get("/api/v1/alerts", &r); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range r.Data.Alerts {
		if a.State == "firing" {
			out[a.Labels["alertname"]] = true
		}
	}
	return out, nil
}

func (p *promServer) get(path string, v any) error {
	resp, err := httpClient.Get(p.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}
