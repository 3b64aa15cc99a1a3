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
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/orders/internal/fake"
	"github.com/daprshop/suite/services/orders/internal/httpapi"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

func handler() (http.Handler, *fake.Store) {
	st := fake.NewStore()
	svc := &orders.Service{Store: st, Inventory: fake.NewInventory(250, map[string]int{"prd_00000000000000000000000a": 5}),
		Payments: &fake.Payments{Status: "succeeded"}, Now: time.Now, Leases: fake.Leases(&lease.MemStore{}, time.Now)}
	return httpapi.Routes(svc, metrics.New("orders"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil }), st
}

const (
	usr1 = "usr_000000000000000000000001"
	usr2 = "usr_000000000000000000000002"
)

// do sends a request as the gateway would for owner ("" sends no owner header).
func do(h http.Handler, method, path, owner, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if owner != "" {
		r.Header.Set(web.OwnerHeader, owner)
	}
	h.ServeHTTP(w, r)
	return w
}

func TestPlaceBadInputIs400NamingTheField(t *testing.T) {
	item := `"items":[{"product_id":"prd_00000000000000000000000a","quantity":1}]`
	cases := map[string]struct{ owner, body, field string }{
		"no owner":             {"", `{` + item + `}`, web.OwnerHeader},
		"malformed owner":      {"usr_1", `{` + item + `}`, web.OwnerHeader},
		"owner with junk":      {usr1 + "#", `{` + item + `}`, web.OwnerHeader},
		"user_id in the body":  {usr1, `{"user_id":"` + usr1 + `",` + item + `}`, "user_id"},
		"someone else in body": {usr1, `{"user_id":"` + usr2 + `",` + item + `}`, "user_id"},
		"zero quantity":        {usr1, `{"items":[{"product_id":"prd_00000000000000000000000a","quantity":0}]}`, "items[0].quantity"},
		"short product ID":     {usr1, `{"items":[{"product_id":"prd_a","quantity":1}]}`, "items[0].product_id"},
		"string amount":        {usr1, `{"items":[{"product_id":"prd_00000000000000000000000a","quantity":"2"}]}`, "items.quantity"},
		"unknown field":        {usr1, `{"items":[],"unit_price":1}`, "unit_price"},
		"empty items":          {usr1, `{"items":[]}`, "items"},
		"malformed json":       {usr1, `{"items":`, ""},
		"not an object":        {usr1, `"hello"`, ""},
	}
	h, st := handler()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := do(h, http.MethodPost, "/orders", tc.owner, tc.body)
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
	if n := len(st.Events); n != 0 {
		t.Fatalf("%d orders stored", n)
	}
}

func TestPlaceListGetCancel(t *testing.T) {
	h, _ := handler()
	w := do(h, http.MethodPost, "/orders", usr1, `{"items":[{"product_id":"prd_00000000000000000000000a","quantity":3}]}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var o orders.Order
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil || o.Status != orders.Paid || o.Total != 750 || o.UserID != usr1 {
		t.Fatalf("order %+v err %v", o, err)
	}
	w = do(h, http.MethodGet, "/orders", usr1, "")
	var l httpapi.List
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &l) != nil || len(l.Orders) != 1 || l.Orders[0].ID != o.ID {
		t.Fatalf("list %d %s", w.Code, w.Body)
	}
	// The owner is the header, nothing else: a query naming someone is ignored.
	w = do(h, http.MethodGet, "/orders?user_id="+usr1, usr2, "")
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &l) != nil || len(l.Orders) != 0 {
		t.Fatalf("list as usr2 naming usr1: %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodGet, "/orders", "", ""); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), web.OwnerHeader) {
		t.Fatalf("list without owner %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodGet, "/orders?user_id="+usr1, "", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("list by query %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodGet, "/orders", "bad", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("list bad user %d", w.Code)
	}
	if w = do(h, http.MethodGet, "/orders/"+o.ID, usr1, ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), o.ID) {
		t.Fatalf("own order %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodGet, "/orders/"+o.ID+"?user_id="+usr1, usr2, ""); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), `"total"`) {
		t.Fatalf("other user's order %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodGet, "/orders/ord_00000000000000000000dead", usr1, ""); w.Code != http.StatusNotFound {
		t.Fatalf("missing %d", w.Code)
	}
	if w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", "", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("cancel without owner %d", w.Code)
	}
	if w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", usr2, ""); w.Code != http.StatusNotFound {
		t.Fatalf("cancel someone else's order %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", usr1, `{"user_id":"`+usr1+`"}`); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), `"field":"user_id"`) {
		t.Fatalf("cancel with a user_id body %d %s", w.Code, w.Body)
	}
	w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", usr1, "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"status":"cancelled"`) {
		t.Fatalf("cancel %d %s", w.Code, w.Body)
	}
	if w = do(h, http.MethodPost, "/orders/"+o.ID+"/cancel", usr1, `{}`); w.Code != http.StatusOK {
		t.Fatalf("cancel again with {} %d %s", w.Code, w.Body)
	}
}

// Issue 12: GET /orders/<id>%23 (or %3F) reached orders with the owner
// query cut off, and orders showed the order to anyone. No owner is now a
// 400, and anything but an order ID in the path matches no route.
func TestNoOwnerNoOrder(t *testing.T) {
	h, _ := handler()
	w := do(h, http.MethodPost, "/orders", usr1, `{"items":[{"product_id":"prd_00000000000000000000000a","quantity":1}]}`)
	var o orders.Order
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil || o.ID == "" {
		t.Fatalf("place: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		method, path, owner string
		status              int
	}{
		{"GET", "/orders/" + o.ID, "", 400},
		{"GET", "/orders/" + o.ID + "?user_id=", "", 400},
		{"GET", "/orders/" + o.ID + "%23?user_id=" + usr2, "", 404},
		{"GET", "/orders/" + o.ID + "%23", usr2, 404},
		{"GET", "/orders/" + o.ID + "%3F", usr2, 404},
		{"GET", "/orders/" + o.ID + "%2F", usr2, 404},
		{"GET", "/orders/" + o.ID + "/", usr2, 404},
		{"GET", "/orders/" + o.ID + "%00", usr2, 404},
		{"GET", "/orders/x/../" + o.ID, usr2, 404},
		{"GET", "/orders/" + o.ID + ";user_id=" + usr1, usr2, 404},
		{"GET", "/orders/" + strings.ToUpper(o.ID), usr2, 404},
		{"POST", "/orders/" + o.ID + "%2Fcancel", usr2, 404},
		{"POST", "/orders/" + o.ID + "/cancel", "", 400},
	} {
		w := do(h, c.method, c.path, c.owner, "")
		if w.Code != c.status || strings.Contains(w.Body.String(), `"total"`) || w.Header().Get("Location") != "" {
			t.Errorf("%s %s as %q: %d %s", c.method, c.path, c.owner, w.Code, w.Body)
		}
	}
	if w := do(h, "GET", "/orders/"+o.ID, usr1, ""); !strings.Contains(w.Body.String(), `"status":"paid"`) {
		t.Fatalf("the order changed: %s", w.Body)
	}
}

func TestPaymentEvents(t *testing.T) {
	h, st := handler()
	w := do(h, http.MethodPost, "/orders", usr1, `{"items":[{"product_id":"prd_00000000000000000000000a","quantity":1}]}`)
	var o orders.Order
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil || o.ID == "" {
		t.Fatalf("place: %d %s", w.Code, w.Body)
	}
	event := func(data string) string {
		return `{"id":"e1","type":"payment.succeeded","topic":"payments","pubsubname":"events","data":` + data + `}`
	}
	cases := []struct{ name, body, status string }{
		{"settled", event(`{"type":"payment.succeeded","order_id":"` + o.ID + `","charge_id":"ch_1"}`), "SUCCESS"},
		{"other type", event(`{"type":"payment.refunded","order_id":"` + o.ID + `"}`), "SUCCESS"},
		{"unknown order", event(`{"type":"payment.succeeded","order_id":"ord_0000000000000000000000ee","charge_id":"ch_1"}`), "DROP"},
		{"poison", event(`"garbage"`), "DROP"},
		{"no data", event(`null`), "DROP"},
		{"no charge", event(`{"type":"payment.succeeded","order_id":"` + o.ID + `"}`), "DROP"},
	}
	for _, tc := range cases {
		w := do(h, http.MethodPost, "/events/payments", "", tc.body)
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
	for _, seed := range []string{`{"items":[{"product_id":"prd_00000000000000000000000a","quantity":1}]}`, `{"items":null}`, `{"user_id":"usr_000000000000000000000001","items":[{"product_id":"prd_00000000000000000000000a","quantity":-9999999999999999999}]}`, `{`} {
		f.Add(seed)
	}
	h, _ := handler()
	f.Fuzz(func(t *testing.T, body string) {
		w := do(h, http.MethodPost, "/orders", usr1, body)
		if w.Code >= 500 {
			t.Fatalf("POST /orders %q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzEventsAndCancel delivers arbitrary bodies to both subscriptions and the
// cancel route: a poison event is dropped and bad input is a 4xx, never a
// 5xx or a panic.
func FuzzEventsAndCancel(f *testing.F) {
	paths := []string{"/events/payments", "/events/orders", "/orders/ord_000000000000000000000001/cancel"}
	for i, seed := range []string{`{"id":"e","data":{"type":"payment.succeeded","order_id":"ord_000000000000000000000001","charge_id":"ch_1"}}`,
		`{"id":"e","data":{"type":"order.created","order_id":"ord_000000000000000000000001"}}`, `{"user_id":"usr_000000000000000000000001"}`} {
		f.Add(uint8(i), seed)
	}
	h, _ := handler()
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		path := paths[int(route)%len(paths)]
		if w := do(h, http.MethodPost, path, usr1, body); w.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		}
	})
}
