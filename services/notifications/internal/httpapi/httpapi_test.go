package httpapi_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/notifications/internal/httpapi"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

type store struct {
	notes  []notifications.Notification
	err    error
	listed string // the user of the last ListByUser
}

func (s *store) Add(_ context.Context, n notifications.Notification) (bool, error) {
	if s.err != nil {
		return false, s.err
	}
	s.notes = append([]notifications.Notification{n}, s.notes...)
	return true, nil
}

func (s *store) ListByUser(_ context.Context, userID string) ([]notifications.Notification, error) {
	s.listed = userID
	return s.notes, nil
}

type counter struct{}

func (counter) Recorded(string)  {}
func (counter) Duplicate(string) {}

func TestEndpoints(t *testing.T) {
	st := &store{}
	svc := &notifications.Service{Store: st, Counter: counter{}, Now: time.Now}
	h := httpapi.Routes(svc, metrics.New("notifications"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	owner := ""
	do := func(method, path, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if owner != "" {
			r.Header.Set(web.OwnerHeader, owner)
		}
		h.ServeHTTP(w, r)
		return w
	}
	good := `{"id":"e1","topic":"payments","data":{"type":"payment.succeeded","order_id":"ord_000000000000000000000001","user_id":"usr_000000000000000000000001","amount":100,"currency":"EUR"}}`
	if w := do("POST", "/events/payments", good); !strings.Contains(w.Body.String(), string(events.Success)) {
		t.Fatalf("good: %s", w.Body)
	}
	shipped := `{"id":"e2","topic":"shipments","data":{"type":"shipment.shipped","shipment_id":"shp_000000000000000000000001","order_id":"ord_000000000000000000000001","user_id":"usr_000000000000000000000001","status":"shipped","tracking_number":"DS1","at":"2026-11-29T10:00:00Z"}}`
	if w := do("POST", "/events/shipments", shipped); !strings.Contains(w.Body.String(), string(events.Success)) {
		t.Fatalf("shipment event: %s", w.Body)
	}
	if w := do("POST", "/events/orders", `{"id":"e2","data":{"type":"order.paid"}}`); !strings.Contains(w.Body.String(), string(events.DropIt)) {
		t.Fatalf("poison: %s", w.Body)
	}
	st.err = apierr.Errorf(apierr.Unavailable, "down")
	if w := do("POST", "/events/orders", good); !strings.Contains(w.Body.String(), string(events.Retry)) {
		t.Fatalf("outage: %s", w.Body)
	}
	// The owner is the header alone: the old user_id query names no one.
	for _, bad := range []string{"", "usr_1", "usr_000000000000000000000001#"} {
		owner = bad
		if w := do("GET", "/notifications?user_id=usr_000000000000000000000001", ""); w.Code != 400 ||
			!strings.Contains(w.Body.String(), `"field":"`+web.OwnerHeader+`"`) || strings.Contains(w.Body.String(), `"e1"`) {
			t.Fatalf("owner %q: %d %s", bad, w.Code, w.Body)
		}
	}
	owner = "usr_000000000000000000000001"
	w := do("GET", "/notifications", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"id":"e1"`) || !strings.Contains(w.Body.String(), "succeeded") {
		t.Fatalf("list %d %s", w.Code, w.Body)
	}
	if st.listed != owner {
		t.Fatalf("listed %q, want %q", st.listed, owner)
	}
}

// FuzzEvents delivers arbitrary bodies to both subscriptions: a poison event
// is dropped, never a 5xx or a panic.
func FuzzEvents(f *testing.F) {
	f.Add(false, `{"id":"e1","topic":"payments","data":{"type":"payment.succeeded","order_id":"ord_000000000000000000000001","user_id":"usr_000000000000000000000001","amount":100,"currency":"EUR"}}`)
	f.Add(true, `{"id":"e2","data":{"type":"order.paid"}}`)
	svc := &notifications.Service{Store: &store{}, Counter: counter{}, Now: time.Now}
	h := httpapi.Routes(svc, metrics.New("notifications"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	f.Fuzz(func(t *testing.T, orders bool, body string) {
		path := "/events/payments"
		if orders {
			path = "/events/orders"
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
		if w.Code != 200 {
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		}
	})
}
