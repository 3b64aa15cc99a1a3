package orders_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/services/orders/internal/fake"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

type world struct {
	svc   *orders.Service
	store *fake.Store
	inv   *fake.Inventory
	pay   *fake.Payments
}

func newWorld() *world {
	w := &world{
		store: fake.NewStore(),
		inv:   fake.NewInventory(500, map[string]int{"prd_00000000000000000000000a": 10, "prd_00000000000000000000000b": 1}),
		pay:   &fake.Payments{Status: "succeeded"},
	}
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	w.svc = &orders.Service{Store: w.store, Inventory: w.inv, Payments: w.pay,
		Now: now, Leases: fake.Leases(&lease.MemStore{}, now)}
	return w
}

var twoLines = orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{{ProductID: "prd_00000000000000000000000a", Quantity: 2}, {ProductID: "prd_00000000000000000000000b", Quantity: 1}}}

func TestPlacePaid(t *testing.T) {
	w := newWorld()
	o, err := w.svc.Place(context.Background(), twoLines)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != orders.Paid || o.Total != 1500 || o.Currency != "EUR" || o.PaymentID == "" || o.Items[0].UnitPrice != 500 {
		t.Fatalf("order %+v", o)
	}
	if w.inv.Stock["prd_00000000000000000000000a"] != 8 || w.inv.Stock["prd_00000000000000000000000b"] != 0 {
		t.Fatalf("stock %v", w.inv.Stock)
	}
	if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated, orders.EventPaid}) {
		t.Fatalf("events %v", got)
	}
	if len(w.pay.Charges) != 1 || w.pay.Charges[0].IdempotencyKey != o.ID || w.pay.Charges[0].Amount != 1500 || w.pay.Charges[0].UserID != "usr_000000000000000000000001" {
		t.Fatalf("charges %+v", w.pay.Charges)
	}
}

func TestPlaceDeclinedReleasesStock(t *testing.T) {
	w := newWorld()
	w.pay.Status = "declined"
	o, err := w.svc.Place(context.Background(), twoLines)
	if err != nil || o.Status != orders.Cancelled || o.CancelReason != "payment declined" {
		t.Fatalf("order %+v err %v", o, err)
	}
	if w.inv.Stock["prd_00000000000000000000000a"] != 10 || w.inv.Stock["prd_00000000000000000000000b"] != 1 {
		t.Fatalf("stock not released: %v", w.inv.Stock)
	}
	if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated, orders.EventCancelled}) {
		t.Fatalf("events %v", got)
	}
}

// TestPlaceUnknownPaymentStatusKeepsPending: a charge answered with a
// status that is neither succeeded nor declined (an empty body) may have
// been made: the order stays pending with its stock, never cancelled.
func TestPlaceUnknownPaymentStatusKeepsPending(t *testing.T) {
	for _, status := range []string{"", "pending", "unknown"} {
		w := newWorld()
		w.pay.Status = status
		o, err := w.svc.Place(context.Background(), twoLines)
		if apierr.CodeOf(err) != apierr.Unavailable || o.Status != orders.Pending {
			t.Fatalf("status %q: order %+v err %v", status, o, err)
		}
		if w.inv.Stock["prd_00000000000000000000000a"] != 8 || w.inv.Stock["prd_00000000000000000000000b"] != 0 {
			t.Fatalf("status %q: stock released: %v", status, w.inv.Stock)
		}
		if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated}) {
			t.Fatalf("status %q: events %v", status, got)
		}
	}
}

// TestPlaceRefundedChargeCancels: a charge answered as refunded (taken and
// given back by a cancel) pays nothing and will answer the same again: the
// order is cancelled and its stock released, not kept pending for ever.
func TestPlaceRefundedChargeCancels(t *testing.T) {
	w := newWorld()
	w.pay.Status = "refunded"
	o, err := w.svc.Place(context.Background(), twoLines)
	if err != nil || o.Status != orders.Cancelled || o.CancelReason != "payment refunded" {
		t.Fatalf("order %+v err %v", o, err)
	}
	if w.inv.Stock["prd_00000000000000000000000a"] != 10 || w.inv.Stock["prd_00000000000000000000000b"] != 1 {
		t.Fatalf("stock not released: %v", w.inv.Stock)
	}
}

func TestPlaceOutOfStockCancels(t *testing.T) {
	w := newWorld()
	req := orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{{ProductID: "prd_00000000000000000000000a", Quantity: 3}, {ProductID: "prd_00000000000000000000000b", Quantity: 2}}}
	o, err := w.svc.Place(context.Background(), req)
	if err != nil || o.Status != orders.Cancelled || o.CancelReason != "out of stock: prd_00000000000000000000000b" {
		t.Fatalf("order %+v err %v", o, err)
	}
	if w.inv.Stock["prd_00000000000000000000000a"] != 10 || len(w.pay.Charges) != 0 {
		t.Fatalf("stock %v charges %d", w.inv.Stock, len(w.pay.Charges))
	}
}

func TestPlaceUnknownProductIsInvalid(t *testing.T) {
	w := newWorld()
	_, err := w.svc.Place(context.Background(), orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{{ProductID: "prd_00000000000000000000000a", Quantity: 1}, {ProductID: "prd_0000000000000000000000ff", Quantity: 1}}})
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Invalid || e.Fields[0].Field != "items[1].product_id" {
		t.Fatalf("err = %v", err)
	}
	if w.inv.Stock["prd_00000000000000000000000a"] != 10 {
		t.Fatalf("stock not released: %v", w.inv.Stock)
	}
}

func TestPlacePaymentsDownKeepsOrderPending(t *testing.T) {
	w := newWorld()
	w.pay.Err = &apierr.Error{Code: apierr.Unavailable, Message: "payments unavailable (circuit open)", RetryAfter: 10 * time.Second}
	o, err := w.svc.Place(context.Background(), twoLines)
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Unavailable || e.RetryAfter != 10*time.Second {
		t.Fatalf("err = %v", err)
	}
	stored, _, _ := w.store.Get(context.Background(), o.ID)
	// The prices are stored with the decision to pay, not before it.
	if stored.Status != orders.Pending || stored.Total != 0 || stored.Currency != "" {
		t.Fatalf("stored %+v: must stay pending, unpriced", stored)
	}
	// A cause without a hint still tells the client when to come back.
	w.pay.Err = apierr.Errorf(apierr.Unavailable, "payments timed out")
	oneLine := orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{{ProductID: "prd_00000000000000000000000a", Quantity: 1}}}
	if _, err := w.svc.Place(context.Background(), oneLine); !errors.As(err, &e) || e.RetryAfter <= 0 || !strings.Contains(e.Message, "is pending") {
		t.Fatalf("pending without a hint: %v", err)
	}
	w.pay.Err = nil
	// A settled payment announced later confirms it.
	if err := w.svc.PaymentSettled(context.Background(), o.ID, "ch_x"); err != nil {
		t.Fatal(err)
	}
	stored, _, _ = w.store.Get(context.Background(), o.ID)
	// It completed the order first: prices read back from the reservations,
	// the charge made once, its stock taken once.
	if stored.Status != orders.Confirmed || stored.PaymentID != "ch_x" || stored.Total != 1500 || stored.Currency != "EUR" || stored.Items[0].UnitPrice != 500 {
		t.Fatalf("after settlement %+v", stored)
	}
	if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated, orders.EventPaid, orders.EventConfirmed}) {
		t.Fatalf("events %v", got)
	}
	if w.inv.Stock["prd_00000000000000000000000a"] != 7 || w.inv.Stock["prd_00000000000000000000000b"] != 0 {
		t.Fatalf("stock %v: the pending order's lines taken once (two orders hold 2+1 and 1 of a)", w.inv.Stock)
	}
}

func TestResumeSettlesPendingOrderOnce(t *testing.T) {
	w := newWorld()
	w.pay.Err = &apierr.Error{Code: apierr.Unavailable, Message: "payments unavailable"}
	o, err := w.svc.Place(context.Background(), twoLines)
	if apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("err = %v", err)
	}
	// Still down: the order stays pending and the error asks for a retry.
	if _, err := w.svc.Resume(context.Background(), o.ID); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("resume while down: %v", err)
	}
	w.pay.Err = nil
	got, err := w.svc.Resume(context.Background(), o.ID)
	if err != nil || got.Status != orders.Paid || got.Total != 1500 || got.PaymentID != "ch_"+o.ID {
		t.Fatalf("resumed %+v err %v", got, err)
	}
	// Reservations are per order: resuming took no stock twice.
	if w.inv.Stock["prd_00000000000000000000000a"] != 8 || w.inv.Stock["prd_00000000000000000000000b"] != 0 {
		t.Fatalf("stock %v", w.inv.Stock)
	}
	again, err := w.svc.Resume(context.Background(), o.ID)
	if err != nil || again.Status != orders.Paid || len(w.pay.Charges) != 3 {
		t.Fatalf("second resume %+v err %v charges %d", again, err, len(w.pay.Charges))
	}
	for _, c := range w.pay.Charges {
		if c.IdempotencyKey != o.ID || c.Amount != 1500 {
			t.Fatalf("charge %+v: every attempt must carry the order's key and total", c)
		}
	}
	if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated, orders.EventPaid}) {
		t.Fatalf("events %v", got)
	}
}

// TestResumeListsAnOrderPlacingLeftUnlisted: placing stopped between storing
// the order and listing it under its user; the 503 names the order and
// Resume both lists and completes it.
func TestResumeListsAnOrderPlacingLeftUnlisted(t *testing.T) {
	w := newWorld()
	w.store.FailIndex = &apierr.Error{Code: apierr.Unavailable, Message: "store down"}
	o, err := w.svc.Place(context.Background(), twoLines)
	if apierr.CodeOf(err) != apierr.Unavailable || o.ID == "" || !strings.Contains(err.Error(), o.ID) {
		t.Fatalf("order %+v err %v", o, err)
	}
	if list, _ := w.svc.List(context.Background(), "usr_000000000000000000000001"); len(list) != 0 {
		t.Fatalf("listed before Resume: %+v", list)
	}
	got, err := w.svc.Resume(context.Background(), o.ID)
	if err != nil || got.Status != orders.Paid {
		t.Fatalf("resumed %+v err %v", got, err)
	}
	list, _ := w.svc.List(context.Background(), "usr_000000000000000000000001")
	if len(list) != 1 || list[0].ID != o.ID || list[0].Status != orders.Paid {
		t.Fatalf("list %+v", list)
	}
}

func TestResumeDeclinedCancelsAndReleases(t *testing.T) {
	w := newWorld()
	w.pay.Err = &apierr.Error{Code: apierr.Unavailable, Message: "payments unavailable"}
	o, _ := w.svc.Place(context.Background(), twoLines)
	w.pay.Err, w.pay.Status = nil, "declined"
	got, err := w.svc.Resume(context.Background(), o.ID)
	if err != nil || got.Status != orders.Cancelled || w.inv.Stock["prd_00000000000000000000000a"] != 10 || w.inv.Stock["prd_00000000000000000000000b"] != 1 {
		t.Fatalf("resumed %+v err %v stock %v", got, err, w.inv.Stock)
	}
	if _, err := w.svc.Resume(context.Background(), "nope"); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("bad id: %v", err)
	}
}

func TestPaymentSettledConfirmsOnce(t *testing.T) {
	w := newWorld()
	o, _ := w.svc.Place(context.Background(), twoLines)
	for range 2 {
		if err := w.svc.PaymentSettled(context.Background(), o.ID, o.PaymentID); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated, orders.EventPaid, orders.EventConfirmed}) {
		t.Fatalf("events %v", got)
	}
	if err := w.svc.PaymentSettled(context.Background(), "ord_00000000000000000000dead", "x"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("unknown order: %v", err)
	}
}

func TestCancelRefundsAndReleases(t *testing.T) {
	w := newWorld()
	o, _ := w.svc.Place(context.Background(), twoLines)
	if _, err := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000002"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("someone else's order: %v", err)
	}
	c, err := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000001")
	if err != nil || c.Status != orders.Cancelled {
		t.Fatalf("cancel %+v %v", c, err)
	}
	if !slices.Equal(w.pay.Refunds, []string{o.ID}) || w.inv.Stock["prd_00000000000000000000000a"] != 10 {
		t.Fatalf("refunds %v stock %v", w.pay.Refunds, w.inv.Stock)
	}
	if again, err := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000001"); err != nil || again.Status != orders.Cancelled || len(w.pay.Refunds) != 1 {
		t.Fatalf("second cancel %+v %v refunds %v", again, err, w.pay.Refunds)
	}
}

func TestCancelConfirmedConflicts(t *testing.T) {
	w := newWorld()
	o, _ := w.svc.Place(context.Background(), twoLines)
	_ = w.svc.PaymentSettled(context.Background(), o.ID, o.PaymentID)
	if _, err := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000001"); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("err = %v", err)
	}
}

// A cancel while payments is down gives nothing back yet (503), but it
// stands: the order is not confirmed when its payment event comes, the
// cancellation is finished then.
func TestCancelWithPaymentsDownStandsAndIsFinishedLater(t *testing.T) {
	w := newWorld()
	o, _ := w.svc.Place(context.Background(), twoLines)
	w.pay.Err = apierr.Errorf(apierr.Unavailable, "down")
	_, err := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000001")
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Unavailable || e.RetryAfter <= 0 || !strings.Contains(e.Message, "is being cancelled") {
		t.Fatalf("err = %v, want 503 saying the order is being cancelled", err)
	}
	stored, _, _ := w.store.Get(context.Background(), o.ID)
	if stored.Status != orders.Paid || w.inv.Stock["prd_00000000000000000000000a"] != 8 {
		t.Fatalf("order %s stock %v: nothing may be given back while the refund is undone", stored.Status, w.inv.Stock)
	}
	w.pay.Err = nil
	if err := w.svc.PaymentSettled(context.Background(), o.ID, o.PaymentID); err != nil {
		t.Fatal(err)
	}
	stored, _, _ = w.store.Get(context.Background(), o.ID)
	if stored.Status != orders.Cancelled || !slices.Equal(w.pay.Refunds, []string{o.ID}) || w.inv.Stock["prd_00000000000000000000000a"] != 10 {
		t.Fatalf("after the payment event: order %s, refunds %v, stock %v: want the cancellation finished", stored.Status, w.pay.Refunds, w.inv.Stock)
	}
	if got := w.store.EventTypes(o.ID); !slices.Equal(got, []string{orders.EventCreated, orders.EventPaid, orders.EventCancelled}) {
		t.Fatalf("events %v", got)
	}
}

func TestValidate(t *testing.T) {
	line := func(p string, q int) orders.LineRequest { return orders.LineRequest{ProductID: p, Quantity: q} }
	cases := map[string]struct {
		req    orders.PlaceRequest
		fields []string
	}{
		"ok":        {twoLines, nil},
		"no user":   {orders.PlaceRequest{Items: twoLines.Items}, []string{"user_id"}},
		"no items":  {orders.PlaceRequest{UserID: "usr_000000000000000000000001"}, []string{"items"}},
		"bad qty":   {orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{line("prd_00000000000000000000000a", 0)}}, []string{"items[0].quantity"}},
		"bad id":    {orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{line("a/b", 1)}}, []string{"items[0].product_id"}},
		"duplicate": {orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{line("prd_00000000000000000000000a", 1), line("prd_00000000000000000000000a", 1)}}, []string{"items[1].product_id"}},
		"many":      {orders.PlaceRequest{UserID: "u 1", Items: []orders.LineRequest{line("prd_00000000000000000000000a", 5000)}}, []string{"user_id", "items[0].quantity"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != apierr.Invalid || len(e.Fields) != len(tc.fields) {
				t.Fatalf("err = %v", err)
			}
			for i, f := range tc.fields {
				if e.Fields[i].Field != f {
					t.Errorf("field %d = %s, want %s", i, e.Fields[i].Field, f)
				}
			}
		})
	}
}

func TestGetHidesOtherUsersOrders(t *testing.T) {
	w := newWorld()
	o, _ := w.svc.Place(context.Background(), twoLines)
	if _, err := w.svc.Get(context.Background(), o.ID, "usr_000000000000000000000002"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("err = %v", err)
	}
	if got, err := w.svc.Get(context.Background(), o.ID, "usr_000000000000000000000001"); err != nil || got.ID != o.ID {
		t.Fatalf("owner: %v", err)
	}
	if _, err := w.svc.Get(context.Background(), "../etc", "usr_000000000000000000000001"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("malformed: %v", err)
	}
	// No owner is not "any owner" (issue 12): the order is never returned.
	for _, owner := range []string{"", "usr_1", "usr_000000000000000000000001#"} {
		if got, err := w.svc.Get(context.Background(), o.ID, owner); apierr.CodeOf(err) != apierr.Invalid || got.ID != "" {
			t.Fatalf("owner %q: %+v %v", owner, got, err)
		}
		if got, err := w.svc.Cancel(context.Background(), o.ID, owner); apierr.CodeOf(err) != apierr.Invalid || got.ID != "" {
			t.Fatalf("cancel as %q: %+v %v", owner, got, err)
		}
	}
}

func TestPlaceAbovePaymentLimitCancelsBeforeCharging(t *testing.T) {
	w := newWorld()
	w.inv = fake.NewInventory(10_000_000, map[string]int{"prd_000000000000000000000b19": 100})
	w.svc.Inventory = w.inv
	req := orders.PlaceRequest{UserID: "usr_000000000000000000000001", Items: []orders.LineRequest{{ProductID: "prd_000000000000000000000b19", Quantity: 11}}}
	o, err := w.svc.Place(context.Background(), req)
	if apierr.CodeOf(err) != apierr.Invalid || o.Status != orders.Cancelled {
		t.Fatalf("order %+v err %v: want a cancelled order and 400", o, err)
	}
	if w.inv.Stock["prd_000000000000000000000b19"] != 100 || len(w.pay.Charges) != 0 {
		t.Fatalf("stock %v charges %d: the stock must come back and nothing be charged", w.inv.Stock, len(w.pay.Charges))
	}
}

func TestPlaceChargeRefusedAsInvalidCancels(t *testing.T) {
	w := newWorld()
	w.pay.Err = apierr.Invalidf("amount", "must be between 1 and 100000000 minor units")
	o, err := w.svc.Place(context.Background(), twoLines)
	if apierr.CodeOf(err) != apierr.Invalid || o.Status != orders.Cancelled {
		t.Fatalf("order %+v err %v: a charge payments refuses must cancel (400), not stay pending (503)", o, err)
	}
	stored, _, _ := w.store.Get(context.Background(), o.ID)
	if stored.Status != orders.Cancelled || w.inv.Stock["prd_00000000000000000000000a"] != 10 || w.inv.Stock["prd_00000000000000000000000b"] != 1 {
		t.Fatalf("stored %s stock %v", stored.Status, w.inv.Stock)
	}
}

func TestPaymentSettledOnCancelledOrderRefunds(t *testing.T) {
	w := newWorld()
	w.pay.Err = apierr.Errorf(apierr.Unavailable, "down")
	o, _ := w.svc.Place(context.Background(), twoLines) // pending: the charge may have happened
	w.pay.Err = nil
	if c, err := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000001"); err != nil || c.Status != orders.Cancelled {
		t.Fatalf("cancel %+v %v", c, err)
	}
	// The charge went through after all and is announced, while payments
	// is down: the event must be delivered again (not dropped, not
	// dead-lettered), as nothing else will refund it.
	w.pay.Err = apierr.Errorf(apierr.Unavailable, "down")
	if err := w.svc.PaymentSettled(context.Background(), o.ID, "ch_late"); err == nil || events.IsDrop(err) {
		t.Fatalf("with payments down: %v, want an error that asks for the event again", err)
	}
	w.pay.Err = nil
	if err := w.svc.PaymentSettled(context.Background(), o.ID, "ch_late"); err != nil {
		t.Fatal(err)
	}
	stored, _, _ := w.store.Get(context.Background(), o.ID)
	if stored.Status != orders.Cancelled || len(w.pay.Refunds) != 2 {
		t.Fatalf("order %s refunds %v: the late payment must be refunded", stored.Status, w.pay.Refunds)
	}
}

// TestPaymentSettledRefundsWhenCompletingCancels: a charge settles for an
// order whose placing stopped before its prices were stored; completing it
// then cancels it (a product gone meanwhile). The charge the event announces
// is refunded and the event is settled, not dropped with the client error
// (dropped, nothing would ever refund it).
func TestPaymentSettledRefundsWhenCompletingCancels(t *testing.T) {
	w := newWorld()
	w.inv.Down = apierr.Errorf(apierr.Unavailable, "down")
	o, _ := w.svc.Place(context.Background(), twoLines) // pending, unpriced
	w.inv.Down = nil
	delete(w.inv.Stock, "prd_00000000000000000000000b")
	if err := w.svc.PaymentSettled(context.Background(), o.ID, "ch_"+o.ID); err != nil {
		t.Fatalf("PaymentSettled: %v, want the event settled", err)
	}
	stored, _, _ := w.store.Get(context.Background(), o.ID)
	if stored.Status != orders.Cancelled || !slices.Contains(w.pay.Refunds, o.ID) {
		t.Fatalf("order %s (%s), refunds %v: the charge must be refunded", stored.Status, stored.CancelReason, w.pay.Refunds)
	}
}

// pausingStore runs pause once, after the first read once arm is set and
// before that read is returned: what the reader saw may go stale meanwhile.
type pausingStore struct {
	*fake.Store
	arm   bool
	pause func()
}

func (s *pausingStore) Get(ctx context.Context, id string) (orders.Order, string, error) {
	o, etag, err := s.Store.Get(ctx, id)
	if s.arm {
		s.arm = false
		s.pause()
	}
	return o, etag, err
}

func TestCancelSeesAConfirmationThatLandsWhileItWaits(t *testing.T) {
	w := newWorld()
	o, _ := w.svc.Place(context.Background(), twoLines)
	ps := &pausingStore{Store: w.store}
	w.svc.Store = ps
	settled := make(chan error, 1)
	// While Cancel reads the order, the payment's confirmation arrives.
	ps.pause = func() {
		go func() { settled <- w.svc.PaymentSettled(context.Background(), o.ID, o.PaymentID) }()
		select {
		case <-settled: // finished while Cancel was reading: the gap this test looks for
			settled <- nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	ps.arm = true
	_, cancelErr := w.svc.Cancel(context.Background(), o.ID, "usr_000000000000000000000001")
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	stored, _, _ := w.store.Get(context.Background(), o.ID)
	released := w.inv.Stock["prd_00000000000000000000000a"] == 10
	switch stored.Status {
	case orders.Confirmed:
		if len(w.pay.Refunds) != 0 || released || apierr.CodeOf(cancelErr) != apierr.Conflict {
			t.Fatalf("confirmed order refunded %v, stock released %v, cancel err %v", w.pay.Refunds, released, cancelErr)
		}
	case orders.Cancelled:
		if len(w.pay.Refunds) == 0 || !released || cancelErr != nil {
			t.Fatalf("cancelled order refunds %v, stock released %v, cancel err %v", w.pay.Refunds, released, cancelErr)
		}
	default:
		t.Fatalf("order %s", stored.Status)
	}
}

// writeCounter counts the lease writes a Store is asked for.
type writeCounter struct {
	lease.Store
	writes int
}

func (s *writeCounter) Put(ctx context.Context, key string, r lease.Record, version string) error {
	s.writes++
	return s.Store.Put(ctx, key, r, version)
}

func (s *writeCounter) Delete(ctx context.Context, key, version string) error {
	s.writes++
	return s.Store.Delete(ctx, key, version)
}

// The order.created of an order its placing settled costs a read: no
// lease taken, nothing written, no call to products or payments.
func TestResumeOfASettledOrderOnlyReads(t *testing.T) {
	w := newWorld()
	leases := &writeCounter{Store: &lease.MemStore{}}
	w.svc.Leases = fake.Leases(leases, w.svc.Now)
	o, err := w.svc.Place(context.Background(), twoLines)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	w.inv.Before = func(string, string) { calls++ }
	w.pay.Before = func(string, string) { calls++ }
	leases.writes = 0
	got, err := w.svc.Resume(context.Background(), o.ID)
	if err != nil || got.Status != orders.Paid {
		t.Fatalf("resumed %+v err %v", got, err)
	}
	if leases.writes != 0 || calls != 0 {
		t.Fatalf("%d lease writes, %d calls to products and payments for a settled order", leases.writes, calls)
	}
}

// While another request holds a pending order, its order.created waits for
// it by reading the lease, then finds the order settled and takes nothing;
// held throughout, it answers Unavailable without having written.
func TestResumeWaitsForTheHolderByReading(t *testing.T) {
	ctx := context.Background()
	w := newWorld()
	leases := &writeCounter{Store: &lease.MemStore{}}
	w.svc.Leases = fake.Leases(leases, w.svc.Now)
	w.pay.Err = apierr.Errorf(apierr.Unavailable, "payments down")
	o, _ := w.svc.Place(ctx, twoLines)
	w.pay.Err = nil
	holder, err := w.svc.Leases.Acquire(ctx, "order:"+o.ID)
	if err != nil {
		t.Fatal(err)
	}
	leases.writes = 0
	w.svc.Leases.Wait.Retries = 3
	if _, err := w.svc.Resume(ctx, o.ID); apierr.CodeOf(err) != apierr.Unavailable || leases.writes != 0 {
		t.Fatalf("held throughout: err %v after %d lease writes", err, leases.writes)
	}
	// While the event waits, the holder lets go and the payment's event
	// settles the order (with a lease of its own: two writes).
	settledAt := -1
	w.svc.Leases.Wait.Sleep = func(context.Context, time.Duration) error {
		if settledAt < 0 {
			if err := holder.Release(ctx); err != nil {
				t.Error(err)
			}
			if err := w.svc.PaymentSettled(ctx, o.ID, "ch_x"); err != nil {
				t.Error(err)
			}
			settledAt = leases.writes
		}
		return nil
	}
	leases.writes = 0
	got, err := w.svc.Resume(ctx, o.ID)
	if err != nil || got.Status != orders.Confirmed {
		t.Fatalf("resumed %+v err %v", got, err)
	}
	if leases.writes != settledAt {
		t.Fatalf("%d lease writes, %d of them the holder's and the payment's: the event took the lease", leases.writes, settledAt)
	}
}
