package grafana

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// PrometheusUID is the uid of the Prometheus data source provisioning
// defines (observability/grafana/provisioning/datasources; a test holds the
// two alike): the default of each dashboard's datasource variable.
const PrometheusUID = "prometheus"

// JaegerUID is the uid of the Jaeger data source provisioning defines. Trace
// links and tables name it directly: a suite has one Jaeger.
const JaegerUID = "jaeger"

// promRef is the data source of every PromQL query: whichever Prometheus
// the datasource variable selects, so a cluster's can stand in.
func promRef() common.DataSourceRef {
	return ref("prometheus", "${datasource}")
}

func ref(kind, uid string) common.DataSourceRef {
	return common.DataSourceRef{Type: &kind, Uid: &uid}
}

// JSON is d as Grafana imports it: the dashboard the SDK builds, indented as
// the committed files are.
func (d Dashboard) JSON() ([]byte, error) {
	built, err := d.Build()
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(built, "", "  ")
}

// Build builds d with grafana-foundation-sdk: the datasource and namespace
// variables, then d's own, then its panels, two to a row (a table of
// traces takes a whole row). The SDK marks its dashboard package
// deprecated for dashboardv2, but v2 needs a Grafana 12 with its new
// dashboard schema enabled; this JSON is what every Grafana imports.
func (d Dashboard) Build() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder(d.Title).
		Uid(d.UID).
		Description(d.Description).
		Tags([]string{"daprshop"}).
		Editable().
		Refresh("10s").
		Time("now-30m", "now").
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Prometheus").
			Type("prometheus").
			Current(option("Prometheus", PrometheusUID))).
		WithVariable(Var{Name: "namespace", Query: `label_values(up, namespace)`}.builder())
	for _, v := range d.Vars {
		b.WithVariable(v.builder())
	}
	for i, p := range d.Panels {
		pb, err := p.builder(uint32(i + 1))
		if err != nil {
			return dashboard.Dashboard{}, fmt.Errorf("panel %q: %w", p.Title, err)
		}
		b.WithPanel(pb)
	}
	return b.Build()
}

func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: &text}, Value: dashboard.StringOrArrayOfString{String: &value}}
}

// builder is v as a Grafana variable: a query one offers every value and
// All (.*, which the queries match with =~); a custom one its Values.
func (v Var) builder() cog.Builder[dashboard.VariableModel] {
	if v.Query == "" {
		values := strings.Join(v.Values, ",")
		custom := dashboard.NewCustomVariableBuilder(v.Name).Values(dashboard.StringOrMap{String: &values}).AllowCustomValue(true)
		if len(v.Values) > 0 {
			custom.Current(option(v.Values[0], v.Values[0]))
		}
		if v.Label != "" {
			custom.Label(v.Label)
		}
		return custom
	}
	q := dashboard.NewQueryVariableBuilder(v.Name).
		Datasource(promRef()).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": v.Query, "refId": v.Name}}).
		Definition(v.Query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		IncludeAll(true).
		Multi(true).
		AllValue(".*").
		Current(option("All", "$__all"))
	if v.Label != "" {
		q.Label(v.Label)
	}
	return q
}

// builder is p as the SDK panel of its kind, 12 wide and 8 high.
func (p Panel) builder(id uint32) (cog.Builder[dashboard.Panel], error) {
	switch {
	case p.SlowTraces != "":
		if len(p.Queries) > 0 || p.TraceLink != "" {
			return nil, fmt.Errorf("a table of traces has no PromQL queries or trace link")
		}
		return p.traceTable(id), nil
	case p.Totals:
		if p.TraceLink != "" {
			return nil, fmt.Errorf("a trace link needs a time series of durations")
		}
		return bargauge.NewPanelBuilder().
			Id(id).
			Title(p.Title).
			Description(p.Description).
			Datasource(promRef()).
			Unit(p.Unit).
			Targets(p.targets()).
			Span(12).
			Height(8).
			Orientation(common.VizOrientationHorizontal).
			DisplayMode(common.BarGaugeDisplayModeBasic).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)), nil
	}
	ts := timeseries.NewPanelBuilder().
		Id(id).
		Title(p.Title).
		Description(p.Description).
		Datasource(promRef()).
		Unit(p.Unit).
		Targets(p.targets()).
		Span(12).
		Height(8).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		// Set, since the SDK's zero value ("") is no mode Grafana knows; a
		// single series' tooltip is the one that shows its trace link.
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeSingle).
			Sort(common.SortOrderNone))
	if p.TraceLink != "" {
		// The link puts the point's value into Jaeger's minDuration, a
		// duration: it must be seconds.
		if p.Unit != "s" {
			return nil, fmt.Errorf("a trace link needs durations in seconds, not %q", p.Unit)
		}
		ts.DataLinks([]cog.Builder[dashboard.DashboardLink]{traceLink(p.TraceLink)})
	}
	return ts, nil
}

// targets are p's PromQL queries, A, B, ...: instant ones for a bar gauge
// of totals, else ranges.
func (p Panel) targets() []cog.Builder[variants.Dataquery] {
	var out []cog.Builder[variants.Dataquery]
	for j, q := range p.Queries {
		t := prometheus.NewDataqueryBuilder().
			Datasource(promRef()).
			Expr(q.Expr).
			LegendFormat(q.Legend).
			RefId(string(rune('A' + j)))
		if p.Totals {
			t.Instant()
		} else {
			t.Range()
		}
		out = append(out, t)
	}
	return out
}

// traceTable lists the traces Jaeger finds for p.SlowTraces, slowest first.
func (p Panel) traceTable(id uint32) cog.Builder[dashboard.Panel] {
	return table.NewPanelBuilder().
		Id(id).
		Title(p.Title).
		Description(p.Description).
		Datasource(ref("jaeger", JaegerUID)).
		WithTarget(traceSearch{Service: p.SlowTraces, MinDuration: "$slow", Limit: 20}.query()).
		Span(24).
		Height(8).
		// The table's default footer has a null reducer, which the SDK's
		// own schema refuses (TestCommittedDashboardsAreCurrent).
		Footer(common.NewTableFooterOptionsBuilder().Show(false)).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			// The column Grafana's Jaeger data source names the trace's duration.
			common.NewTableSortByFieldStateBuilder().DisplayName("Duration").Desc(true),
		})
}
