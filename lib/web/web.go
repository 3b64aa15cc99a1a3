// Package web is the HTTP plumbing every service shares: strict JSON decoding
// that names the offending field, JSON responses, the error response written from
// an apierr code, panic recovery, and a server that shuts down gracefully.
package web

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/mux"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/tracecontext"
)

// MaxBodyBytes bounds every request body a service decodes.
const MaxBodyBytes = 1 << 20

// Decode reads one JSON object from r's body into v. Unknown fields, trailing
// data, wrong types and oversized bodies are Invalid errors naming the field.
func Decode(r *http.Request, v any) error {
	if err := CheckJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return apierr.Errorf(apierr.Invalid, "body must hold a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.Errorf(apierr.Invalid, "body must hold a single JSON object")
	}
	return nil
}

// DecodeOptional is Decode for a request whose body may be left out: an
// empty body leaves v as it is.
func DecodeOptional(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body := bufio.NewReader(r.Body)
	if _, err := body.Peek(1); err == io.EOF {
		return nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{body, r.Body}
	return Decode(r, v)
}

// OwnerHeader carries the user a customer route acts for. The gateway sets
// it from the caller's verified token on every signed-in route, replacing
// anything the client sent; services read the owner from it alone, never from
// a query parameter or a body.
const OwnerHeader = "X-User-ID"

// Owner returns the user a customer route acts for (OwnerHeader). A missing,
// repeated or malformed header is an Invalid error naming the header: a
// customer route never runs for "any owner".
func Owner(r *http.Request) (string, error) {
	vs := r.Header.Values(OwnerHeader)
	if len(vs) != 1 || !id.User.Valid(vs[0]) {
		return "", apierr.Invalidf(OwnerHeader, "must hold the signed-in user's ID (usr_ and 24 hex digits)")
	}
	return vs[0], nil
}

// CheckJSON refuses a request whose Content-Type is set to anything but
// JSON (an Invalid error); no Content-Type is taken as JSON.
func CheckJSON(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apierr.Errorf(apierr.Invalid, "content type must be application/json, got %q", ct)
		}
	}
	return nil
}

// decodeError turns encoding/json's errors into client-facing field errors.
func decodeError(err error) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return apierr.Errorf(apierr.Invalid, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.Errorf(apierr.Invalid, "request body is truncated JSON")
	case errors.As(err, &syntax):
		return apierr.Errorf(apierr.Invalid, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apierr.Errorf(apierr.Invalid, "body must be a JSON %s", "object")
		}
		return apierr.Invalidf(field, "must be %s", jsonKind(typ.Type.Kind().String()))
	case errors.As(err, &tooLarge):
		return apierr.Errorf(apierr.Invalid, "request body exceeds %d bytes", tooLarge.Limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return apierr.Invalidf(field, "is not a known field")
	default:
		return apierr.Errorf(apierr.Invalid, "invalid JSON body")
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it, with its
// article ("an integer").
func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "an integer"
	case strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "slice", goKind == "array":
		return "an array"
	case goKind == "struct", goKind == "map":
		return "an object"
	case goKind == "bool":
		return "a boolean"
	default:
		return "a " + goKind
	}
}

// Respond writes v as JSON with the given status.
func Respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// StatusClientClosedRequest is the status recorded for a request whose
// client went away before the answer (nginx's 499); the client never sees it.
const StatusClientClosedRequest = 499

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of an error response.
type ErrorDetail struct {
	Code    apierr.Code         `json:"code"`
	Message string              `json:"message"`
	Fields  []apierr.FieldError `json:"fields,omitempty"`
}

// RespondError writes err as an error response. Errors that are not an
// *apierr.Error are logged and shown to the client as a generic internal error.
func RespondError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The client went away (or the caller's sidecar gave up): no one to
		// answer, and not a failure of this service; as a 5xx it would count
		// toward the error-rate alert, which any client could then set off by
		// hanging up.
		log.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "err", err)
		w.WriteHeader(StatusClientClosedRequest)
		return
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apierr.Error{Code: apierr.Internal, Message: "internal error"}
	} else if e.Cause != nil {
		log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	Respond(w, apierr.Status(e.Code), ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields}})
}

// Recover turns a panic in a handler into a logged 500 instead of a dropped connection.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					RespondError(w, r, log, fmt.Errorf("panic: %v", v))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// Live answers liveness probes: the process is up and serving HTTP.
func Live(w http.ResponseWriter, _ *http.Request) {
	Respond(w, http.StatusOK, map[string]string{"status": "ok"})
}

// draining is set once the process's server is shutting down with a drain
// (Config.ShutdownDrain): from then on readiness fails. One server serves a
// process, so the flag is the process's.
var draining atomic.Bool

// Ready returns a readiness handler that reports 503 while check fails, and
// from the start of a shutdown's drain on.
func Ready(log *slog.Logger, check func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			Respond(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := check(ctx); err != nil {
			// The reason names addresses and errors: logged, not shown.
			log.WarnContext(ctx, "not ready", "err", err)
			Respond(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		Respond(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// Config is the listener part of every service's configuration.
type Config struct {
	Host string `env:"APP_HOST" default:"127.0.0.1"`
	// Port is set by the runner and the Dapr CLI as APP_PORT.
	Port          int           `env:"APP_PORT" default:"8080"`
	ShutdownGrace time.Duration `env:"SHUTDOWN_GRACE" default:"10s"`
	// ShutdownDrain, when set, comes before the grace: at SIGTERM /readyz
	// answers 503 at once while the server goes on serving for this long, so
	// that whatever balances requests over the replicas by readiness (a
	// Kubernetes Service, a proxy) stops sending before the listener closes.
	// The public edge sets it; the other services are reached through name
	// resolution, which the instance leaves first (runner.Run.RollInstance).
	ShutdownDrain time.Duration `env:"SHUTDOWN_DRAIN" default:"0s"`
	// AppAPIToken, when set, is what the sidecar sends in dapr-api-token
	// (daprd's APP_API_TOKEN): requests without it did not come from the
	// sidecar and are refused.
	AppAPIToken string `env:"APP_API_TOKEN" secret:"true"`
	// PprofAddr, when set (e.g. 127.0.0.1:6060), serves net/http/pprof on a
	// listener of its own, for finding where the time goes under load. Off
	// by default; never expose it beyond loopback.
	PprofAddr string `env:"PPROF_ADDR"`
}

// Addr is the address to listen on.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Router returns a gorilla/mux router with the routes every service has
// (/healthz, /readyz answering from ready, /metrics) and the middleware every
// route gets (trace context, panic recovery, RED metrics). Services add their
// own routes. It never redirects: mux would answer a path with dot segments
// or double slashes with a 301 to its cleaned form, which a client following
// it (daprd's caller) would then send elsewhere; here such a path simply
// matches no route.
func Router(log *slog.Logger, m *metrics.Metrics, ready func(context.Context) error) *mux.Router {
	r := mux.NewRouter().SkipClean(true)
	r.Use(tracecontext.Middleware, Recover(log), m.Middleware)
	r.HandleFunc("/healthz", Live).Methods(http.MethodGet)
	r.HandleFunc("/readyz", Ready(log, ready)).Methods(http.MethodGet)
	r.Handle("/metrics", m.Handler()).Methods(http.MethodGet)
	NoRoute(r, log, m)
	return r
}

// NoRoute makes r (a router or subrouter) answer unknown paths with 404 and
// known paths asked with the wrong method with 405 and Allow, in the error
// model's JSON like every other error. (mux itself answers some method
// mismatches with its not-found handler, so both handlers ask which methods
// the path has.) mux runs no middleware for them, so m counts them here, under
// the route "unmatched". The messages do not echo the path: behind the
// gateway it is an internal one.
func NoRoute(r *mux.Router, log *slog.Logger, m *metrics.Metrics) {
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if allowed := allowedMethods(r, req); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			RespondError(w, req, log, apierr.Errorf(apierr.MethodNotAllowed, "method not allowed"))
			return
		}
		RespondError(w, req, log, apierr.Errorf(apierr.NotFound, "no such route"))
	})
	r.NotFoundHandler = m.Middleware(h)
	r.MethodNotAllowedHandler = r.NotFoundHandler
}

// allowedMethods returns the methods other than req's that r routes req's path for.
func allowedMethods(r *mux.Router, req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == req.Method {
			continue
		}
		probe := req.Clone(req.Context())
		probe.Method = m
		var match mux.RouteMatch
		if r.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// NewServer returns an http.Server with the timeouts every service uses.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// Serve runs srv until ctx is done or the server fails, then shuts it down,
// giving in-flight requests up to grace to finish.
func Serve(ctx context.Context, log *slog.Logger, srv *http.Server, grace time.Duration) error {
	return ServeDrained(ctx, log, srv, 0, grace)
}

// ServeDrained is Serve with a drain before the shutdown: once ctx is done,
// readiness fails and srv goes on serving for drain (see
// Config.ShutdownDrain).
func ServeDrained(ctx context.Context, log *slog.Logger, srv *http.Server, drain, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		log.Info("listening", "addr", srv.Addr)
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	if drain > 0 {
		draining.Store(true)
		log.Info("draining: not ready, still serving", "drain", drain.String())
		select {
		case <-time.After(drain):
		case err := <-errc:
			return fmt.Errorf("serving on %s: %w", srv.Addr, err)
		}
	}
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

// Serve listens on the configured address and serves h until ctx is done,
// admitting only requests from the sidecar (see AppAPIToken).
func (c Config) Serve(ctx context.Context, log *slog.Logger, h http.Handler) error {
	c.servePprof(ctx, log)
	return ServeDrained(ctx, log, NewServer(c.Addr(), SidecarOnly(c.AppAPIToken, log, h)), c.ShutdownDrain, c.ShutdownGrace)
}

// ServePublic is Serve for the public edge, which clients reach directly.
func (c Config) ServePublic(ctx context.Context, log *slog.Logger, h http.Handler) error {
	c.servePprof(ctx, log)
	return ServeDrained(ctx, log, NewServer(c.Addr(), h), c.ShutdownDrain, c.ShutdownGrace)
}

// servePprof serves the profiler on PprofAddr until ctx is done, if set.
func (c Config) servePprof(ctx context.Context, log *slog.Logger) {
	if c.PprofAddr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: c.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		log.Warn("profiler listening", "addr", c.PprofAddr)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("profiler", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
}

// probePaths stay open without the app token: the runner, Kubernetes and
// Prometheus call them directly, not through the sidecar.
var probePaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// SidecarOnly refuses (401) requests whose dapr-api-token header is not
// token, except the probe paths. An empty token admits everything, for runs
// without tokens (the Dapr CLI sets none).
func SidecarOnly(token string, log *slog.Logger, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !probePaths[r.URL.Path] && subtle.ConstantTimeCompare([]byte(r.Header.Get("dapr-api-token")), want) != 1 {
			RespondError(w, r, log, apierr.Errorf(apierr.Unauthenticated, "requests must come through the Dapr sidecar"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Main is what a service's main does: JSON logs tagged with the service
// name, a context cancelled by SIGINT or SIGTERM, run, and exit status 1 when
// run fails.
func Main(service string, run func(ctx context.Context, log *slog.Logger) error) {
	log := slog.New(tracecontext.LogHandler(slog.NewJSONHandler(os.Stdout, nil))).With("service", service)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log)
	stop()
	if err != nil {
		log.Error("exit", "err", err)
		os.Exit(1)
	}
}
