// Package httpapi is the suite's public edge: one HTTP API under /api that
// checks the caller's bearer token and forwards each request to the owning
// service by Dapr service invocation. Routes are registered in one function;
// the gateway holds no data of its own.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/tracecontext"
	"github.com/daprshop/suite/lib/web"
)

// Upstream reaches the services through the sidecar and returns their reply as is.
type Upstream interface {
	Raw(ctx context.Context, app, method, path string, body []byte, header http.Header) (sidecar.Reply, error)
}

// Keys yields the token verification key.
type Keys interface {
	SigningKey(ctx context.Context) ([]byte, error)
}

// KeyFunc adapts a function to Keys.
type KeyFunc func(ctx context.Context) ([]byte, error)

// SigningKey implements Keys.
func (f KeyFunc) SigningKey(ctx context.Context) ([]byte, error) { return f(ctx) }

// Apps names the app ID of each service.
type Apps struct {
	Users, Products, Orders, Notifications string
}

// Options configure the API.
type Options struct {
	Apps Apps
	// MaxBody bounds every request body.
	MaxBody int64
	Now     func() time.Time
}

// Routes returns the gateway's handler with every route registered.
func Routes(up Upstream, keys Keys, opts Options, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	h := &handlers{up: up, keys: keys, opts: opts, log: log}
	r := web.Router(log, m, ready)
	r.Use(tracecontext.Edge, h.requestID, h.limitBody)
	api := r.PathPrefix("/api").Subrouter()

	// Public.
	api.HandleFunc("/users", h.forward(opts.Apps.Users, "users")).Methods(http.MethodPost)
	api.HandleFunc("/login", h.forward(opts.Apps.Users, "login")).Methods(http.MethodPost)
	api.HandleFunc("/products", h.catalog).Methods(http.MethodGet)
	api.HandleFunc("/products/{id}", h.forwardVars(opts.Apps.Products, "products/{id}")).Methods(http.MethodGet)

	// Signed-in users.
	api.Handle("/me", h.signedIn(h.me)).Methods(http.MethodGet)
	api.Handle("/orders", h.signedIn(h.placeOrder)).Methods(http.MethodPost)
	api.Handle("/orders", h.signedIn(h.ownList(opts.Apps.Orders, "orders"))).Methods(http.MethodGet)
	api.Handle("/orders/{id}", h.signedIn(h.ownOrder)).Methods(http.MethodGet)
	api.Handle("/orders/{id}/cancel", h.signedIn(h.cancelOrder)).Methods(http.MethodPost)
	api.Handle("/notifications", h.signedIn(h.ownList(opts.Apps.Notifications, "notifications"))).Methods(http.MethodGet)

	// Admins.
	api.Handle("/products", h.admin(h.forward(opts.Apps.Products, "products"))).Methods(http.MethodPost)
	api.Handle("/products/{id}/stock", h.admin(h.forwardVars(opts.Apps.Products, "products/{id}/stock"))).Methods(http.MethodPut)

	web.NoRoute(api, log, m)
	return r
}

type handlers struct {
	up   Upstream
	keys Keys
	opts Options
	log  *slog.Logger
}

type ctxKey int

const claimsKey ctxKey = iota

// requestIDHeader carries a request's ID to the client and to every service.
const requestIDHeader = "X-Request-ID"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID keeps a well-formed client request ID or makes one.
func (h *handlers) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !requestIDPattern.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
			r.Header.Set(requestIDHeader, id)
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

func (h *handlers) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// signedIn admits requests with a valid bearer token and puts its claims in
// the request context.
func (h *handlers) signedIn(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			h.unauthenticated(w, r, "a bearer token is required")
			return
		}
		key, err := h.keys.SigningKey(r.Context())
		if err != nil {
			web.RespondError(w, r, h.log, err)
			return
		}
		c, err := auth.Verify(key, strings.TrimSpace(token), h.opts.Now())
		if err != nil {
			h.unauthenticated(w, r, "invalid or expired token")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), claimsKey, c)))
	})
}

func (h *handlers) unauthenticated(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="daprshop"`)
	web.RespondError(w, r, h.log, apierr.Errorf(apierr.Unauthenticated, "%s", msg))
}

// admin admits signed-in admins only.
func (h *handlers) admin(next http.HandlerFunc) http.Handler {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if claims(r).Role != auth.RoleAdmin {
			web.RespondError(w, r, h.log, apierr.Errorf(apierr.Forbidden, "admins only"))
			return
		}
		next(w, r)
	})
}

func claims(r *http.Request) auth.Claims {
	c, _ := r.Context().Value(claimsKey).(auth.Claims)
	return c
}

// forward relays the request body to path on app. The body goes on as
// JSON, so what the client says it sent is checked here.
func (h *handlers) forward(app, path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := web.CheckJSON(r); err != nil {
			web.RespondError(w, r, h.log, err)
			return
		}
		body, err := h.readBody(r)
		if err != nil {
			web.RespondError(w, r, h.log, err)
			return
		}
		h.relay(w, r, app, r.Method, path, body)
	}
}

// forwardVars is forward with {var} in path filled from the route.
func (h *handlers) forwardVars(app, path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := path
		for k, v := range mux.Vars(r) {
			p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(v))
		}
		h.forward(app, p)(w, r)
	}
}

// catalog forwards a catalog page: only the paging parameters go on,
// re-encoded.
func (h *handlers) catalog(w http.ResponseWriter, r *http.Request) {
	q, fwd := r.URL.Query(), url.Values{}
	for _, k := range []string{"offset", "limit"} {
		if v := q.Get(k); v != "" {
			fwd.Set(k, v)
		}
	}
	path := "products"
	if len(fwd) > 0 {
		path += "?" + fwd.Encode()
	}
	h.relay(w, r, h.opts.Apps.Products, http.MethodGet, path, nil)
}

func (h *handlers) me(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, h.opts.Apps.Users, http.MethodGet, "users/"+url.PathEscape(claims(r).UserID), nil)
}

// ownList lists the caller's own resources of app at path.
func (h *handlers) ownList(app, path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.relay(w, r, app, http.MethodGet, path+"?user_id="+url.QueryEscape(claims(r).UserID), nil)
	}
}

// placeOrder accepts {"items":[...]} and places it for the caller.
func (h *handlers) placeOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Items json.RawMessage `json:"items"`
	}
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if len(req.Items) == 0 {
		web.RespondError(w, r, h.log, apierr.Invalidf("items", "is required"))
		return
	}
	body, _ := json.Marshal(map[string]any{"user_id": claims(r).UserID, "items": req.Items})
	h.relay(w, r, h.opts.Apps.Orders, http.MethodPost, "orders", body)
}

func (h *handlers) ownOrder(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, h.opts.Apps.Orders, http.MethodGet,
		"orders/"+url.PathEscape(mux.Vars(r)["id"])+"?user_id="+url.QueryEscape(claims(r).UserID), nil)
}

func (h *handlers) cancelOrder(w http.ResponseWriter, r *http.Request) {
	body, _ := json.Marshal(map[string]string{"user_id": claims(r).UserID})
	h.relay(w, r, h.opts.Apps.Orders, http.MethodPost, "orders/"+url.PathEscape(mux.Vars(r)["id"])+"/cancel", body)
}

// readBody reads a bounded request body; none is nil.
func (h *handlers) readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, apierr.Errorf(apierr.Invalid, "request body exceeds %d bytes", tooLarge.Limit)
	case err != nil:
		return nil, apierr.Errorf(apierr.Invalid, "reading request body: %v", err)
	case len(b) == 0:
		return nil, nil
	}
	return b, nil
}

// relay calls app and passes its reply on. A service's own answers (2xx,
// 4xx, and a 503 in the error model, which names what is pending and when to
// retry) go through as they are; other failures of a service or its sidecar
// become a 503 without their details.
func (h *handlers) relay(w http.ResponseWriter, r *http.Request, app, method, path string, body []byte) {
	hdr := http.Header{}
	hdr.Set(requestIDHeader, r.Header.Get(requestIDHeader))
	// The client's address, for per-address limits upstream. Set here, never
	// passed on from the client, which could name any address.
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		hdr.Set("X-Forwarded-For", host)
	}
	rep, err := h.up.Raw(r.Context(), app, method, path, body, hdr)
	status, reply := rep.Status, rep.Body
	if err == nil && apierr.FromStatus(status) == apierr.Unavailable && !ownUnavailable(status, reply) {
		err = &apierr.Error{Code: apierr.Unavailable, Message: app + " unavailable", RetryAfter: time.Second,
			Cause: errors.New(http.StatusText(status) + ": " + string(reply))}
	}
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if len(reply) == 0 {
		w.WriteHeader(status)
		return
	}
	if !json.Valid(reply) {
		// Not a service reply (daprd speaking, e.g. unknown app): do not pass it on.
		web.RespondError(w, r, h.log, apierr.Unavailablef(errors.New(string(reply)), "%s unavailable", app))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if ra := rep.Header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	} else if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1") // a 503 always says when to come back
	}
	w.WriteHeader(status)
	_, _ = w.Write(reply)
}

// ownUnavailable reports whether a 503 reply is a service's own answer in the
// error model (daprd's errors have another shape: errorCode, message).
func ownUnavailable(status int, reply []byte) bool {
	var e web.ErrorBody
	return status == http.StatusServiceUnavailable && json.Unmarshal(reply, &e) == nil &&
		e.Error.Code == apierr.Unavailable && e.Error.Message != ""
}
