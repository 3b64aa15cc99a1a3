package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
)

// call is one request the gateway sent upstream.
type call struct {
	app, method, path, body, requestID string
}

// forwardedFor is the X-Forwarded-For of the last upstream call.
var forwardedFor string

// upstream records calls and answers with status and reply.
type upstream struct {
	calls  []call
	status int
	header http.Header
	reply  string
	err    error
}

func (u *upstream) Raw(_ context.Context, app, method, path string, body []byte, hdr http.Header) (sidecar.Reply, error) {
	u.calls = append(u.calls, call{app, method, path, string(body), hdr.Get("X-Request-ID")})
	forwardedFor = hdr.Get("X-Forwarded-For")
	return sidecar.Reply{Status: u.status, Header: u.header, Body: []byte(u.reply)}, u.err
}

type keys []byte

func (k keys) SigningKey(context.Context) ([]byte, error) { return k, nil }

var key = keys(strings.Repeat("s", 32))

func token(t *testing.T, role string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := auth.Issue(key, auth.Claims{UserID: "usr_1", Email: "a@b.c", Role: role}, time.Now(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func gateway(up *upstream) http.Handler {
	return httpapi.Routes(up, key, httpapi.Options{
		Apps:    httpapi.Apps{Users: "users", Products: "products", Orders: "orders", Notifications: "notifications"},
		MaxBody: 1024, Now: time.Now,
	}, metrics.New("gateway"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
}

func send(h http.Handler, method, path, tok, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRoutesForwardToTheOwningService(t *testing.T) {
	customer := token(t, auth.RoleCustomer, time.Hour)
	admin := token(t, auth.RoleAdmin, time.Hour)
	cases := []struct {
		name, method, path, tok, body string
		want                          call
	}{
		{"sign-up", "POST", "/api/users", "", `{"email":"a@b.c"}`, call{"users", "POST", "users", `{"email":"a@b.c"}`, ""}},
		{"login", "POST", "/api/login", "", `{}`, call{"users", "POST", "login", `{}`, ""}},
		{"catalog", "GET", "/api/products", "", "", call{"products", "GET", "products", "", ""}},
		{"catalog page", "GET", "/api/products?limit=5&offset=10&evil=1", "", "", call{"products", "GET", "products?limit=5&offset=10", "", ""}},
		{"product", "GET", "/api/products/prd_1", "", "", call{"products", "GET", "products/prd_1", "", ""}},
		{"me", "GET", "/api/me", customer, "", call{"users", "GET", "users/usr_1", "", ""}},
		{"place", "POST", "/api/orders", customer, `{"items":[{"product_id":"prd_1","quantity":1}]}`,
			call{"orders", "POST", "orders", `{"items":[{"product_id":"prd_1","quantity":1}],"user_id":"usr_1"}`, ""}},
		{"my orders", "GET", "/api/orders", customer, "", call{"orders", "GET", "orders?user_id=usr_1", "", ""}},
		{"my order", "GET", "/api/orders/ord_9", customer, "", call{"orders", "GET", "orders/ord_9?user_id=usr_1", "", ""}},
		{"cancel", "POST", "/api/orders/ord_9/cancel", customer, "", call{"orders", "POST", "orders/ord_9/cancel", `{"user_id":"usr_1"}`, ""}},
		{"notifications", "GET", "/api/notifications", customer, "", call{"notifications", "GET", "notifications?user_id=usr_1", "", ""}},
		{"create product", "POST", "/api/products", admin, `{"name":"x"}`, call{"products", "POST", "products", `{"name":"x"}`, ""}},
		{"restock", "PUT", "/api/products/prd_1/stock", admin, `{"stock":3}`, call{"products", "PUT", "products/prd_1/stock", `{"stock":3}`, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{status: 200, reply: `{"ok":true}`}
			w := send(gateway(up), tc.method, tc.path, tc.tok, tc.body)
			if w.Code != 200 || w.Body.String() != `{"ok":true}` {
				t.Fatalf("reply %d %s", w.Code, w.Body)
			}
			if len(up.calls) != 1 {
				t.Fatalf("calls %+v", up.calls)
			}
			got := up.calls[0]
			if got.requestID == "" || w.Header().Get("X-Request-ID") != got.requestID {
				t.Fatalf("request id %q vs %q", got.requestID, w.Header().Get("X-Request-ID"))
			}
			got.requestID = ""
			if got != tc.want {
				t.Fatalf("call %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAuthErrors(t *testing.T) {
	expired := token(t, auth.RoleCustomer, -time.Minute)
	customer := token(t, auth.RoleCustomer, time.Hour)
	cases := []struct {
		name, method, path, tok string
		status                  int
		code                    apierr.Code
	}{
		{"no token", "GET", "/api/orders", "", 401, apierr.Unauthenticated},
		{"garbage token", "GET", "/api/orders", "xyz", 401, apierr.Unauthenticated},
		{"expired token", "GET", "/api/me", expired, 401, apierr.Unauthenticated},
		{"customer creates product", "POST", "/api/products", customer, 403, apierr.Forbidden},
		{"customer restocks", "PUT", "/api/products/prd_1/stock", customer, 403, apierr.Forbidden},
		{"unknown route", "GET", "/api/nothing", customer, 404, apierr.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{status: 200, reply: `{}`}
			w := send(gateway(up), tc.method, tc.path, tc.tok, `{"name":"x"}`)
			var body struct {
				Error struct{ Code apierr.Code } `json:"error"`
			}
			if w.Code != tc.status || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != tc.code {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if len(up.calls) != 0 {
				t.Fatalf("forwarded: %+v", up.calls)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate")
			}
		})
	}
}

func TestInputLimits(t *testing.T) {
	customer := token(t, auth.RoleCustomer, time.Hour)
	up := &upstream{status: 200, reply: `{}`}
	h := gateway(up)
	if w := send(h, "POST", "/api/users", "", `{"x":"`+strings.Repeat("a", 2000)+`"}`); w.Code != 400 {
		t.Fatalf("oversized body: %d", w.Code)
	}
	if w := send(h, "POST", "/api/orders", customer, `{"items":[],"user_id":"usr_other"}`); w.Code != 400 || !strings.Contains(w.Body.String(), `"field":"user_id"`) {
		t.Fatalf("user_id smuggled in: %d %s", w.Code, w.Body)
	}
	if w := send(h, "POST", "/api/orders", customer, `{}`); w.Code != 400 || !strings.Contains(w.Body.String(), `"field":"items"`) {
		t.Fatalf("no items: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/api/login", "/api/users"} {
		r := httptest.NewRequest("POST", path, strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "text/plain")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "content type") {
			t.Fatalf("%s as text/plain: %d %s", path, w.Code, w.Body)
		}
	}
	if len(up.calls) != 0 {
		t.Fatalf("forwarded: %+v", up.calls)
	}
}

func TestUpstreamFailuresAre503(t *testing.T) {
	for name, up := range map[string]*upstream{
		"app 500":      {status: 500, reply: `{"error":{"code":"internal","message":"secret detail"}}`},
		"daprd text":   {status: 404, reply: `not found`},
		"no reply":     {err: apierr.Errorf(apierr.Unavailable, "orders unavailable")},
		"sidecar down": {status: 502, reply: ``},
		"daprd 503":    {status: 503, reply: `{"errorCode":"ERR_DIRECT_INVOKE","message":"secret detail"}`},
	} {
		w := send(gateway(up), "GET", "/api/products", "", "")
		if w.Code != 503 || strings.Contains(w.Body.String(), "secret detail") {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	// A service's own 503 names what is pending and when to retry: it passes.
	up503 := &upstream{status: 503, header: http.Header{"Retry-After": {"10"}},
		reply: `{"error":{"code":"unavailable","message":"order ord_1 is pending: payments unavailable (circuit open)"}}`}
	if w := send(gateway(up503), "GET", "/api/products", "", ""); w.Code != 503 || w.Header().Get("Retry-After") != "10" || !strings.Contains(w.Body.String(), "ord_1 is pending") {
		t.Fatalf("a service's 503: %d %v %s", w.Code, w.Header(), w.Body)
	}
	up503.header = nil // a service's 503 without a hint gets one
	if w := send(gateway(up503), "GET", "/api/products", "", ""); w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("a service's 503 without Retry-After: %d %v", w.Code, w.Header())
	}
	// A service's client error passes through unchanged, with its Retry-After.
	up := &upstream{status: 409, reply: `{"error":{"code":"conflict","message":"email taken"}}`}
	if w := send(gateway(up), "POST", "/api/users", "", `{}`); w.Code != 409 || !strings.Contains(w.Body.String(), "email taken") {
		t.Fatalf("409: %d %s", w.Code, w.Body)
	}
	up = &upstream{status: 429, header: http.Header{"Retry-After": {"60"}}, reply: `{"error":{"code":"too_many_requests","message":"slow down"}}`}
	if w := send(gateway(up), "POST", "/api/login", "", `{}`); w.Code != 429 || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("429: %d %v", w.Code, w.Header())
	}
}

func TestForwardedForIsTheClientNotItsClaim(t *testing.T) {
	up := &upstream{status: 200, reply: `{}`}
	r := httptest.NewRequest("POST", "/api/login", strings.NewReader(`{}`))
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.1")
	gateway(up).ServeHTTP(httptest.NewRecorder(), r)
	if forwardedFor != "192.0.2.7" {
		t.Fatalf("X-Forwarded-For upstream = %q", forwardedFor)
	}
}

func TestRequestIDKeptWhenWellFormed(t *testing.T) {
	up := &upstream{status: 200, reply: `{}`}
	r := httptest.NewRequest("GET", "/api/products", nil)
	r.Header.Set("X-Request-ID", "client-id-42")
	w := httptest.NewRecorder()
	gateway(up).ServeHTTP(w, r)
	if up.calls[0].requestID != "client-id-42" || w.Header().Get("X-Request-ID") != "client-id-42" {
		t.Fatalf("request id %q", up.calls[0].requestID)
	}
}

// FuzzGateway: no path, token or body makes the gateway answer 5xx or panic
// while its upstream is healthy.
func FuzzGateway(f *testing.F) {
	f.Add("POST", "/api/orders", "Bearer x", `{"items":[]}`)
	f.Add("GET", "/api/products/%00", "", "")
	f.Add("PUT", "/api/products/a/stock", "Bearer ", "{")
	f.Fuzz(func(t *testing.T, method, path, authz, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(method+path, " \r\n\t") || method == "" {
			return // not an HTTP request line
		}
		r, err := http.NewRequest(method, "http://gw"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		gateway(&upstream{status: 200, reply: `{}`}).ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	})
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	h := gateway(&upstream{status: 200, reply: `{}`})
	customer := token(t, auth.RoleCustomer, time.Hour)
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"DELETE", "/api/orders", 405, `"code":"method_not_allowed"`},
		{"GET", "/api/nothing-here", 404, `"code":"not_found"`},
		{"GET", "/nothing-here", 404, `"code":"not_found"`},
	} {
		w := send(h, c.method, c.path, customer, "")
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.code) || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q %s", c.method, c.path, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
	if allow := send(h, "DELETE", "/api/orders", customer, "").Header().Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow %q, want GET, POST", allow)
	}
}
