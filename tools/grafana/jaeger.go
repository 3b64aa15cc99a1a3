package grafana

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// traceSearch is a search of Jaeger for a service's traces in the time
// range with a span slower than MinDuration, as Jaeger's own search form
// does. daprd exports its spans under its app ID, so Service is one.
type traceSearch struct {
	Service     string
	MinDuration string // a Go duration, or Grafana variables that make one
	Limit       int
}

// jaegerQuery is the query model of Grafana's Jaeger data source. The SDK
// has no Jaeger package; a panel takes any variants.Dataquery.
type jaegerQuery struct {
	RefID       string               `json:"refId"`
	Datasource  common.DataSourceRef `json:"datasource"`
	QueryType   string               `json:"queryType"` // search: the search form, not one trace by ID
	Service     string               `json:"service"`
	MinDuration string               `json:"minDuration,omitempty"`
	Limit       int                  `json:"limit,omitempty"`
}

var (
	_ variants.Dataquery              = jaegerQuery{}
	_ cog.Builder[variants.Dataquery] = jaegerQuery{}
)

func (s traceSearch) query() jaegerQuery {
	return jaegerQuery{RefID: "A", Datasource: ref("jaeger", JaegerUID), QueryType: "search",
		Service: s.Service, MinDuration: s.MinDuration, Limit: s.Limit}
}

// ImplementsDataqueryVariant marks jaegerQuery as a panel's query.
func (jaegerQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the data source's plugin ID.
func (jaegerQuery) DataqueryType() string { return "jaeger" }

// Equals is true for the same search.
func (q jaegerQuery) Equals(other variants.Dataquery) bool { return reflect.DeepEqual(q, other) }

// Validate refuses a search without a service, which Grafana refuses too.
func (q jaegerQuery) Validate() error {
	if q.Service == "" {
		return errors.New("a Jaeger search needs a service")
	}
	return nil
}

// Build makes jaegerQuery its own builder.
func (q jaegerQuery) Build() (variants.Dataquery, error) {
	if err := q.Validate(); err != nil {
		// The SDK's panel builders take no other error type.
		return nil, cog.MakeBuildErrors("jaeger.dataquery", err)
	}
	return q, nil
}

// traceLink is a data link from a point of durations in seconds to
// Grafana's Explore on the Jaeger data source, searching service's traces in
// the dashboard's time range slower than the point. An Explore link, not
// one to Jaeger's UI, follows the provisioned data source's URL, so the same
// dashboard serves a laptop and a cluster.
func traceLink(service string) cog.Builder[dashboard.DashboardLink] {
	link := dashboard.NewDashboardLinkBuilder("Traces of " + service + " slower than ${__value.text}, in Jaeger").
		Type(dashboard.DashboardLinkTypeLink).
		TargetBlank(true)
	u, err := exploreURL(traceSearch{Service: service, MinDuration: "${__value.raw}s"}.query())
	if err != nil {
		return link.RecordError("url", err)
	}
	return link.Url(u)
}

// exploreURL opens q in one pane of Explore over the dashboard's time range
// (Grafana's URL schema 1).
func exploreURL(q jaegerQuery) (string, error) {
	panes, err := json.Marshal(map[string]any{"traces": map[string]any{
		"datasource": JaegerUID,
		"queries":    []jaegerQuery{q},
		"range":      map[string]string{"from": "${__from}", "to": "${__to}"},
	}})
	if err != nil {
		return "", err
	}
	u := "/explore?" + url.Values{"schemaVersion": {"1"}, "panes": {string(panes)}}.Encode()
	// Grafana puts in its variables before it follows the link: it must
	// find them as written.
	return escapedVariable.ReplaceAllStringFunc(u, func(v string) string {
		return strings.NewReplacer("%24", "$", "%7B", "{", "%7D", "}").Replace(v)
	}), nil
}

// escapedVariable is a ${name} or ${name.field} of Grafana's once
// percent-encoded.
var escapedVariable = regexp.MustCompile(`%24%7B[\w.]+%7D`)
