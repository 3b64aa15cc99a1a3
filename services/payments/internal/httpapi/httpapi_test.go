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

	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/services/payments/internal/fake"
	"github.com/daprshop/suite/services/payments/internal/httpapi"
	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
)

type keys struct{}

func (keys) ProviderKey(context.Context) (string, error) { return "sk_test", nil }

func handler() http.Handler {
	prov := provider.NewSimulated(&provider.MemMemory{}, 0, 0, 1)
	svc := &payments.Service{Store: fake.NewStore(), Provider: prov, Keys: keys{}, Now: time.Now, Leases: fake.Leases(&lease.MemStore{}, time.Now)}
	return httpapi.Routes(svc, prov, metrics.New("payments"), slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

const charge = `{"order_id":"ord_1","user_id":"usr_1","amount":900,"currency":"EUR","idempotency_key":"ord_1"}`

func TestChargeRefundFlow(t *testing.T) {
	h := handler()
	if w := do(h, http.MethodPost, "/charges", charge); w.Code != http.StatusCreated {
		t.Fatalf("charge %d %s", w.Code, w.Body)
	}
	w := do(h, http.MethodPost, "/charges", charge)
	var c payments.Charge
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &c) != nil || c.Status != payments.Succeeded {
		t.Fatalf("replay %d %s", w.Code, w.Body)
	}
	if w := do(h, http.MethodGet, "/charges/"+c.ID, ""); w.Code != http.StatusOK {
		t.Fatalf("get %d", w.Code)
	}
	if w := do(h, http.MethodGet, "/charges/ch_nope", ""); w.Code != http.StatusNotFound {
		t.Fatalf("get missing %d", w.Code)
	}
	w = do(h, http.MethodPost, "/refunds", `{"idempotency_key":"ord_1"}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"status":"refunded"`) {
		t.Fatalf("refund %d %s", w.Code, w.Body)
	}
	if w := do(h, http.MethodPost, "/refunds", `{"idempotency_key":"ord_unknown"}`); w.Code != http.StatusNotFound {
		t.Fatalf("refund unknown %d", w.Code)
	}
}

func TestBadInputIs400(t *testing.T) {
	h := handler()
	cases := map[string]struct{ path, body, field string }{
		"charge no user":    {"/charges", `{"order_id":"ord_1","amount":900,"currency":"EUR","idempotency_key":"k"}`, "user_id"},
		"charge negative":   {"/charges", `{"order_id":"ord_1","user_id":"u","amount":-1,"currency":"EUR","idempotency_key":"k"}`, "amount"},
		"charge extra":      {"/charges", `{"order_id":"ord_1","tip":5}`, "tip"},
		"refund empty key":  {"/refunds", `{"idempotency_key":""}`, "idempotency_key"},
		"provider bad rate": {"/provider", `{"failure_rate":1.5}`, "failure_rate"},
		"provider latency":  {"/provider", `{"latency_ms":-4}`, "latency_ms"},
	}
	for name, tc := range cases {
		method := http.MethodPost
		if tc.path == "/provider" {
			method = http.MethodPut
		}
		w := do(h, method, tc.path, tc.body)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
}

func TestProviderSettingsAtRunTime(t *testing.T) {
	h := handler()
	w := do(h, http.MethodPut, "/provider", `{"failure_rate":1,"latency_ms":5}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"failure_rate":1`) || !strings.Contains(w.Body.String(), `"latency_ms":5`) {
		t.Fatalf("set %d %s", w.Code, w.Body)
	}
	w = do(h, http.MethodPost, "/charges", charge)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"status":"declined"`) {
		t.Fatalf("charge after failure_rate=1: %d %s", w.Code, w.Body)
	}
	if w := do(h, http.MethodGet, "/provider", ""); !strings.Contains(w.Body.String(), `"latency_ms":5`) {
		t.Fatalf("get %s", w.Body)
	}
}

// FuzzWrites sends arbitrary bodies to every route that decodes one: bad
// input is a 4xx, never a 5xx or a panic.
func FuzzWrites(f *testing.F) {
	routes := []struct{ method, path string }{{"POST", "/charges"}, {"POST", "/refunds"}, {"PUT", "/provider"}}
	for i, seed := range []string{charge, `{"idempotency_key":"ord_1"}`, `{"failure_rate":0.5,"latency_ms":3}`} {
		f.Add(uint8(i), seed)
	}
	h := handler()
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := routes[int(route)%len(routes)]
		if w := do(h, r.method, r.path, body); w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, w.Code, w.Body)
		}
	})
}
