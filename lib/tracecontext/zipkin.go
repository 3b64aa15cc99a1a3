package tracecontext

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/daprshop/suite/lib/internal/capture"
)

// Exporter sends a service's own spans to a Zipkin v2 collector (Jaeger's
// Zipkin receiver, make observe) in batches. The sidecars record every call
// that crosses them; the one span they cannot see is a request at the
// public edge, which reaches the gateway directly. Without it an order's
// trace would start at the gateway's first call to its sidecar, under a
// parent no collector has.
//
// Export never holds a request up: spans wait in a bounded queue, a
// background loop posts them, and what does not fit, or a collector that
// does not answer, is dropped and counted (Dropped). A nil *Exporter
// exports nothing.
type Exporter struct {
	url, service string
	client       *http.Client
	queue        chan zipkinSpan
	stop         chan struct{}
	stopped      chan struct{}
	once         sync.Once
	dropped      atomic.Uint64
}

// Queue bounds: a batch is posted when it holds batchSize spans or
// flushEvery after its first span; at most queueSize wait.
const (
	queueSize  = 4096
	batchSize  = 256
	flushEvery = 500 * time.Millisecond
	postLimit  = 2 * time.Second
)

// NewExporter returns an exporter posting to url (a Zipkin v2 endpoint,
// http://127.0.0.1:9411/api/v2/spans) the spans of service, or nil when url
// is "".
func NewExporter(url, service string) (*Exporter, error) {
	if url == "" {
		return nil, nil
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("zipkin endpoint %q: want an http(s) URL", url)
	}
	e := &Exporter{url: url, service: service, client: &http.Client{Timeout: postLimit},
		queue: make(chan zipkinSpan, queueSize), stop: make(chan struct{}), stopped: make(chan struct{})}
	go e.loop()
	return e, nil
}

// zipkinSpan is a span in Zipkin's v2 JSON model; times in microseconds.
type zipkinSpan struct {
	TraceID       string            `json:"traceId"`
	ID            string            `json:"id"`
	ParentID      string            `json:"parentId,omitempty"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Timestamp     int64             `json:"timestamp"`
	Duration      int64             `json:"duration"`
	LocalEndpoint endpoint          `json:"localEndpoint"`
	Tags          map[string]string `json:"tags,omitempty"`
}

type endpoint struct {
	ServiceName string `json:"serviceName"`
}

// Dropped is how many spans were not delivered: the queue was full, or the
// collector refused or did not answer.
func (e *Exporter) Dropped() uint64 {
	if e == nil {
		return 0
	}
	return e.dropped.Load()
}

// Close posts what is queued, within ctx, and stops the exporter.
func (e *Exporter) Close(ctx context.Context) error {
	if e == nil {
		return nil
	}
	e.once.Do(func() { close(e.stop) })
	select {
	case <-e.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Exporter) record(s zipkinSpan) {
	select {
	case e.queue <- s:
	default:
		e.dropped.Add(1)
	}
}

func (e *Exporter) loop() {
	defer close(e.stopped)
	batch := make([]zipkinSpan, 0, batchSize)
	timer := time.NewTimer(flushEvery)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			e.post(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case s := <-e.queue:
			if len(batch) == 0 {
				timer.Reset(flushEvery)
			}
			if batch = append(batch, s); len(batch) == batchSize {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		case <-e.stop:
			for {
				select {
				case s := <-e.queue:
					if batch = append(batch, s); len(batch) == batchSize {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

func (e *Exporter) post(batch []zipkinSpan) {
	body, err := json.Marshal(batch)
	if err != nil {
		e.dropped.Add(uint64(len(batch)))
		return
	}
	resp, err := e.client.Post(e.url, "application/json", bytes.NewReader(body))
	if err != nil {
		e.dropped.Add(uint64(len(batch)))
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		e.dropped.Add(uint64(len(batch)))
	}
}

// Edge is the public edge's middleware (as the package's Edge) that also
// records each request traced reports as a server span of its own and
// exports it: the calls the request causes carry this span as their parent,
// and a client's trace context is the span's parent. It goes around the
// router, so that the requests no route matches (404, 405) are traced too;
// the span is named by the method and what Name set while the request was
// handled (the route), or "unmatched". traced leaves out what is not a
// client's (probes, scrapes), which would otherwise fill the collector. A
// nil *Exporter is the package's Edge.
func (e *Exporter) Edge(traced func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if e == nil {
			return Edge(next)
		}
		plain := Edge(next)
		return Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !traced(r) {
				plain.ServeHTTP(w, r)
				return
			}
			traceID, parent := newID(16), ""
			if m := valid.FindStringSubmatch(From(r.Context())); m != nil {
				traceID, parent = m[1], From(r.Context())[36:52]
			}
			id := newID(8)
			route := new(string)
			tp := "00-" + traceID + "-" + id + "-01"
			r = r.WithContext(context.WithValue(With(r.Context(), tp), nameKey{}, route))
			r.Header.Set(Header, tp) // for a router's Middleware further in
			w.Header().Set(TraceIDHeader, traceID)
			sw := capture.New(w)
			start := time.Now()
			defer func() {
				name := r.Method + " unmatched"
				if *route != "" {
					name = r.Method + " " + *route
				}
				s := zipkinSpan{TraceID: traceID, ID: id, ParentID: parent, Name: name, Kind: "SERVER",
					Timestamp: start.UnixMicro(), Duration: max(time.Since(start).Microseconds(), 1),
					LocalEndpoint: endpoint{ServiceName: e.service},
					Tags:          map[string]string{"http.method": r.Method, "http.path": r.URL.Path, "http.status_code": fmt.Sprint(sw.Code)}}
				if sw.Code >= 500 {
					s.Tags["error"] = fmt.Sprint(sw.Code)
				}
				e.record(s)
			}()
			next.ServeHTTP(sw, r)
		}))
	}
}

type nameKey struct{}

// Name names the edge's span of the request ctx belongs to by its route
// ("/api/orders/{id}"): a router's middleware calls it, since the edge runs
// before the route is known. Without an edge span it does nothing.
func Name(ctx context.Context, route string) {
	if p, ok := ctx.Value(nameKey{}).(*string); ok {
		*p = route
	}
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
