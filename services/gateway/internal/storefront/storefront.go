// Package storefront is the suite's web shop: a few static files (an HTML
// page, an ES module and a style sheet; plain JavaScript, no framework and no
// build step) embedded in the gateway's binary and served at / and
// /assets/{file}, next to the public API under /api that they call.
//
// Every reply carries a strict Content-Security-Policy: scripts, styles and
// connections from the gateway's own origin only, no inline script or style,
// no plugins, no frames around the shop. With no inline script allowed and
// every value from the API written into the page as text (textContent,
// never innerHTML), what a product's name holds shows as those characters.
package storefront

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/gorilla/mux"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/web"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every reply of the storefront.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// contentTypes are the types of the files the storefront serves, by
// extension; a file of any other kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the storefront: GET / is the page, GET /assets/{file} its
// scripts and styles (the route variable "file"). An unknown asset is a 404
// in the error model, like every other unknown path of the gateway.
type Handler struct {
	log   *slog.Logger
	index file
	files map[string]file
}

// New returns the storefront's handler.
func New(log *slog.Logger) *Handler {
	h := &Handler{log: log, files: map[string]file{}}
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("storefront: the embedded files cannot be read: " + err.Error()) // only a broken build gets here
	}
	for _, e := range entries {
		ct, ok := contentTypes[path.Ext(e.Name())]
		if e.IsDir() || !ok {
			continue
		}
		body, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			panic("storefront: " + err.Error())
		}
		sum := sha256.Sum256(body)
		f := file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		if e.Name() == "index.html" {
			h.index = f
			continue
		}
		h.files[e.Name()] = f
	}
	return h
}

// ServeHTTP serves the page at / and an asset at /assets/{file}.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	f := h.index
	if name, ok := mux.Vars(r)["file"]; ok || r.URL.Path != "/" {
		if f, ok = h.files[name]; !ok {
			web.RespondError(w, r, h.log, apierr.Errorf(apierr.NotFound, "no such asset"))
			return
		}
	}
	hdr.Set("Content-Type", f.contentType)
	// The names carry no version, so every use asks whether the file
	// changed (a 304 when it did not): a new gateway never leaves a browser
	// with an old script under a new page.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
