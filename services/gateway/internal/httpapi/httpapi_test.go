package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
)

// IDs of the right shape (lib/id).
const (
	me      = "usr_000000000000000000000001"
	other   = "usr_0000000000000000000000ee"
	prd     = "prd_000000000000000000000001"
	ord     = "ord_000000000000000000000009"
	ordBase = "/api/orders/" + ord
)

// call is one request the gateway sent upstream.
type call struct {
	app, method, path, body, requestID, owner string
}

// upstream records every call, with its headers, and answers with status,
// header and reply.
type upstream struct {
	mu      sync.Mutex
	calls   []call
	headers []http.Header
	status  int
	header  http.Header
	reply   string
	err     error
}

func (u *upstream) Raw(_ context.Context, app, method, path string, body []byte, hdr http.Header) (sidecar.Reply, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, call{app, method, path, string(body), hdr.Get("X-Request-ID"), hdr.Get(web.OwnerHeader)})
	u.headers = append(u.headers, hdr.Clone())
	return sidecar.Reply{Status: u.status, Header: u.header, Body: []byte(u.reply)}, u.err
}

type keys []byte

func (k keys) SigningKey(context.Context) ([]byte, error) { return k, nil }

var key = keys(strings.Repeat("s", 32))

func tokenFor(t testing.TB, userID, role string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := auth.Issue(key, auth.Claims{UserID: userID, Email: "a@b.c", Role: role}, time.Now(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func token(t testing.TB, role string, ttl time.Duration) string { return tokenFor(t, me, role, ttl) }

func gateway(up *upstream) http.Handler {
	return httpapi.Routes(up, key, httpapi.Options{
		Apps:    httpapi.Apps{Users: "users", Products: "products", Orders: "orders", Notifications: "notifications", Shipping: "shipping"},
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

// errorBody decodes w's body strictly as the error model, or fails.
func errorBody(t testing.TB, w *httptest.ResponseRecorder) web.ErrorDetail {
	t.Helper()
	var body web.ErrorBody
	dec := json.NewDecoder(strings.NewReader(w.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error.Code == "" || body.Error.Message == "" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") || apierr.Status(body.Error.Code) != w.Code {
		t.Fatalf("not the error model: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	return body.Error
}

func TestRoutesForwardToTheOwningService(t *testing.T) {
	customer := token(t, auth.RoleCustomer, time.Hour)
	admin := token(t, auth.RoleAdmin, time.Hour)
	item := `{"items":[{"product_id":"` + prd + `","quantity":1}]}`
	cases := []struct {
		name, method, path, tok, body string
		want                          call
	}{
		{"sign-up", "POST", "/api/users", "", `{"email":"a@b.c"}`, call{"users", "POST", "users", `{"email":"a@b.c"}`, "", ""}},
		{"login", "POST", "/api/login", "", `{}`, call{"users", "POST", "login", `{}`, "", ""}},
		{"catalog", "GET", "/api/products", "", "", call{"products", "GET", "products", "", "", ""}},
		{"catalog page", "GET", "/api/products?limit=5&offset=10&evil=1&user_id=x", "", "", call{"products", "GET", "products?limit=5&offset=10", "", "", ""}},
		{"catalog empty params", "GET", "/api/products?limit=&offset=", "", "", call{"products", "GET", "products", "", "", ""}},
		{"product", "GET", "/api/products/" + prd, "", "", call{"products", "GET", "products/" + prd, "", "", ""}},
		{"product with a query", "GET", "/api/products/" + prd + "?x=../../v1.0", "", "", call{"products", "GET", "products/" + prd, "", "", ""}},
		{"me", "GET", "/api/me", customer, "", call{"users", "GET", "users/" + me, "", "", me}},
		{"place", "POST", "/api/orders", customer, item, call{"orders", "POST", "orders", item, "", me}},
		{"my orders", "GET", "/api/orders", customer, "", call{"orders", "GET", "orders", "", "", me}},
		{"my order", "GET", ordBase, customer, "", call{"orders", "GET", "orders/" + ord, "", "", me}},
		{"cancel", "POST", ordBase + "/cancel", customer, "", call{"orders", "POST", "orders/" + ord + "/cancel", "", "", me}},
		{"cancel, a body naming another user", "POST", ordBase + "/cancel", customer, `{"user_id":"` + other + `"}`, call{"orders", "POST", "orders/" + ord + "/cancel", "", "", me}},
		{"shipment", "GET", ordBase + "/shipment", customer, "", call{"shipping", "GET", "shipments/" + ord, "", "", me}},
		{"shipment, a query naming another user", "GET", ordBase + "/shipment?user_id=" + other, customer, "", call{"shipping", "GET", "shipments/" + ord, "", "", me}},
		{"notifications", "GET", "/api/notifications", customer, "", call{"notifications", "GET", "notifications", "", "", me}},
		{"notifications, a query naming another user", "GET", "/api/notifications?user_id=" + other, customer, "", call{"notifications", "GET", "notifications", "", "", me}},
		{"create product", "POST", "/api/products", admin, `{"name":"x"}`, call{"products", "POST", "products", `{"name":"x"}`, "", me}},
		{"restock", "PUT", "/api/products/" + prd + "/stock", admin, `{"stock":3}`, call{"products", "PUT", "products/" + prd + "/stock", `{"stock":3}`, "", me}},
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

// The owner header is the token's user, whatever the client says: in the
// header itself (any spelling), the query or the body. No client header goes
// upstream: the gateway sends a fresh set.
func TestOwnerIsAlwaysTheTokensUser(t *testing.T) {
	customer := token(t, auth.RoleCustomer, time.Hour)
	routes := []struct{ method, path, body string }{
		{"GET", "/api/me", ""},
		{"POST", "/api/orders", `{"items":[{"product_id":"` + prd + `","quantity":1}]}`},
		{"GET", "/api/orders", ""},
		{"GET", ordBase, ""},
		{"POST", ordBase + "/cancel", `{"user_id":"` + other + `"}`},
		{"GET", ordBase + "/shipment", ""},
		{"GET", "/api/notifications", ""},
	}
	for _, rt := range routes {
		for _, query := range []string{"", "?user_id=" + other, "?user_id=" + other + "&user_id=" + other} {
			r := httptest.NewRequest(rt.method, rt.path+query, strings.NewReader(rt.body))
			r.Header.Set("Authorization", "Bearer "+customer)
			r.Header["X-User-ID"] = []string{other}
			r.Header["x-user-id"] = []string{other}
			r.Header.Add("X-User-Id", other)
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			r.Header.Set("Dapr-Api-Token", "client-token")
			r.Header.Set("Dapr-App-Id", "users")
			r.Header.Set("Traceparent-Not", "x")
			r.Header.Set("Cookie", "a=b")
			r.Header.Set("Content-Type", "application/json")
			r.RemoteAddr = "192.0.2.7:5555"
			up := &upstream{status: 200, reply: `{}`}
			w := httptest.NewRecorder()
			gateway(up).ServeHTTP(w, r)
			if w.Code != 200 || len(up.calls) != 1 {
				t.Fatalf("%s %s%s: %d %s, calls %+v", rt.method, rt.path, query, w.Code, w.Body, up.calls)
			}
			hdr := up.headers[0]
			if got := hdr.Values(web.OwnerHeader); len(got) != 1 || got[0] != me {
				t.Errorf("%s %s%s: owner %q, want %q", rt.method, rt.path, query, got, me)
			}
			if strings.Contains(up.calls[0].path, other) || strings.Contains(up.calls[0].body, other) {
				t.Errorf("%s %s%s: forwarded %+v", rt.method, rt.path, query, up.calls[0])
			}
			if keys := slices.Sorted(maps.Keys(hdr)); !slices.Equal(keys, []string{"X-Forwarded-For", "X-Request-Id", "X-User-Id"}) || hdr.Get("X-Forwarded-For") != "192.0.2.7" {
				t.Errorf("%s %s%s: headers upstream %v", rt.method, rt.path, query, hdr)
			}
		}
	}
	// Public routes name no owner, even when the client sends one.
	for _, path := range []string{"/api/products", "/api/products/" + prd} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set(web.OwnerHeader, other)
		up := &upstream{status: 200, reply: `{}`}
		gateway(up).ServeHTTP(httptest.NewRecorder(), r)
		if len(up.headers) != 1 || up.headers[0].Get(web.OwnerHeader) != "" {
			t.Errorf("%s: headers upstream %v", path, up.headers)
		}
	}
	// A body naming someone on place order is refused, not forwarded.
	up := &upstream{status: 200, reply: `{}`}
	w := send(gateway(up), "POST", "/api/orders", customer, `{"items":[{"product_id":"`+prd+`","quantity":1}],"user_id":"`+other+`"}`)
	if w.Code != 400 || len(up.calls) != 0 || errorBody(t, w).Fields[0].Field != "user_id" {
		t.Fatalf("user_id in the body: %d %s, calls %+v", w.Code, w.Body, up.calls)
	}
}

func TestAuthErrors(t *testing.T) {
	expired := token(t, auth.RoleCustomer, -time.Minute)
	customer := token(t, auth.RoleCustomer, time.Hour)
	oddUser := tokenFor(t, "usr_1", auth.RoleCustomer, time.Hour)
	cases := []struct {
		name, method, path, tok string
		status                  int
		code                    apierr.Code
	}{
		{"no token", "GET", "/api/orders", "", 401, apierr.Unauthenticated},
		{"garbage token", "GET", "/api/orders", "xyz", 401, apierr.Unauthenticated},
		{"expired token", "GET", "/api/me", expired, 401, apierr.Unauthenticated},
		{"token for no valid user ID", "GET", "/api/orders", oddUser, 401, apierr.Unauthenticated},
		{"customer creates product", "POST", "/api/products", customer, 403, apierr.Forbidden},
		{"customer restocks", "PUT", "/api/products/" + prd + "/stock", customer, 403, apierr.Forbidden},
		{"unknown route", "GET", "/api/nothing", customer, 404, apierr.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{status: 200, reply: `{}`}
			w := send(gateway(up), tc.method, tc.path, tc.tok, `{"name":"x"}`)
			if w.Code != tc.status || errorBody(t, w).Code != tc.code {
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

// The catalog forwards offset and limit only as plain numbers; anything else
// is a 400 naming the parameter, and nothing is forwarded.
func TestCatalogParameters(t *testing.T) {
	for _, c := range []struct{ query, field string }{
		{"limit=abc", "limit"}, {"offset=-1", "offset"}, {"limit=1e3", "limit"}, {"limit=+5", "limit"},
		{"limit=0x10", "limit"}, {"limit=1234567890", "limit"}, {"offset=1&offset=2", "offset"},
		{"limit=5%2F..%2Fv1.0", "limit"}, {"limit=5%23", "limit"}, {"limit=5%3Fx%3D1", "limit"}, {"limit=5%00", "limit"},
		{"limit=%255", "limit"}, {"offset=1%26limit%3D2", "offset"}, {"limit=%EF%BC%95", "limit"}, {"limit=5;offset=1", ""},
		{"limit=%zz", ""},
	} {
		up := &upstream{status: 200, reply: `{}`}
		w := send(gateway(up), "GET", "/api/products?"+c.query, "", "")
		e := errorBody(t, w)
		if w.Code != 400 || len(up.calls) != 0 || (c.field != "" && (len(e.Fields) == 0 || e.Fields[0].Field != c.field)) {
			t.Errorf("?%s: %d %s, calls %+v", c.query, w.Code, w.Body, up.calls)
		}
	}
}

// routes are the gateway's routes with valid IDs, and what they forward.
var routes = []struct {
	method, path, body, forwarded string
}{
	{"POST", "/api/users", `{}`, "users"},
	{"POST", "/api/login", `{}`, "login"},
	{"GET", "/api/products", "", "products"},
	{"POST", "/api/products", `{}`, "products"},
	{"GET", "/api/products/" + prd, "", "products/" + prd},
	{"PUT", "/api/products/" + prd + "/stock", `{"stock":1}`, "products/" + prd + "/stock"},
	{"GET", "/api/me", "", "users/" + me},
	{"POST", "/api/orders", `{"items":[{"product_id":"` + prd + `","quantity":1}]}`, "orders"},
	{"GET", "/api/orders", "", "orders"},
	{"GET", ordBase, "", "orders/" + ord},
	{"POST", ordBase + "/cancel", "", "orders/" + ord + "/cancel"},
	{"GET", ordBase + "/shipment", "", "shipments/" + ord},
	{"GET", "/api/notifications", "", "notifications"},
}

// idTricks stand in for an ID in a path: encoded separators (single and
// double), dots, #, ?, NUL, backslashes, ;params, overlong values.
var idTricks = []string{
	".", "..", "%2e", "%2e%2e", "%252e%252e", ".%2e", "..%2f", "..%2F..%2Fv1.0%2Fsecrets%2Fsecrets%2Fjwt-signing-key",
	"..%252fv1.0%252fsecrets%252fsecrets%252fjwt-signing-key", "..%5c..%5cv1.0", "..%255c", "%5c", "%255c",
	"%00", "%2500", "%23", "%2523", "%3F", "%253F", "%3f", "%2F", "%252F", "%20", "%0a", "%0d%0a", "%09", "%7f",
	";", "%3B", "%253B", "x;user_id=" + other, strings.Repeat("a", 300), "prd_" + strings.Repeat("0", 5000),
	"usr_000000000000000000000001", "ord_00000000000000000000000", "ord_0000000000000000000000000",
	"ORD_000000000000000000000009", "ord_00000000000000000000000G", "%6frd_000000000000000000000009%2F..",
	"ord_%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%30%2F", "*", "~", "%7e", "%c0%ae%c0%ae",
	"%ef%bc%8e%ef%bc%8e", "%u002e%u002e",
}

// junk follows a valid ID.
var junk = []string{
	"%23", "%2523", "%3F", "%253F", "%3Fuser_id=" + other, "%23user_id=" + other, "%2F", "%252F", "%2F..", "%2F..%2F..",
	"/..", "/.", "/../..", "/%2e%2e", "%00", "%2500", "%5c", "%255c", "%5C..", ";", ";user_id=" + other, "%3B", "%20", "%0a",
	"x", "0", "/", "//", "/x", "%09", "%2e", ".", "..", "~", "%", "%%", "%2",
}

// The corpus of path tricks against every route: each is a 4xx in the error
// model and forwards nothing. (Issue 12: ..%252f... reached the sidecar's
// secrets API; ord_...%23 cut off the owner.)
func TestPathTricksForwardNothing(t *testing.T) {
	customer := token(t, auth.RoleAdmin, time.Hour)
	var targets []string
	for _, rt := range routes {
		for _, valid := range []string{prd, ord} {
			if !strings.Contains(rt.path, valid) {
				continue
			}
			for _, trick := range idTricks {
				targets = append(targets, rt.method+" "+strings.Replace(rt.path, valid, trick, 1))
			}
			for _, j := range junk {
				targets = append(targets, rt.method+" "+strings.Replace(rt.path, valid, valid+j, 1))
			}
		}
		for _, j := range []string{"/", "//", "/.", "/..", "%2F", "%00", "%23", "%3F", ";x", "%20", "x", "/x/.."} {
			targets = append(targets, rt.method+" "+rt.path+j)
		}
		prefixed := strings.TrimPrefix(rt.path, "/api")
		for _, p := range []string{"/api/.", "/api/..", "/api/", "//api", "/api/%2e", "/x/../api", "/api%2F", "/./api", "/api/%2e%2e/api"} {
			targets = append(targets, rt.method+" "+p+prefixed)
		}
		for _, m := range []string{"TRACE", "PROPFIND", "CONNECT", "OPTIONS", "HEAD", "PATCH", "DELETE", "MOVE", "COPY", "MKCOL", "LOCK", "get", "Get"} {
			if m != rt.method {
				targets = append(targets, m+" "+rt.path)
			}
		}
	}
	served := 0
	for _, target := range targets {
		method, path, _ := strings.Cut(target, " ")
		raw := method + " " + path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + customer +
			"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			continue // net/http refuses it before any handler: nothing forwarded
		}
		r.RemoteAddr = "192.0.2.7:5555"
		served++
		up := &upstream{status: 200, reply: `{"secret":"s3cret"}`}
		w := httptest.NewRecorder()
		gateway(up).ServeHTTP(w, r)
		if w.Code < 400 || w.Code >= 500 || len(up.calls) != 0 || strings.Contains(w.Body.String(), "s3cret") || w.Header().Get("Location") != "" {
			t.Errorf("%s: %d %v %s, forwarded %+v", target, w.Code, w.Header(), w.Body, up.calls)
			continue
		}
		e := errorBody(t, w)
		if strings.Contains(e.Message, "api") || strings.Contains(e.Message, "%") || strings.Contains(e.Message, "..") {
			t.Errorf("%s: message echoes the path: %q", target, e.Message)
		}
	}
	if served < len(targets)*9/10 {
		t.Fatalf("only %d of %d targets reached the gateway: the corpus tests net/http, not the gateway", served, len(targets))
	}
}

// A reply passes only if it is the service's own: 2xx with JSON or nothing,
// or a 4xx (or its own 503) exactly in the error model with a known code of
// that status. Anything else becomes a 503 "<app> unavailable" with a
// Retry-After and none of the reply's text; only Retry-After is copied from
// upstream.
func TestRelayPassesOnlyTheServicesOwnAnswers(t *testing.T) {
	const leak = "LEAK"
	daprd := `{"errorCode":"ERR_DIRECT_INVOKE","message":"fail to invoke, id: orders, err: rpc error: code = PermissionDenied desc = access control policy has denied access to appid: gateway operation: orders/LEAK verb: GET"}`
	for _, c := range []struct {
		name   string
		status int
		header http.Header
		reply  string
	}{
		{"301 to the secrets API", 301, http.Header{"Location": {"/v1.0/secrets/secrets/LEAK"}}, ``},
		{"302", 302, http.Header{"Location": {"http://LEAK/"}}, `{"ok":"LEAK"}`},
		{"307", 307, nil, `LEAK`},
		{"308", 308, nil, ``},
		{"304", 304, nil, ``},
		{"daprd 403 (access control)", 403, nil, daprd},
		{"daprd 404", 404, nil, `{"errorCode":"ERR_DIRECT_INVOKE","message":"LEAK"}`},
		{"daprd 400", 400, nil, `{"errorCode":"ERR_MALFORMED_REQUEST","message":"LEAK"}`},
		{"daprd 401", 401, nil, `{"errorCode":"ERR_API_TOKEN","message":"LEAK"}`},
		{"daprd 500", 500, nil, daprd},
		{"daprd 503", 503, nil, `{"errorCode":"ERR_DIRECT_INVOKE","message":"LEAK"}`},
		{"gRPC text", 500, nil, `rpc error: code = Unavailable desc = LEAK`},
		{"gRPC text 404", 404, nil, `rpc error: code = NotFound desc = LEAK`},
		{"daprd text 404", 404, nil, `LEAK`},
		{"html 200", 200, nil, `<html>LEAK</html>`},
		{"html 404", 404, nil, `<html>LEAK</html>`},
		{"app 500 in the error model", 500, nil, `{"error":{"code":"internal","message":"LEAK"}}`},
		{"502", 502, nil, ``},
		{"504", 504, nil, `{"error":{"code":"unavailable","message":"LEAK"}}`},
		{"unknown code", 400, nil, `{"error":{"code":"teapot","message":"LEAK"}}`},
		{"client code on a 503", 503, nil, `{"error":{"code":"invalid","message":"LEAK"}}`},
		{"unavailable code on a 4xx", 404, nil, `{"error":{"code":"unavailable","message":"LEAK"}}`},
		{"internal code on a 4xx", 400, nil, `{"error":{"code":"internal","message":"LEAK"}}`},
		{"no message", 404, nil, `{"error":{"code":"not_found"}}`},
		{"error model and more", 404, nil, `{"error":{"code":"not_found","message":"LEAK"},"errorCode":"ERR_DIRECT_INVOKE"}`},
		{"error model with a stray field", 404, nil, `{"error":{"code":"not_found","message":"LEAK","detail":"x"}}`},
		{"error model and trailing data", 404, nil, `{"error":{"code":"not_found","message":"LEAK"}}{}`},
		{"error model as an array", 404, nil, `[{"error":{"code":"not_found","message":"LEAK"}}]`},
		{"empty 4xx", 404, nil, ``},
		{"1xx", 102, nil, ``},
		{"600", 600, nil, `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &upstream{status: c.status, header: c.header, reply: c.reply}
			h := gateway(up)
			w := send(h, "GET", ordBase, token(t, auth.RoleCustomer, time.Hour), "")
			e := errorBody(t, w)
			if w.Code != 503 || e.Code != apierr.Unavailable || e.Message != "orders unavailable" || w.Header().Get("Retry-After") == "" {
				t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
			}
			for k := range w.Header() {
				if !slices.Contains([]string{"Content-Type", "Retry-After", "X-Request-Id", "X-Trace-Id"}, k) {
					t.Errorf("header %s passed on", k)
				}
			}
			if strings.Contains(w.Body.String()+strings.Join(w.Header().Values("Retry-After"), ""), leak) {
				t.Fatalf("leaked: %s", w.Body)
			}
		})
	}
	if w := send(gateway(&upstream{err: apierr.Unavailablef(nil, "orders unavailable")}), "GET", "/api/products", "", ""); w.Code != 503 {
		t.Fatalf("no reply: %d %s", w.Code, w.Body)
	}
}

func TestRelayPassesTheServicesOwnAnswers(t *testing.T) {
	for _, c := range []struct {
		name         string
		status       int
		header       http.Header
		reply        string
		retryAfter   string
		wantContains string
	}{
		{"200", 200, http.Header{"Set-Cookie": {"a=b"}, "Location": {"/x"}}, `{"id":"x"}`, "", `{"id":"x"}`},
		{"201", 201, nil, `{"id":"x"}`, "", `{"id":"x"}`},
		{"204", 204, nil, ``, "", ``},
		{"own 404", 404, nil, `{"error":{"code":"not_found","message":"order ord_1 not found"}}`, "", "ord_1 not found"},
		{"own 400", 400, nil, `{"error":{"code":"invalid","message":"items: bad","fields":[{"field":"items","message":"bad"}]}}`, "", `"field":"items"`},
		{"own 409", 409, http.Header{"Retry-After": {"2"}}, `{"error":{"code":"conflict","message":"email taken"}}`, "2", "email taken"},
		// Another service's 4xx with a client code: the code decides the status.
		{"own 422 with code invalid", 422, nil, `{"error":{"code":"invalid","message":"bad quantity"}}`, "", "bad quantity"},
		{"own 429", 429, http.Header{"Retry-After": {"60"}}, `{"error":{"code":"too_many_requests","message":"slow down"}}`, "60", "slow down"},
		{"own 503", 503, http.Header{"Retry-After": {"10"}}, `{"error":{"code":"unavailable","message":"order ord_1 is pending: payments unavailable (circuit open)"}}`, "10", "ord_1 is pending"},
		{"own 503 without a hint", 503, nil, `{"error":{"code":"unavailable","message":"pending"}}`, "1", "pending"},
		{"own 503 with a bad hint", 503, http.Header{"Retry-After": {"<script>"}}, `{"error":{"code":"unavailable","message":"pending"}}`, "1", "pending"},
		{"own 503 with an HTTP date", 503, http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, `{"error":{"code":"unavailable","message":"pending"}}`, "1", "pending"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &upstream{status: c.status, header: c.header, reply: c.reply}
			w := send(gateway(up), "GET", ordBase, token(t, auth.RoleCustomer, time.Hour), "")
			want := c.status
			if c.status == http.StatusUnprocessableEntity {
				want = http.StatusBadRequest // the code, invalid, decides the status
			}
			if w.Code != want || !strings.Contains(w.Body.String(), c.wantContains) || w.Header().Get("Retry-After") != c.retryAfter {
				t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
			}
			if c.status >= 400 {
				errorBody(t, w)
			}
			if w.Header().Get("Set-Cookie") != "" || w.Header().Get("Location") != "" {
				t.Fatalf("upstream headers passed on: %v", w.Header())
			}
		})
	}
}

func TestForwardedForIsTheClientNotItsClaim(t *testing.T) {
	up := &upstream{status: 200, reply: `{}`}
	r := httptest.NewRequest("POST", "/api/login", strings.NewReader(`{}`))
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.1")
	gateway(up).ServeHTTP(httptest.NewRecorder(), r)
	if got := up.headers[0].Get("X-Forwarded-For"); got != "192.0.2.7" {
		t.Fatalf("X-Forwarded-For upstream = %q", got)
	}
}

// TestForwardedForBehindTrustedProxies: behind a trusted proxy (an ingress
// controller) the client is the rightmost address of X-Forwarded-For that is
// not a trusted proxy; what a client wrote to the left of it, or any header
// from a peer that is not trusted, is ignored.
func TestForwardedForBehindTrustedProxies(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct client", "192.0.2.7:5555", []string{"203.0.113.1"}, "192.0.2.7"},
		{"through the ingress", "10.1.2.3:5555", []string{"198.51.100.4"}, "198.51.100.4"},
		{"a client's claim left of the ingress's", "10.1.2.3:5555", []string{"203.0.113.1, 198.51.100.4"}, "198.51.100.4"},
		{"two proxies", "10.1.2.3:5555", []string{"198.51.100.4, 10.9.9.9"}, "198.51.100.4"},
		{"headers in two lines", "10.1.2.3:5555", []string{"203.0.113.1", "198.51.100.4"}, "198.51.100.4"},
		{"IPv6 proxy and client", "[fd00::1]:5555", []string{"2001:db8::7"}, "2001:db8::7"},
		{"nothing forwarded", "10.1.2.3:5555", nil, "10.1.2.3"},
		{"garbage forwarded", "10.1.2.3:5555", []string{"<script>"}, "10.1.2.3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &upstream{status: 200, reply: `{}`}
			h := httpapi.Routes(up, key, httpapi.Options{
				Apps:    httpapi.Apps{Users: "users", Products: "products", Orders: "orders", Notifications: "notifications", Shipping: "shipping"},
				MaxBody: 1024, Now: time.Now, TrustedProxies: proxies,
			}, metrics.New("gateway"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
			r := httptest.NewRequest("POST", "/api/login", strings.NewReader(`{}`))
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got := up.headers[0].Get("X-Forwarded-For"); got != c.want {
				t.Fatalf("X-Forwarded-For upstream = %q, want %q", got, c.want)
			}
		})
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

// forwardedPath is every path the gateway may forward: its routes' shapes,
// with IDs of their kinds and numeric paging.
var forwardedPath = regexp.MustCompile(`^(users|login|orders|notifications|products(\?(limit=[0-9]{1,9}|offset=[0-9]{1,9}|limit=[0-9]{1,9}&offset=[0-9]{1,9}))?|` +
	`users/usr_[0-9a-f]{24}|products/prd_[0-9a-f]{24}(/stock)?|orders/ord_[0-9a-f]{24}(/cancel)?|shipments/ord_[0-9a-f]{24})$`)

// FuzzGateway: whatever the method, path, token or body, the gateway answers
// no 5xx but a 503 and never panics; what it forwards is one of its routes'
// shapes, every segment in [A-Za-z0-9_-], and the owner header is the
// token's user.
func FuzzGateway(f *testing.F) {
	customer := token(f, auth.RoleCustomer, 24*time.Hour)
	admin := token(f, auth.RoleAdmin, 24*time.Hour)
	f.Add("POST", "/api/orders", "Bearer x", `{"items":[]}`)
	f.Add("GET", "/api/products/%00", "", "")
	f.Add("PUT", "/api/products/a/stock", "Bearer ", "{")
	f.Add("GET", "/api/products/..%252fv1.0%252fsecrets%252fsecrets%252fjwt-signing-key", "", "")
	f.Add("GET", ordBase+"%23", "Bearer "+customer, "")
	f.Add("GET", ordBase+"%3Fuser_id="+other, "Bearer "+customer, "")
	f.Add("POST", ordBase+"/cancel", "Bearer "+customer, `{"user_id":"`+other+`"}`)
	f.Add("GET", "/api/products?limit=5&offset=1", "", "")
	f.Add("PUT", "/api/products/"+prd+"/stock", "Bearer "+admin, `{"stock":1}`)
	f.Add("GET", "/api/notifications?user_id="+other, "Bearer "+customer, "")
	f.Add("OPTIONS", "/api/me", "Bearer "+customer, "")
	up := &upstream{status: 200, reply: `{}`}
	h := gateway(up)
	f.Fuzz(func(t *testing.T, method, path, authz, body string) {
		raw := method + " " + path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: " + authz + "\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // not an HTTP request net/http would serve
		}
		r.RemoteAddr = "192.0.2.7:5555"
		up.mu.Lock()
		up.calls, up.headers = nil, nil
		up.mu.Unlock()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != 503 {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
		for i, c := range up.calls {
			if !forwardedPath.MatchString(c.path) {
				t.Fatalf("%s %s forwarded %q", method, path, c.path)
			}
			p, q, _ := strings.Cut(c.path, "?")
			for _, seg := range strings.Split(p, "/") {
				if seg == "" || strings.Trim(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
					t.Fatalf("%s %s forwarded segment %q", method, path, seg)
				}
			}
			if vs, err := url.ParseQuery(q); err != nil || len(vs) > 2 {
				t.Fatalf("%s %s forwarded query %q", method, path, q)
			}
			if owner := up.headers[i].Values(web.OwnerHeader); len(owner) > 1 || len(owner) == 1 && owner[0] != me {
				t.Fatalf("%s %s forwarded owner %q", method, path, owner)
			}
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

// TestEveryReplyCarriesARequestID: unknown paths, wrong methods and
// malformed IDs too (the router answers those without its middleware).
func TestEveryReplyCarriesARequestID(t *testing.T) {
	h := gateway(&upstream{status: 200, reply: `{}`})
	for _, c := range []struct {
		method, path string
		status       int
		message      string
	}{
		{"GET", "/api/nope", 404, "no such route"},
		{"GET", "/nothing-here", 404, "no such route"},
		{"GET", "/assets/nothing-here.js", 404, "no such asset"},
		{"GET", "/", 200, ""},
		{"DELETE", "/api/products", 405, "method not allowed"},
		{"GET", "/api/products/prd_doesnotexist", 404, "no such product"},
		{"PUT", "/api/products/prd_x/stock", 404, "no such product"},
		{"GET", "/api/orders/ord_x", 404, "no such order"},
		{"POST", "/api/orders/ord_x/cancel", 404, "no such order"},
		{"GET", "/api/products", 200, ""},
	} {
		w := send(h, c.method, c.path, "", "")
		if w.Code != c.status || w.Header().Get("X-Request-ID") == "" {
			t.Errorf("%s %s: %d, X-Request-ID %q", c.method, c.path, w.Code, w.Header().Get("X-Request-ID"))
		}
		if c.message != "" {
			if e := errorBody(t, w); e.Message != c.message {
				t.Errorf("%s %s: message %q, want %q", c.method, c.path, e.Message, c.message)
			}
		}
	}
}
