// Package httpapi is the users HTTP API: routes in one function, handlers
// that decode, call the domain and encode.
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/users/internal/users"
)

// Users is what the API needs from the domain.
type Users interface {
	Register(ctx context.Context, r users.SignUp, addr string) (users.User, error)
	Authenticate(ctx context.Context, l users.Login, addr string) (users.Token, error)
	Get(ctx context.Context, id string) (users.User, error)
}

// Routes returns the service's handler with every route registered.
func Routes(svc Users, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	h := &handlers{svc: svc, log: log,
		signups: m.Counter("users_signups_total", "Accounts created."),
		logins:  m.Counter("users_logins_total", "Login attempts, by outcome: ok, failed (wrong credentials) or limited (refused by the login limits, unchecked).", "outcome")}
	// Every outcome is a series from the start, so rates read 0, not "no data".
	h.signups.WithLabelValues()
	for _, o := range []string{"ok", "failed", "limited"} {
		h.logins.WithLabelValues(o)
	}
	r := web.Router(log, m, ready)
	r.HandleFunc("/users", h.register).Methods(http.MethodPost)
	r.HandleFunc("/login", h.login).Methods(http.MethodPost)
	r.HandleFunc("/users/"+id.User.Var("id"), h.get).Methods(http.MethodGet)
	return r
}

type handlers struct {
	svc     Users
	log     *slog.Logger
	signups *prometheus.CounterVec
	logins  *prometheus.CounterVec
}

func (h *handlers) register(w http.ResponseWriter, r *http.Request) {
	var req users.SignUp
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	u, err := h.svc.Register(r.Context(), req, clientAddr(r))
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	h.signups.WithLabelValues().Inc()
	h.log.InfoContext(r.Context(), "user signed up", "user_id", u.ID)
	web.Respond(w, http.StatusCreated, u)
}

func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	var req users.Login
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	tok, err := h.svc.Authenticate(r.Context(), req, clientAddr(r))
	switch apierr.CodeOf(err) {
	case "":
		h.logins.WithLabelValues("ok").Inc()
	case apierr.Unauthenticated:
		h.logins.WithLabelValues("failed").Inc()
	case apierr.TooManyRequests:
		h.logins.WithLabelValues("limited").Inc()
	}
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, tok)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	u, err := h.svc.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, u)
}

// clientAddr is the address of the client behind the gateway, which puts it
// in X-Forwarded-For (overwriting any client value); without it, the direct
// peer.
func clientAddr(r *http.Request) string {
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		return strings.TrimSpace(strings.Split(fwd, ",")[0])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
