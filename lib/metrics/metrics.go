// Package metrics gives each service a Prometheus registry with RED metrics per
// route template (bounded cardinality: /orders/{id}, never /orders/123), the
// outcome and latency of its calls to its Dapr sidecar, its business counters,
// and the handler that serves them on /metrics. Every series carries the
// label service=<name>.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/daprshop/suite/lib/internal/capture"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is a service's registry plus the HTTP metrics recorded by
// Middleware and the sidecar call metrics recorded by ObserveCall.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry
	// Registerer adds a service's own collectors to Registry with its
	// service label, like every metric here.
	Registerer   prometheus.Registerer
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	calls        *prometheus.CounterVec
	callDuration *prometheus.HistogramVec
}

// New returns a registry with Go and process collectors and the HTTP RED metrics.
// Every series carries the constant label service=<service>.
func New(service string) *Metrics {
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)
	wrapped.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry:   reg,
		Registerer: wrapped,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route template and method.",
			Buckets: buckets,
		}, []string{"route", "method"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_calls_total",
			Help: "Calls to the Dapr sidecar, by operation (invoke, state_get, state_save, state_transaction, secret...), target (app ID or component) and outcome (ok, client_error, server_error, unavailable).",
		}, []string{"op", "target", "outcome"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sidecar_call_duration_seconds",
			Help:    "Time of calls to the Dapr sidecar, by operation and target.",
			Buckets: buckets,
		}, []string{"op", "target"}),
	}
	wrapped.MustRegister(m.requests, m.duration, m.calls, m.callDuration)
	return m
}

// buckets suit calls that take from half a millisecond (a sidecar hop) to
// seconds (a timeout).
var buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// ObserveCall records one call to the sidecar (sidecar.Observer).
func (m *Metrics) ObserveCall(op, target, outcome string, d time.Duration) {
	m.calls.WithLabelValues(op, target, outcome).Inc()
	m.callDuration.WithLabelValues(op, target).Observe(d.Seconds())
}

// Counter registers a counter of the service's own (business events) with
// the given labels.
func (m *Metrics) Counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.Registerer.MustRegister(c)
	return c
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware records every request under its gorilla/mux route template.
// Requests that matched no route are counted under "unmatched".
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := capture.New(w)
		next.ServeHTTP(sw, r)
		route := "unmatched"
		if cr := mux.CurrentRoute(r); cr != nil {
			if tpl, err := cr.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		method := methodLabel(r.Method)
		m.requests.WithLabelValues(route, method, strconv.Itoa(sw.Code)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// methodLabel is the method as a label value: one of HTTP's own methods, or
// "other". The method is the client's to choose, any token up to the size of
// a request line; as a label each new one would be a new series, so a
// stranger could grow the registry (and /metrics) without bound.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}
