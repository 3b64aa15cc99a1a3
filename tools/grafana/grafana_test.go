package grafana_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/daprshop/suite/tools/grafana"
)

const dir = "../../observability/grafana/dashboards"

// TestEveryQueryParses: every panel query is valid PromQL once Grafana has
// put in its variables, and filters by namespace.
func TestEveryQueryParses(t *testing.T) {
	n := 0
	for _, d := range grafana.All() {
		for _, p := range d.Panels {
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
// definitions render (run `go run ./cmd/observability` after a change), and
// each is a dashboard Grafana can import.
func TestCommittedDashboardsAreCurrent(t *testing.T) {
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
