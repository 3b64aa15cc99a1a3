package tracecontext_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/daprshop/suite/lib/tracecontext"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestMiddlewareCarriesTheHeaderToCallsAndLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracecontext.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "x")
	var out http.Header
	h := tracecontext.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out = http.Header{}
		tracecontext.Inject(r.Context(), out)
		log.InfoContext(r.Context(), "handled")
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", tp)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if out.Get("traceparent") != tp {
		t.Fatalf("outgoing traceparent %q", out.Get("traceparent"))
	}
	if !strings.Contains(buf.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) {
		t.Fatalf("log line %s", buf.String())
	}
}

func TestMalformedOrMissingTraceIsIgnored(t *testing.T) {
	for _, bad := range []string{"", "00-xyz", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tp + "\n"} {
		ctx := tracecontext.With(context.Background(), bad)
		h := http.Header{}
		tracecontext.Inject(ctx, h)
		if tracecontext.TraceID(ctx) != "" || h.Get("traceparent") != "" {
			t.Fatalf("%q was carried", bad)
		}
	}
	var buf bytes.Buffer
	slog.New(tracecontext.LogHandler(slog.NewJSONHandler(&buf, nil))).InfoContext(context.Background(), "no trace")
	if strings.Contains(buf.String(), "trace_id") {
		t.Fatalf("log line %s", buf.String())
	}
}

func TestEdgeStartsATraceWhenTheClientSentNone(t *testing.T) {
	var got []string
	h := tracecontext.Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, tracecontext.TraceID(r.Context()))
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", tp)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if len(got[0]) != 32 || got[0] == got[1] || got[2] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace IDs %q", got)
	}
}

// TestEdgeAlwaysSamples: a client's flags 00 would keep every sidecar from
// recording the request; the edge keeps the client's trace ID but samples.
func TestEdgeAlwaysSamples(t *testing.T) {
	var got string
	h := tracecontext.Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = tracecontext.From(r.Context())
	}))
	for _, flags := range []string{"00", "01", "02", "ff"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+flags)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
			t.Errorf("flags %s: traceparent %q, want the client's trace, sampled", flags, got)
		}
	}
}
