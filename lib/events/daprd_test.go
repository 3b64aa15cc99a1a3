package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	daprc "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/internal/daprdtest"
)

// seen is what the app's subscription route received.
type seen struct {
	header http.Header
	status int
	body   string
}

// TestRealDaprdDeliveriesAndInvocations runs the subscription handler
// behind a real daprd (1.14) and finds out what tells a pub/sub delivery
// from a service invocation of the same route: daprd adds
// dapr-caller-app-id to every invocation from another sidecar, and not to a
// delivery. It checks that the handler processes the delivery and refuses
// the invocation, also when the caller sends the header itself.
func TestRealDaprdDeliveriesAndInvocations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daprd")
	}
	bin := daprdtest.Path(t, "../..")
	callee, caller := daprdtest.ID("evcallee"), daprdtest.ID("evcaller")

	var (
		mu       sync.Mutex
		received []seen
		handled  []string
	)
	h := events.Handler(slog.New(slog.DiscardHandler), func(_ context.Context, e events.Event) error {
		mu.Lock()
		handled = append(handled, e.ID)
		mu.Unlock()
		return nil
	})
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events/t" {
			http.NotFound(w, r)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		mu.Lock()
		received = append(received, seen{header: r.Header.Clone(), status: rec.status, body: rec.body.String()})
		mu.Unlock()
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Serve(l) }()
	t.Cleanup(func() { _ = app.Close() })

	resources := t.TempDir()
	yaml := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: events
spec:
  type: pubsub.in-memory
  version: v1
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: t
spec:
  pubsubname: events
  topic: t
  routes:
    default: /events/t
scopes:
  - %s
`, callee)
	if err := os.WriteFile(filepath.Join(resources, "events.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	calleeSidecar := daprdtest.Start(t, bin, callee, l.Addr().(*net.TCPAddr).Port, resources)
	callerSidecar := daprdtest.Start(t, bin, caller, 0, t.TempDir())

	last := func() seen {
		mu.Lock()
		defer mu.Unlock()
		if len(received) == 0 {
			return seen{}
		}
		return received[len(received)-1]
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(received)
	}
	ce := func(id string) string {
		b, _ := json.Marshal(map[string]any{"id": id, "type": "payment.succeeded", "source": "payments", "specversion": "1.0",
			"topic": "t", "pubsubname": "events", "datacontenttype": "application/json", "data": map[string]string{"order_id": "ord_1"}})
		return string(b)
	}

	// A delivery: published through the callee's own sidecar.
	if st, body := calleeSidecar.Call(t, http.MethodPost, "/v1.0/publish/events/t", `{"order_id":"ord_1"}`, nil); st/100 != 2 {
		t.Fatalf("publish: %d %s", st, body)
	}
	if !daprdtest.Eventually(20*time.Second, func() bool { return count() >= 1 }) {
		t.Fatal("the event was not delivered")
	}
	d := last()
	t.Logf("delivery headers: %v", d.header)
	if v := d.header.Values("dapr-caller-app-id"); len(v) != 0 || d.status != http.StatusOK {
		t.Fatalf("delivery: caller header %v, status %d %s: want none, and processed", v, d.status, d.body)
	}

	// An invocation of the same route from another app's sidecar (mDNS
	// may take a moment to resolve the callee).
	invoke := "/v1.0/invoke/" + callee + "/method/events/t"
	var st int
	var body string
	if !daprdtest.Eventually(20*time.Second, func() bool {
		st, body = callerSidecar.Call(t, http.MethodPost, invoke, ce("forged-1"), nil)
		return st != http.StatusInternalServerError
	}) {
		t.Fatalf("invocation never reached the callee: %d %s", st, body)
	}
	i := last()
	t.Logf("invocation headers: %v", i.header)
	if got := i.header.Values("dapr-caller-app-id"); len(got) != 1 || got[0] != caller {
		t.Errorf("invocation: dapr-caller-app-id %v, want [%s]", got, caller)
	}
	if st != http.StatusForbidden || !bytes.Contains([]byte(body), []byte(`"forbidden"`)) {
		t.Errorf("invocation answered %d %s, want 403 in the error model", st, body)
	}

	// The caller cannot remove or replace the header by sending its own.
	for _, forged := range []map[string]string{{"dapr-caller-app-id": ""}, {"Dapr-Caller-App-Id": callee}, {"dapr-caller-app-id": callee, "dapr-callee-app-id": ""}} {
		st, body = callerSidecar.Call(t, http.MethodPost, invoke, ce("forged-2"), forged)
		got := last().header.Values("dapr-caller-app-id")
		t.Logf("invocation with %v: headers %v, answer %d", forged, got, st)
		if st != http.StatusForbidden {
			t.Errorf("invocation with %v answered %d %s, want 403", forged, st, body)
		}
		found := false
		for _, v := range got {
			found = found || v == caller
		}
		if !found {
			t.Errorf("invocation with %v: dapr-caller-app-id %v lacks the real caller %s", forged, got, caller)
		}
	}

	// The same through the caller's gRPC API (InvokeService).
	c, err := daprc.NewClientWithAddress(fmt.Sprintf("127.0.0.1:%d", callerSidecar.GRPCPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WithAuthToken(callerSidecar.Token)
	before := count()
	_, err = c.InvokeMethodWithContent(context.Background(), callee, "events/t", http.MethodPost,
		&daprc.DataContent{ContentType: "application/json", Data: []byte(ce("forged-3"))})
	g := last()
	t.Logf("gRPC invocation headers: %v, err %v", g.header, err)
	if count() == before || len(g.header.Values("dapr-caller-app-id")) == 0 || g.status != http.StatusForbidden || err == nil {
		t.Errorf("gRPC invocation: reached the app %v, caller header %v, status %d, err %v: want refused with 403",
			count() > before, g.header.Values("dapr-caller-app-id"), g.status, err)
	}

	// Self-invocation through the callee's own sidecar (needs the callee's
	// own API token): daprd calls the app directly (invokeLocal) without
	// the caller header, so it looks like a delivery. Whoever holds that
	// token can already write the app's state and publish as the app.
	before = count()
	st, _ = calleeSidecar.Call(t, http.MethodPost, "/v1.0/invoke/"+callee+"/method/events/t", ce("self-1"), nil)
	if count() == before {
		t.Fatalf("self-invocation did not reach the app: %d", st)
	}
	self := last()
	t.Logf("self-invocation headers: %v, answer %d", self.header, st)
	if len(self.header.Values("dapr-caller-app-id")) != 0 {
		t.Logf("self-invocation carries dapr-caller-app-id: refused like any invocation")
	}

	mu.Lock()
	defer mu.Unlock()
	for _, id := range handled {
		if id == "forged-1" || id == "forged-2" || id == "forged-3" {
			t.Errorf("the handler processed the invoked event %s", id)
		}
	}
}

// recorder keeps the status and body the handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }
func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
