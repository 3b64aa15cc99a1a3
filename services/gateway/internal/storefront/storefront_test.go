package storefront

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// router serves h as the gateway registers it.
func router() http.Handler {
	h := New(slog.New(slog.DiscardHandler))
	r := mux.NewRouter().SkipClean(true) // as lib/web.Router
	r.Handle("/", h).Methods(http.MethodGet)
	r.Handle("/assets/{file}", h).Methods(http.MethodGet)
	return r
}

// files returns every embedded file by name.
func files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		out[path.Base(p)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "app.js", "api.js", "style.css"} {
		if _, ok := out[want]; !ok {
			t.Fatalf("%s is not embedded", want)
		}
	}
	return out
}

func TestServesEveryFileWithItsHeaders(t *testing.T) {
	t.Parallel()
	h := router()
	want := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for name, body := range files(t) {
		target := "/assets/" + name
		if name == "index.html" {
			target = "/"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
			if w.Code != 200 || w.Body.String() != body {
				t.Fatalf("GET %s: %d, %d bytes, want 200 and the file", target, w.Code, w.Body.Len())
			}
			checkSecurityHeaders(t, w.Header())
			if ct := w.Header().Get("Content-Type"); ct != want[path.Ext(name)] {
				t.Errorf("Content-Type %q, want %q", ct, want[path.Ext(name)])
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", cc)
			}
			etag := w.Header().Get("ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
				t.Fatalf("ETag %q", etag)
			}
			r := httptest.NewRequest("GET", target, nil)
			r.Header.Set("If-None-Match", etag)
			w = httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Errorf("GET %s with its ETag: %d, %d bytes, want 304", target, w.Code, w.Body.Len())
			}
		})
	}
}

// checkSecurityHeaders fails unless hdr has every header the storefront sends.
func checkSecurityHeaders(t *testing.T, hdr http.Header) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
			"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := hdr.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestUnknownAssetsAreErrors(t *testing.T) {
	t.Parallel()
	h := router()
	for _, target := range []string{"/assets/nope.js", "/assets/index.html", "/assets/static", "/assets/..", "/assets/app.js.map"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		var body struct {
			Error struct{ Code, Message string }
		}
		if w.Code != 404 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != "not_found" ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %q %s, want 404 in the error model", target, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		checkSecurityHeaders(t, w.Header())
	}
}

// tag is one start tag of an HTML file.
type tag struct {
	name  string
	attrs map[string]string
	// text is what follows the tag up to the next tag.
	text string
}

var (
	comment  = regexp.MustCompile(`(?s)<!--.*?-->`)
	startTag = regexp.MustCompile(`(?s)<([a-zA-Z][a-zA-Z0-9-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>([^<]*)`)
	attr     = regexp.MustCompile(`([^\s=/"'>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?`)
)

// tags reads the start tags of an HTML file: enough HTML for files this
// package writes, which the test keeps to that subset.
func tags(html string) []tag {
	var out []tag
	for _, m := range startTag.FindAllStringSubmatch(comment.ReplaceAllString(html, ""), -1) {
		tg := tag{name: strings.ToLower(m[1]), attrs: map[string]string{}, text: m[3]}
		for _, a := range attr.FindAllStringSubmatch(m[2], -1) {
			tg.attrs[strings.ToLower(a[1])] = a[2] + a[3] + a[4]
		}
		out = append(out, tg)
	}
	return out
}

func TestHTMLHasNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	for name, body := range files(t) {
		if path.Ext(name) != ".html" {
			continue
		}
		if strings.Contains(strings.ToLower(body), "javascript:") {
			t.Errorf("%s: a javascript: URL", name)
		}
		ts := tags(body)
		if len(ts) < 10 {
			t.Fatalf("%s: only %d tags read: the test's reader is broken", name, len(ts))
		}
		for _, tg := range ts {
			for a := range tg.attrs {
				if strings.HasPrefix(a, "on") || a == "style" {
					t.Errorf("%s: <%s %s=...>: no inline event handlers or styles", name, tg.name, a)
				}
			}
			switch tg.name {
			case "style":
				t.Errorf("%s: a <style> element", name)
			case "script":
				src := tg.attrs["src"]
				if !strings.HasPrefix(src, "/assets/") || strings.TrimSpace(tg.text) != "" || tg.attrs["type"] != "module" {
					t.Errorf("%s: <script %v>%q: every script is a module from /assets/, with no inline code", name, tg.attrs, tg.text)
				}
			}
			for _, a := range []string{"src", "href"} {
				if v, ok := tg.attrs[a]; ok && strings.HasPrefix(v, "/assets/") {
					if _, ok := files(t)[strings.TrimPrefix(v, "/assets/")]; !ok {
						t.Errorf("%s: <%s %s=%q> names no embedded file", name, tg.name, a, v)
					}
				}
			}
		}
	}
}

func TestEveryControlHasALabel(t *testing.T) {
	t.Parallel()
	for name, body := range files(t) {
		if path.Ext(name) != ".html" {
			continue
		}
		ts := tags(body)
		labelled := map[string]bool{}
		for _, tg := range ts {
			if tg.name == "label" && tg.attrs["for"] != "" {
				labelled[tg.attrs["for"]] = true
			}
		}
		controls := 0
		for _, tg := range ts {
			if tg.name != "input" && tg.name != "select" && tg.name != "textarea" || tg.attrs["type"] == "hidden" {
				continue
			}
			controls++
			if id := tg.attrs["id"]; id == "" || !labelled[id] {
				t.Errorf("%s: <%s %v> has no <label for=...>", name, tg.name, tg.attrs)
			}
		}
		if name == "index.html" && controls < 5 {
			t.Errorf("%s: only %d controls found: the test's reader is broken", name, controls)
		}
	}
}

// forbidden are what the scripts never use: HTML parsing of strings (the way
// data becomes markup), code from strings, and storage that outlives the tab
// (the token stays in memory).
var forbidden = regexp.MustCompile(`\b(innerHTML|outerHTML|insertAdjacentHTML|document\s*\.\s*write(ln)?|eval|localStorage|sessionStorage|` +
	`Function\s*\(|setTimeout\s*\(\s*['"` + "`" + `]|createContextualFragment|DOMParser|srcdoc|javascript:|cookie)\b`)

func TestScriptsNeverParseHTMLNorStoreTheToken(t *testing.T) {
	t.Parallel()
	scripts := 0
	for name, body := range files(t) {
		if path.Ext(name) != ".js" {
			continue
		}
		scripts++
		code := stripComments(body)
		if len(code) < len(body)/3 {
			t.Fatalf("%s: stripping comments left %d of %d bytes: the test's lexer is broken", name, len(code), len(body))
		}
		for i, line := range strings.Split(code, "\n") {
			if m := forbidden.FindString(line); m != "" {
				t.Errorf("%s:%d: uses %s: %s", name, i+1, m, strings.TrimSpace(line))
			}
			if regexp.MustCompile(`setAttribute\(\s*['"](on|style)`).MatchString(line) {
				t.Errorf("%s:%d: sets an inline handler or style: %s", name, i+1, strings.TrimSpace(line))
			}
		}
	}
	if scripts == 0 {
		t.Fatal("no scripts embedded")
	}
	// The lexer keeps code and drops comments.
	if got := stripComments("a = '//x'; // localStorage\nb = /\\/\\//; /* eval */ c"); got != "a = '//x'; \nb = /\\/\\//;  c" {
		t.Errorf("stripComments: %q", got)
	}
}

// stripComments returns JavaScript source without its comments, keeping
// strings, template literals and regular expression literals (a slash where
// an operand may start opens one) as they are.
func stripComments(src string) string {
	var b strings.Builder
	prev := byte('\n') // the last character of code, for telling regexps from division
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			i += end + 4
		case c == '\'' || c == '"' || c == '`' || c == '/' && strings.IndexByte("(,=:[!&|?{};+-*%<>~^\n", prev) >= 0:
			j := i + 1
			for inClass := false; j < len(src); j++ {
				if src[j] == '\\' {
					j++
					continue
				}
				if c == '/' && src[j] == '[' {
					inClass = true
				} else if c == '/' && src[j] == ']' {
					inClass = false
				} else if src[j] == c && !inClass {
					break
				}
			}
			b.WriteString(src[i:min(j+1, len(src))])
			prev, i = c, j+1
		default:
			b.WriteByte(c)
			if c != ' ' && c != '\t' {
				prev = c
			}
			i++
		}
	}
	return b.String()
}
