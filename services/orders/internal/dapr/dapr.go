// Package dapr holds the orders adapters that go through the Dapr sidecar: the
// order store on the service's own state store (with the Dapr outbox, so an
// order change and its event are written together), and the clients of
// products and payments over service invocation.
package dapr

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// StateClient is the part of the Dapr client the store uses.
type StateClient interface {
	sidecar.Saver
	sidecar.BulkGetter
}

// Outbox writes a value and publishes its event in one transaction
// (sidecar.HTTP.SaveWithEvent).
type Outbox interface {
	SaveWithEvent(ctx context.Context, store, key string, value any, etag string, event any, eventType string) error
}

// Store keeps orders in a Dapr state store whose component has the outbox
// configured: an order change and its event are written together (Outbox).
// orders.Service changes an order under its lease, which keeps ETag
// conflicts out of Redis transactions (where a transaction whose ETag
// check fails still publishes its event: sidecar.HTTP.SaveWithEvent).
type Store struct {
	Client StateClient
	Outbox Outbox
	Name   string // state store component name
	// Stored, when set, is told the type of every event stored with its
	// order (the business metrics of orders).
	Stored func(eventType string)
}

var _ orders.Store = (*Store)(nil)

func orderKey(id string) string    { return "order:" + id }
func userKey(userID string) string { return "user-orders:" + userID }

// storedOrder is an order as stored: the fields of the API's order, under
// the names they have had since the first release (a test reads a record of
// that shape), and what orders keeps for itself.
type storedOrder struct {
	ID              string       `json:"id"`
	UserID          string       `json:"user_id"`
	Items           []storedItem `json:"items"`
	Total           int64        `json:"total"`
	Currency        string       `json:"currency"`
	Status          string       `json:"status"`
	PaymentID       string       `json:"payment_id,omitempty"`
	CancelReason    string       `json:"cancel_reason,omitempty"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
	CancelRequested *time.Time   `json:"cancel_requested,omitempty"`
}

type storedItem struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

func toStored(o orders.Order) storedOrder {
	r := storedOrder{ID: o.ID, UserID: o.UserID, Total: o.Total, Currency: o.Currency, Status: string(o.Status),
		PaymentID: o.PaymentID, CancelReason: o.CancelReason, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	for _, it := range o.Items {
		r.Items = append(r.Items, storedItem(it))
	}
	if !o.CancelRequested.IsZero() {
		r.CancelRequested = &o.CancelRequested
	}
	return r
}

func (r storedOrder) order() orders.Order {
	o := orders.Order{ID: r.ID, UserID: r.UserID, Total: r.Total, Currency: r.Currency, Status: orders.Status(r.Status),
		PaymentID: r.PaymentID, CancelReason: r.CancelReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	for _, it := range r.Items {
		o.Items = append(o.Items, orders.Item(it))
	}
	if r.CancelRequested != nil {
		o.CancelRequested = *r.CancelRequested
	}
	return o
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, string, error) {
	var r storedOrder
	etag, found, err := sidecar.GetJSON(ctx, s.Client, s.Name, orderKey(id), &r)
	if err != nil {
		return orders.Order{}, "", err
	}
	if !found {
		return orders.Order{}, "", apierr.Errorf(apierr.NotFound, "order %s not found", id)
	}
	return r.order(), etag, nil
}

// Put implements orders.Store.
func (s *Store) Put(ctx context.Context, o orders.Order, etag string, ev *orders.Event) error {
	var err error
	if ev == nil {
		err = sidecar.SaveJSON(ctx, s.Client, s.Name, orderKey(o.ID), toStored(o), etag, 0)
		if apierr.CodeOf(err) == apierr.Conflict {
			return apierr.Errorf(apierr.Conflict, "order %s changed meanwhile", o.ID)
		}
	} else {
		err = s.Outbox.SaveWithEvent(ctx, s.Name, orderKey(o.ID), toStored(o), etag, ev, ev.Type)
	}
	if err != nil {
		return s.explain(ctx, o.ID, etag, err)
	}
	if ev != nil && s.Stored != nil {
		s.Stored(ev.Type)
	}
	return nil
}

// explain turns a failed write into Conflict when the order's ETag moved (the
// sidecar reports an ETag failure inside a transaction only as an internal
// error) and into Unavailable otherwise.
func (s *Store) explain(ctx context.Context, id, etag string, err error) error {
	if apierr.CodeOf(err) == apierr.Conflict {
		return err
	}
	if etag != "" {
		if _, now, gerr := s.Get(ctx, id); gerr == nil && now != etag {
			return apierr.Errorf(apierr.Conflict, "order %s changed meanwhile", id)
		}
	}
	return apierr.Unavailablef(err, "order store unavailable")
}

// userOrders is the per-user index, newest first.
type userOrders struct {
	IDs []string `json:"ids"`
}

// maxIndexed bounds a user's order list.
const maxIndexed = 500

// Index implements orders.Store: it adds an order to its user's list, newest
// first, unless it is there.
func (s *Store) Index(ctx context.Context, userID, orderID string) error {
	return sidecar.ModifyJSON(ctx, s.Client, s.Name, userKey(userID), func(idx *userOrders) bool {
		if slices.Contains(idx.IDs, orderID) {
			return false
		}
		idx.IDs = append([]string{orderID}, idx.IDs...)
		if len(idx.IDs) > maxIndexed {
			idx.IDs = idx.IDs[:maxIndexed]
		}
		return true
	})
}

// ListByUser implements orders.Store.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]orders.Order, error) {
	var idx userOrders
	if _, _, err := sidecar.GetJSON(ctx, s.Client, s.Name, userKey(userID), &idx); err != nil {
		return nil, err
	}
	stored, err := sidecar.GetBulkJSON[storedOrder](ctx, s.Client, s.Name, prefixed(idx.IDs, orderKey))
	out := make([]orders.Order, len(stored))
	for i, r := range stored {
		out[i] = r.order()
	}
	return out, err
}

func prefixed(ids []string, key func(string) string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = key(id)
	}
	return out
}

// Invoker calls another app through the sidecar.
type Invoker interface {
	Invoke(ctx context.Context, app, method, path string, in, out any) error
}

// Guard runs a call to a dependency through its circuit breaker, trying it
// again after failures of the dependency, never after a client error
// (lib/breaker.Guard). The calls it guards are safe to repeat: charges and
// refunds carry an idempotency key, reservations are kept per order.
type Guard interface {
	Do(ctx context.Context, fn func(ctx context.Context) error) error
}

// Inventory reserves stock through the products app, behind a breaker, with retries.
type Inventory struct {
	Invoker Invoker
	Guard   Guard
	AppID   string
}

var _ orders.Inventory = (*Inventory)(nil)

// Reserve implements orders.Inventory.
func (i *Inventory) Reserve(ctx context.Context, orderID, productID string, quantity int) (orders.Reservation, error) {
	var r struct {
		orders.Reservation
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	err := i.Guard.Do(ctx, func(ctx context.Context) error {
		return i.Invoker.Invoke(ctx, i.AppID, http.MethodPost, fmt.Sprintf("products/%s/reservations", url.PathEscape(productID)),
			map[string]any{"order_id": orderID, "quantity": quantity}, &r)
	})
	if err == nil && r.Status != "reserved" {
		// products answers a refusal with 2xx (see its package doc).
		err = apierr.Errorf(apierr.Conflict, "%s: %s", productID, r.Reason)
	}
	return r.Reservation, err
}

// Release implements orders.Inventory.
func (i *Inventory) Release(ctx context.Context, orderID, productID string) error {
	return i.Guard.Do(ctx, func(ctx context.Context) error {
		return i.Invoker.Invoke(ctx, i.AppID, http.MethodDelete,
			fmt.Sprintf("products/%s/reservations/%s", url.PathEscape(productID), url.PathEscape(orderID)), nil, nil)
	})
}

// Payments charges orders by invoking the payments app, behind a breaker, with retries.
type Payments struct {
	Invoker Invoker
	Guard   Guard
	AppID   string
}

var _ orders.Payments = (*Payments)(nil)

// Charge implements orders.Payments.
func (p *Payments) Charge(ctx context.Context, c orders.Charge) (orders.Receipt, error) {
	var rc orders.Receipt
	err := p.Guard.Do(ctx, func(ctx context.Context) error {
		return p.Invoker.Invoke(ctx, p.AppID, http.MethodPost, "charges", c, &rc)
	})
	return rc, err
}

// Refund implements orders.Payments.
func (p *Payments) Refund(ctx context.Context, idempotencyKey string) error {
	err := p.Guard.Do(ctx, func(ctx context.Context) error {
		return p.Invoker.Invoke(ctx, p.AppID, http.MethodPost, "refunds", map[string]string{"idempotency_key": idempotencyKey}, nil)
	})
	if apierr.CodeOf(err) == apierr.NotFound {
		return nil // nothing was charged
	}
	return err
}
