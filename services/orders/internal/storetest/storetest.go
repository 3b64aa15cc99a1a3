// Package storetest is the orders.Store contract: one suite that the
// in-memory fake and the Dapr adapter (on lib/sidecar/sidecartest) both
// pass, so that the fake the domain is tested with cannot drift from the
// store the service runs on.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// Events returns the types of the events stored with order id, in order.
type Events func(orderID string) []string

func order(n int) orders.Order {
	at := time.Date(2026, 11, 28, 12, 0, n, 0, time.UTC)
	return orders.Order{ID: fmt.Sprintf("ord_%024x", n), UserID: "usr_000000000000000000000001",
		Items:  []orders.Item{{ProductID: "prd_00000000000000000000000a", Quantity: 2}},
		Status: orders.Pending, CreatedAt: at, UpdatedAt: at}
}

func ev(o orders.Order, typ string) *orders.Event {
	return &orders.Event{Type: typ, OrderID: o.ID, UserID: o.UserID, Status: o.Status, Items: o.Items, At: o.UpdatedAt}
}

// Run checks the contract on stores newStore returns, each empty, with the
// events each stored.
func Run(t *testing.T, newStore func(t *testing.T) (orders.Store, Events)) {
	ctx := context.Background()
	t.Run("create, get, every field kept", func(t *testing.T) {
		s, events := newStore(t)
		o := order(1)
		if err := s.Put(ctx, o, "", ev(o, orders.EventCreated)); err != nil {
			t.Fatal(err)
		}
		got, etag, err := s.Get(ctx, o.ID)
		if err != nil || etag == "" || !equal(got, o) {
			t.Fatalf("got %+v etag %q err %v, want %+v", got, etag, err, o)
		}
		if evs := events(o.ID); !slices.Equal(evs, []string{orders.EventCreated}) {
			t.Fatalf("events %v", evs)
		}
		o.Items[0].UnitPrice, o.Total, o.Currency, o.Status, o.PaymentID = 500, 1000, "EUR", orders.Paid, "ch_1"
		o.CancelRequested, o.CancelReason = time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC), "changed my mind"
		if err := s.Put(ctx, o, etag, nil); err != nil {
			t.Fatal(err)
		}
		if got, _, _ = s.Get(ctx, o.ID); !equal(got, o) {
			t.Fatalf("after an update: %+v, want %+v", got, o)
		}
		if _, _, err := s.Get(ctx, order(2).ID); apierr.CodeOf(err) != apierr.NotFound {
			t.Fatalf("a missing order: %v, want NotFound", err)
		}
	})
	t.Run("update over the ETag read only, its event with it", func(t *testing.T) {
		s, events := newStore(t)
		o := order(1)
		if err := s.Put(ctx, o, "", ev(o, orders.EventCreated)); err != nil {
			t.Fatal(err)
		}
		_, e1, _ := s.Get(ctx, o.ID)
		o.Status = orders.Paid
		if err := s.Put(ctx, o, e1, ev(o, orders.EventPaid)); err != nil {
			t.Fatal(err)
		}
		_, e2, _ := s.Get(ctx, o.ID)
		o.Status = orders.Cancelled
		for name, evt := range map[string]*orders.Event{"with an event": ev(o, orders.EventCancelled), "without": nil} {
			if err := s.Put(ctx, o, e1, evt); apierr.CodeOf(err) != apierr.Conflict {
				t.Fatalf("a write %s over a stale ETag: %v, want Conflict", name, err)
			}
		}
		got, e3, _ := s.Get(ctx, o.ID)
		if got.Status != orders.Paid || e3 != e2 {
			t.Fatalf("after refused writes: %s, etag %q (was %q)", got.Status, e3, e2)
		}
		if evs := events(o.ID); !slices.Equal(evs, []string{orders.EventCreated, orders.EventPaid}) {
			t.Fatalf("events %v: a refused write publishes nothing", evs)
		}
	})
	t.Run("lists by user, newest first", func(t *testing.T) {
		s, _ := newStore(t)
		for n := 1; n <= 3; n++ {
			o := order(n)
			if err := s.Put(ctx, o, "", ev(o, orders.EventCreated)); err != nil {
				t.Fatal(err)
			}
			for range 2 { // indexing twice lists once
				if err := s.Index(ctx, o.UserID, o.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		list, err := s.ListByUser(ctx, "usr_000000000000000000000001")
		if err != nil || len(list) != 3 || list[0].ID != order(3).ID || list[2].ID != order(1).ID {
			t.Fatalf("list %v err %v: want orders 3, 2, 1", ids(list), err)
		}
		if list, err := s.ListByUser(ctx, "usr_000000000000000000000002"); err != nil || list == nil || len(list) != 0 {
			t.Fatalf("a user without orders: %v %v, want an empty list", list, err)
		}
	})
}

// equal compares orders field by field, times by instant.
func equal(a, b orders.Order) bool {
	return a.ID == b.ID && a.UserID == b.UserID && slices.Equal(a.Items, b.Items) && a.Total == b.Total &&
		a.Currency == b.Currency && a.Status == b.Status && a.PaymentID == b.PaymentID && a.CancelReason == b.CancelReason &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.CancelRequested.Equal(b.CancelRequested)
}

func ids(os []orders.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}
