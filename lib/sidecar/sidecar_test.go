package sidecar_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
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
	err := c.SaveWithEvent(context.Background(), "orders-store", "order:1", map[string]int{"v": 1}, "7", map[string]string{"type": "order.paid"}, "order.paid")
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
	if w.ETag != "7" || w.Options["concurrency"] != "first-write" || w.Metadata["type"] != "order.paid" || w.ContentType != "" {
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
