package grafana_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/daprshop/suite/tools/grafana"
	"github.com/daprshop/suite/tools/runner"
)

// TestServicesAreTheRunFile: a dashboard for every app of dapr.yaml and no
// other, and the Node.js panels for exactly the apps with a package.json
// (how e2e's build tells a Node.js service): a Go panel on a Node.js
// service (go_goroutines) would show no data, and the reverse too.
func TestServicesAreTheRunFile(t *testing.T) {
	f, err := runner.Load("../../dapr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var apps, node []string
	for _, a := range f.Apps {
		apps = append(apps, a.ID)
		if _, err := os.Stat(filepath.Join(a.Dir, "package.json")); err == nil {
			node = append(node, a.ID)
		}
	}
	services, nodeServices := slices.Sorted(slices.Values(grafana.Services)), slices.Sorted(slices.Values(grafana.NodeServices))
	slices.Sort(apps)
	slices.Sort(node)
	if !slices.Equal(services, apps) {
		t.Errorf("dashboards for %v, dapr.yaml's apps are %v", services, apps)
	}
	if !slices.Equal(nodeServices, node) {
		t.Errorf("Node.js panels for %v, the apps with a package.json are %v", nodeServices, node)
	}
	for _, d := range grafana.All() {
		s := strings.TrimPrefix(d.UID, "daprshop-")
		if !slices.Contains(grafana.Services, s) {
			continue
		}
		for _, q := range d.Queries() {
			if goOnly := strings.Contains(q.Expr, "go_"); goOnly && slices.Contains(node, s) {
				t.Errorf("%s: %q reads a Go runtime metric", d.UID, q.Expr)
			}
			if nodeOnly := strings.Contains(q.Expr, "nodejs_"); nodeOnly && !slices.Contains(node, s) {
				t.Errorf("%s: %q reads a Node.js runtime metric", d.UID, q.Expr)
			}
		}
	}
}

const dir = "../../observability/grafana/dashboards"

// TestEveryQueryParses: every panel query is valid PromQL once Grafana has
// put in its variables, and filters by namespace.
func TestEveryQueryParses(t *testing.T) {
	n := 0
	for _, d := range grafana.All() {
		for _, p := range d.Panels {
			if p.SlowTraces != "" {
				continue // Jaeger's, not PromQL (TestTraceTables)
			}
			if p.Unit == "" || len(p.Queries) == 0 {
				t.Errorf("%s / %s: needs a unit and a query", d.UID, p.Title)
			}
			for _, q := range p.Queries {
				n++
				if _, err := parser.ParseExpr(grafana.Expand(q.Expr, "1m", "5m")); err != nil {
					t.Errorf("%s / %s: %q: %v", d.UID, p.Title, q.Expr, err)
				}
				if !strings.Contains(q.Expr, `namespace=~"$namespace"`) {
					t.Errorf("%s / %s: %q does not filter by $namespace", d.UID, p.Title, q.Expr)
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d queries", n)
	}
}

// TestCommittedDashboardsAreCurrent: the JSON files are what the
// definitions build (run `go run ./cmd/observability` after a change), and
// each is a dashboard Grafana can import: the SDK's strict reading of its
// schema takes it back.
func TestCommittedDashboardsAreCurrent(t *testing.T) {
	plugins.RegisterDefaultPlugins() // the panel and query types a strict read needs
	all := grafana.All()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(all) {
		t.Errorf("%d files in %s, %d dashboards defined", len(files), dir, len(all))
	}
	if len(all) != len(grafana.Services)+2 {
		t.Errorf("%d dashboards: want an overview, one per service and one for the sidecars", len(all))
	}
	for _, d := range all {
		want, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, d.UID+".json"))
		if err != nil || !bytes.Equal(bytes.TrimSpace(got), want) {
			t.Errorf("%s.json is not current (%v): run `cd tools && go run ./cmd/observability`", d.UID, err)
			continue
		}
		var strict dashboard.Dashboard
		// An empty cog.BuildErrors is the SDK's "no error".
		if err := strict.UnmarshalJSONStrict(got); err != nil && err.Error() != "" {
			t.Errorf("%s.json is no dashboard of the SDK's schema: %v", d.UID, err)
		}
		var parsed struct {
			UID        string
			Templating struct{ List []struct{ Name string } }
			Panels     []struct {
				Type    string
				Targets []struct{ Expr, RefID string }
			}
		}
		if err := json.Unmarshal(got, &parsed); err != nil || parsed.UID != d.UID || len(parsed.Panels) != len(d.Panels) {
			t.Errorf("%s.json: %v", d.UID, err)
		}
		var vars []string
		for _, v := range parsed.Templating.List {
			vars = append(vars, v.Name)
		}
		if len(vars) < 2 || vars[0] != "datasource" || vars[1] != "namespace" {
			t.Errorf("%s.json variables %v: want datasource and namespace first", d.UID, vars)
		}
	}
}

// TestRangeTotalsAreInstant: a query over the whole range ($__range) is a
// total, drawn as one figure per series (an instant query in a bar gauge);
// as a time series each point would be a different moving window.
func TestRangeTotalsAreInstant(t *testing.T) {
	found := 0
	for _, d := range grafana.All() {
		raw, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Panels []struct {
				Title, Type string
				Targets     []struct {
					Expr    string
					Instant bool
				}
			}
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, p := range doc.Panels {
			for _, q := range p.Targets {
				if strings.Contains(q.Expr, "$__range") {
					found++
					if p.Type != "bargauge" || !q.Instant {
						t.Errorf("%s / %s: a total over the range drawn as %s (instant %v)", d.UID, p.Title, p.Type, q.Instant)
					}
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no total over the range in any dashboard: the funnel is gone?")
	}
}
