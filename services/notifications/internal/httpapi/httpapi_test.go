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
	"github.com/daprshop/suite/services/notifications/internal/httpapi"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

type store struct {
	notes []notifications.Notification
	err   error
}

func (s *store) Add(_ context.Context, n notifications.Notification) (bool, error) {
	if s.err != nil {
		return false, s.err
	}
	s.notes = append([]notifications.Notification{n}, s.notes...)
	return true, nil
}

func (s *store) ListByUser(context.Context, string) ([]notifications.Notification, error) {
	return s.notes, nil
}

type counter struct{}

func (counter) Recorded(string)  {}
func (counter) Duplicate(string) {}

func TestEndpoints(t *testing.T) {
	st := &store{}
	svc := &notifications.Service{Store: st, Counter: counter{}, Now: time.Now}
	h := httpapi.Routes(svc, metrics.New("notifications"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	do := func(method, path, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
		return w
	}
	good := `{"id":"e1","topic":"payments","data":{"type":"payment.succeeded","order_id":"ord_1","user_id":"usr_1","amount":100,"currency":"EUR"}}`
	if w := do("POST", "/events/payments", good); !strings.Contains(w.Body.String(), string(events.Success)) {
		t.Fatalf("good: %s", w.Body)
	}
	if w := do("POST", "/events/orders", `{"id":"e2","data":{"type":"order.paid"}}`); !strings.Contains(w.Body.String(), string(events.DropIt)) {
		t.Fatalf("poison: %s", w.Body)
	}
	st.err = apierr.Errorf(apierr.Unavailable, "down")
	if w := do("POST", "/events/orders", good); !strings.Contains(w.Body.String(), string(events.Retry)) {
		t.Fatalf("outage: %s", w.Body)
	}
	w := do("GET", "/notifications?user_id=usr_1", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"id":"e1"`) || !strings.Contains(w.Body.String(), "succeeded") {
		t.Fatalf("list %d %s", w.Code, w.Body)
	}
	if w := do("GET", "/notifications", ""); w.Code != 400 || !strings.Contains(w.Body.String(), `"field":"user_id"`) {
		t.Fatalf("no user %d %s", w.Code, w.Body)
	}
}

// FuzzEvents delivers arbitrary bodies to both subscriptions: a poison event
// is dropped, never a 5xx or a panic.
func FuzzEvents(f *testing.F) {
	f.Add(false, `{"id":"e1","topic":"payments","data":{"type":"payment.succeeded","order_id":"ord_1","user_id":"usr_1","amount":100,"currency":"EUR"}}`)
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
