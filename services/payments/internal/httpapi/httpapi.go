// Package httpapi is the payments HTTP API: routes in one function, handlers
// that decode, call the domain and encode.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"fmt"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
)

// Charger is what the API needs from the domain.
type Charger interface {
	Charge(ctx context.Context, req payments.ChargeRequest) (payments.Charge, bool, error)
	Refund(ctx context.Context, idempotencyKey string) (payments.Charge, error)
	Get(ctx context.Context, id string) (payments.Charge, error)
}

// Provider is the simulated provider's control panel, for fault and load
// tests. Its settings hold for every replica (provider.Memory).
type Provider interface {
	Settings(ctx context.Context) (provider.Settings, error)
	Set(ctx context.Context, failureRate float64, latency time.Duration) error
}

// RefundRequest names the charge to refund by its idempotency key.
type RefundRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
}

// ProviderSettings change the simulated provider.
type ProviderSettings struct {
	FailureRate *float64 `json:"failure_rate"`
	LatencyMS   *int64   `json:"latency_ms"`
}

// MaxLatencyMS bounds the simulated provider latency.
const MaxLatencyMS = 60_000

// Routes returns the service's handler with every route registered.
func Routes(svc Charger, prov Provider, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	h := &handlers{svc: svc, prov: prov, log: log,
		charges: m.Counter("payments_charges_total", "Charges made (replays of an idempotency key not counted), by outcome: succeeded or declined.", "outcome"),
		refunds: m.Counter("payments_refunds_total", "Refund requests answered, by the charge's status after them (refunded; none when there was no charge).", "outcome")}
	// Every outcome is a series from the start, so rates read 0, not "no data".
	h.charges.WithLabelValues(string(payments.Succeeded))
	h.charges.WithLabelValues(string(payments.Declined))
	h.refunds.WithLabelValues("refunded")
	r := web.Router(log, m, ready)
	r.HandleFunc("/charges", h.charge).Methods(http.MethodPost)
	r.HandleFunc("/charges/"+id.Charge.Var("id"), h.get).Methods(http.MethodGet)
	r.HandleFunc("/refunds", h.refund).Methods(http.MethodPost)
	r.HandleFunc("/provider", h.providerSettings).Methods(http.MethodGet)
	r.HandleFunc("/provider", h.setProvider).Methods(http.MethodPut)
	return r
}

type handlers struct {
	svc              Charger
	prov             Provider
	log              *slog.Logger
	charges, refunds *prometheus.CounterVec
}

func (h *handlers) charge(w http.ResponseWriter, r *http.Request) {
	var req payments.ChargeRequest
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	// A declined charge is a 2xx with status "declined": Dapr 1.14 resiliency
	// treats every non-2xx reply as a failure to retry and to count toward its
	// circuit breaker, and a decline says nothing about the health of payments.
	c, created, err := h.svc.Charge(r.Context(), req)
	switch {
	case err != nil:
		web.RespondError(w, r, h.log, err)
	case created:
		h.charges.WithLabelValues(string(c.Status)).Inc()
		h.log.InfoContext(r.Context(), "charge made", "charge_id", c.ID, "order_id", c.OrderID, "amount", c.Amount, "status", c.Status)
		web.Respond(w, http.StatusCreated, c)
	default:
		web.Respond(w, http.StatusOK, c)
	}
}

func (h *handlers) refund(w http.ResponseWriter, r *http.Request) {
	var req RefundRequest
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	c, err := h.svc.Refund(r.Context(), req.IdempotencyKey)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	outcome := string(c.Status)
	if outcome == "" {
		outcome = "none"
	}
	h.refunds.WithLabelValues(outcome).Inc()
	web.Respond(w, http.StatusOK, c)
}

func (h *handlers) providerSettings(w http.ResponseWriter, r *http.Request) {
	s, err := h.prov.Settings(r.Context())
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, s)
}

func (h *handlers) setProvider(w http.ResponseWriter, r *http.Request) {
	var req ProviderSettings
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	cur, err := h.prov.Settings(r.Context())
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	rate, latency := cur.FailureRate, cur.Latency
	var fields apierr.FieldErrors
	if req.FailureRate != nil {
		if rate = *req.FailureRate; rate < 0 || rate > 1 {
			fields.Add("failure_rate", "must be between 0 and 1")
		}
	}
	if req.LatencyMS != nil {
		if *req.LatencyMS < 0 || *req.LatencyMS > MaxLatencyMS {
			fields.Add("latency_ms", fmt.Sprintf("must be between 0 and %d", MaxLatencyMS))
		}
		latency = time.Duration(*req.LatencyMS) * time.Millisecond
	}
	if err := fields.Err("provider settings"); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if err := h.prov.Set(r.Context(), rate, latency); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "provider settings changed", "failure_rate", rate, "latency", latency.String())
	h.providerSettings(w, r)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, c)
}
