package grafana_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/daprshop/suite/tools/grafana"
)

// provisioned reads the data sources Grafana's provisioning defines: each
// uid by type.
func provisioned(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../../observability/grafana/provisioning/datasources/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no data source provisioning files (%v)", err)
	}
	uids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Datasources []struct{ Name, Type, UID, URL string }
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, ds := range doc.Datasources {
			if _, dup := uids[ds.Type]; dup {
				t.Errorf("%s: a second %s data source: the dashboards name one by uid", f, ds.Type)
			}
			if ds.UID == "" || ds.URL == "" {
				t.Errorf("%s: %s needs a uid and a url", f, ds.Name)
			}
			uids[ds.Type] = ds.UID
		}
	}
	return uids
}

// committed is what a test reads of a committed dashboard.
type committed struct {
	Templating struct {
		List []struct {
			Name, Type string
			Query      any
			Current    struct{ Value string }
		}
	}
	Panels []struct {
		Type, Title string
		Datasource  struct{ Type, UID string }
		Targets     []struct {
			Expr                            string
			Datasource                      struct{ Type, UID string }
			QueryType, Service, MinDuration string
		}
		FieldConfig struct {
			Defaults struct {
				Unit  string
				Links []struct{ Title, URL string }
			}
		}
	}
}

func readCommitted(t *testing.T, uid string) committed {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, uid+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var d committed
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s.json: %v", uid, err)
	}
	return d
}

// explorePane is one pane of an Explore URL (Grafana's URL schema 1).
type explorePane struct {
	Datasource string
	Queries    []struct {
		Datasource                      struct{ Type, UID string }
		QueryType, Service, MinDuration string
	}
	Range struct{ From, To string }
}

// TestDataSourcesAreTheProvisionedOnes: the uids the dashboards name are the
// ones provisioning gives its Prometheus and its Jaeger, and each
// dashboard's Prometheus variable starts on that Prometheus.
func TestDataSourcesAreTheProvisionedOnes(t *testing.T) {
	uids := provisioned(t)
	if uids["prometheus"] != grafana.PrometheusUID || uids["jaeger"] != grafana.JaegerUID {
		t.Errorf("provisioning's data sources %v; the dashboards name prometheus %q and jaeger %q", uids, grafana.PrometheusUID, grafana.JaegerUID)
	}
	for _, d := range grafana.All() {
		c := readCommitted(t, d.UID)
		if len(c.Templating.List) == 0 {
			t.Fatalf("%s.json: no variables", d.UID)
		}
		v := c.Templating.List[0]
		if v.Type != "datasource" || v.Query != "prometheus" || v.Current.Value != uids["prometheus"] {
			t.Errorf("%s.json: first variable %+v: want a prometheus datasource variable on %q", d.UID, v, uids["prometheus"])
		}
	}
}

// TestLatencyLinksToSlowerTraces: on every service dashboard (and the
// overview), the latency panel links each point to Explore on the
// provisioned Jaeger, searching that service's traces slower than the
// point's value over the dashboard's range, with Grafana's variables left
// for Grafana to fill in.
func TestLatencyLinksToSlowerTraces(t *testing.T) {
	jaeger := provisioned(t)["jaeger"]
	for _, d := range grafana.All() {
		service := strings.TrimPrefix(d.UID, "daprshop-")
		want := service
		switch {
		case d.UID == "daprshop-overview":
			want = "${__field.labels.service}" // the series' own service
		case !slices.Contains(grafana.Services, service):
			continue
		}
		t.Run(d.UID, func(t *testing.T) {
			links := 0
			for _, p := range readCommitted(t, d.UID).Panels {
				for _, l := range p.FieldConfig.Defaults.Links {
					links++
					if p.Type != "timeseries" || p.FieldConfig.Defaults.Unit != "s" || !strings.HasPrefix(p.Title, "Latency") {
						t.Errorf("%s: a trace link on %s %q in %q: its value must be a latency in seconds", p.Title, p.Type, p.FieldConfig.Defaults.Unit, p.Title)
					}
					if !strings.Contains(l.Title, want) {
						t.Errorf("%s: link %q does not name %s", p.Title, l.Title, want)
					}
					// Grafana fills in ${...} before it follows the link.
					for _, v := range []string{"${__value.raw}", "${__from}", "${__to}"} {
						if !strings.Contains(l.URL, v) {
							t.Errorf("%s: link %s has no %s as Grafana reads it", p.Title, l.URL, v)
						}
					}
					u, err := url.Parse(l.URL)
					if err != nil || u.Path != "/explore" || u.Query().Get("schemaVersion") != "1" {
						t.Fatalf("%s: link %s is no Explore URL (%v)", p.Title, l.URL, err)
					}
					var panes map[string]explorePane
					if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil || len(panes) != 1 {
						t.Fatalf("%s: panes of %s: %v", p.Title, l.URL, err)
					}
					for _, pane := range panes {
						if pane.Datasource != jaeger || len(pane.Queries) != 1 {
							t.Fatalf("%s: pane %+v: want one query of data source %q", p.Title, pane, jaeger)
						}
						q := pane.Queries[0]
						if q.Datasource.Type != "jaeger" || q.Datasource.UID != jaeger || q.QueryType != "search" || q.Service != want {
							t.Errorf("%s: query %+v: want a search of %s on the jaeger data source %q", p.Title, q, want, jaeger)
						}
						if q.MinDuration != "${__value.raw}s" || pane.Range.From != "${__from}" || pane.Range.To != "${__to}" {
							t.Errorf("%s: %+v: want traces slower than the point over the dashboard's range", p.Title, pane)
						}
					}
					if want != service {
						// ${__field.labels.service} is there only if every
						// series of the panel keeps the label.
						for _, q := range p.Targets {
							if !strings.Contains(q.Expr, "by (service,") {
								t.Errorf("%s: %q drops the service label the link names", p.Title, q.Expr)
							}
						}
					}
				}
			}
			if links != 1 {
				t.Errorf("%d trace links, want one on the latency panel", links)
			}
		})
	}
}

// TestTraceTables: every service dashboard, and only those, lists its own
// traces slower than its $slow from the provisioned Jaeger.
func TestTraceTables(t *testing.T) {
	jaeger := provisioned(t)["jaeger"]
	for _, d := range grafana.All() {
		service := strings.TrimPrefix(d.UID, "daprshop-")
		c := readCommitted(t, d.UID)
		var tables int
		for _, p := range c.Panels {
			if p.Datasource.Type != "jaeger" && p.Type != "table" {
				continue
			}
			tables++
			if p.Type != "table" || p.Datasource.UID != jaeger || len(p.Targets) != 1 {
				t.Errorf("%s / %s: a %s of %+v with %d queries: want a table of one search of %q", d.UID, p.Title, p.Type, p.Datasource, len(p.Targets), jaeger)
				continue
			}
			q := p.Targets[0]
			if q.Datasource.UID != jaeger || q.QueryType != "search" || q.Service != service || q.MinDuration != "$slow" {
				t.Errorf("%s / %s: query %+v: want a search of %s's traces slower than $slow on %q", d.UID, p.Title, q, service, jaeger)
			}
		}
		var slow bool
		for _, v := range c.Templating.List {
			slow = slow || v.Name == "slow"
		}
		want := 0 // tables of traces
		if slices.Contains(grafana.Services, service) {
			want = 1
		}
		if tables != want || slow != (want == 1) {
			t.Errorf("%s: %d tables of traces, $slow %v: want one and the variable on a service's dashboard, none elsewhere", d.UID, tables, slow)
		}
	}
}

// TestTraceLinksNeedSeconds: a trace link makes the point's value Jaeger's
// minDuration, so the SDK build refuses one on a panel of another unit or
// kind, and a table of traces with PromQL queries.
func TestTraceLinksNeedSeconds(t *testing.T) {
	q := []grafana.Query{{Expr: `up{namespace=~"$namespace"}`}}
	for name, p := range map[string]grafana.Panel{
		"milliseconds":      {Title: "p99", Unit: "ms", Queries: q, TraceLink: "orders"},
		"totals":            {Title: "funnel", Unit: "s", Queries: q, Totals: true, TraceLink: "orders"},
		"table with PromQL": {Title: "slow", Queries: q, SlowTraces: "orders"},
	} {
		t.Run(name, func(t *testing.T) {
			d := grafana.Dashboard{UID: "x", Title: "x", Panels: []grafana.Panel{p}}
			if _, err := d.JSON(); err == nil {
				t.Errorf("%+v builds", p)
			}
		})
	}
	ok := grafana.Dashboard{UID: "x", Title: "x", Panels: []grafana.Panel{{Title: "p99", Unit: "s", Queries: q, TraceLink: "orders"}}}
	if _, err := ok.JSON(); err != nil {
		t.Errorf("a latency in seconds with a trace link: %v", err)
	}
}
