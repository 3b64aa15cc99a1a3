package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/services/products/internal/httpapi"
	"github.com/daprshop/suite/services/products/internal/products"
)

// catalog records what the API asked of the domain.
type catalog struct {
	released, settled []string
	reserve           products.Reservation
	created           bool
}

func (c *catalog) Create(_ context.Context, p products.NewProduct) (products.Product, error) {
	if err := p.Validate(); err != nil {
		return products.Product{}, err
	}
	return products.Product{ID: "prd_000000000000000000000001", Name: p.Name}, nil
}
func (c *catalog) List(context.Context, int, int) (products.Page, error) { return products.Page{}, nil }
func (c *catalog) Get(_ context.Context, id string) (products.Product, error) {
	return products.Product{}, apierr.Errorf(apierr.NotFound, "product %s not found", id)
}
func (c *catalog) SetStock(_ context.Context, id string, s int) (products.Product, error) {
	return products.Product{ID: id, Stock: s}, nil
}
func (c *catalog) Reserve(context.Context, string, string, int) (products.Reservation, bool, error) {
	return c.reserve, c.created, nil
}
func (c *catalog) Release(_ context.Context, id, order string) error {
	if id == "prd_00000000000000000000dead" {
		return apierr.Errorf(apierr.NotFound, "no")
	}
	c.released = append(c.released, id+"/"+order)
	return nil
}
func (c *catalog) Settle(_ context.Context, id, order string) error {
	c.settled = append(c.settled, id+"/"+order)
	return nil
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func handler(c *catalog) http.Handler {
	return httpapi.Routes(c, metrics.New("products"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
}

func TestRoutes(t *testing.T) {
	c := &catalog{reserve: products.Reservation{Status: products.Reserved}, created: true}
	h := handler(c)
	cases := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"create", "POST", "/products", `{"name":"W","price":5,"currency":"EUR","stock":1}`, 201, `"id":"prd_000000000000000000000001"`},
		{"create invalid", "POST", "/products", `{"name":"","price":5,"currency":"EUR","stock":1}`, 400, `"field":"name"`},
		{"create unknown field", "POST", "/products", `{"name":"W","sku":"x"}`, 400, `"field":"sku"`},
		{"empty list", "GET", "/products", ``, 200, `{"products":[],"total":0}`},
		{"bad page", "GET", "/products?limit=x&offset=-", ``, 400, `"field":"limit"`},
		{"missing", "GET", "/products/prd_0000000000000000000000cc", ``, 404, `not_found`},
		{"stock", "PUT", "/products/prd_000000000000000000000001/stock", `{"stock":4}`, 200, `"stock":4`},
		{"stock missing", "PUT", "/products/prd_000000000000000000000001/stock", `{}`, 400, `"field":"stock"`},
		{"reserve", "POST", "/products/prd_000000000000000000000001/reservations", `{"order_id":"ord_000000000000000000000001","quantity":1}`, 201, `"status":"reserved"`},
		{"release", "DELETE", "/products/prd_000000000000000000000001/reservations/ord_000000000000000000000001", ``, 204, ``},
		// Only IDs route; nothing is cleaned or redirected (issue 12's 301 to the secrets API).
		{"short product ID", "GET", "/products/prd_1", ``, 404, `"no such route"`},
		{"secrets bait", "GET", "/products/..%2fv1.0%2fsecrets%2fsecrets%2fjwt-signing-key", ``, 404, `"no such route"`},
		{"dot segments", "GET", "/products/x/../prd_000000000000000000000001", ``, 404, `"no such route"`},
		{"short order ID", "DELETE", "/products/prd_000000000000000000000001/reservations/ord_1", ``, 404, `"no such route"`},
	}
	for _, tc := range cases {
		w := do(h, tc.method, tc.path, tc.body)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	c.created = false
	if w := do(h, "POST", "/products/prd_000000000000000000000001/reservations", `{"order_id":"ord_000000000000000000000001","quantity":1}`); w.Code != 200 {
		t.Errorf("replayed reservation: %d", w.Code)
	}
}

func TestOrderEvents(t *testing.T) {
	c := &catalog{}
	h := handler(c)
	ev := func(typ string) string {
		data, _ := json.Marshal(map[string]any{"type": typ, "order_id": "ord_000000000000000000000009",
			"items": []map[string]any{{"product_id": "prd_00000000000000000000000a"}, {"product_id": "prd_00000000000000000000dead"}, {"product_id": "prd_00000000000000000000000b"}}})
		return `{"id":"e1","topic":"orders","data":` + string(data) + `}`
	}
	for _, typ := range []string{"order.cancelled", "order.confirmed", "order.paid"} {
		if w := do(h, "POST", "/events/orders", ev(typ)); !strings.Contains(w.Body.String(), "SUCCESS") {
			t.Fatalf("%s: %s", typ, w.Body)
		}
	}
	if strings.Join(c.released, ",") != "prd_00000000000000000000000a/ord_000000000000000000000009,prd_00000000000000000000000b/ord_000000000000000000000009" || len(c.settled) != 3 {
		t.Fatalf("released %v settled %v", c.released, c.settled)
	}
	for _, poison := range []string{`{"id":"e2","data":"junk"}`, `{"id":"e3","data":null}`, `{"id":"e4"}`,
		`{"id":"e5","data":{"type":"order.cancelled","items":[{"product_id":"prd_00000000000000000000000a"}]}}`} {
		if w := do(h, "POST", "/events/orders", poison); !strings.Contains(w.Body.String(), "DROP") {
			t.Fatalf("poison %s: %s", poison, w.Body)
		}
	}
}

// FuzzWrites sends arbitrary bodies to every route that decodes one, the
// order event subscription included: bad input is a 4xx or a DROP, never a
// 5xx or a panic.
func FuzzWrites(f *testing.F) {
	routes := []struct{ method, path string }{
		{"POST", "/products"}, {"PUT", "/products/prd_00000000000000000000000a/stock"}, {"POST", "/products/prd_00000000000000000000000a/reservations"}, {"POST", "/events/orders"},
	}
	for i, seed := range []string{`{"name":"x","price":1,"currency":"EUR","stock":1}`, `{"stock":-1}`, `{"order_id":"ord_000000000000000000000001","quantity":2}`,
		`{"id":"e","data":{"type":"order.cancelled","order_id":"ord_000000000000000000000001","items":[{"product_id":"prd_00000000000000000000000a","quantity":1}]}}`} {
		f.Add(uint8(i), seed)
	}
	h := handler(&catalog{})
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := routes[int(route)%len(routes)]
		if w := do(h, r.method, r.path, body); w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, w.Code, w.Body)
		}
	})
}
