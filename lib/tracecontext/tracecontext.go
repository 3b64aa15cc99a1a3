// Package tracecontext carries the W3C trace context (the traceparent header)
// of a request to the calls and log lines it causes. Dapr starts and records
// the spans; a service only has to pass traceparent on from the request its
// sidecar delivered to the calls it makes to its sidecar, so that invocation,
// state and pub/sub calls join the same trace, and put the trace ID in its
// logs so that a log line leads to its trace.
package tracecontext

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
)

// Header is the W3C trace context header.
const Header = "traceparent"

// TraceIDHeader tells a client at the edge the trace ID of its request, the
// one to look up in Jaeger and in the services' logs (trace_id).
const TraceIDHeader = "X-Trace-ID"

// valid matches a version-00 traceparent: version, trace ID, parent ID, flags.
var valid = regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)

type key struct{}

// zeroTrace and zeroParent are the IDs W3C trace context calls invalid.
const zeroTrace, zeroParent = "00000000000000000000000000000000", "0000000000000000"

// With returns ctx carrying traceparent, if it is well formed (and names
// neither the all-zero trace nor the all-zero parent).
func With(ctx context.Context, traceparent string) context.Context {
	if !valid.MatchString(traceparent) || traceparent[3:35] == zeroTrace || traceparent[36:52] == zeroParent {
		return ctx
	}
	return context.WithValue(ctx, key{}, traceparent)
}

// From returns the traceparent ctx carries, or "".
func From(ctx context.Context) string {
	tp, _ := ctx.Value(key{}).(string)
	return tp
}

// TraceID returns the trace ID of the traceparent ctx carries, or "".
func TraceID(ctx context.Context) string {
	if m := valid.FindStringSubmatch(From(ctx)); m != nil {
		return m[1]
	}
	return ""
}

// Middleware puts the request's traceparent into its context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tp := r.Header.Get(Header); tp != "" {
			r = r.WithContext(With(r.Context(), tp))
		}
		next.ServeHTTP(w, r)
	})
}

// Inject sets the traceparent of ctx on an outgoing request's header.
func Inject(ctx context.Context, h http.Header) {
	if tp := From(ctx); tp != "" {
		h.Set(Header, tp)
	}
}

// LogHandler adds trace_id to every record logged with a context that
// carries a trace.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

// Handle adds the trace ID of ctx, if any, and passes r on.
func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := TraceID(ctx); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return l.Handler.Handle(ctx, r)
}

// WithAttrs keeps the trace ID on handlers derived with attributes.
func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(as)}
}

// WithGroup keeps the trace ID on handlers derived with a group.
func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }

// Edge is Middleware for the public edge: a request that comes without a
// trace context gets a new one, so the edge's own log lines and everything
// the request causes share one trace ID. A client's trace context keeps its
// trace ID but is always sampled: whether a request is traced is not the
// client's to decide (flags 00 would hide it from every sidecar's spans).
func Edge(next http.Handler) http.Handler {
	return Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch tp := From(r.Context()); {
		case tp == "":
			r = r.WithContext(With(r.Context(), newTraceparent()))
		case !strings.HasSuffix(tp, "-01"):
			r = r.WithContext(With(r.Context(), tp[:len(tp)-2]+"01"))
		}
		// The header too: a router's Middleware further in reads it again.
		r.Header.Set(Header, From(r.Context()))
		w.Header().Set(TraceIDHeader, TraceID(r.Context()))
		next.ServeHTTP(w, r)
	}))
}

func newTraceparent() string { return "00-" + newID(16) + "-" + newID(8) + "-01" }
