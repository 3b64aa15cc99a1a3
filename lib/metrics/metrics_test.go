package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/daprshop/suite/lib/metrics"
)

func TestMiddlewareUsesRouteTemplate(t *testing.T) {
	m := metrics.New("orders")
	r := mux.NewRouter()
	r.Use(m.Middleware)
	r.HandleFunc("/orders/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}).Methods(http.MethodGet)
	r.Handle("/metrics", m.Handler())

	for _, id := range []string{"a", "b", "c"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/orders/"+id, nil))
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	want := `http_requests_total{code="404",method="GET",route="/orders/{id}",service="orders"} 3`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics output lacks %q:\n%s", want, body)
	}
	if strings.Contains(string(body), `route="/orders/a"`) {
		t.Fatal("raw path used as a label")
	}
}

// TestMethodsAreABoundedLabel: a client chooses the method, any token; made
// up ones share one label value, so they cannot grow the registry.
func TestMethodsAreABoundedLabel(t *testing.T) {
	m := metrics.New("gateway")
	r := mux.NewRouter()
	r.Use(m.Middleware)
	r.HandleFunc("/x", func(http.ResponseWriter, *http.Request) {})
	for i := range 200 {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("MADEUP"+strings.Repeat("X", i), "/x", nil))
	}
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/x", nil))
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	if strings.Contains(body, "MADEUP") {
		t.Fatal("a made-up method became a label value")
	}
	for _, want := range []string{
		`http_requests_total{code="200",method="other",route="/x",service="gateway"} 200`,
		`http_requests_total{code="200",method="DELETE",route="/x",service="gateway"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
