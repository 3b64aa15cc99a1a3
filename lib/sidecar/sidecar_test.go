package sidecar_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/tracecontext"
)

// fakeDaprd stands in for daprd's HTTP API in unit tests: it checks the
// invocation URL and token, then replies with the given status and body.
func fakeDaprd(t *testing.T, status int, body string) (*httptest.Server, *http.Request) {
	t.Helper()
	var got http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = *r.Clone(context.Background())
		b, _ := io.ReadAll(r.Body)
		got.Header.Set("X-Test-Body", string(b))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestInvokeSuccess(t *testing.T) {
	srv, got := fakeDaprd(t, http.StatusCreated, `{"id":"ch_1"}`)
	inv := sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "tok", time.Second)
	var out struct{ ID string }
	if err := inv.Invoke(context.Background(), "payments", http.MethodPost, "/charges", map[string]int{"amount": 5}, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "ch_1" {
		t.Fatalf("out = %+v", out)
	}
	if got.URL.Path != "/v1.0/invoke/payments/method/charges" || got.Header.Get("dapr-api-token") != "tok" ||
		got.Header.Get("X-Test-Body") != `{"amount":5}` {
		t.Fatalf("request = %s %v", got.URL.Path, got.Header)
	}
}

func TestInvokeErrors(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
		code   apierr.Code
		field  string
	}{
		"client error kept": {400, `{"error":{"code":"invalid","message":"amount: must be positive","fields":[{"field":"amount","message":"must be positive"}]}}`, apierr.Invalid, "amount"},
		"conflict":          {409, `{"error":{"code":"conflict","message":"in progress"}}`, apierr.Conflict, ""},
		"daprd target down": {500, `{"errorCode":"ERR_DIRECT_INVOKE","message":"fail to invoke"}`, apierr.Unavailable, ""},
		"app 503":           {503, `{"error":{"code":"unavailable","message":"provider down"}}`, apierr.Unavailable, ""},
		"not json":          {404, `nope`, apierr.Unavailable, ""},
		// daprd's own answers, whatever their status, are not the callee's.
		"daprd 403 (access control)": {403, `{"errorCode":"ERR_DIRECT_INVOKE","message":"fail to invoke, id: users, err: rpc error: code = PermissionDenied desc = access control policy has denied access to id: spiffe://public/ns/default/orders operation: users/x verb: GET"}`, apierr.Unavailable, ""},
		"daprd 404":                  {404, `{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke target users after 3 retries"}`, apierr.Unavailable, ""},
		"error model plus daprd":     {404, `{"error":{"code":"not_found","message":"x"},"errorCode":"ERR_DIRECT_INVOKE"}`, apierr.Unavailable, ""},
		"client code, other 4xx":     {422, `{"error":{"code":"invalid","message":"x"}}`, apierr.Invalid, ""},
		"client code on a 5xx":       {500, `{"error":{"code":"invalid","message":"x"}}`, apierr.Unavailable, ""},
		"unavailable code on a 4xx":  {404, `{"error":{"code":"unavailable","message":"x"}}`, apierr.Unavailable, ""},
		"unknown code":               {400, `{"error":{"code":"teapot","message":"x"}}`, apierr.Unavailable, ""},
		"no message":                 {404, `{"error":{"code":"not_found"}}`, apierr.Unavailable, ""},
		"trailing data":              {404, `{"error":{"code":"not_found","message":"x"}} {}`, apierr.Unavailable, ""},
		"own 404":                    {404, `{"error":{"code":"not_found","message":"user usr_1 not found"}}`, apierr.NotFound, ""},
		"app 500":                    {500, `{"error":{"code":"internal","message":"internal error"}}`, apierr.Unavailable, ""},
		"2xx not json":               {200, `<html>`, apierr.Unavailable, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, _ := fakeDaprd(t, tc.status, tc.body)
			var out map[string]any
			err := sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", time.Second).
				Invoke(context.Background(), "payments", http.MethodGet, "x", nil, &out)
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			// What a client may see: nothing of daprd's text.
			for _, leak := range []string{"ERR_", "rpc error", "spiffe", "retries", "html", "internal error"} {
				if strings.Contains(e.Message, leak) {
					t.Fatalf("message %q shows %q", e.Message, leak)
				}
			}
			if tc.field != "" && (len(e.Fields) != 1 || e.Fields[0].Field != tc.field) {
				t.Fatalf("fields = %+v", e.Fields)
			}
		})
	}
}

func TestInvokeTransportFailureIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	err := sidecar.WithoutWaits(sidecar.NewHTTP(addr, "", time.Second)).Invoke(context.Background(), "payments", http.MethodGet, "x", nil, nil)
	if apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("err = %v", err)
	}
}

func TestSaveWithEventRequest(t *testing.T) {
	srv, got := fakeDaprd(t, http.StatusNoContent, "")
	c := sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "tok", time.Second)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := tracecontext.With(context.Background(), tp)
	err := c.SaveWithEvent(ctx, "orders-store", "order:1", map[string]int{"v": 1}, "7", map[string]string{"type": "order.paid"}, "order.paid")
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/v1.0/state/orders-store/transaction" || got.Header.Get("dapr-api-token") != "tok" {
		t.Fatalf("request %s %v", got.URL.Path, got.Header)
	}
	var body struct {
		Operations []struct {
			Operation string
			Request   struct {
				Key, ETag, ContentType string
				Value                  map[string]any
				Options, Metadata      map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(got.Header.Get("X-Test-Body")), &body); err != nil || len(body.Operations) != 2 {
		t.Fatalf("body %s: %v", got.Header.Get("X-Test-Body"), err)
	}
	w, p := body.Operations[0].Request, body.Operations[1].Request
	if w.ETag != "7" || w.Options["concurrency"] != "first-write" || w.Metadata["type"] != "order.paid" || w.ContentType != "" ||
		w.Metadata["traceparent"] != tp || got.Header.Get("traceparent") != tp {
		t.Fatalf("write op %+v", w)
	}
	if p.Key != "order:1" || p.ContentType != "application/json" || p.Metadata["outbox.projection"] != "true" || p.Value["type"] != "order.paid" {
		t.Fatalf("projection op %+v", p)
	}
	srv2, _ := fakeDaprd(t, http.StatusInternalServerError, `{"errorCode":"ERR_STATE_TRANSACTION"}`)
	err = sidecar.NewHTTP(strings.TrimPrefix(srv2.URL, "http://"), "", time.Second).SaveWithEvent(context.Background(), "s", "k", 1, "", 2, "t")
	if apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("failed transaction: %v", err)
	}
}

// calls records what an Observer is told.
type calls []string

func (c *calls) ObserveCall(op, target, outcome string, d time.Duration) {
	if d <= 0 {
		outcome += " (no duration)"
	}
	*c = append(*c, op+" "+target+" "+outcome)
}

func TestCallsAreObservedAndCarryTheTrace(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		status int
		want   string
	}{{200, "invoke users ok"}, {404, "invoke users client_error"}, {503, "invoke users server_error"}} {
		srv, got := fakeDaprd(t, tc.status, `{}`)
		port, _ := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])
		var obs calls
		c := sidecar.Config{HTTPPort: port}.HTTP(time.Second, &obs)
		ctx := tracecontext.With(context.Background(), tp)
		_, _ = c.Raw(ctx, "users", http.MethodGet, "users/usr_1", nil, nil)
		if len(obs) != 1 || obs[0] != tc.want {
			t.Fatalf("status %d observed %q, want %q", tc.status, obs, tc.want)
		}
		if got.Header.Get("traceparent") != tp {
			t.Fatalf("traceparent %q not passed on", got.Header.Get("traceparent"))
		}
	}
	// Each attempt is a call: a sidecar refusing connections is tried 11 times.
	var obs calls
	port, _ := freePort()
	_, _ = sidecar.WithoutWaits(sidecar.Config{HTTPPort: port}.HTTP(time.Second, &obs)).Raw(context.Background(), "users", http.MethodGet, "x", nil, nil)
	if len(obs) != 11 || slices.ContainsFunc(obs, func(o string) bool { return o != "invoke users unavailable" }) {
		t.Fatalf("no sidecar observed %q", obs)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// A 3xx reply is never followed: the API token would go wherever Location
// points (issue 12: products' router answered 301 and the token went on to
// the sidecar's secrets API). The call is Unavailable, and nothing else is
// requested, from any host.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var elsewhere []string
			leak := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere = append(elsewhere, r.Method+" "+r.URL.Path+" token="+r.Header.Get("dapr-api-token"))
				_, _ = w.Write([]byte(`{"jwt-signing-key":"s3cret"}`))
			}))
			defer leak.Close()
			var requests []string
			daprd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests = append(requests, r.Method+" "+r.URL.Path)
				if strings.HasPrefix(r.URL.Path, "/v1.0/secrets/") {
					_, _ = w.Write([]byte(`{"jwt-signing-key":"s3cret"}`))
					return
				}
				target := "/v1.0/secrets/secrets/jwt-signing-key"
				if r.URL.Path == "/v1.0/invoke/products/method/elsewhere" {
					target = leak.URL + target
				}
				http.Redirect(w, r, target, status)
			}))
			defer daprd.Close()
			inv := sidecar.NewHTTP(strings.TrimPrefix(daprd.URL, "http://"), "tok", time.Second)
			for _, path := range []string{"products/x", "elsewhere"} {
				var out map[string]any
				err := inv.Invoke(context.Background(), "products", http.MethodGet, path, nil, &out)
				if apierr.CodeOf(err) != apierr.Unavailable || out != nil {
					t.Fatalf("Invoke %s: %v, out %v", path, err, out)
				}
				if _, err := inv.Raw(context.Background(), "products", http.MethodGet, path, nil, nil); apierr.CodeOf(err) != apierr.Unavailable {
					t.Fatalf("Raw %s: %v", path, err)
				}
			}
			want := []string{"GET /v1.0/invoke/products/method/products/x", "GET /v1.0/invoke/products/method/elsewhere"}
			if len(requests) != 4 || requests[0] != want[0] || requests[1] != want[0] || requests[2] != want[1] || requests[3] != want[1] {
				t.Fatalf("daprd saw %q: a redirect was followed", requests)
			}
			if len(elsewhere) != 0 {
				t.Fatalf("another host saw %q", elsewhere)
			}
		})
	}
}

// Replies of daprd 1.14 as they came (gateway's sidecar invoking products,
// which had two instances) while one instance's app, then its daprd, was
// killed or stopped: each says the call never reached an app.
var neverArrived = []string{
	`{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: products, err: rpc error: code = Internal desc = error invoking app channel: Get \"http://127.0.0.1:43087/healthz\": dial tcp 127.0.0.1:43087: connect: connection refused"}`,
	`{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: products, err: rpc error: code = Unavailable desc = last connection error: connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:33697: connect: connection refused\""}`,
	`{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: orders, err: no host found with the given ID"}`,
	`{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: orders, err: rpc error: code = Internal desc = app is not in a healthy state"}`,
	`{"errorCode":"ERR_DIRECT_INVOKE","message":"invoke API is not ready"}`,
}

// TestResendsWhatNeverArrived: a call daprd says never reached an app is
// sent again, with the same body, until an instance answers; whatever the
// app answers then is the reply.
func TestResendsWhatNeverArrived(t *testing.T) {
	for _, refusal := range neverArrived {
		var calls []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			calls = append(calls, string(b))
			if len(calls) < 3 {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(refusal))
				return
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"ord_1"}`))
		}))
		c := sidecar.WithoutWaits(sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", time.Second))
		rep, err := c.Raw(context.Background(), "orders", http.MethodPost, "/orders", []byte(`{"n":1}`), nil)
		srv.Close()
		if err != nil || rep.Status != http.StatusCreated || len(calls) != 3 || calls[0] != `{"n":1}` || calls[2] != `{"n":1}` {
			t.Errorf("after %.60s: %v %d, calls %q", refusal, err, rep.Status, calls)
		}
	}
}

// TestNeverResendsWhatMayHaveArrived: an app's own error, and daprd's errors
// that do not prove the request stayed outside every app (a timeout, a
// connection lost mid-call), are answered after one attempt.
func TestNeverResendsWhatMayHaveArrived(t *testing.T) {
	for _, reply := range []string{
		`{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: orders, err: rpc error: code = DeadlineExceeded desc = context deadline exceeded"}`,
		`{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: orders, err: rpc error: code = Unavailable desc = error reading from server: EOF"}`,
		`{"error":{"code":"unavailable","message":"connect: connection refused"}}`,
		`connect: connection refused`,
		`{"errorCode":"ERR_STATE_GET","message":"no host found"}`,
	} {
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(reply))
		}))
		c := sidecar.WithoutWaits(sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", time.Second))
		rep, err := c.Raw(context.Background(), "orders", http.MethodPost, "/orders", []byte(`{}`), nil)
		srv.Close()
		if err != nil || rep.Status != http.StatusInternalServerError || calls != 1 {
			t.Errorf("%.60s: %v %d after %d calls, want the reply after 1", reply, err, rep.Status, calls)
		}
	}
}

// TestResendsAreBounded: a callee that never comes back costs a bounded
// number of attempts, and the caller gets daprd's last answer (Unavailable
// through Invoke); a sidecar refusing connections likewise.
func TestResendsAreBounded(t *testing.T) {
	attempts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts++
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(neverArrived[1]))
	}))
	defer srv.Close()
	c := sidecar.WithoutWaits(sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", time.Second))
	err := c.Invoke(context.Background(), "products", http.MethodGet, "/products", nil, nil)
	if apierr.CodeOf(err) != apierr.Unavailable || attempts != 11 {
		t.Errorf("err %v after %d calls, want Unavailable after 11", err, attempts)
	}

	gone := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(gone.URL, "http://")
	gone.Close()
	// Raw says so too, with the transport's error, not an empty reply.
	if rep, err := sidecar.WithoutWaits(sidecar.NewHTTP(addr, "", time.Second)).Raw(context.Background(), "payments", http.MethodGet, "x", nil, nil); apierr.CodeOf(err) != apierr.Unavailable || rep.Status != 0 {
		t.Errorf("Raw to a sidecar refusing connections: %d, %v; want Unavailable", rep.Status, err)
	}
	// With the real waits (50 ms doubling), within the caller's deadline:
	// several attempts, and the deadline, not the 6.5 s budget, ends them.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var obs calls
	start := time.Now()
	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	err = sidecar.Config{HTTPPort: port}.HTTP(time.Second, &obs).Invoke(ctx, "payments", http.MethodGet, "x", nil, nil)
	took := time.Since(start)
	if apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("err = %v", err)
	}
	if len(obs) < 4 || took > 5*time.Second {
		t.Errorf("a sidecar refusing connections: %d attempts in %s, want several, ended by the 1.5 s deadline", len(obs), took)
	}
}
