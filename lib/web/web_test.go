package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
)

type item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type order struct {
	UserID string `json:"user_id"`
	Items  []item `json:"items"`
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		ctype     string
		wantField string // "" means no field error expected
		wantMsg   string // the field's message, when not ""
		wantOK    bool
	}{
		{name: "valid", body: `{"user_id":"u1","items":[{"sku":"a","quantity":2}]}`, wantOK: true},
		{name: "unknown field", body: `{"user_id":"u1","coupon":"x"}`, wantField: "coupon"},
		{name: "wrong type nested", body: `{"items":[{"sku":"a","quantity":"two"}]}`, wantField: "items.quantity", wantMsg: "must be an integer"},
		{name: "wrong type top", body: `{"user_id":7}`, wantField: "user_id", wantMsg: "must be a string"},
		{name: "wrong type list", body: `{"items":{}}`, wantField: "items", wantMsg: "must be an array"},
		{name: "empty", body: ``},
		{name: "truncated", body: `{"user_id":`},
		{name: "syntax", body: `{"user_id" "u1"}`},
		{name: "two objects", body: `{"user_id":"a"}{"user_id":"b"}`},
		{name: "array body", body: `[1,2]`},
		{name: "wrong content type", body: `{"user_id":"u1"}`, ctype: "text/plain"},
		{name: "too large", body: `{"user_id":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			var o order
			err := web.Decode(r, &o)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if o.UserID != "u1" || len(o.Items) != 1 || o.Items[0].Quantity != 2 {
					t.Fatalf("decoded %+v", o)
				}
				return
			}
			if apierr.CodeOf(err) != apierr.Invalid {
				t.Fatalf("err = %v, want an invalid error", err)
			}
			if tc.wantField != "" {
				var e *apierr.Error
				errors.As(err, &e)
				if len(e.Fields) != 1 || e.Fields[0].Field != tc.wantField || tc.wantMsg != "" && e.Fields[0].Message != tc.wantMsg {
					t.Fatalf("fields = %+v, want %q %q", e.Fields, tc.wantField, tc.wantMsg)
				}
			}
		})
	}
}

func TestRespondErrorHidesInternalDetails(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	w := httptest.NewRecorder()
	web.RespondError(w, httptest.NewRequest(http.MethodGet, "/x", nil), log, io.ErrClosedPipe)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "closed pipe") {
		t.Fatalf("internal detail leaked: %s", w.Body)
	}
	if !strings.Contains(logs.String(), "closed pipe") {
		t.Fatalf("internal error not logged: %s", logs.String())
	}
}

func TestRespondErrorBodyAndRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	err := &apierr.Error{Code: apierr.Unavailable, Message: "payments unavailable", RetryAfter: 1500 * time.Millisecond}
	web.RespondError(w, httptest.NewRequest(http.MethodGet, "/", nil), slog.New(slog.DiscardHandler), err)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	var body web.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Code != apierr.Unavailable || body.Error.Message != "payments unavailable" {
		t.Fatalf("body = %+v", body)
	}
}

func TestRecover(t *testing.T) {
	h := web.Recover(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
}

func TestSidecarOnly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := web.SidecarOnly("s3cret", slog.New(slog.DiscardHandler), ok)
	cases := []struct {
		path, token string
		want        int
	}{
		{"/orders", "", http.StatusUnauthorized},
		{"/orders", "wrong", http.StatusUnauthorized},
		{"/orders", "s3cret", http.StatusTeapot},
		{"/healthz", "", http.StatusTeapot},
		{"/metrics", "", http.StatusTeapot},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.token != "" {
			r.Header.Set("dapr-api-token", tc.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s with %q: %d, want %d", tc.path, tc.token, w.Code, tc.want)
		}
	}
	w := httptest.NewRecorder()
	web.SidecarOnly("", slog.New(slog.DiscardHandler), ok).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/orders", nil))
	if w.Code != http.StatusTeapot {
		t.Fatalf("no token configured: %d", w.Code)
	}
}

// FuzzDecode: no body makes Decode panic, and every failure is a client error.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{`{"user_id":"u1","items":[{"sku":"a","quantity":2}]}`, `{`, `[]`, `{"items":[{"quantity":1e309}]}`, "\x00", `{"user_id":"a"} x`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var o order
		err := web.Decode(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), &o)
		if err != nil && apierr.CodeOf(err) != apierr.Invalid {
			t.Fatalf("Decode(%q) = %v, want an invalid error", body, err)
		}
	})
}

func TestReadyLogsWhyButDoesNotSay(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ready := web.Ready(log, func(context.Context) error {
		return errors.New(`dial tcp 127.0.0.1:3500: connection refused`)
	})
	w := httptest.NewRecorder()
	ready(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "127.0.0.1") {
		t.Fatalf("not ready: %d %s (the reason belongs in the log)", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("reason not logged: %s", logs.String())
	}
}

func TestUnknownPathsAreJSONAndCounted(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	r := web.Router(log, metrics.New("test"), func(context.Context) error { return nil })
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/nowhere", 404}, {"POST", "/healthz", 405}} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%s %s: %d %s", c.method, c.path, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`route="unmatched",service="test"} 1`, `code="405",method="POST",route="unmatched"`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A path mux would clean is not redirected (a 301 sends the caller, daprd's
// client, elsewhere), and no error message echoes the path.
func TestRouterNeverRedirectsNorEchoesThePath(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	r := web.Router(log, metrics.New("test"), func(context.Context) error { return nil })
	r.HandleFunc("/orders/{id}", func(w http.ResponseWriter, _ *http.Request) { web.Respond(w, 200, "secret") }).Methods("GET")
	for _, c := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/orders/..%2fv1.0%2fsecrets%2fsecrets%2fjwt-signing-key", 404},
		{"GET", "/orders/../v1.0/secrets/secrets/jwt-signing-key", 404},
		{"GET", "/orders/./x", 404},
		{"GET", "//orders/x", 404},
		{"GET", "/orders//x", 404},
		{"GET", "/healthz/../metrics", 404},
		{"GET", "/orders/x/", 404},
		{"DELETE", "/orders/internal-secret-path", 405},
	} {
		req := httptest.NewRequest(c.method, "http://app"+c.target, nil)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		var body web.ErrorBody
		if w.Code != c.status || w.Header().Get("Location") != "" || json.Unmarshal(w.Body.Bytes(), &body) != nil {
			t.Errorf("%s %s: %d %v %s", c.method, c.target, w.Code, w.Header(), w.Body)
			continue
		}
		for _, leak := range []string{"orders", "secret", "metrics", "healthz", "jwt", "..", c.method} {
			if strings.Contains(body.Error.Message, leak) {
				t.Errorf("%s %s: message %q echoes %q", c.method, c.target, body.Error.Message, leak)
			}
		}
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("DELETE", "/orders/x", nil))
	if w.Header().Get("Allow") != "GET" {
		t.Errorf("Allow = %q", w.Header().Get("Allow"))
	}
}

func TestOwner(t *testing.T) {
	good := "usr_0123456789abcdef01234567"
	for _, c := range []struct {
		name   string
		values []string
		ok     bool
	}{
		{"the user", []string{good}, true},
		{"missing", nil, false},
		{"empty", []string{""}, false},
		{"not a user ID", []string{"ord_0123456789abcdef01234567"}, false},
		{"trailing junk", []string{good + "#"}, false},
		{"two values", []string{good, good}, false},
	} {
		r := httptest.NewRequest("GET", "/orders", nil)
		for _, v := range c.values {
			r.Header.Add(web.OwnerHeader, v)
		}
		got, err := web.Owner(r)
		if c.ok != (err == nil) || (c.ok && got != good) {
			t.Errorf("%s: %q %v", c.name, got, err)
		}
		var e *apierr.Error
		if !c.ok && (!errors.As(err, &e) || e.Code != apierr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != web.OwnerHeader) {
			t.Errorf("%s: error %v, want invalid naming %s", c.name, err, web.OwnerHeader)
		}
	}
}

func TestDecodeOptional(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{{"", true}, {"{}", true}, {`{"user_id":"usr_x"}`, false}, {"{", false}, {"null x", false}} {
		var v struct{}
		err := web.DecodeOptional(httptest.NewRequest("POST", "/x", strings.NewReader(c.body)), &v)
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.body, err)
		}
	}
	var v order
	if err := web.DecodeOptional(httptest.NewRequest("POST", "/x", strings.NewReader(`{"user_id":"u"}`)), &v); err != nil || v.UserID != "u" {
		t.Fatalf("%+v %v", v, err)
	}
}

// TestClientGoneIsNotAServerError: an error answered after the client hung
// up (its request's context cancelled) is recorded as 499, not a 5xx any
// client could produce at will, and is not logged as an error.
func TestClientGoneIsNotAServerError(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/orders", nil).WithContext(ctx)
	for _, err := range []error{context.Canceled, apierr.Unavailablef(context.Canceled, "products unavailable"), errors.New("boom")} {
		w := httptest.NewRecorder()
		web.RespondError(w, r, log, err)
		if w.Code != web.StatusClientClosedRequest {
			t.Errorf("%v: status %d, want %d", err, w.Code, web.StatusClientClosedRequest)
		}
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) || strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Errorf("logged as a failure: %s", logs.String())
	}
	// A live request still gets its error.
	w := httptest.NewRecorder()
	web.RespondError(w, httptest.NewRequest(http.MethodGet, "/orders", nil), slog.New(slog.DiscardHandler), errors.New("boom"))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("live request: %d", w.Code)
	}
}

// TestDrainFailsReadinessThenFinishes: once the context is done, /readyz
// answers 503 while requests are still served for the drain; then the
// listener closes, after the request in hand is answered.
func TestDrainFailsReadinessThenFinishes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := web.Router(log, metrics.New("drain"), func(context.Context) error { return nil })
	release := make(chan struct{})
	r.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) { <-release; w.WriteHeader(http.StatusNoContent) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- web.ServeDrained(ctx, log, web.NewServer(addr, r), 500*time.Millisecond, 5*time.Second)
	}()
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(5 * time.Second)
	for get("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the server never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow := make(chan int, 1)
	go func() { slow <- get("/slow") }()
	time.Sleep(50 * time.Millisecond)
	stop()
	time.Sleep(50 * time.Millisecond)
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("readiness while draining: %d, want 503", got)
	}
	if got := get("/healthz"); got != http.StatusOK {
		t.Errorf("a request while draining: %d, want 200", got)
	}
	close(release)
	if got := <-slow; got != http.StatusNoContent {
		t.Errorf("the request in hand at SIGTERM: %d, want 204", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := get("/healthz"); got != 0 {
		t.Errorf("after the drain and the shutdown the server still answers: %d", got)
	}
}
