package admit

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/web"
)

// ShedMessage is the message of every refusal (503, code unavailable, with
// Retry-After): nothing of the request was done, so even a POST may be sent
// again. A 503 of a service relayed by the gateway says something else (an
// order's may name the order it kept).
const ShedMessage = "at capacity: the request was refused before any work was done; try again after Retry-After"

// RetryAfter is how long a refused client is asked to wait: about the time
// the suite takes to finish what it holds, at the limit's latency.
const RetryAfter = time.Second

// Handler serves next for the requests l admits, and refuses the others at
// once: 503 in the error model, with Retry-After. A nil l admits everything.
func (l *Limiter) Handler(log *slog.Logger, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := l.Acquire()
		if !ok {
			web.RespondError(w, r, log, &apierr.Error{Code: apierr.Unavailable, Message: ShedMessage, RetryAfter: RetryAfter})
			return
		}
		defer t.Done()
		next.ServeHTTP(w, r)
	})
}

// Collector exports the figures of limiters, by class name, to Prometheus,
// read at each scrape:
//
//	admission_requests_total{class, outcome="admitted"|"shed"}
//	admission_limit{class}      how many may be in flight now
//	admission_in_flight{class}  how many are
func Collector(limiters map[string]*Limiter) prometheus.Collector {
	return collector(limiters)
}

type collector map[string]*Limiter

var (
	requestsDesc = prometheus.NewDesc("admission_requests_total",
		"Requests the gateway's admission control admitted or refused at once (shed), by class (read, track, order, write).",
		[]string{"class", "outcome"}, nil)
	limitDesc = prometheus.NewDesc("admission_limit",
		"How many requests of the class may be in flight through the suite now (the adaptive limit).",
		[]string{"class"}, nil)
	inFlightDesc = prometheus.NewDesc("admission_in_flight",
		"How many admitted requests of the class are in flight now.",
		[]string{"class"}, nil)
)

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- limitDesc
	ch <- inFlightDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for class, l := range c {
		s := l.State()
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(s.Admitted), class, "admitted")
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(s.Shed), class, "shed")
		ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(s.Limit), class)
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(s.InFlight), class)
	}
}
