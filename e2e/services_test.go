package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestServiceContracts calls every service directly through a sidecar (as
// the gateway and other services do) on its success and error paths; the
// client checks each reply against the service's OpenAPI document.
func TestServiceContracts(t *testing.T) {
	users, products, orders, notes, pay := invoke(t, "users"), invoke(t, "products"), invoke(t, "orders"), invoke(t, "notifications"), invoke(t, "payments")
	email := "svc-" + randomHex(5) + "@example.com"
	var u user
	users.mustCall(t, "POST", "/users", map[string]string{"email": email, "password": password, "name": "Svc"}, 201, &u)
	users.mustCall(t, "GET", "/users/"+u.ID, nil, 200, nil)
	users.mustCall(t, "GET", "/users/usr_000000000000000000000000", nil, 404, nil)
	users.mustCall(t, "POST", "/login", map[string]string{"email": email, "password": password}, 200, nil)
	users.mustCall(t, "POST", "/login", map[string]string{"email": email, "password": "wrong one"}, 401, nil)
	users.mustCall(t, "POST", "/users", `{"email":1}`, 400, nil)

	var p product
	products.mustCall(t, "POST", "/products", map[string]any{"name": "Svc widget", "price": 10, "currency": "EUR", "stock": 1}, 201, &p)
	products.mustCall(t, "POST", "/products", map[string]any{"name": ""}, 400, nil)
	products.mustCall(t, "GET", "/products", nil, 200, nil)
	products.mustCall(t, "GET", "/products/"+p.ID, nil, 200, nil)
	products.mustCall(t, "GET", "/products/prd_000000000000000000000000", nil, 404, nil)
	products.mustCall(t, "PUT", "/products/"+p.ID+"/stock", map[string]int{"stock": 2}, 200, nil)
	order := "ord_" + randomHex(12)
	var r struct{ Status string }
	products.mustCall(t, "POST", "/products/"+p.ID+"/reservations", map[string]any{"order_id": order, "quantity": 2}, 201, &r)
	products.mustCall(t, "POST", "/products/"+p.ID+"/reservations", map[string]any{"order_id": order, "quantity": 2}, 200, nil)
	products.mustCall(t, "POST", "/products/"+p.ID+"/reservations", map[string]any{"order_id": "ord_" + randomHex(12), "quantity": 1}, 200, &r)
	if r.Status != "rejected" {
		t.Fatalf("reservation beyond stock: %+v", r)
	}
	products.mustCall(t, "DELETE", "/products/"+p.ID+"/reservations/"+order, nil, 204, nil)

	orders.as(u.ID).mustCall(t, "GET", "/orders", nil, 200, nil)
	orders.mustCall(t, "GET", "/orders?user_id="+u.ID, nil, 400, nil) // the owner is the header, never the query
	orders.as("nobody").mustCall(t, "GET", "/orders", nil, 400, nil)
	orders.as(u.ID).mustCall(t, "GET", "/orders/ord_000000000000000000000000", nil, 404, nil)
	orders.as(u.ID).mustCall(t, "POST", "/orders", map[string]any{"items": []any{}}, 400, nil)
	orders.as(u.ID).mustCall(t, "POST", "/orders", map[string]any{"user_id": u.ID, "items": []any{}}, 400, nil)

	notes.as(u.ID).mustCall(t, "GET", "/notifications", nil, 200, nil)
	notes.mustCall(t, "GET", "/notifications?user_id="+u.ID, nil, 400, nil)

	pay.mustCall(t, "GET", "/charges/ch_00000000000000000000", nil, 404, nil)
	pay.mustCall(t, "GET", "/provider", nil, 200, nil)
	pay.mustCall(t, "POST", "/refunds", map[string]string{"idempotency_key": "never-charged-" + randomHex(4)}, 404, nil)
}

// TestSidecarsProbeTheirApps: dapr.yaml turns on daprd's app health check
// (enableAppHealthCheck), as the Kubernetes manifests do, so every sidecar
// of the run says in its metadata that it probes its app's /healthz.
func TestSidecarsProbeTheirApps(t *testing.T) {
	for _, a := range env.run.AllInstances() {
		if a.ID == "e2e-probe" {
			continue
		}
		status, body := rawCall(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", a.DaprHTTPPort), "", a.APIToken)
		checkHealthProbe(t, a.Name, status, body)
	}
}

// checkHealthProbe fails t unless a sidecar's metadata reply says it
// probes its app at /healthz.
func checkHealthProbe(t *testing.T, who string, status int, body []byte) {
	t.Helper()
	var md struct {
		AppConnectionProperties struct {
			Health struct {
				Path string `json:"healthCheckPath"`
			} `json:"health"`
		} `json:"appConnectionProperties"`
	}
	_ = json.Unmarshal(body, &md)
	if status != 200 || md.AppConnectionProperties.Health.Path != "/healthz" {
		t.Errorf("%s sidecar metadata: %d, health check path %q, want /healthz: %s",
			who, status, md.AppConnectionProperties.Health.Path, body)
	}
}
