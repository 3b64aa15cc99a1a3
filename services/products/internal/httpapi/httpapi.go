// Package httpapi is the products HTTP API: routes in one function, handlers
// that decode, call the domain and encode. It also consumes the orders topic.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/products/internal/products"
)

// Catalog is what the API needs from the domain.
type Catalog interface {
	Create(ctx context.Context, p products.NewProduct) (products.Product, error)
	List(ctx context.Context, offset, limit int) (products.Page, error)
	Get(ctx context.Context, id string) (products.Product, error)
	SetStock(ctx context.Context, id string, stock int) (products.Product, error)
	Reserve(ctx context.Context, id, orderID string, quantity int) (products.Reservation, bool, error)
	Release(ctx context.Context, id, orderID string) error
	Settle(ctx context.Context, id, orderID string) error
}

// StockRequest sets a product's stock.
type StockRequest struct {
	Stock *int `json:"stock"`
}

// ReserveRequest asks to hold stock for an order.
type ReserveRequest struct {
	OrderID  string `json:"order_id"`
	Quantity int    `json:"quantity"`
}

// Routes returns the service's handler with every route registered.
func Routes(svc Catalog, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	h := &handlers{svc: svc, log: log,
		reservations: m.Counter("stock_reservations_total", "Stock reservations decided (replays not counted), by outcome: reserved or rejected (stock short).", "outcome")}
	// Every outcome is a series from the start, so rates read 0, not "no data".
	h.reservations.WithLabelValues(products.Reserved)
	h.reservations.WithLabelValues(products.Rejected)
	r := web.Router(log, m, ready)
	r.HandleFunc("/products", h.create).Methods(http.MethodPost)
	r.HandleFunc("/products", h.list).Methods(http.MethodGet)
	product := "/products/" + id.Product.Var("id")
	r.HandleFunc(product, h.get).Methods(http.MethodGet)
	r.HandleFunc(product+"/stock", h.setStock).Methods(http.MethodPut)
	r.HandleFunc(product+"/reservations", h.reserve).Methods(http.MethodPost)
	r.HandleFunc(product+"/reservations/"+id.Order.Var("order"), h.release).Methods(http.MethodDelete)
	r.HandleFunc("/events/orders", events.Handler(log, h.orderEvent)).Methods(http.MethodPost)
	return r
}

type handlers struct {
	svc          Catalog
	log          *slog.Logger
	reservations *prometheus.CounterVec
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) {
	var req products.NewProduct
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	p, err := h.svc.Create(r.Context(), req)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "product created", "product_id", p.ID, "stock", p.Stock)
	web.Respond(w, http.StatusCreated, p)
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := pageParams(r)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	page, err := h.svc.List(r.Context(), offset, limit)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if page.Products == nil {
		page.Products = []products.Product{}
	}
	web.Respond(w, http.StatusOK, page)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, p)
}

func (h *handlers) setStock(w http.ResponseWriter, r *http.Request) {
	var req StockRequest
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	if req.Stock == nil {
		web.RespondError(w, r, h.log, apierrStockRequired())
		return
	}
	p, err := h.svc.SetStock(r.Context(), mux.Vars(r)["id"], *req.Stock)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	web.Respond(w, http.StatusOK, p)
}

func (h *handlers) reserve(w http.ResponseWriter, r *http.Request) {
	var req ReserveRequest
	if err := web.Decode(r, &req); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	res, created, err := h.svc.Reserve(r.Context(), mux.Vars(r)["id"], req.OrderID, req.Quantity)
	if err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if created || res.Status != products.Reserved {
		h.reservations.WithLabelValues(res.Status).Inc()
	}
	web.Respond(w, status, res)
}

func (h *handlers) release(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if err := h.svc.Release(r.Context(), v["id"], v["order"]); err != nil {
		web.RespondError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// orderEvent gives back the stock of cancelled orders and settles confirmed ones.
func (h *handlers) orderEvent(ctx context.Context, e events.Event) error {
	var ev struct {
		Type    string `json:"type"`
		OrderID string `json:"order_id"`
		Items   []struct {
			ProductID string `json:"product_id"`
		} `json:"items"`
	}
	if err := e.Decode(&ev); err != nil {
		return err
	}
	var apply func(ctx context.Context, id, orderID string) error
	switch ev.Type {
	case "order.cancelled":
		apply = h.svc.Release
	case "order.confirmed":
		apply = h.svc.Settle
	default:
		return nil
	}
	if ev.OrderID == "" {
		return events.Drop(fmt.Errorf("%s without an order_id", ev.Type))
	}
	for _, it := range ev.Items {
		if err := apply(ctx, it.ProductID, ev.OrderID); err != nil && !events.IsDrop(err) {
			return err // retry; unknown products are skipped
		}
	}
	return nil
}

func apierrStockRequired() error { return apierr.Invalidf("stock", "is required") }

// pageParams reads ?offset= and ?limit= (defaults 0 and
// products.DefaultPageSize); a value that is not a number is invalid.
func pageParams(r *http.Request) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, products.DefaultPageSize
	var fields apierr.FieldErrors
	for name, dst := range map[string]*int{"offset": &offset, "limit": &limit} {
		if v := q.Get(name); v != "" {
			n, perr := strconv.Atoi(v)
			if perr != nil {
				fields.Add(name, "must be a whole number")
				continue
			}
			*dst = n
		}
	}
	return offset, limit, fields.Err("page")
}
