package dapr_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/orders/internal/dapr"
	"github.com/daprshop/suite/services/orders/internal/orders"
	"github.com/daprshop/suite/services/orders/internal/storetest"
)

// published returns the events st's outbox published for order id.
func published(t *testing.T, st *sidecartest.State) storetest.Events {
	return func(id string) []string {
		var out []string
		for _, p := range st.Published() {
			var e orders.Event
			if err := json.Unmarshal(p.Data, &e); err != nil {
				t.Fatal(err)
			}
			if e.OrderID == id {
				out = append(out, e.Type)
			}
		}
		return out
	}
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (orders.Store, storetest.Events) {
		st := &sidecartest.State{}
		return &dapr.Store{Client: st, Outbox: st, Name: "orders-store"}, published(t, st)
	})
}

// An order stored before orders kept anything of its own (the shape of the
// first release) reads as it was, with no cancellation asked for.
func TestStoreReadsTheFirstReleasesRecords(t *testing.T) {
	st := &sidecartest.State{}
	old := `{"id":"ord_000000000000000000000001","user_id":"usr_000000000000000000000001",` +
		`"items":[{"product_id":"prd_00000000000000000000000a","quantity":2,"unit_price":500}],` +
		`"total":1000,"currency":"EUR","status":"paid","payment_id":"ch_1",` +
		`"created_at":"2026-11-27T18:30:00Z","updated_at":"2026-11-27T18:30:01Z"}`
	if err := st.SaveState(context.Background(), "orders-store", "order:ord_000000000000000000000001", []byte(old), nil); err != nil {
		t.Fatal(err)
	}
	s := &dapr.Store{Client: st, Outbox: st, Name: "orders-store"}
	o, _, err := s.Get(context.Background(), "ord_000000000000000000000001")
	want := orders.Order{ID: "ord_000000000000000000000001", UserID: "usr_000000000000000000000001",
		Items: []orders.Item{{ProductID: "prd_00000000000000000000000a", Quantity: 2, UnitPrice: 500}},
		Total: 1000, Currency: "EUR", Status: orders.Paid, PaymentID: "ch_1",
		CreatedAt: time.Date(2026, 11, 27, 18, 30, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 11, 27, 18, 30, 1, 0, time.UTC)}
	if err != nil || o.ID != want.ID || o.Status != want.Status || o.Total != want.Total || len(o.Items) != 1 || o.Items[0] != want.Items[0] ||
		o.PaymentID != want.PaymentID || !o.CreatedAt.Equal(want.CreatedAt) || !o.UpdatedAt.Equal(want.UpdatedAt) || !o.CancelRequested.IsZero() {
		t.Fatalf("read %+v err %v, want %+v", o, err, want)
	}
}
