// Package grafana defines the suite's Grafana dashboards in Go and builds
// them with grafana-foundation-sdk into the JSON Grafana imports
// (observability/grafana/dashboards, written by `go run ./cmd/observability`).
// Defining them here keeps every panel's query in one place where tests can
// parse it, check which metrics it needs and run it against a real
// Prometheus; the SDK's builders give the JSON Grafana's own schema.
//
// Every query is filtered by the variables $namespace (the Kubernetes
// namespace; "local" for a local run) and, on the overview and sidecar
// dashboards, $service or $app_id, so the same dashboards serve a laptop and
// a cluster.
//
// The latency panels link each point to the traces slower than it, in
// Grafana's Explore on the Jaeger data source, and every service dashboard
// lists its slow traces from Jaeger: from a slow request to its trace.
package grafana

import (
	"fmt"
	"slices"
	"strings"
)

// Dashboard is one Grafana dashboard.
type Dashboard struct {
	UID, Title, Description string
	// Vars are the template variables besides datasource and namespace.
	Vars   []Var
	Panels []Panel
}

// Var is a template variable: filled from a label's values by Query, or,
// without a Query, one of fixed Values (the first is the default).
type Var struct {
	Name, Label string
	Query       string // a label_values() query of the Prometheus data source
	Values      []string
}

// Panel is one panel: a time series of PromQL queries, a bar gauge of
// totals, or a table of slow traces from Jaeger.
type Panel struct {
	Title, Description string
	Unit               string // Grafana unit: reqps, percentunit, s, ms, bytes, short
	Queries            []Query
	// Totals makes the panel a bar gauge of instant queries (one figure per
	// series over the dashboard's range) instead of a time series.
	Totals bool
	// TraceLink, on a panel of durations in seconds, links each point to
	// the traces of this service (a Dapr app ID, or ${__field.labels.service}
	// for the series' own) slower than the point's value.
	TraceLink string
	// SlowTraces makes the panel a table of this service's traces slower
	// than $slow, from Jaeger, instead of PromQL queries.
	SlowTraces string
}

// Query is one PromQL query of a panel and the legend of its series.
type Query struct {
	Expr, Legend string
}

// Services are the suite's services, one dashboard each (dapr.yaml's apps;
// a test holds the two alike).
var Services = []string{"gateway", "users", "products", "orders", "payments", "notifications", "shipping"}

// NodeServices are the Services written in TypeScript on Node.js (a
// package.json in their directory; a test holds the two alike). They export
// the suite's metrics under the same names, but their runtime's are
// prom-client's nodejs_* where Go's are go_*.
var NodeServices = []string{"shipping"}

// sel is the label matcher of a service's own metrics.
func sel(service string, extra ...string) string {
	return "{" + strings.Join(append([]string{`namespace=~"$namespace"`, `service=~"` + service + `"`}, extra...), ",") + "}"
}

// rate is the rate of a counter over Grafana's rate interval.
func rate(metric, selector string) string {
	return fmt.Sprintf("rate(%s%s[$__rate_interval])", metric, selector)
}

// orZero makes a ratio or error query return 0 per group when nothing
// matched, instead of no data: base selects the same groups without the
// error filter.
func orZero(expr, by, base string) string {
	return fmt.Sprintf("(%s) or (sum by (%s) (%s) * 0)", expr, by, base)
}

// red is the requests, errors and latency panels of services.
func red(service, by, legend string) []Panel {
	all := rate("http_requests_total", sel(service))
	errs := rate("http_requests_total", sel(service, `code=~"5.."`))
	return []Panel{
		{Title: "Requests", Unit: "reqps", Description: "Requests served per second.",
			Queries: []Query{{fmt.Sprintf("sum by (%s) (%s)", by, all), legend}}},
		{Title: "Server errors (5xx share)", Unit: "percentunit", Description: "Share of requests answered with a 5xx; 503 means a dependency was unavailable.",
			Queries: []Query{{orZero(fmt.Sprintf("sum by (%s) (%s) / sum by (%s) (%s)", by, errs, by, all), by, all), legend}}},
		{Title: "Client errors (4xx)", Unit: "reqps", Description: "Requests refused as the client's mistake (400, 401, 403, 404, 409, 429).",
			Queries: []Query{{orZero(fmt.Sprintf("sum by (%s) (%s)", by, rate("http_requests_total", sel(service, `code=~"4.."`))), by, all), legend}}},
		{Title: "Latency p50 / p99", Unit: "s", TraceLink: traceService(service),
			Description: "Time to serve a request, from the service's histogram. Click a point for the traces slower than it, in Jaeger.",
			Queries: []Query{
				{fmt.Sprintf("histogram_quantile(0.5, sum by (%s, le) (%s))", by, rate("http_request_duration_seconds_bucket", sel(service))), "p50 " + legend},
				{fmt.Sprintf("histogram_quantile(0.99, sum by (%s, le) (%s))", by, rate("http_request_duration_seconds_bucket", sel(service))), "p99 " + legend},
			}},
	}
}

// traceService is the Jaeger service of red's service: daprd exports its
// spans under the app ID, which is the service label of a series when
// service is a variable (the overview's $service).
func traceService(service string) string {
	if strings.HasPrefix(service, "$") {
		return "${__field.labels.service}"
	}
	return service
}

// slowTraces lists a service's traces slower than $slow.
func slowTraces(service string) Panel {
	return Panel{Title: "Slow traces", SlowTraces: service,
		Description: "Traces in the time range with a span of " + service + " slower than $slow: up to 20, slowest first. Click a trace ID for the trace."}
}

// slow is the service dashboards' threshold of slow traces.
var slow = Var{Name: "slow", Label: "Slow traces over", Values: []string{"50ms", "100ms", "250ms", "500ms", "1s", "5s"}}

// sidecarPanels show a service's calls to its own daprd.
func sidecarPanels(service string) []Panel {
	calls := rate("sidecar_calls_total", sel(service))
	return []Panel{
		{Title: "Calls to the sidecar", Unit: "reqps", Description: "Calls to daprd by operation, target (app ID or component) and outcome.",
			Queries: []Query{{"sum by (op, target, outcome) (" + calls + ")", "{{op}} {{target}} {{outcome}}"}}},
		{Title: "Sidecar call latency p99", Unit: "s", Description: "Time of calls to daprd, including the hop to the other sidecar and the callee.",
			Queries: []Query{{"histogram_quantile(0.99, sum by (op, target, le) (" + rate("sidecar_call_duration_seconds_bucket", sel(service)) + "))", "{{op}} {{target}}"}}},
	}
}

// processPanels show memory and what the runtime is busy with: goroutines
// for a Go service; for a Node.js one its V8 heap (bounded by NODE_OPTIONS
// --max-old-space-size in Kubernetes) and its event loop's lag, since one
// thread serves every request and a blocked loop delays them all.
func processPanels(service string) []Panel {
	memory := Panel{Title: "Resident memory", Unit: "bytes", Queries: []Query{{"sum by (service) (process_resident_memory_bytes" + sel(service) + ")", "{{service}}"}}}
	if !slices.Contains(NodeServices, service) {
		return []Panel{memory, {Title: "Goroutines", Unit: "short", Queries: []Query{{"sum by (service) (go_goroutines" + sel(service) + ")", "{{service}}"}}}}
	}
	return []Panel{memory,
		{Title: "V8 heap used", Unit: "bytes", Description: "JavaScript objects on V8's heap, per replica.",
			Queries: []Query{{"max by (service) (nodejs_heap_size_used_bytes" + sel(service) + ")", "{{service}}"}}},
		{Title: "Event loop lag p99", Unit: "s", Description: "How late the event loop runs what is ready: every request waits that long too.",
			Queries: []Query{{"max by (service) (nodejs_eventloop_lag_p99_seconds" + sel(service) + ")", "{{service}}"}}},
	}
}

// business are the counters of each service's own domain.
var business = map[string][]Panel{
	"gateway": nil,
	"users": {
		{Title: "Sign-ups and logins", Unit: "reqps", Queries: []Query{
			{"sum(" + rate("users_signups_total", sel("users")) + ")", "sign-ups"},
			{"sum by (outcome) (" + rate("users_logins_total", sel("users")) + ")", "login {{outcome}}"},
		}},
	},
	"products": {
		{Title: "Stock reservations", Unit: "reqps", Description: "rejected: stock was short.", Queries: []Query{
			{"sum by (outcome) (" + rate("stock_reservations_total", sel("products")) + ")", "{{outcome}}"},
		}},
	},
	"orders": {
		{Title: "Order changes", Unit: "reqps", Description: "Orders created, paid, confirmed and cancelled per second.", Queries: []Query{
			{"sum by (type) (" + rate("orders_events_total", sel("orders")) + ")", "{{type}}"},
		}},
		{Title: "Circuit breakers", Unit: "short", Description: "0 closed, 1 half-open, 2 open.", Queries: []Query{
			{"max by (name) (circuit_breaker_state" + sel("orders") + ")", "{{name}}"},
		}},
	},
	"payments": {
		{Title: "Charges and refunds", Unit: "reqps", Queries: []Query{
			{"sum by (outcome) (" + rate("payments_charges_total", sel("payments")) + ")", "charge {{outcome}}"},
			{"sum by (outcome) (" + rate("payments_refunds_total", sel("payments")) + ")", "refund {{outcome}}"},
		}},
	},
	"notifications": {
		{Title: "Notifications", Unit: "reqps", Description: "Recorded per event type, and events delivered again that were not recorded twice.", Queries: []Query{
			{"sum by (event_type) (" + rate("notifications_recorded_total", sel("notifications")) + ")", "{{event_type}}"},
			{"sum(" + rate("notifications_duplicates_total", sel("notifications")) + ")", "duplicates"},
		}},
	},
	"shipping": {
		{Title: "Shipment changes", Unit: "reqps", Description: "Shipments created, shipped, delivered and cancelled per second (each stored with its event).", Queries: []Query{
			{"sum by (type) (" + rate("shipping_events_total", sel("shipping")) + ")", "{{type}}"},
		}},
		{Title: "Order events", Unit: "reqps", Description: "order.confirmed and order.cancelled handled, by outcome: applied, duplicate, ignored, dropped, retried.", Queries: []Query{
			{"sum by (type, outcome) (" + rate("shipping_order_events_total", sel("shipping")) + ")", "{{type}} {{outcome}}"},
		}},
		{Title: "Events in hand and waiting", Unit: "short", Description: "Order events being handled (at most EVENTS_CONCURRENCY) and waiting for a turn; refused per second: waited EVENTS_WAIT in vain and answered RETRY (a backlog).", Queries: []Query{
			{"sum(shipping_events_in_hand" + sel("shipping") + ")", "in hand"},
			{"sum(shipping_events_waiting" + sel("shipping") + ")", "waiting"},
			{"sum(" + rate("shipping_events_refused_total", sel("shipping")) + ")", "refused per second"},
		}},
		{Title: "Circuit breakers", Unit: "short", Description: "0 closed, 1 half-open, 2 open: shipping's calls to its state store and secret store.", Queries: []Query{
			{"max by (name) (circuit_breaker_state" + sel("shipping") + ")", "{{name}}"},
		}},
	},
}

// daprSel is the matcher of daprd's metrics.
func daprSel(extra ...string) string {
	return "{" + strings.Join(append([]string{`namespace=~"$namespace"`, `app_id=~"$app_id"`}, extra...), ",") + "}"
}

// All returns every dashboard: the overview, one per service, the sidecars.
func All() []Dashboard {
	overview := Dashboard{UID: "daprshop-overview", Title: "daprshop / Overview",
		Description: "RED per service, the order funnel, breakers and sidecars of the whole suite.",
		Vars:        []Var{{Name: "service", Query: `label_values(http_requests_total{namespace=~"$namespace"}, service)`}}}
	overview.Panels = append(overview.Panels, red("$service", "service", "{{service}}")...)
	overview.Panels = append(overview.Panels,
		Panel{Title: "Order funnel", Unit: "short", Description: "Orders created, paid, confirmed and cancelled over the dashboard's time range.",
			Totals:  true,
			Queries: []Query{{`sum by (type) (increase(orders_events_total{namespace=~"$namespace"}[$__range]))`, "{{type}}"}}},
		Panel{Title: "Payments", Unit: "reqps", Queries: []Query{{`sum by (outcome) (rate(payments_charges_total{namespace=~"$namespace"}[$__rate_interval]))`, "{{outcome}}"}}},
		Panel{Title: "Circuit breakers", Unit: "short", Description: "0 closed, 1 half-open, 2 open.",
			Queries: []Query{{`max by (service, name) (circuit_breaker_state{namespace=~"$namespace"})`, "{{service}} → {{name}}"}}},
		Panel{Title: "Targets up", Unit: "short", Description: "Services and sidecars Prometheus can scrape.",
			Queries: []Query{{`sum by (job) (up{namespace=~"$namespace"})`, "{{job}}"}}},
	)
	out := []Dashboard{overview}
	for _, s := range Services {
		d := Dashboard{UID: "daprshop-" + s, Title: "daprshop / " + s, Vars: []Var{slow},
			Description: "The " + s + " service: RED per route, its slow traces, its sidecar calls, its business counters."}
		d.Panels = append(d.Panels, red(s, "route", "{{route}}")...)
		d.Panels = append(d.Panels, slowTraces(s))
		d.Panels = append(d.Panels, sidecarPanels(s)...)
		d.Panels = append(d.Panels, business[s]...)
		d.Panels = append(d.Panels, processPanels(s)...)
		out = append(out, d)
	}
	out = append(out, Dashboard{UID: "daprshop-dapr", Title: "daprshop / Dapr sidecars",
		Description: "What daprd measures: service invocation, pub/sub delivery, state operations, resiliency.",
		Vars:        []Var{{Name: "app_id", Query: `label_values(dapr_http_server_request_count{namespace=~"$namespace"}, app_id)`}},
		Panels: []Panel{
			{Title: "Invocations sent", Unit: "reqps", Queries: []Query{{"sum by (app_id, dst_app_id) (" + rate("dapr_runtime_service_invocation_req_sent_total", daprSel()) + ")", "{{app_id}} → {{dst_app_id}}"}}},
			// Dapr 1.14 labels this histogram's callee src_app_id (the source of
			// the reply), not dst_app_id.
			{Title: "Invocation latency p99", Unit: "ms", Description: "From sending an invocation to its reply, as the calling sidecar sees it.",
				Queries: []Query{{"histogram_quantile(0.99, sum by (app_id, src_app_id, le) (" + rate("dapr_runtime_service_invocation_res_recv_latency_ms_bucket", daprSel()) + "))", "{{app_id}} → {{src_app_id}}"}}},
			{Title: "Events delivered", Unit: "reqps", Description: "Deliveries to subscribers by topic and outcome: success, retry, drop (to the dead-letter topic).",
				Queries: []Query{{"sum by (app_id, topic, process_status) (" + rate("dapr_component_pubsub_ingress_count", daprSel()) + ")", "{{app_id}} {{topic}} {{process_status}}"}}},
			{Title: "Event delivery latency p99", Unit: "ms", Queries: []Query{{"histogram_quantile(0.99, sum by (app_id, topic, le) (" + rate("dapr_component_pubsub_ingress_latencies_bucket", daprSel()) + "))", "{{app_id}} {{topic}}"}}},
			{Title: "State operations", Unit: "reqps", Queries: []Query{{"sum by (app_id, component, operation, success) (" + rate("dapr_component_state_count", daprSel()) + ")", "{{component}} {{operation}} {{success}}"}}},
			{Title: "State latency p99", Unit: "ms", Queries: []Query{{"histogram_quantile(0.99, sum by (component, operation, le) (" + rate("dapr_component_state_latencies_bucket", daprSel()) + "))", "{{component}} {{operation}}"}}},
			{Title: "Requests to the sidecar APIs", Unit: "reqps", Description: "Calls of the apps to their daprd's HTTP API, by status.",
				Queries: []Query{{"sum by (app_id, status) (" + rate("dapr_http_server_request_count", daprSel()) + ")", "{{app_id}} {{status}}"}}},
			{Title: "Resiliency policies applied", Unit: "short", Description: "Retries, timeouts and circuit breakers Dapr applied, by policy.",
				Queries: []Query{{"sum by (app_id, policy, name) (" + rate("dapr_resiliency_activations_total", daprSel()) + ") or sum by (app_id, name) (dapr_resiliency_loaded" + daprSel() + ") * 0", "{{app_id}} {{name}} {{policy}}"}}},
			{Title: "Sidecar resident memory", Unit: "bytes", Queries: []Query{{`sum by (app_id) (process_resident_memory_bytes{job="daprd",namespace=~"$namespace",app_id=~"$app_id"})`, "{{app_id}}"}}},
		},
	})
	return out
}

// Queries returns every PromQL query of d (a table of traces has none).
func (d Dashboard) Queries() []Query {
	var out []Query
	for _, p := range d.Panels {
		out = append(out, p.Queries...)
	}
	return out
}

// Expand replaces the dashboard variables in expr the way Grafana does for a
// query over every namespace, service and app: rateInterval and rangeDur
// stand for $__rate_interval and $__range (e.g. "1m").
func Expand(expr, rateInterval, rangeDur string) string {
	return strings.NewReplacer("$__rate_interval", rateInterval, "$__range", rangeDur,
		"$namespace", ".*", "$service", ".*", "$app_id", ".*").Replace(expr)
}
