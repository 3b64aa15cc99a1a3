// Package httpapi is the orders HTTP API: routes in one function, handlers
// that decode, call the domain and encode.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// Orders is what the API needs from the domain.
type Orders interface {
	Place(ctx context.Context, req orders.PlaceRequest) (orders.Order, error)
	Get(ctx context.Context, id, userID string) (orders.Order, error)
	List(ctx context.Context, userID string) ([]orders.Order, error)
	Cancel(ctx context.Context, id, userID string) (orders.Order, error)
	PaymentSettled(ctx context.Context, orderID, paymentID string) error
	Resume(ctx context.Context, id string) (orders.Order, error)
}

// List is the reply to a list request.
type List struct {
	Orders []orders.Order `json:"orders"`
}

// Routes returns the service's handler with every route registered. The
// customer routes (/orders...) act for the user in the owner header
// (web.OwnerHeader), which the gateway sets from the caller's token; without
// a valid one they answer 400.
func Routes(svc Orders, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	h := &handlers{svc: svc, log: log}
	r := web.Router(log, m, ready)
	r.HandleFunc("/orders", h.place).Methods(http.MethodPost)
	r.HandleFunc("/orders", h.list).Methods(http.MethodGet)
	r.HandleFunc("/orders/"+id.Order.Var("id"), h.get).Methods(http.MethodGet)
	r.HandleFunc("/orders/"+id.Order.Var("id")+"/cancel", h.cancel).Methods(http.MethodPost)
	r.HandleFunc("/events/payments", events.Handler(log, h.paymentEvent)).Methods(http.MethodPost)
	r.HandleFunc("/events/orders", events.Handler(log, h.orderEvent)).Methods(http.MethodPost)
	return r
}

type handlers struct {
	svc Orders
	log *slog.Logger
}

func (h *handlers) place(w http.ResponseWriter, r *http.Request) {
	owner, err := web.Owner(r)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	var req orders.PlaceRequest
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	req.UserID = owner
	o, err := h.svc.Place(r.Context(), req)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "order placed", "order_id", o.ID, "status", o.Status, "total", o.Total)
	web.Respond(w, http.StatusCreated, o)
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	owner, err := web.Owner(r)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	os, err := h.svc.List(r.Context(), owner)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, List{Orders: os})
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	owner, err := web.Owner(r)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	o, err := h.svc.Get(r.Context(), mux.Vars(r)["id"], owner)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, o)
}

// cancel takes no body: the owner comes from the header, and a body naming
// anything (a user_id of old) is refused rather than ignored.
func (h *handlers) cancel(w http.ResponseWriter, r *http.Request) {
	owner, err := web.Owner(r)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if err := web.DecodeOptional(r, &struct{}{}); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	o, err := h.svc.Cancel(r.Context(), mux.Vars(r)["id"], owner)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, o)
}

// paymentEvent confirms orders whose payment settled.
func (h *handlers) paymentEvent(ctx context.Context, e events.Event) error {
	var p struct {
		Type     string `json:"type"`
		OrderID  string `json:"order_id"`
		ChargeID string `json:"charge_id"`
	}
	if err := e.Decode(&p); err != nil {
		return err
	}
	if p.Type != "payment.succeeded" {
		return nil
	}
	if p.ChargeID == "" {
		return events.Drop(errors.New("payment.succeeded without a charge_id"))
	}
	return h.svc.PaymentSettled(ctx, p.OrderID, p.ChargeID)
}

// orderEvent resumes the order an order.created event announces, if it is
// still pending when the event arrives (its placing failed or is still under
// way, perhaps on another replica: Resume waits for it a while, then asks
// for the event again). An error makes Dapr deliver the event again, so a
// pending order is retried until its dependencies answer.
func (h *handlers) orderEvent(ctx context.Context, e events.Event) error {
	var p struct {
		Type    string `json:"type"`
		OrderID string `json:"order_id"`
	}
	if err := e.Decode(&p); err != nil {
		return err
	}
	if p.Type != orders.EventCreated {
		return nil
	}
	o, err := h.svc.Resume(ctx, p.OrderID)
	if err != nil {
		return err
	}
	h.log.DebugContext(ctx, "order settled", "order_id", o.ID, "status", o.Status)
	return nil
}
