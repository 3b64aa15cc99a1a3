package httpapi_test

import (
	"strings"
	"testing"

	"github.com/daprshop/suite/services/gateway/internal/storefront"
)

// TestStorefrontBesideTheAPI: the gateway serves the storefront at / and
// /assets/{file} with its headers, forwards nothing for them, and leaves
// /api, /healthz, /readyz and /metrics as they were.
func TestStorefrontBesideTheAPI(t *testing.T) {
	up := &upstream{status: 200, reply: `{"products":[],"total":0}`}
	h := gateway(up)
	for _, c := range []struct {
		path, contentType string
	}{
		{"/", "text/html; charset=utf-8"},
		{"/assets/app.js", "text/javascript; charset=utf-8"},
		{"/assets/api.js", "text/javascript; charset=utf-8"},
		{"/assets/style.css", "text/css; charset=utf-8"},
	} {
		w := send(h, "GET", c.path, "", "")
		hdr := w.Header()
		if w.Code != 200 || hdr.Get("Content-Type") != c.contentType || hdr.Get("Content-Security-Policy") != storefront.CSP ||
			hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Referrer-Policy") != "no-referrer" ||
			hdr.Get("Cache-Control") != "no-cache" || hdr.Get("X-Request-ID") == "" {
			t.Errorf("GET %s: %d %v", c.path, w.Code, hdr)
		}
		// HEAD, as link checkers and monitors ask: the same headers, no body.
		head := send(h, "HEAD", c.path, "", "")
		if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Type") != c.contentType ||
			head.Header().Get("Content-Length") != hdr.Get("Content-Length") || head.Header().Get("Content-Security-Policy") != storefront.CSP {
			t.Errorf("HEAD %s: %d, %d bytes, %v", c.path, head.Code, head.Body.Len(), head.Header())
		}
	}
	if !strings.Contains(storefront.CSP, "script-src 'self';") || strings.Contains(storefront.CSP, "unsafe") {
		t.Errorf("CSP %q", storefront.CSP)
	}
	if e := errorBody(t, send(h, "GET", "/assets/nope.js", "", "")); e.Code != "not_found" {
		t.Errorf("unknown asset: %+v", e)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/", 405},
		{"DELETE", "/assets/app.js", 405},
		{"HEAD", "/assets/x/app.js", 404},
		{"GET", "/index.html", 404},
		{"GET", "/assets/", 404},
		{"GET", "/assets/x/app.js", 404},
		{"GET", "/assets/..%2fstorefront.go", 404},
		{"GET", "/assets/%2e%2e/storefront.go", 404},
		{"GET", "/api/", 404},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/metrics", 200},
	} {
		if w := send(h, c.method, c.path, "", ""); w.Code != c.status || w.Header().Get("Content-Security-Policy") != "" && c.status != 200 {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
	}
	if allow := send(h, "POST", "/assets/app.js", "", "").Header().Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("POST /assets/app.js: Allow %q, want GET, HEAD", allow)
	}
	if len(up.calls) != 0 {
		t.Errorf("the storefront forwarded %v", up.calls)
	}
	if w := send(h, "GET", "/api/products", "", ""); w.Code != 200 || w.Header().Get("Content-Security-Policy") != "" {
		t.Errorf("GET /api/products: %d %v", w.Code, w.Header())
	}
}
