package tracecontext_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/tracecontext"
)

// zipkinSpan is the part of a Zipkin v2 span the tests read.
type zipkinSpan struct {
	TraceID, ID, ParentID, Name, Kind string
	Timestamp, Duration               int64
	LocalEndpoint                     struct{ ServiceName string }
	Tags                              map[string]string
}

// collector is a Zipkin endpoint that keeps what it is sent.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []zipkinSpan
}

func newCollector(t *testing.T, status int) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []zipkinSpan
		if r.URL.Path != "/api/v2/spans" || json.NewDecoder(r.Body).Decode(&batch) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.spans = append(c.spans, batch...)
		c.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) got() []zipkinSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]zipkinSpan(nil), c.spans...)
}

func edge(t *testing.T, e *tracecontext.Exporter, status int) (http.Handler, *string) {
	t.Helper()
	var downstream string
	traced := func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/things/") }
	h := e.Edge(traced)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := http.Header{}
		tracecontext.Inject(r.Context(), out)
		downstream = out.Get("traceparent")
		if r.URL.Path != "/things/unrouted" {
			tracecontext.Name(r.Context(), "/things/{id}") // a router's middleware would
		}
		w.WriteHeader(status)
	}))
	return h, &downstream
}

func TestEdgeSpanIsTheParentOfWhatTheRequestCauses(t *testing.T) {
	c := newCollector(t, http.StatusAccepted)
	e, err := tracecontext.NewExporter(c.URL+"/api/v2/spans", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	h, downstream := edge(t, e, http.StatusCreated)

	// A client's trace context: its trace, the client's span the parent.
	req := httptest.NewRequest("POST", "/things/42", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	withClient := *downstream
	if got := w.Header().Get("X-Trace-ID"); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("X-Trace-ID %q: the client is not told its trace", got)
	}
	// None: a new trace, the edge's span its root.
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/things/7", nil))
	fresh := *downstream
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := c.got()
	if len(spans) != 2 {
		t.Fatalf("collector got %d spans, want 2: %+v", len(spans), spans)
	}
	s := spans[0]
	if s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || s.ParentID != "00f067aa0ba902b7" {
		t.Fatalf("span %+v does not continue the client's trace", s)
	}
	if want := "00-" + s.TraceID + "-" + s.ID + "-01"; withClient != want {
		t.Fatalf("downstream traceparent %q, want %q (the edge's span, sampled)", withClient, want)
	}
	if s.Name != "POST /things/{id}" || s.Kind != "SERVER" || s.LocalEndpoint.ServiceName != "gateway" ||
		s.Tags["http.status_code"] != "201" || s.Tags["http.path"] != "/things/42" || s.Duration <= 0 {
		t.Fatalf("span %+v", s)
	}
	if _, failed := s.Tags["error"]; failed {
		t.Fatalf("a 201 is tagged an error: %+v", s)
	}
	r := spans[1]
	if r.ParentID != "" || len(r.TraceID) != 32 || r.TraceID == s.TraceID || fresh != "00-"+r.TraceID+"-"+r.ID+"-01" {
		t.Fatalf("root span %+v, downstream %q", r, fresh)
	}
}

func TestEdgeSpanOfAServerErrorIsTaggedAnError(t *testing.T) {
	c := newCollector(t, http.StatusAccepted)
	e, _ := tracecontext.NewExporter(c.URL+"/api/v2/spans", "gateway")
	h, _ := edge(t, e, http.StatusServiceUnavailable)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/things/1", nil))
	_ = e.Close(context.Background())
	if s := c.got(); len(s) != 1 || s[0].Tags["error"] != "503" || s[0].Tags["http.status_code"] != "503" {
		t.Fatalf("spans %+v", s)
	}
}

func TestNoExporterIsThePlainEdge(t *testing.T) {
	e, err := tracecontext.NewExporter("", "gateway")
	if err != nil || e != nil {
		t.Fatalf("no URL: %v, %v", e, err)
	}
	h, downstream := edge(t, e, http.StatusOK)
	req := httptest.NewRequest("GET", "/things/1", nil)
	req.Header.Set("traceparent", tp)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if *downstream != tp {
		t.Fatalf("downstream %q, want the client's %q", *downstream, tp)
	}
	if e.Dropped() != 0 || e.Close(context.Background()) != nil {
		t.Fatal("a nil exporter reports work")
	}
	if _, err := tracecontext.NewExporter("127.0.0.1:9411", "gateway"); err == nil || !strings.Contains(err.Error(), "http") {
		t.Fatalf("an address without a scheme: %v", err)
	}
}

func TestACollectorThatFailsNeitherBlocksNorKeepsSpans(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer slow.Close()
	e, _ := tracecontext.NewExporter(slow.URL+"/api/v2/spans", "gateway")
	h, _ := edge(t, e, http.StatusOK)
	// The collector answers nothing until the loop is over: were a
	// request to wait for the export, the test would hang here.
	const n = 6000 // more than the queue and a batch in flight
	for range n {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/things/1", nil))
	}
	if e.Dropped() == 0 {
		t.Fatal("nothing dropped while the queue was full")
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Dropped() != n {
		t.Fatalf("dropped %d of %d: the collector refused every one", e.Dropped(), n)
	}
}

func TestEdgeTracesWhatNoRouteMatchesButNotProbes(t *testing.T) {
	c := newCollector(t, http.StatusAccepted)
	e, _ := tracecontext.NewExporter(c.URL+"/api/v2/spans", "gateway")
	h, downstream := edge(t, e, http.StatusNotFound)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/things/unrouted", nil))
	probe := httptest.NewRecorder()
	h.ServeHTTP(probe, httptest.NewRequest("GET", "/healthz", nil))
	if *downstream == "" || probe.Header().Get("X-Trace-ID") == "" {
		t.Fatalf("a request left untraced lost its trace context: %q, %v", *downstream, probe.Header())
	}
	_ = e.Close(context.Background())
	spans := c.got()
	if len(spans) != 1 || spans[0].Name != "DELETE unmatched" || spans[0].Tags["http.status_code"] != "404" {
		t.Fatalf("spans %+v: want the unmatched DELETE's only, not the probe's", spans)
	}
}

func TestAllZeroIDsAreNoTraceContext(t *testing.T) {
	for _, bad := range []string{
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
	} {
		if id := tracecontext.TraceID(tracecontext.With(context.Background(), bad)); id != "" {
			t.Errorf("%s was taken as trace %s", bad, id)
		}
	}
}
