package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/tracecontext"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
)

// TestEdgeSpanNamesTheRouteAndParentsTheCall: the gateway's span of a
// request is named by its route, not its IDs, and is the parent the call to
// the sidecar carries.
func TestEdgeSpanNamesTheRouteAndParentsTheCall(t *testing.T) {
	var mu sync.Mutex
	var got []struct {
		TraceID, ID, Name string
		LocalEndpoint     struct{ ServiceName string }
	}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer collector.Close()
	spans, err := tracecontext.NewExporter(collector.URL+"/api/v2/spans", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	up := &tracedUpstream{upstream: upstream{status: 200, reply: `{}`}}
	h := httpapi.Routes(up, key, httpapi.Options{
		Apps:    httpapi.Apps{Users: "users", Products: "products", Orders: "orders", Notifications: "notifications", Shipping: "shipping"},
		MaxBody: 1024, Now: time.Now, Spans: spans,
	}, metrics.New("gateway"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })

	if w := send(h, "GET", ordBase, token(t, "customer", time.Minute), ""); w.Code != 200 {
		t.Fatalf("GET %s: %d %s", ordBase, w.Code, w.Body)
	}
	// A path no route matches is traced too; the probes are not.
	send(h, "GET", "/api/nope/x", "", "")
	send(h, "GET", "/healthz", "", "")
	if err := spans.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || len(up.traceparents) != 1 || got[1].Name != "GET unmatched" {
		t.Fatalf("spans %+v (want the order's and the unmatched path's), calls %d", got, len(up.traceparents))
	}
	s := got[0]
	if s.Name != "GET /api/orders/{id}" || s.LocalEndpoint.ServiceName != "gateway" {
		t.Fatalf("span %+v: want GET /api/orders/{id} of gateway", s)
	}
	if tp := up.traceparents[0]; !strings.HasPrefix(tp, "00-"+s.TraceID+"-"+s.ID+"-") {
		t.Fatalf("the call carried %q, not the edge's span %s/%s", tp, s.TraceID, s.ID)
	}
}

// tracedUpstream also records the trace context each call's context carries
// (the sidecar client puts it on the request to daprd).
type tracedUpstream struct {
	upstream
	traceparents []string
}

func (u *tracedUpstream) Raw(ctx context.Context, app, method, path string, body []byte, hdr http.Header) (sidecar.Reply, error) {
	u.traceparents = append(u.traceparents, tracecontext.From(ctx))
	return u.upstream.Raw(ctx, app, method, path, body, hdr)
}
