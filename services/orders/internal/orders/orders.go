// Package orders is the order domain: an order is placed by reserving its
// stock in products and charging it in payments, and then moves through a
// small state machine (pending -> paid -> confirmed, or -> cancelled with its
// stock released and its payment refunded). Every change of state is stored
// together with the event that announces it.
//
// # Several replicas
//
// Any replica may place, resume, cancel or confirm any order, and the
// order.created event that resumes an order may reach another replica while
// the request placing it is still running. Correctness rests on three things,
// none of them in a process's memory:
//
//   - Side effects are idempotent per order: a reservation is kept per order
//     in the product, a charge carries the order ID as idempotency key (a
//     second charge answers the first receipt), a refund is made once per
//     charge, a release gives back only what the order holds. Doing a step
//     twice takes nothing twice.
//   - Every change of an order is a transition from the state it read,
//     written over that version (the state store's ETag, first write wins),
//     and every transition checks the state it starts from: an order
//     decided (paid, confirmed, cancelled) is never decided again.
//   - Whatever changes an order or acts on its behalf (Place and Resume
//     completing it, Cancel, PaymentSettled) holds the order's lease, a
//     record in the state store written with first-write concurrency and an
//     expiry (lib/lease). So the steps of one order run one replica at a
//     time, in the order the code has them, as the in-process lock of one
//     replica made them run before. A holder that dies blocks the order for
//     at most the lease's TTL; then whoever comes next (the redelivered
//     order.created, the payment event, the customer) takes over. A holder
//     renews its lease between steps and bounds each step to end well
//     before the lease does, so a step never outlasts it (lease.Lease.Step).
//
// The order of steps keeps each decision durable before its effects:
//
//   - Placing reserves every line, charges, and only then decides paid,
//     storing the prices with that decision; a refusal (stock short,
//     payment declined) decides cancelled first and releases after, so
//     stock goes back only from an order that can no longer be paid (and
//     products releases it again on order.cancelled, should this replica
//     die first).
//   - A customer's cancel first records the request in the order (no
//     event): from then on the order is cancelled, never confirmed, by
//     whoever touches it next. Then the payment is refunded, the stock
//     released, and the order decided cancelled. If the replica dies, or
//     payments is down, half-way, the payment event (for a paid order) or
//     the order.created redelivery (for a pending one) finishes the
//     cancellation; confirming an order whose money went back is not
//     possible.
//   - A payment that settles confirms the order, unless its cancellation was
//     requested (it finishes it) or it is cancelled already (it refunds). A
//     payment that settles for an order still pending (its placing stopped
//     after the charge) first completes it: reservations and the charge are
//     idempotent, so that only reads back the prices and the receipt.
//
// What a step costs: every step is a call through the sidecar, so Place
// does no step that an earlier fact already proves. The owner is the user
// the gateway's token names (users signed it at login), so users is not
// asked again; the prices are stored with the decision to pay, not in a
// write of their own; and the order.created event, which usually arrives
// while Place is still at work, waits for Place to let go of the order
// (reading its lease) and then only reads the order, taking nothing when
// Place settled it (see Resume).
//
// What the lease does not cover: a holder that stalls longer than its
// lease's margin after a step's deadline (a frozen process) may act after
// another took over. The ETags then refuse its write; on PostgreSQL its
// event is rolled back with it, while state.redis publishes the outbox event
// of a transaction whose ETag check failed (Redis does not roll back), so on
// the Redis profile such a holder could announce a transition that did not
// happen. See docs/resilience.md.
package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/optimistic"
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
	// CancelRequested is when the customer asked to cancel the order, if
	// the cancellation is not finished: kept by the store, never shown.
	CancelRequested time.Time `json:"-"`
}

// LineRequest is one line of a PlaceRequest.
type LineRequest struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// PlaceRequest asks for an order. Prices are not the client's to set, nor
// is the owner: UserID is the signed-in user the request comes from (the
// HTTP API takes it from the owner header, which the gateway sets from the
// caller's verified token), never a field of the body.
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
// ETag Get returned, or Put fails with an apierr Conflict. Every field of o
// is kept, CancelRequested included. Index lists an order under its user
// for ListByUser (newest first); it is a write of its own, idempotent.
type Store interface {
	Get(ctx context.Context, id string) (o Order, etag string, err error)
	Put(ctx context.Context, o Order, etag string, ev *Event) error
	Index(ctx context.Context, userID, orderID string) error
	ListByUser(ctx context.Context, userID string) ([]Order, error)
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
	Inventory Inventory
	Payments  Payments
	Now       func() time.Time
	// Leases gives one request at a time, whatever the replica, the right
	// to change an order (see the package doc). Its Wait is how long a
	// request waits for an order another holds before answering 503.
	Leases *lease.Manager
}

// errDecided says a transition found the order already past the state it
// expected; the caller reads the order as it is.
var errDecided = errors.New("order already decided")

// claim takes the lease of order id, waiting while another request holds
// it. A lease that stays held is Unavailable: the order is being changed
// elsewhere, the caller (a client, a redelivered event) comes back.
func (s *Service) claim(ctx context.Context, id string) (*lease.Lease, error) {
	l, err := s.Leases.Acquire(ctx, leaseKey(id))
	if errors.As(err, new(*lease.HeldError)) {
		return nil, busy(id, err)
	}
	return l, err
}

func leaseKey(orderID string) string { return "order:" + orderID }

// busy is the answer of a request that finds order id in the hands of
// another (held), or that lost its lease to another while it worked (a
// lease.ErrLost): 503, come back.
func busy(id string, cause error) error {
	return &apierr.Error{Code: apierr.Unavailable, RetryAfter: time.Second, Cause: cause,
		Message: fmt.Sprintf("order %s is being changed by another request, retry", id)}
}

// step runs fn, the next step of the work on an order, under its lease l:
// renewed when due, and with a context that ends before l does.
func step[T any](ctx context.Context, l *lease.Lease, fn func(ctx context.Context) (T, error)) (T, error) {
	stepCtx, cancel, err := l.Step(ctx)
	defer cancel()
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(stepCtx)
}

// do is step for a step without a result.
func do(ctx context.Context, l *lease.Lease, fn func(ctx context.Context) error) error {
	_, err := step(ctx, l, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// Place validates, records, reserves, charges and announces an order. A
// business refusal (stock short, payment declined) cancels the order and is
// not an error; an unknown product cancels it and is a client error. If a
// dependency cannot be reached the order stays pending and the Unavailable
// error is returned.
func (s *Service) Place(ctx context.Context, req PlaceRequest) (Order, error) {
	if err := req.Validate(); err != nil {
		return Order{}, err
	}
	now := s.Now().UTC()
	o := Order{ID: id.Order.New(), UserID: req.UserID, Status: Pending, CreatedAt: now, UpdatedAt: now}
	for _, it := range req.Items {
		o.Items = append(o.Items, Item{ProductID: it.ProductID, Quantity: it.Quantity})
	}
	// The lease before the order: the order.created event that the write
	// publishes finds the order taken until this request is done with it.
	l, err := s.claim(ctx, o.ID)
	if err != nil {
		return Order{}, err
	}
	defer l.Release(ctx) // one not released expires
	if err := do(ctx, l, func(ctx context.Context) error { return s.Store.Put(ctx, o, "", eventFor(o, EventCreated)) }); err != nil {
		return Order{}, err
	}
	// The order exists from here on: every failure names it, and Resume
	// finishes what is left, the user's listing included.
	if err := do(ctx, l, func(ctx context.Context) error { return s.Store.Index(ctx, o.UserID, o.ID) }); err != nil {
		return o, pendingError(o.ID, err)
	}
	return s.lost(ctx, o.ID)(s.complete(ctx, l, o))
}

// lost returns what to answer after work on order id stopped: a holder that
// lost its lease (it stalled, another took the order over) answers the order
// as it now is, when it is no longer pending, and 503 otherwise.
func (s *Service) lost(ctx context.Context, id string) func(Order, error) (Order, error) {
	return func(o Order, err error) (Order, error) {
		if !errors.Is(err, lease.ErrLost) {
			return o, err
		}
		if cur, _, gerr := s.Store.Get(ctx, id); gerr == nil && cur.Status != Pending {
			return cur, nil
		}
		return o, pendingError(id, err)
	}
}

// Resume drives an order to a final state, doing what Place would have done
// had its dependencies answered, or finishing a cancellation that was asked
// for; an order past pending is returned as it is. Reservations and charges
// are idempotent per order, so resuming an order whose reservation or charge
// did happen takes nothing twice. It is what the order.created event drives,
// so no pending order is forgotten even when the process that placed it
// died; while another request holds the order, it waits, then answers
// Unavailable (the event comes again).
func (s *Service) Resume(ctx context.Context, orderID string) (Order, error) {
	if !id.Order.Valid(orderID) {
		return Order{}, apierr.Invalidf("order_id", "must be an order ID")
	}
	// The event usually arrives while Place is still at work: wait for
	// whoever holds the order to let go, reading only, and take the lease
	// only if something is left to do.
	for wait := true; ; wait = false {
		o, _, err := s.Store.Get(ctx, orderID)
		if err != nil || !cancelling(o) && o.Status != Pending {
			return o, err
		}
		if !wait {
			break
		}
		if err := s.Leases.AwaitFree(ctx, leaseKey(orderID)); err != nil {
			if errors.As(err, new(*lease.HeldError)) {
				return o, busy(orderID, err)
			}
			return o, err
		}
	}
	l, err := s.claim(ctx, orderID)
	if err != nil {
		return Order{}, err
	}
	defer l.Release(ctx) // one not released expires
	o, _, err := s.Store.Get(ctx, orderID)
	if err != nil {
		return o, err
	}
	// Placing may have stopped between storing the order and listing it.
	if err := do(ctx, l, func(ctx context.Context) error { return s.Store.Index(ctx, o.UserID, o.ID) }); err != nil {
		return o, err
	}
	if cancelling(o) {
		return s.lost(ctx, orderID)(retryable(s.finishCancel(ctx, l, o)))
	}
	if o.Status != Pending {
		return o, nil
	}
	o.Total, o.Currency = 0, ""
	o, err = s.lost(ctx, orderID)(s.complete(ctx, l, o))
	if err != nil && o.Status == Cancelled {
		// A client error (unknown product) has cancelled the order: settled.
		return o, nil
	}
	return o, err
}

// cancelling reports whether o's cancellation was asked for and is not
// finished.
func cancelling(o Order) bool {
	return !o.CancelRequested.IsZero() && (o.Status == Pending || o.Status == Paid)
}

// complete reserves, charges and settles the pending order o under its
// lease l.
func (s *Service) complete(ctx context.Context, l *lease.Lease, o Order) (Order, error) {
	// Reserve every line; on a refusal cancel the order, then give back
	// what was taken.
	for i, it := range o.Items {
		r, err := step(ctx, l, func(ctx context.Context) (Reservation, error) {
			return s.Inventory.Reserve(ctx, o.ID, it.ProductID, it.Quantity)
		})
		if errors.Is(err, lease.ErrLost) {
			return o, err
		}
		if err != nil {
			switch apierr.CodeOf(err) {
			case apierr.Conflict:
				return s.abandon(ctx, l, o, "out of stock: "+it.ProductID, nil)
			case apierr.NotFound:
				return s.abandon(ctx, l, o, "unknown product: "+it.ProductID,
					apierr.Invalidf(fmt.Sprintf("items[%d].product_id", i), "no such product"))
			default:
				return o, pendingError(o.ID, err)
			}
		}
		if i > 0 && r.Currency != o.Currency {
			return s.abandon(ctx, l, o, "mixed currencies", apierr.Invalidf("items", "all products must share one currency"))
		}
		o.Currency = r.Currency
		o.Items[i].UnitPrice = r.UnitPrice
		o.Total += int64(it.Quantity) * r.UnitPrice
	}
	if o.Total > MaxTotal {
		return s.abandon(ctx, l, o, "total above the limit of one payment",
			apierr.Invalidf("items", "the order's total must not exceed %d minor units", MaxTotal))
	}
	// The prices are stored with the decision below, not before the charge:
	// a payment that settles for an order still pending reads them back
	// (PaymentSettled), and one that settles for an order cancelled meanwhile
	// (this holder had lost its lease) is refunded.
	rc, err := step(ctx, l, func(ctx context.Context) (Receipt, error) {
		return s.Payments.Charge(ctx, Charge{OrderID: o.ID, UserID: o.UserID, Amount: o.Total, Currency: o.Currency, IdempotencyKey: o.ID})
	})
	if pe := (*apierr.Error)(nil); errors.As(err, &pe) && pe.Code == apierr.Invalid {
		// payments will never take this charge: retrying cannot help.
		return s.abandon(ctx, l, o, "payment refused", apierr.Invalidf("items", "the order cannot be paid: %s", pe.Message))
	}
	if errors.Is(err, lease.ErrLost) {
		return o, err
	}
	if err != nil {
		// The charge may or may not have happened: keep the stock and the
		// order pending; a retry with the same key cannot charge twice.
		return o, pendingError(o.ID, err)
	}
	switch rc.Status {
	case "succeeded":
	case "declined":
		return s.abandon(ctx, l, o, "payment declined", nil)
	case "refunded":
		// Taken and given back (a cancel that refunded it): nothing is
		// paid, and asking again gives the same answer.
		return s.abandon(ctx, l, o, "payment refunded", nil)
	default:
		// An answer that says neither (an empty body, a status this
		// version does not know) leaves the charge unknown: cancelling
		// then could leave a customer charged for a cancelled order.
		return o, pendingError(o.ID, fmt.Errorf("payments answered the charge with status %q", rc.Status))
	}
	paid, err := s.transition(ctx, l, o.ID, func(cur *Order) (string, error) {
		if cur.Status != Pending || !cur.CancelRequested.IsZero() {
			return "", errDecided // a cancellation asked for is finished by its requester
		}
		cur.Items, cur.Total, cur.Currency = o.Items, o.Total, o.Currency
		cur.Status, cur.PaymentID = Paid, rc.ID
		return EventPaid, nil
	})
	if err != nil {
		return o, pendingError(o.ID, err)
	}
	if paid.Status == Cancelled {
		// Cancelled while this request reserved and charged (it had lost
		// its lease): what it may have taken again goes back; the charge
		// is refunded when its payment event arrives (PaymentSettled).
		return paid, s.releaseAll(ctx, l, paid)
	}
	return paid, nil
}

// abandon cancels a pending order that could not be completed and then
// releases whatever stock it holds: decided first, so that stock goes back
// only from an order no one can pay any more. clientErr, when set, is
// returned with the cancelled order.
func (s *Service) abandon(ctx context.Context, l *lease.Lease, o Order, reason string, clientErr error) (Order, error) {
	cancelled, err := s.transition(ctx, l, o.ID, func(cur *Order) (string, error) {
		if cur.Status != Pending {
			return "", errDecided
		}
		cur.Items, cur.Total, cur.Currency = o.Items, o.Total, o.Currency
		cur.Status, cur.CancelReason = Cancelled, reason
		return EventCancelled, nil
	})
	if errors.Is(err, lease.ErrLost) {
		return o, err
	}
	if err != nil {
		return o, pendingError(o.ID, err)
	}
	if cancelled.Status != Cancelled {
		return cancelled, nil // decided otherwise meanwhile
	}
	// products also releases on the order.cancelled event just stored, so a
	// release that fails here is done there.
	_ = s.releaseAll(ctx, l, cancelled)
	if clientErr != nil {
		return cancelled, clientErr
	}
	return cancelled, nil
}

func (s *Service) releaseAll(ctx context.Context, l *lease.Lease, o Order) error {
	for _, it := range o.Items {
		err := do(ctx, l, func(ctx context.Context) error { return s.Inventory.Release(ctx, o.ID, it.ProductID) })
		if err != nil && apierr.CodeOf(err) != apierr.NotFound {
			return err
		}
	}
	return nil
}

// Cancel cancels an order on behalf of userID: its payment is refunded and
// its stock released first, so a cancelled order never keeps the money. A
// confirmed order can no longer be cancelled. The request is recorded in the
// order before anything is given back: if the refund or the release fails
// (503), the cancellation stands and is finished by whoever touches the
// order next (a retry, the payment event, the order's resumption), and the
// order is never confirmed instead.
func (s *Service) Cancel(ctx context.Context, orderID, userID string) (Order, error) {
	// Get refuses a malformed ID or owner, and someone else's order.
	o, err := s.Get(ctx, orderID, userID)
	if err != nil {
		return Order{}, err
	}
	if o.Status == Cancelled {
		return o, nil
	}
	l, err := s.claim(ctx, orderID)
	if err != nil {
		return Order{}, err
	}
	defer l.Release(ctx) // one not released expires
	// Read again under the lease: a confirmation that landed while this
	// waited is seen before any money or stock is given back.
	o, err = s.transition(ctx, l, orderID, func(cur *Order) (string, error) {
		switch {
		case cur.Status == Cancelled || !cur.CancelRequested.IsZero():
			return "", errDecided
		case cur.Status == Confirmed:
			return "", apierr.Errorf(apierr.Conflict, "order %s is confirmed and can no longer be cancelled", orderID)
		}
		cur.CancelRequested = s.Now().UTC()
		return "", nil
	})
	if errors.Is(err, lease.ErrLost) {
		return Order{}, busy(orderID, err)
	}
	if err != nil {
		return Order{}, err
	}
	if o.Status == Cancelled {
		return o, nil
	}
	o, err = s.finishCancel(ctx, l, o)
	if errors.Is(err, lease.ErrLost) {
		return Order{}, busy(orderID, err)
	}
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// finishCancel finishes the cancellation asked for in o under its lease l:
// refund, release, then the order cancelled with its event.
func (s *Service) finishCancel(ctx context.Context, l *lease.Lease, o Order) (Order, error) {
	// An order whose placing stopped before listing it, cancelled before
	// its order.created arrived, is listed here: Resume then finds it
	// settled and does nothing.
	if err := do(ctx, l, func(ctx context.Context) error { return s.Store.Index(ctx, o.UserID, o.ID) }); err != nil {
		return o, cancelPending(o.ID, err)
	}
	if err := do(ctx, l, func(ctx context.Context) error { return s.Payments.Refund(ctx, o.ID) }); err != nil {
		return o, cancelPending(o.ID, err)
	}
	if err := s.releaseAll(ctx, l, o); err != nil {
		return o, cancelPending(o.ID, err)
	}
	return s.transition(ctx, l, o.ID, func(cur *Order) (string, error) {
		switch cur.Status {
		case Cancelled:
			return "", errDecided
		case Confirmed:
			// Not while the request stands (PaymentSettled finishes it
			// instead): only a holder that lost its lease gets here.
			return "", apierr.Errorf(apierr.Conflict, "order %s was confirmed meanwhile", o.ID)
		}
		cur.Status, cur.CancelReason, cur.CancelRequested = Cancelled, "cancelled by customer", time.Time{}
		return EventCancelled, nil
	})
}

// retryable makes a cancellation that could not be finished (a charge
// still in progress is a Conflict) an error its event is delivered again
// for: a client error would drop the event that drives it.
func retryable(o Order, err error) (Order, error) {
	if apierr.CodeOf(err) == apierr.Conflict {
		return o, &apierr.Error{Code: apierr.Unavailable, Message: "cancellation not finished", RetryAfter: time.Second, Cause: err}
	}
	return o, err
}

// cancelPending tells the client that its cancellation is recorded but
// could not be finished now, keeping the cause's code (a charge still in
// progress is a Conflict) and retry hint.
func cancelPending(id string, err error) error {
	if errors.Is(err, lease.ErrLost) {
		return err
	}
	e := &apierr.Error{Code: apierr.Unavailable, Message: "a dependency is unavailable", Cause: err}
	var pe *apierr.Error
	if errors.As(err, &pe) {
		e.Code, e.Message, e.RetryAfter = pe.Code, pe.Message, pe.RetryAfter
	}
	if e.Code != apierr.Conflict {
		e.Code = apierr.Unavailable
	}
	if e.RetryAfter <= 0 {
		e.RetryAfter = time.Second
	}
	e.Message = fmt.Sprintf("order %s is being cancelled: %s", id, strings.TrimSpace(e.Message))
	return e
}

// PaymentSettled confirms the order a settled payment belongs to. It is what
// the payments topic drives; replays are harmless. A payment that settles
// for an order whose cancellation was asked for finishes the cancellation
// (refunding it), and one for an order already cancelled (a charge that went
// through after the cancellation's refund found nothing to refund) is
// refunded.
func (s *Service) PaymentSettled(ctx context.Context, orderID, paymentID string) error {
	if !id.Order.Valid(orderID) {
		return apierr.Invalidf("order_id", "must be an order ID")
	}
	// The lease even for a paid order, whose confirmation is one transition
	// over the version it read: that version guards the record, not the
	// event. state.redis publishes the outbox event of a transaction whose
	// ETag check failed, so a confirmation racing a customer's cancel
	// without the lease announced order.confirmed for an order that ended
	// cancelled, and shipping made it a shipment (tried 2026-11-30: e2e
	// TestNoShipmentForACancelledOrder; docs/performance.md).
	l, err := s.claim(ctx, orderID)
	if err != nil {
		return err
	}
	defer l.Release(ctx) // one not released expires
	o, err := s.confirm(ctx, l, orderID, paymentID)
	if errors.Is(err, errUnpriced) {
		// Its placing stopped after the charge: complete it (idempotent
		// reservations and charge read back the prices and the receipt),
		// then confirm. Completing may cancel it instead (a product gone,
		// stock short): then the charge this event announces is refunded
		// below, not dropped with the client error.
		o, err = s.complete(ctx, l, o)
		switch {
		case o.Status == Cancelled:
			err = nil
		case err != nil:
			return err
		default:
			o, err = s.confirm(ctx, l, orderID, paymentID)
		}
	}
	if errors.Is(err, errCancelling) {
		_, err := retryable(s.finishCancel(ctx, l, o))
		return err
	}
	if err == nil && o.Status == Cancelled {
		// Refunds are idempotent per order: a replay refunds nothing twice.
		return do(ctx, l, func(ctx context.Context) error { return s.Payments.Refund(ctx, orderID) })
	}
	return err
}

// Why confirm did not confirm: the order's cancellation is asked for, or it
// is pending without its prices.
var (
	errCancelling = errors.New("order's cancellation asked for")
	errUnpriced   = errors.New("order pending without its prices")
)

// confirm confirms order orderID, paid with paymentID, under its lease l
// and returns it as stored; an order past paid is returned as it is. The
// errors errCancelling and errUnpriced come with the order as read.
func (s *Service) confirm(ctx context.Context, l *lease.Lease, orderID, paymentID string) (Order, error) {
	return s.transition(ctx, l, orderID, func(cur *Order) (string, error) {
		switch {
		case cancelling(*cur):
			return "", errCancelling
		case cur.Status == Pending && cur.Currency == "":
			return "", errUnpriced
		case cur.Status != Pending && cur.Status != Paid:
			return "", errDecided
		}
		cur.Status, cur.PaymentID = Confirmed, paymentID
		return EventConfirmed, nil
	})
}

// transition applies change to the stored order and stores the result with
// the event change names (none for ""), over the version it read: one
// optimistic.Update cycle, run as a step under the order's lease l. When
// change reports errDecided the current order is returned as it is.
func (s *Service) transition(ctx context.Context, l *lease.Lease, id string, change func(*Order) (string, error)) (Order, error) {
	return step(ctx, l, func(ctx context.Context) (Order, error) {
		var typ string
		return optimistic.Update(ctx, optimistic.Policy(), "order "+id,
			func(ctx context.Context) (Order, string, error) { return s.Store.Get(ctx, id) },
			func(cur *Order) error {
				t, err := change(cur)
				if errors.Is(err, errDecided) {
					return optimistic.ErrUnchanged
				}
				typ, cur.UpdatedAt = t, s.Now().UTC()
				return err
			},
			func(ctx context.Context, o Order, etag string) error {
				return s.Store.Put(ctx, o, etag, eventFor(o, typ))
			})
	})
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
