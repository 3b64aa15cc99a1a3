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
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/auth"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/tracecontext"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/gateway/internal/admit"
	"github.com/daprshop/suite/services/gateway/internal/storefront"
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
	Users, Products, Orders, Notifications, Shipping string
}

// Options configure the API.
type Options struct {
	Apps Apps
	// MaxBody bounds every request body.
	MaxBody int64
	Now     func() time.Time
	// TrustedProxies are the networks of the proxies in front of the
	// gateway (an ingress controller). A request from one of them names its
	// client in X-Forwarded-For; from anyone else that header is the
	// client's own claim and is ignored. None: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// Admit bounds the requests of each class in flight (internal/admit).
	Admit Admission
	// Spans exports each request's span at the edge; nil exports none.
	Spans *tracecontext.Exporter
}

// Admission is the admission control of each class of route: each class
// has a limit of its own, so that orders (each about 15 reads' worth of
// work) cannot starve the reads, nor a flood of logins (bcrypt) the orders.
// A nil limiter admits everything. A request is admitted after its token is
// verified (a refused token takes no slot) and before anything is
// forwarded; a refused one is answered 503 with Retry-After at once.
type Admission struct {
	// Read: every GET but a shipment's.
	Read *admit.Limiter
	// Track: reading a shipment. shipping (one Node.js process per replica)
	// slows on its own under load; its own limit keeps that from the other
	// reads, and refuses what it cannot answer within the invocation's
	// timeout instead of a 503 five seconds later.
	Track *admit.Limiter
	// Order: placing and cancelling orders.
	Order *admit.Limiter
	// Write: sign-ups, logins and the admins' catalog writes.
	Write *admit.Limiter
}

// Routes returns the gateway's handler with every route registered. A route
// variable matches only an ID of its kind (lib/id), so a path with anything
// else (encoded separators, dots, #, ?, NUL, backslashes, trailing junk) is
// not found and nothing is forwarded.
func Routes(up Upstream, keys Keys, opts Options, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	h := &handlers{up: up, keys: keys, opts: opts, log: log}
	r := web.Router(log, m, ready)
	r.Use(h.limitBody)
	api := r.PathPrefix("/api").Subrouter()
	api.Use(nameSpan)
	product, order := "/products/"+id.Product.Var("id"), "/orders/"+id.Order.Var("id")
	read, place, write := h.admitted(opts.Admit.Read), h.admitted(opts.Admit.Order), h.admitted(opts.Admit.Write)
	track := h.admitted(opts.Admit.Track)

	// Public.
	api.HandleFunc("/users", write(h.forward(opts.Apps.Users, "users"))).Methods(http.MethodPost)
	api.HandleFunc("/login", write(h.forward(opts.Apps.Users, "login"))).Methods(http.MethodPost)
	api.HandleFunc("/products", read(h.catalog)).Methods(http.MethodGet)
	api.HandleFunc(product, read(h.product)).Methods(http.MethodGet)

	// Signed-in users: every call upstream names the caller in the owner header.
	api.Handle("/me", h.signedIn(read(h.me))).Methods(http.MethodGet)
	api.Handle("/orders", h.signedIn(place(h.placeOrder))).Methods(http.MethodPost)
	api.Handle("/orders", h.signedIn(read(h.own(opts.Apps.Orders, "orders")))).Methods(http.MethodGet)
	api.Handle(order, h.signedIn(read(h.ownOrder))).Methods(http.MethodGet)
	api.Handle(order+"/cancel", h.signedIn(place(h.cancelOrder))).Methods(http.MethodPost)
	api.Handle(order+"/shipment", h.signedIn(track(h.shipment))).Methods(http.MethodGet)
	api.Handle("/notifications", h.signedIn(read(h.own(opts.Apps.Notifications, "notifications")))).Methods(http.MethodGet)

	// Admins.
	api.Handle("/products", h.admin(write(h.forward(opts.Apps.Products, "products")))).Methods(http.MethodPost)
	api.Handle(product+"/stock", h.admin(write(h.restock))).Methods(http.MethodPut)

	// Anything else in an ID's place names nothing: said as such, not as an
	// unknown route, and never forwarded.
	api.Handle("/products/{id}", h.noSuch("product")).Methods(http.MethodGet)
	api.Handle("/products/{id}/stock", h.noSuch("product")).Methods(http.MethodPut)
	api.Handle("/orders/{id}", h.noSuch("order")).Methods(http.MethodGet)
	api.Handle("/orders/{id}/cancel", h.noSuch("order")).Methods(http.MethodPost)
	api.Handle("/orders/{id}/shipment", h.noSuch("order")).Methods(http.MethodGet)

	web.NoRoute(api, log, m)

	// The storefront (internal/storefront): static files, outside /api.
	shop := storefront.New(log)
	r.Handle("/", shop).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/assets/{file}", shop).Methods(http.MethodGet, http.MethodHead)

	// Outside the router: its 404s and 405s carry the request ID and the
	// trace context too, and the API's have a span at the edge.
	return h.requestID(opts.Spans.Edge(isAPI)(r))
}

// admitted returns what puts a handler behind l's admission control.
func (h *handlers) admitted(l *admit.Limiter) func(http.HandlerFunc) http.HandlerFunc {
	return func(next http.HandlerFunc) http.HandlerFunc {
		return l.Handler(h.log, next).ServeHTTP
	}
}

// noSuch answers a path whose ID is not one of kind's: 404.
func (h *handlers) noSuch(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		web.RespondError(w, r, h.log, apierr.Errorf(apierr.NotFound, "no such %s", kind))
	}
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
		rid := r.Header.Get(requestIDHeader)
		if !requestIDPattern.MatchString(rid) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			rid = hex.EncodeToString(b[:])
			r.Header.Set(requestIDHeader, rid)
		}
		w.Header().Set(requestIDHeader, rid)
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
		if err != nil || !id.User.Valid(c.UserID) {
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

// call is one request to a service, exactly as a route defines it.
type call struct {
	app, method string
	// path is the path's segments; each must be a safeSegment.
	path []string
	// query holds what the handler chose to pass on; each key and value
	// must be a safeSegment.
	query url.Values
	// body is JSON, or nil for none.
	body []byte
}

// safeSegment is what a forwarded path segment or query value may hold:
// nothing daprd or a service's router could decode, clean or split into
// something else.
var safeSegment = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// target returns the path and query of c for the sidecar, or an error if any
// part of it is outside safeSegment.
func (c call) target() (string, error) {
	for _, seg := range c.path {
		if !safeSegment.MatchString(seg) {
			return "", fmt.Errorf("unsafe path segment %q", seg)
		}
	}
	for k, vs := range c.query {
		for _, v := range append([]string{k}, vs...) {
			if !safeSegment.MatchString(v) {
				return "", fmt.Errorf("unsafe query part %q", v)
			}
		}
	}
	p := strings.Join(c.path, "/")
	if len(c.query) > 0 {
		p += "?" + c.query.Encode()
	}
	return p, nil
}

// forward relays the request body to path on app. The body goes on as
// JSON, so what the client says it sent is checked here.
func (h *handlers) forward(app string, path ...string) http.HandlerFunc {
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
		h.relay(w, r, call{app: app, method: r.Method, path: path, body: body})
	}
}

func (h *handlers) product(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, call{app: h.opts.Apps.Products, method: http.MethodGet, path: []string{"products", mux.Vars(r)["id"]}})
}

func (h *handlers) restock(w http.ResponseWriter, r *http.Request) {
	h.forward(h.opts.Apps.Products, "products", mux.Vars(r)["id"], "stock")(w, r)
}

// pageNumber is what offset and limit may be: a few decimal digits.
var pageNumber = regexp.MustCompile(`^[0-9]{1,9}$`)

// catalog forwards a catalog page: only the paging parameters go on, and
// only as plain numbers.
func (h *handlers) catalog(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		web.RespondError(w, r, h.log, apierr.Errorf(apierr.Invalid, "the query string is malformed"))
		return
	}
	fwd := url.Values{}
	var fields apierr.FieldErrors
	for _, k := range []string{"offset", "limit"} {
		switch vs := q[k]; {
		case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		case len(vs) > 1:
			fields.Add(k, "must be given once")
		case !pageNumber.MatchString(vs[0]):
			fields.Add(k, "must be a whole number of at most 9 digits")
		default:
			fwd.Set(k, vs[0])
		}
	}
	if err := fields.Err("page"); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	h.relay(w, r, call{app: h.opts.Apps.Products, method: http.MethodGet, path: []string{"products"}, query: fwd})
}

func (h *handlers) me(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, call{app: h.opts.Apps.Users, method: http.MethodGet, path: []string{"users", claims(r).UserID}})
}

// own lists the caller's own resources of app at path (the owner header
// says whose).
func (h *handlers) own(app, path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.relay(w, r, call{app: app, method: http.MethodGet, path: []string{path}})
	}
}

// placeOrder accepts {"items":[...]} and places it for the caller. The body
// forwarded holds the items alone: who orders is the owner header.
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
	body, _ := json.Marshal(map[string]any{"items": req.Items})
	h.relay(w, r, call{app: h.opts.Apps.Orders, method: http.MethodPost, path: []string{"orders"}, body: body})
}

func (h *handlers) ownOrder(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, call{app: h.opts.Apps.Orders, method: http.MethodGet, path: []string{"orders", mux.Vars(r)["id"]}})
}

// cancelOrder cancels one of the caller's orders; whatever body the client
// sent is not passed on.
func (h *handlers) cancelOrder(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, call{app: h.opts.Apps.Orders, method: http.MethodPost, path: []string{"orders", mux.Vars(r)["id"], "cancel"}})
}

// shipment is the shipment of one of the caller's orders: shipping keeps it
// under the order's ID and answers 404 for another owner's.
func (h *handlers) shipment(w http.ResponseWriter, r *http.Request) {
	h.relay(w, r, call{app: h.opts.Apps.Shipping, method: http.MethodGet, path: []string{"shipments", mux.Vars(r)["id"]}})
}

// readBody reads a bounded request body; none is nil.
func (h *handlers) readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, apierr.Errorf(apierr.Invalid, "request body exceeds %d bytes", tooLarge.Limit)
	case err != nil:
		return nil, &apierr.Error{Code: apierr.Invalid, Message: "the request body could not be read", Cause: err}
	case len(b) == 0:
		return nil, nil
	}
	return b, nil
}

// relay makes c and passes the reply on. Only fresh headers go upstream,
// never the client's: the request ID (well-formed, see requestID), the
// client's address, and on a signed-in route the caller's user ID in the
// owner header, from the verified token. Only a service's own answers pass
// (see passes); every other reply becomes a 503 whose cause is logged, never
// shown.
func (h *handlers) relay(w http.ResponseWriter, r *http.Request, c call) {
	path, err := c.target()
	if err != nil {
		// The routes admit only IDs, so this is a gateway bug: refuse it
		// before anything is sent.
		h.log.ErrorContext(r.Context(), "refusing to forward", "app", c.app, "method", c.method, "err", err)
		web.RespondError(w, r, h.log, apierr.Errorf(apierr.NotFound, "no such route"))
		return
	}
	hdr := http.Header{}
	hdr.Set(requestIDHeader, r.Header.Get(requestIDHeader))
	// The client's address, for per-address limits upstream. Set here, never
	// passed on from the client, which could name any address.
	if addr, ok := h.clientAddr(r); ok {
		hdr.Set("X-Forwarded-For", addr.String())
	}
	if cl, ok := r.Context().Value(claimsKey).(auth.Claims); ok {
		hdr.Set(web.OwnerHeader, cl.UserID)
	}
	rep, err := h.up.Raw(r.Context(), c.app, c.method, path, c.body, hdr)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if rep.Status/100 == 2 && (len(rep.Body) == 0 || json.Valid(rep.Body)) {
		if len(rep.Body) == 0 {
			w.WriteHeader(rep.Status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		_, _ = w.Write(rep.Body)
		return
	}
	e, ok := sidecar.OwnError(rep.Status, rep.Body)
	if !ok {
		// daprd speaking (ERR_DIRECT_INVOKE, access control, gRPC text), a
		// redirect, a crash, or anything else that is not the service's own
		// answer.
		web.RespondError(w, r, h.log, &apierr.Error{Code: apierr.Unavailable, Message: c.app + " unavailable", RetryAfter: time.Second,
			Cause: fmt.Errorf("%s %s answered %d: %.300q", c.method, path, rep.Status, rep.Body)})
		return
	}
	// The only header taken from upstream: when to come back, in seconds. A
	// 503 always says it.
	if ra := rep.Header.Get("Retry-After"); ra != "" || e.Code == apierr.Unavailable {
		e.RetryAfter = retryAfter(ra)
	}
	web.RespondError(w, r, h.log, e)
}

// clientAddr is the address of the request's client: the TCP peer, unless
// the peer is a trusted proxy, whose X-Forwarded-For names the client. That
// header is read from the right, as each proxy appends the address it saw:
// the first address that is not a trusted proxy is the client, and what a
// client wrote to the left of it is ignored.
func (h *handlers) clientAddr(r *http.Request) (netip.Addr, bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr := peer.Addr().Unmap()
	if !h.trusted(addr) {
		return addr, true
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage from the client's side: the last proxy is all we know
		}
		addr = hop.Unmap()
		if !h.trusted(addr) {
			return addr, true
		}
	}
	return addr, true
}

// trusted reports whether addr is one of the trusted proxies.
func (h *handlers) trusted(addr netip.Addr) bool {
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// retryAfter reads a Retry-After in seconds (a sane number of them); any
// other value, or none, is a second.
func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 24*3600 && len(v) <= 5 {
		return time.Duration(n) * time.Second
	}
	return time.Second
}

// isAPI reports the requests that get a span at the edge: the API's, not
// the probes, the scrapes and the storefront's files, which would fill the
// collector with traces of their own every few seconds.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// nameSpan names the request's span at the edge by its route, the route's
// variables without their patterns ("/api/orders/{id}"): one operation per
// route, whatever the IDs.
func nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route := mux.CurrentRoute(r); route != nil {
			if tpl, err := route.GetPathTemplate(); err == nil {
				tracecontext.Name(r.Context(), routeName(tpl))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routeName is a route template without its variables' patterns.
func routeName(tpl string) string {
	var b strings.Builder
	depth, pattern := 0, false
	for _, c := range tpl {
		switch {
		case c == '{':
			if depth++; depth == 1 {
				b.WriteRune(c)
				pattern = false
			}
		case c == '}':
			if depth--; depth == 0 {
				b.WriteRune(c)
			}
		case depth == 1 && c == ':':
			pattern = true
		case depth == 0 || !pattern:
			b.WriteRune(c)
		}
	}
	return b.String()
}
