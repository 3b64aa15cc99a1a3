package sidecar_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
		"not json":          {404, `nope`, apierr.NotFound, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, _ := fakeDaprd(t, tc.status, tc.body)
			err := sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", time.Second).
				Invoke(context.Background(), "payments", http.MethodGet, "x", nil, nil)
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
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
	err := sidecar.NewHTTP(addr, "", time.Second).Invoke(context.Background(), "payments", http.MethodGet, "x", nil, nil)
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
	var obs calls
	port, _ := freePort()
	_, _ = sidecar.Config{HTTPPort: port}.HTTP(time.Second, &obs).Raw(context.Background(), "users", http.MethodGet, "x", nil, nil)
	if len(obs) != 1 || obs[0] != "invoke users unavailable" {
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
