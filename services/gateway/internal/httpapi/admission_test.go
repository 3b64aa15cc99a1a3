package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/gateway/internal/admit"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
)

// heldUpstream holds every call whose path is held's until release is
// closed, and answers the others at once.
type heldUpstream struct {
	held    string
	started chan string
	release chan struct{}
}

func (u *heldUpstream) Raw(_ context.Context, _, _, path string, _ []byte, _ http.Header) (sidecar.Reply, error) {
	if path == u.held {
		u.started <- path
		<-u.release
	}
	return sidecar.Reply{Status: 200, Body: []byte(`{}`)}, nil
}

// TestAdmissionByClass: with one request of a class held upstream and a
// limit of 1 each, every other route of that class is refused at once (503,
// Retry-After, the error model, nothing forwarded), the routes of the other
// classes go on, and a request without a valid token is told so (401)
// rather than refused for capacity.
func TestAdmissionByClass(t *testing.T) {
	customer := token(t, auth.RoleCustomer, time.Hour)
	admin := token(t, auth.RoleAdmin, time.Hour)
	item := `{"items":[{"product_id":"` + prd + `","quantity":1}]}`
	type route struct{ class, method, path, tok, body, upstreamPath string }
	routes := []route{
		{"read", "GET", "/api/products", "", "", "products"},
		{"read", "GET", "/api/products/" + prd, "", "", "products/" + prd},
		{"read", "GET", "/api/me", customer, "", "users/" + me},
		{"read", "GET", "/api/orders", customer, "", "orders"},
		{"read", "GET", ordBase, customer, "", "orders/" + ord},
		{"read", "GET", "/api/notifications", customer, "", "notifications"},
		{"track", "GET", ordBase + "/shipment", customer, "", "shipments/" + ord},
		{"order", "POST", "/api/orders", customer, item, "orders"},
		{"order", "POST", ordBase + "/cancel", customer, "", "orders/" + ord + "/cancel"},
		{"write", "POST", "/api/users", "", `{"email":"a@b.c"}`, "users"},
		{"write", "POST", "/api/login", "", `{}`, "login"},
		{"write", "POST", "/api/products", admin, `{"name":"x"}`, "products"},
		{"write", "PUT", "/api/products/" + prd + "/stock", admin, `{"stock":3}`, "products/" + prd + "/stock"},
	}
	for _, full := range []string{"read", "track", "order", "write"} {
		t.Run(full+" full", func(t *testing.T) {
			var holder route
			for _, r := range routes {
				if r.class == full {
					holder = r
					break
				}
			}
			up := &heldUpstream{held: holder.upstreamPath, started: make(chan string, 1), release: make(chan struct{})}
			limiter := func() *admit.Limiter {
				l, err := admit.New(admit.Config{Target: time.Second, Min: 1, Burst: 1, Max: 1, Window: 10}, time.Now)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			h := httpapi.Routes(up, key, httpapi.Options{
				Apps:    httpapi.Apps{Users: "users", Products: "products", Orders: "orders", Notifications: "notifications", Shipping: "shipping"},
				MaxBody: 1024, Now: time.Now,
				Admit: httpapi.Admission{Read: limiter(), Order: limiter(), Write: limiter(), Track: limiter()},
			}, metrics.New("gateway"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
			done := make(chan int)
			go func() { done <- send(h, holder.method, holder.path, holder.tok, holder.body).Code }()
			<-up.started
			// Everything else answers at once: the held path no longer blocks.
			up.held = ""
			for _, r := range routes {
				w := send(h, r.method, r.path, r.tok, r.body)
				if r.class != full {
					if w.Code != 200 {
						t.Errorf("%s %s (%s) while %s is full: %d %s", r.method, r.path, r.class, full, w.Code, w.Body)
					}
					continue
				}
				e := errorBody(t, w)
				if w.Code != 503 || e.Code != "unavailable" || e.Message != admit.ShedMessage || w.Header().Get("Retry-After") != "1" ||
					w.Header().Get("X-Request-ID") == "" {
					t.Errorf("%s %s (%s, full): %d Retry-After %q %+v", r.method, r.path, r.class, w.Code, w.Header().Get("Retry-After"), e)
				}
				if r.tok != "" {
					bad := send(h, r.method, r.path, "not-a-token", r.body)
					if bad.Code != http.StatusUnauthorized {
						t.Errorf("%s %s with a bad token while %s is full: %d, want 401", r.method, r.path, full, bad.Code)
					}
				}
			}
			close(up.release)
			if code := <-done; code != 200 {
				t.Fatalf("the held request got %d", code)
			}
			// Its slot is free again.
			if w := send(h, holder.method, holder.path, holder.tok, holder.body); w.Code != 200 {
				t.Fatalf("%s %s after the held one ended: %d %s", holder.method, holder.path, w.Code, w.Body)
			}
		})
	}
}

// TestNoAdmissionAdmitsAll: without limiters (ADMIT=false) nothing is refused.
func TestNoAdmissionAdmitsAll(t *testing.T) {
	h := gateway(&upstream{status: 200, reply: `{}`})
	for range 50 {
		if w := send(h, "GET", "/api/products", "", ""); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
