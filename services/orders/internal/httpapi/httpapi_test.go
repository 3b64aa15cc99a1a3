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
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/orders/internal/fake"
	"github.com/daprshop/suite/services/orders/internal/httpapi"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

func handler() (http.Handler, *fake.Store) {
	st := fake.NewStore()
	svc := &orders.Service{Store: st, Users: fake.Users{"usr_1": true}, Inventory: fake.NewInventory(250, map[string]int{"prd_a": 5}),
		Payments: &fake.Payments{Status: "succeeded"}, Now: time.Now}
	return httpapi.Routes(svc, metrics.New("orders"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil }), st
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func TestPlaceBadInputIs400NamingTheField(t *testing.T) {
	cases := map[string]struct{ body, field string }{
		"missing user":   {`{"items":[{"product_id":"prd_a","quantity":1}]}`, "user_id"},
		"zero quantity":  {`{"user_id":"usr_1","items":[{"product_id":"prd_a","quantity":0}]}`, "items[0].quantity"},
		"string amount":  {`{"user_id":"usr_1","items":[{"product_id":"prd_a","quantity":"2"}]}`, "items.quantity"},
		"unknown field":  {`{"user_id":"usr_1","items":[],"unit_price":1}`, "unit_price"},
		"empty items":    {`{"user_id":"usr_1","items":[]}`, "items"},
		"unknown user":   {`{"user_id":"usr_9","items":[{"product_id":"prd_a","quantity":1}]}`, "user_id"},
		"malformed json": {`{"user_id":`, ""},
		"not an object":  {`"hello"`, ""},
	}
	h, _ := handler()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := do(h, http.MethodPost, "/orders", tc.body)
			if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			var body web.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %s", w.Body)
			}
			if body.Error.Code != apierr.Invalid || body.Error.Message == "" {
				t.Fatalf("body %+v", body)
			}
			if tc.field != "" && (len(body.Error.Fields) == 0 || body.Error.Fields[0].Field != tc.field) {
				t.Fatalf("fields %+v, want %s", body.Error.Fields, tc.field)
			}
		})
	}
}

func TestPlaceListGetCancel(t *testing.T) {
	h, _ := handler()
	w := do(h, http.MethodPost, "/orders", `{"user_id":"usr_1","items":[{"product_id":"prd_a","quantity":3}]}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var o orders.Order
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil || o.Status != orders.Paid || o.Total != 750 {
		t.Fatalf("order %+v err %v", o, err)
	}
	w = do(h, http.MethodGet, "/orders?user_id=usr_1", "")
	var l httpapi.List
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &l) != nil || len(l.Orders) != 1 || l.Orders[0].ID != o.ID {
		t.Fatalf("list %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodGet, "/orders?user_id=bad", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("list bad user %d", w.Code)
	}
	if w = do(h, http.MethodGet, "/orders/"+o.ID+"?user_id=usr_2", ""); w.Code != http.StatusNotFound {
		t.Fatalf("other user's order %d", w.Code)
	}
	if w = do(h, http.MethodGet, "/orders/ord_missing", ""); w.Code != http.StatusNotFound {
		t.Fatalf("missing %d", w.Code)
	}
	if w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", `{}`); w.Code != http.StatusBadRequest {
		t.Fatalf("cancel without user %d", w.Code)
	}
	w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", `{"user_id":"usr_1"}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"status":"cancelled"`) {
		t.Fatalf("cancel %d %s", w.Code, w.Body)
	}
}

func TestPaymentEvents(t *testing.T) {
	h, st := handler()
	w := do(h, http.MethodPost, "/orders", `{"user_id":"usr_1","items":[{"product_id":"prd_a","quantity":1}]}`)
	var o orders.Order
	_ = json.Unmarshal(w.Body.Bytes(), &o)
	event := func(data string) string {
		return `{"id":"e1","type":"payment.succeeded","topic":"payments","pubsubname":"events","data":` + data + `}`
	}
	cases := []struct{ name, body, status string }{
		{"settled", event(`{"type":"payment.succeeded","order_id":"` + o.ID + `","charge_id":"ch_1"}`), "SUCCESS"},
		{"other type", event(`{"type":"payment.refunded","order_id":"` + o.ID + `"}`), "SUCCESS"},
		{"unknown order", event(`{"type":"payment.succeeded","order_id":"ord_nope","charge_id":"ch_1"}`), "DROP"},
		{"poison", event(`"garbage"`), "DROP"},
		{"no data", event(`null`), "DROP"},
		{"no charge", event(`{"type":"payment.succeeded","order_id":"` + o.ID + `"}`), "DROP"},
	}
	for _, tc := range cases {
		w := do(h, http.MethodPost, "/events/payments", tc.body)
		if !strings.Contains(w.Body.String(), tc.status) {
			t.Errorf("%s: %s, want %s", tc.name, w.Body, tc.status)
		}
	}
	got, _, _ := st.Get(context.Background(), o.ID)
	if got.Status != orders.Confirmed {
		t.Fatalf("status %s after settlement", got.Status)
	}
}

// FuzzPlaceOrder: no request body makes the order API answer 5xx or panic.
func FuzzPlaceOrder(f *testing.F) {
	for _, seed := range []string{`{"user_id":"usr_1","items":[{"product_id":"prd_a","quantity":1}]}`, `{"items":null}`, `{"user_id":"usr_1","items":[{"product_id":"prd_a","quantity":-9999999999999999999}]}`, `{`} {
		f.Add(seed)
	}
	h, _ := handler()
	f.Fuzz(func(t *testing.T, body string) {
		w := do(h, http.MethodPost, "/orders", body)
		if w.Code >= 500 {
			t.Fatalf("POST /orders %q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzEventsAndCancel delivers arbitrary bodies to both subscriptions and the
// cancel route: a poison event is dropped and bad input is a 4xx, never a
// 5xx or a panic.
func FuzzEventsAndCancel(f *testing.F) {
	paths := []string{"/events/payments", "/events/orders", "/orders/ord_1/cancel"}
	for i, seed := range []string{`{"id":"e","data":{"type":"payment.succeeded","order_id":"ord_1","charge_id":"ch_1"}}`,
		`{"id":"e","data":{"type":"order.created","order_id":"ord_1"}}`, `{"user_id":"usr_1"}`} {
		f.Add(uint8(i), seed)
	}
	h, _ := handler()
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		path := paths[int(route)%len(paths)]
		if w := do(h, http.MethodPost, path, body); w.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		}
	})
}
