package products_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/services/products/internal/fake"
	"github.com/daprshop/suite/services/products/internal/products"
)

func newService() *products.Service {
	return &products.Service{Store: fake.NewStore(), MaxAttempts: 200, Now: time.Now}
}

func widget(t *testing.T, svc *products.Service, stock int) products.Product {
	t.Helper()
	p, err := svc.Create(context.Background(), products.NewProduct{Name: "Widget", Price: 250, Currency: "EUR", Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateListGet(t *testing.T) {
	svc := newService()
	p := widget(t, svc, 3)
	q := widget(t, svc, 4)
	page, err := svc.List(context.Background(), 0, 10)
	if err != nil || len(page.Products) != 2 || page.Products[0].ID != q.ID || page.Products[1].ID != p.ID || page.Total != 2 || page.NextOffset != 0 {
		t.Fatalf("page %+v %v", page, err)
	}
	first, _ := svc.List(context.Background(), 0, 1)
	second, _ := svc.List(context.Background(), first.NextOffset, 1)
	if len(first.Products) != 1 || first.Products[0].ID != q.ID || first.NextOffset != 1 || len(second.Products) != 1 || second.Products[0].ID != p.ID || second.NextOffset != 0 {
		t.Fatalf("pages %+v then %+v", first, second)
	}
	for _, bad := range [][2]int{{-1, 10}, {0, 0}, {0, products.MaxPageSize + 1}} {
		if _, err := svc.List(context.Background(), bad[0], bad[1]); apierr.CodeOf(err) != apierr.Invalid {
			t.Fatalf("offset %d limit %d: %v", bad[0], bad[1], err)
		}
	}
	if got, err := svc.Get(context.Background(), p.ID); err != nil || got != p {
		t.Fatalf("get %+v %v", got, err)
	}
	if _, err := svc.Get(context.Background(), "prd_00000000000000000000dead"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("malformed: %v", err)
	}
}

func TestValidate(t *testing.T) {
	err := products.NewProduct{Name: "", Price: 0, Currency: "eur", Stock: -1}.Validate()
	var e *apierr.Error
	if !errors.As(err, &e) || len(e.Fields) != 4 {
		t.Fatalf("err = %v", err)
	}
}

func TestReserveReleaseSettle(t *testing.T) {
	ctx := context.Background()
	svc := newService()
	p := widget(t, svc, 5)
	r, created, err := svc.Reserve(ctx, p.ID, "ord_000000000000000000000001", 3)
	if err != nil || !created || r.Status != products.Reserved || r.StockLeft != 2 || r.UnitPrice != 250 || r.Currency != "EUR" {
		t.Fatalf("reserve %+v %v %v", r, created, err)
	}
	again, created, err := svc.Reserve(ctx, p.ID, "ord_000000000000000000000001", 3)
	if err != nil || created || again.Quantity != 3 || again.StockLeft != 2 {
		t.Fatalf("replay %+v %v %v", again, created, err)
	}
	short, _, err := svc.Reserve(ctx, p.ID, "ord_000000000000000000000002", 3)
	if err != nil || short.Status != products.Rejected || short.StockLeft != 2 {
		t.Fatalf("short %+v %v", short, err)
	}
	for range 2 {
		if err := svc.Release(ctx, p.ID, "ord_000000000000000000000001"); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := svc.Get(ctx, p.ID); got.Stock != 5 {
		t.Fatalf("stock after release %d", got.Stock)
	}
	_, _, _ = svc.Reserve(ctx, p.ID, "ord_000000000000000000000003", 2)
	if err := svc.Settle(ctx, p.ID, "ord_000000000000000000000003"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Release(ctx, p.ID, "ord_000000000000000000000003"); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, p.ID); got.Stock != 3 {
		t.Fatalf("settled stock came back: %d", got.Stock)
	}
	if _, _, err := svc.Reserve(ctx, p.ID, "bad", 0); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("invalid: %v", err)
	}
	if _, _, err := svc.Reserve(ctx, "prd_000000000000000000000000", "ord_000000000000000000000004", 1); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("unknown product: %v", err)
	}
}

func TestConcurrentReservationsNeverOversell(t *testing.T) {
	ctx := context.Background()
	svc := newService()
	p := widget(t, svc, 10)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		reserved int
	)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := svc.Reserve(ctx, p.ID, fmt.Sprintf("ord_%024x", i), 1)
			if err != nil {
				t.Error(err)
				return
			}
			if r.Status == products.Reserved {
				mu.Lock()
				reserved++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, _ := svc.Get(ctx, p.ID)
	if reserved != 10 || got.Stock != 0 {
		t.Fatalf("reserved %d, stock %d", reserved, got.Stock)
	}
}

func TestSetStock(t *testing.T) {
	svc := newService()
	p := widget(t, svc, 1)
	if got, err := svc.SetStock(context.Background(), p.ID, 9); err != nil || got.Stock != 9 {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := svc.SetStock(context.Background(), p.ID, -1); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("negative: %v", err)
	}
}

func TestCreateThatCannotBeListedLeavesNothing(t *testing.T) {
	for _, lost := range []bool{false, true} {
		store := fake.NewStore()
		store.CatalogErr, store.CatalogLost = apierr.Errorf(apierr.Unavailable, "catalog busy"), lost
		svc := &products.Service{Store: store, MaxAttempts: 5, Now: time.Now}
		_, err := svc.Create(context.Background(), products.NewProduct{Name: "Lamp", Price: 100, Currency: "EUR", Stock: 1})
		if apierr.CodeOf(err) != apierr.Unavailable {
			t.Fatalf("answer lost %v: err = %v, want Unavailable", lost, err)
		}
		if stored, listed := store.Len(); stored != 0 || listed != 0 {
			t.Fatalf("answer lost %v: %d products stored, %d listed, after a failed create", lost, stored, listed)
		}
	}
}
