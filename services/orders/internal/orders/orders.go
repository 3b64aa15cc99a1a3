// Package orders is the order domain: an order is placed by checking its
// user, reserving its stock in products and charging it in payments, and then
// moves through a small state machine (pending -> paid -> confirmed, or ->
// cancelled with its stock released and its payment refunded). Every change
// of state is stored together with the event that announces it.
package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/keylock"
)

// Status is where an order is in its lifecycle.
type Status string

// Order statuses. Pending: stock and payment not both settled yet. Paid: the
// charge succeeded. Confirmed: payments has announced the settled payment.
const (
	Pending   Status = "pending"
	Paid      Status = "paid"
	Confirmed Status = "confirmed"
	Cancelled Status = "cancelled"
)

// Item is one line of an order. UnitPrice (minor units) comes from products.
type Item struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// Order is a customer's order.
type Order struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	Items        []Item    `json:"items"`
	Total        int64     `json:"total"`
	Currency     string    `json:"currency"`
	Status       Status    `json:"status"`
	PaymentID    string    `json:"payment_id,omitempty"`
	CancelReason string    `json:"cancel_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// LineRequest is one line of a PlaceRequest.
type LineRequest struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// PlaceRequest asks for an order. Prices are not the client's to set, nor
// is the owner: UserID is the signed-in user the request comes from (the
// HTTP API takes it from the owner header), never a field of the body.
type PlaceRequest struct {
	UserID string        `json:"-"`
	Items  []LineRequest `json:"items"`
}

// Limits that keep one order within what the suite is built for. MaxTotal
// is the largest charge payments accepts (its MaxAmount, in minor units): a
// larger order is cancelled before it is charged.
const (
	MaxItems    = 50
	MaxQuantity = 1000
	MaxTotal    = 100_000_000
)

// Validate reports every invalid field of r at once.
func (r PlaceRequest) Validate() error {
	var fields apierr.FieldErrors
	if !id.User.Valid(r.UserID) {
		fields.Add("user_id", "must be a user ID (usr_...)")
	}
	switch {
	case len(r.Items) == 0:
		fields.Add("items", "must hold at least one item")
	case len(r.Items) > MaxItems:
		fields.Add("items", fmt.Sprintf("must hold at most %d items", MaxItems))
	default:
		seen := map[string]bool{}
		for i, it := range r.Items {
			switch {
			case !id.Product.Valid(it.ProductID):
				fields.Add(fmt.Sprintf("items[%d].product_id", i), "must be a product ID (prd_...)")
			case seen[it.ProductID]:
				fields.Add(fmt.Sprintf("items[%d].product_id", i), "appears twice: raise the quantity instead")
			}
			seen[it.ProductID] = true
			if it.Quantity < 1 || it.Quantity > MaxQuantity {
				fields.Add(fmt.Sprintf("items[%d].quantity", i), fmt.Sprintf("must be between 1 and %d", MaxQuantity))
			}
		}
	}
	return fields.Err("order")
}

// Event types on the orders topic.
const (
	EventCreated   = "order.created"
	EventPaid      = "order.paid"
	EventConfirmed = "order.confirmed"
	EventCancelled = "order.cancelled"
)

// Event is the payload published on the orders topic at every change of state.
type Event struct {
	Type     string    `json:"type"`
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Status   Status    `json:"status"`
	Items    []Item    `json:"items"`
	Total    int64     `json:"total"`
	Currency string    `json:"currency"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

func eventFor(o Order, typ string) *Event {
	if typ == "" {
		return nil
	}
	return &Event{Type: typ, OrderID: o.ID, UserID: o.UserID, Status: o.Status, Items: o.Items,
		Total: o.Total, Currency: o.Currency, Reason: o.CancelReason, At: o.UpdatedAt}
}

// Reservation is products' answer to a stock reservation.
type Reservation struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	Currency  string `json:"currency"`
}

// Charge is what orders asks of payments.
type Charge struct {
	OrderID        string `json:"order_id"`
	UserID         string `json:"user_id"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	IdempotencyKey string `json:"idempotency_key"`
}

// Receipt is payments' answer to a charge.
type Receipt struct {
	ID            string `json:"id"`
	Status        string `json:"status"` // succeeded or declined
	DeclineReason string `json:"decline_reason,omitempty"`
}

// Store keeps orders. Put stores o and, when ev is not nil, its event
// atomically (an outbox); etag "" creates the order, anything else must be the
// ETag Get returned, or Put fails with an apierr Conflict. Index lists an
// order under its user for ListByUser; it is a write of its own, idempotent.
type Store interface {
	Get(ctx context.Context, id string) (o Order, etag string, err error)
	Put(ctx context.Context, o Order, etag string, ev *Event) error
	Index(ctx context.Context, userID, orderID string) error
	ListByUser(ctx context.Context, userID string) ([]Order, error)
}

// Users confirms that a user exists (apierr NotFound otherwise).
type Users interface {
	Exists(ctx context.Context, userID string) error
}

// Inventory reserves and releases stock in products. Both are idempotent per
// order. Reserve fails with apierr Conflict when stock is short and NotFound
// for an unknown product.
type Inventory interface {
	Reserve(ctx context.Context, orderID, productID string, quantity int) (Reservation, error)
	Release(ctx context.Context, orderID, productID string) error
}

// Payments charges and refunds orders, idempotently per key.
type Payments interface {
	Charge(ctx context.Context, c Charge) (Receipt, error)
	// Refund returns the money of the charge made with idempotencyKey; no
	// such charge is not an error.
	Refund(ctx context.Context, idempotencyKey string) error
}

// Service places and manages orders.
type Service struct {
	Store     Store
	Users     Users
	Inventory Inventory
	Payments  Payments
	Now       func() time.Time
	// locks serialises changes to one order within this process, so two
	// transitions of the same order never race into the store (see Put).
	locks keylock.Map
}

// errDecided says a transition found the order already past the state it
// expected; the caller reads the order as it is.
var errDecided = errors.New("order already decided")

// Place validates, records, reserves, charges and announces an order. A
// business refusal (stock short, payment declined) cancels the order and is
// not an error; an unknown product cancels it and is a client error. If a
// dependency cannot be reached the order stays pending and the Unavailable
// error is returned.
func (s *Service) Place(ctx context.Context, req PlaceRequest) (Order, error) {
	if err := req.Validate(); err != nil {
		return Order{}, err
	}
	if err := s.Users.Exists(ctx, req.UserID); err != nil {
		if apierr.CodeOf(err) == apierr.NotFound {
			return Order{}, apierr.Invalidf("user_id", "no such user")
		}
		return Order{}, err
	}
	now := s.Now().UTC()
	o := Order{ID: id.Order.New(), UserID: req.UserID, Status: Pending, CreatedAt: now, UpdatedAt: now}
	for _, it := range req.Items {
		o.Items = append(o.Items, Item{ProductID: it.ProductID, Quantity: it.Quantity})
	}
	unlock := s.locks.Lock(o.ID)
	defer unlock()
	if err := s.Store.Put(ctx, o, "", eventFor(o, EventCreated)); err != nil {
		return Order{}, err
	}
	// The order exists from here on: every failure names it, and Resume
	// finishes what is left, the user's listing included.
	if err := s.Store.Index(ctx, o.UserID, o.ID); err != nil {
		return o, pendingError(o.ID, err)
	}
	return s.complete(ctx, o)
}

// Resume drives a pending order to a final state, doing what Place would
// have done had its dependencies answered; an order past pending is returned
// as it is. Reservations and charges are idempotent per order, so resuming an
// order whose reservation or charge did happen takes nothing twice. It is
// what the order.created event drives, so no pending order is forgotten even
// when the process that placed it died.
func (s *Service) Resume(ctx context.Context, orderID string) (Order, error) {
	if !id.Order.Valid(orderID) {
		return Order{}, apierr.Invalidf("order_id", "must be an order ID")
	}
	unlock := s.locks.Lock(orderID)
	defer unlock()
	o, _, err := s.Store.Get(ctx, orderID)
	if err != nil {
		return o, err
	}
	// Placing may have stopped between storing the order and listing it.
	if err := s.Store.Index(ctx, o.UserID, o.ID); err != nil {
		return o, err
	}
	if o.Status != Pending {
		return o, nil
	}
	o.Total, o.Currency = 0, ""
	o, err = s.complete(ctx, o)
	if err != nil && o.Status == Cancelled {
		// A client error (unknown product) has cancelled the order: settled.
		return o, nil
	}
	return o, err
}

// complete reserves, charges and settles the pending order o. The caller
// holds the order's lock.
func (s *Service) complete(ctx context.Context, o Order) (Order, error) {
	// Reserve every line; on a refusal give back what was taken.
	for i, it := range o.Items {
		r, err := s.Inventory.Reserve(ctx, o.ID, it.ProductID, it.Quantity)
		if err != nil {
			switch apierr.CodeOf(err) {
			case apierr.Conflict:
				return s.abandon(ctx, o, "out of stock: "+it.ProductID, nil)
			case apierr.NotFound:
				return s.abandon(ctx, o, "unknown product: "+it.ProductID,
					apierr.Invalidf(fmt.Sprintf("items[%d].product_id", i), "no such product"))
			default:
				return o, pendingError(o.ID, err)
			}
		}
		if i > 0 && r.Currency != o.Currency {
			return s.abandon(ctx, o, "mixed currencies", apierr.Invalidf("items", "all products must share one currency"))
		}
		o.Currency = r.Currency
		o.Items[i].UnitPrice = r.UnitPrice
		o.Total += int64(it.Quantity) * r.UnitPrice
	}
	if o.Total > MaxTotal {
		return s.abandon(ctx, o, "total above the limit of one payment",
			apierr.Invalidf("items", "the order's total must not exceed %d minor units", MaxTotal))
	}
	// Keep the prices before charging: a payment settled later must find them.
	if _, err := s.transition(ctx, o.ID, func(cur *Order) (string, error) {
		cur.Items, cur.Total, cur.Currency = o.Items, o.Total, o.Currency
		return "", nil
	}); err != nil {
		return o, pendingError(o.ID, err)
	}

	rc, err := s.Payments.Charge(ctx, Charge{OrderID: o.ID, UserID: o.UserID, Amount: o.Total, Currency: o.Currency, IdempotencyKey: o.ID})
	if pe := (*apierr.Error)(nil); errors.As(err, &pe) && pe.Code == apierr.Invalid {
		// payments will never take this charge: retrying cannot help.
		return s.abandon(ctx, o, "payment refused", apierr.Invalidf("items", "the order cannot be paid: %s", pe.Message))
	}
	if err != nil {
		// The charge may or may not have happened: keep the stock and the
		// order pending; a retry with the same key cannot charge twice.
		return o, pendingError(o.ID, err)
	}
	if rc.Status != "succeeded" {
		return s.abandon(ctx, o, "payment declined", nil)
	}
	return s.transition(ctx, o.ID, func(cur *Order) (string, error) {
		if cur.Status != Pending {
			return "", errDecided
		}
		cur.Status, cur.PaymentID = Paid, rc.ID
		return EventPaid, nil
	})
}

// abandon cancels a pending order that could not be completed: it releases
// whatever stock it holds and records the reason. clientErr, when set, is
// returned instead of the cancelled order.
func (s *Service) abandon(ctx context.Context, o Order, reason string, clientErr error) (Order, error) {
	if err := s.releaseAll(ctx, o); err != nil {
		return o, pendingError(o.ID, err)
	}
	cancelled, err := s.transition(ctx, o.ID, func(cur *Order) (string, error) {
		if cur.Status != Pending {
			return "", errDecided
		}
		cur.Items, cur.Total, cur.Currency = o.Items, o.Total, o.Currency
		cur.Status, cur.CancelReason = Cancelled, reason
		return EventCancelled, nil
	})
	if err != nil {
		return cancelled, err
	}
	if clientErr != nil {
		return cancelled, clientErr
	}
	return cancelled, nil
}

func (s *Service) releaseAll(ctx context.Context, o Order) error {
	for _, it := range o.Items {
		if err := s.Inventory.Release(ctx, o.ID, it.ProductID); err != nil && apierr.CodeOf(err) != apierr.NotFound {
			return err
		}
	}
	return nil
}

// Cancel cancels an order on behalf of userID: its payment is refunded and
// its stock released first, so a cancelled order never keeps the money. A
// confirmed order can no longer be cancelled.
func (s *Service) Cancel(ctx context.Context, orderID, userID string) (Order, error) {
	// Read under the lock: a confirmation that lands while this waits must
	// be seen before any money or stock is given back. (Get refuses a
	// malformed ID or owner.)
	unlock := s.locks.Lock(orderID)
	defer unlock()
	o, err := s.Get(ctx, orderID, userID)
	if err != nil {
		return Order{}, err
	}
	switch o.Status {
	case Cancelled:
		return o, nil
	case Confirmed:
		return Order{}, apierr.Errorf(apierr.Conflict, "order %s is confirmed and can no longer be cancelled", orderID)
	}
	if err := s.Payments.Refund(ctx, orderID); err != nil {
		return Order{}, err
	}
	if err := s.releaseAll(ctx, o); err != nil {
		return Order{}, err
	}
	return s.transition(ctx, orderID, func(cur *Order) (string, error) {
		switch cur.Status {
		case Cancelled:
			return "", errDecided
		case Confirmed:
			return "", apierr.Errorf(apierr.Conflict, "order %s was confirmed meanwhile", orderID)
		}
		cur.Status, cur.CancelReason = Cancelled, "cancelled by customer"
		return EventCancelled, nil
	})
}

// PaymentSettled confirms the order a settled payment belongs to. It is what
// the payments topic drives; replays are harmless. A payment that settles
// for an order already cancelled (a charge that went through after the
// cancellation's refund found nothing to refund) is refunded.
func (s *Service) PaymentSettled(ctx context.Context, orderID, paymentID string) error {
	if !id.Order.Valid(orderID) {
		return apierr.Invalidf("order_id", "must be an order ID")
	}
	unlock := s.locks.Lock(orderID)
	defer unlock()
	o, err := s.transition(ctx, orderID, func(cur *Order) (string, error) {
		switch cur.Status {
		case Pending, Paid:
			cur.Status, cur.PaymentID = Confirmed, paymentID
			return EventConfirmed, nil
		default:
			return "", errDecided
		}
	})
	if err == nil && o.Status == Cancelled {
		// Refunds are idempotent per order: a replay refunds nothing twice.
		return s.Payments.Refund(ctx, orderID)
	}
	return err
}

// transition applies change to the stored order and stores the result with
// the event change names (none for ""), retrying when the order changed
// underneath. The caller holds the order's lock. When change reports
// errDecided the current order is returned as it is.
func (s *Service) transition(ctx context.Context, id string, change func(*Order) (string, error)) (Order, error) {
	for attempt := 0; ; attempt++ {
		cur, etag, err := s.Store.Get(ctx, id)
		if err != nil {
			return Order{}, err
		}
		typ, err := change(&cur)
		if errors.Is(err, errDecided) {
			return cur, nil
		}
		if err != nil {
			return Order{}, err
		}
		cur.UpdatedAt = s.Now().UTC()
		err = s.Store.Put(ctx, cur, etag, eventFor(cur, typ))
		if err == nil {
			return cur, nil
		}
		if apierr.CodeOf(err) != apierr.Conflict || attempt == 5 {
			return Order{}, err
		}
	}
}

// Get returns the order orderID if it belongs to userID, who must be a user:
// there is no "any owner". Someone else's order is not found, so order IDs
// reveal nothing.
func (s *Service) Get(ctx context.Context, orderID, userID string) (Order, error) {
	if !id.User.Valid(userID) {
		return Order{}, apierr.Invalidf("user_id", "must be a user ID (usr_...)")
	}
	if !id.Order.Valid(orderID) {
		return Order{}, apierr.Errorf(apierr.NotFound, "no such order")
	}
	o, _, err := s.Store.Get(ctx, orderID)
	if err != nil {
		return Order{}, err
	}
	if o.UserID != userID {
		return Order{}, apierr.Errorf(apierr.NotFound, "order %s not found", orderID)
	}
	return o, nil
}

// List returns a user's orders, newest first.
func (s *Service) List(ctx context.Context, userID string) ([]Order, error) {
	if !id.User.Valid(userID) {
		return nil, apierr.Invalidf("user_id", "must be a user ID (usr_...)")
	}
	return s.Store.ListByUser(ctx, userID)
}

// pendingError tells the client that its order exists but could not be
// completed now, keeping the code and retry hint of the cause.
func pendingError(id string, err error) error {
	e := &apierr.Error{Code: apierr.Unavailable, Message: "a dependency is unavailable", Cause: err}
	var pe *apierr.Error
	if errors.As(err, &pe) {
		e.Code, e.Message, e.RetryAfter = pe.Code, pe.Message, pe.RetryAfter
	}
	if e.Code != apierr.Unavailable {
		e.Code = apierr.Unavailable
	}
	if e.RetryAfter <= 0 {
		e.RetryAfter = time.Second // the order is kept: a client may ask again soon
	}
	e.Message = fmt.Sprintf("order %s is pending: %s", id, strings.TrimSpace(e.Message))
	return e
}
