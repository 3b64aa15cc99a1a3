package notifications_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

// memStore is an in-memory notifications.Store; failIndex fails the next
// list update after the notification itself was written.
type memStore struct {
	mu        sync.Mutex
	notes     map[string]notifications.Notification
	lists     map[string][]string
	failIndex error
}

var _ notifications.Store = (*memStore)(nil)

func newStore() *memStore {
	return &memStore{notes: map[string]notifications.Notification{}, lists: map[string][]string{}}
}

func (s *memStore) Add(_ context.Context, n notifications.Notification) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.notes[n.ID]
	if !exists {
		s.notes[n.ID] = n
	}
	if err := s.failIndex; err != nil {
		s.failIndex = nil
		return false, err
	}
	if !slices.Contains(s.lists[n.UserID], n.ID) {
		s.lists[n.UserID] = append([]string{n.ID}, s.lists[n.UserID]...)
	}
	return !exists, nil
}

func (s *memStore) ListByUser(_ context.Context, u string) ([]notifications.Notification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []notifications.Notification{}
	for _, id := range s.lists[u] {
		out = append(out, s.notes[id])
	}
	return out, nil
}

type counts struct{ recorded, dup map[string]int }

func (c *counts) Recorded(t string)  { c.recorded[t]++ }
func (c *counts) Duplicate(t string) { c.dup[t]++ }

func newService() (*notifications.Service, *memStore, *counts) {
	st, c := newStore(), &counts{recorded: map[string]int{}, dup: map[string]int{}}
	return &notifications.Service{Store: st, Counter: c, Now: time.Now}, st, c
}

func event(id string, data map[string]any) events.Event {
	b, _ := json.Marshal(data)
	return events.Event{ID: id, Topic: "orders", Data: b}
}

func TestMessages(t *testing.T) {
	cases := map[string]struct {
		data map[string]any
		want string
	}{
		"paid":               {map[string]any{"type": "order.paid", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001", "total": 2550, "currency": "EUR"}, "Order ord_000000000000000000000001 was paid: 25.50 EUR."},
		"cancelled":          {map[string]any{"type": "order.cancelled", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001", "reason": "payment declined"}, "Order ord_000000000000000000000001 was cancelled: payment declined."},
		"shipped":            {map[string]any{"type": "shipment.shipped", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001", "shipment_id": "shp_000000000000000000000001", "status": "shipped", "tracking_number": "DS0123456789ABCDEF"}, "Order ord_000000000000000000000001 has shipped: tracking number DS0123456789ABCDEF."},
		"shipment cancelled": {map[string]any{"type": "shipment.cancelled", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001", "reason": "order cancelled"}, "The shipment of order ord_000000000000000000000001 was cancelled: order cancelled."},
		"refunded":           {map[string]any{"type": "payment.refunded", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001", "amount": 705, "currency": "EUR"}, "Payment of 7.05 EUR for order ord_000000000000000000000001 was refunded."},
	}
	for name, tc := range cases {
		svc, _, _ := newService()
		if err := svc.Handle(context.Background(), event("e-"+name, tc.data)); err != nil {
			t.Fatal(err)
		}
		got, _ := svc.List(context.Background(), "usr_000000000000000000000001")
		if len(got) != 1 || got[0].Message != tc.want || got[0].ID != "e-"+name {
			t.Errorf("%s: %+v", name, got)
		}
	}
}

func TestSameEventTwiceRecordsOnce(t *testing.T) {
	svc, _, c := newService()
	ev := event("e1", map[string]any{"type": "order.created", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001"})
	for range 2 {
		if err := svc.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := svc.List(context.Background(), "usr_000000000000000000000001")
	if len(got) != 1 || c.recorded["order.created"] != 1 || c.dup["order.created"] != 1 {
		t.Fatalf("list %+v counts %+v", got, c)
	}
}

func TestRedeliveryAfterHalfDoneWriteCompletesOnce(t *testing.T) {
	svc, st, _ := newService()
	ev := event("e1", map[string]any{"type": "order.created", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001"})
	st.failIndex = apierr.Errorf(apierr.Unavailable, "store hiccup")
	if err := svc.Handle(context.Background(), ev); events.IsDrop(err) || err == nil {
		t.Fatalf("first delivery: %v (must be retried)", err)
	}
	if err := svc.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.List(context.Background(), "usr_000000000000000000000001"); len(got) != 1 {
		t.Fatalf("list %+v", got)
	}
}

func TestPoisonEventsAreDropped(t *testing.T) {
	svc, _, _ := newService()
	for name, ev := range map[string]events.Event{
		"unknown type": event("e1", map[string]any{"type": "order.exploded", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001"}),
		"no user":      event("e2", map[string]any{"type": "order.paid", "order_id": "ord_000000000000000000000001"}),
		"no order":     event("e3", map[string]any{"type": "order.paid", "user_id": "usr_000000000000000000000001"}),
		"no id":        event("", map[string]any{"type": "order.paid", "order_id": "ord_000000000000000000000001", "user_id": "usr_000000000000000000000001"}),
		"not json":     {ID: "e4", Data: json.RawMessage(`"junk"`)},
	} {
		if err := svc.Handle(context.Background(), ev); !events.IsDrop(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestListNeedsUserID(t *testing.T) {
	svc, _, _ := newService()
	_, err := svc.List(context.Background(), "bob")
	var e *apierr.Error
	if !errors.As(err, &e) || e.Fields[0].Field != "user_id" {
		t.Fatalf("err = %v", err)
	}
}
