// Package storetest is the products.Store contract: one suite that the
// in-memory fake and the Dapr adapter (on lib/sidecar/sidecartest) both
// pass, so that the fake the domain is tested with cannot drift from the
// store the service runs on.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/services/products/internal/products"
)

func record(n int) products.Record {
	at := time.Date(2026, 11, 28, 12, 0, n, 0, time.UTC)
	return products.Record{Product: products.Product{ID: fmt.Sprintf("prd_%024x", n), Name: fmt.Sprint("Widget ", n),
		Price: 250, Currency: "EUR", Stock: 5, CreatedAt: at, UpdatedAt: at}}
}

// Run checks the contract on stores newStore returns, each empty.
func Run(t *testing.T, newStore func(t *testing.T) products.Store) {
	ctx := context.Background()
	t.Run("create and get", func(t *testing.T) {
		s := newStore(t)
		r := record(1)
		r.Reservations = map[string]int{"ord_000000000000000000000001": 2}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, etag, err := s.Get(ctx, r.ID)
		if err != nil || etag == "" || got.Product != r.Product || got.Reservations["ord_000000000000000000000001"] != 2 {
			t.Fatalf("got %+v etag %q err %v", got, etag, err)
		}
		if err := s.Create(ctx, record(1)); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("create of an existing ID: %v, want Conflict", err)
		}
		if _, _, err := s.Get(ctx, record(2).ID); apierr.CodeOf(err) != apierr.NotFound {
			t.Fatalf("get of a missing product: %v, want NotFound", err)
		}
	})
	t.Run("update over the ETag read only", func(t *testing.T) {
		s := newStore(t)
		r := record(1)
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, e1, _ := s.Get(ctx, r.ID)
		r.Stock = 4
		if err := s.Update(ctx, r, e1); err != nil {
			t.Fatal(err)
		}
		got, e2, _ := s.Get(ctx, r.ID)
		if got.Stock != 4 || e2 == e1 {
			t.Fatalf("after update: stock %d etag %q (was %q)", got.Stock, e2, e1)
		}
		r.Stock = 3
		if err := s.Update(ctx, r, e1); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("update over a stale ETag: %v, want Conflict", err)
		}
		if got, _, _ := s.Get(ctx, r.ID); got.Stock != 4 {
			t.Fatalf("a refused update wrote stock %d", got.Stock)
		}
	})
	t.Run("catalog", func(t *testing.T) {
		s := newStore(t)
		for n := 1; n <= 3; n++ {
			if err := s.Create(ctx, record(n)); err != nil {
				t.Fatal(err)
			}
			for range 2 { // adding twice lists once
				if err := s.AddToCatalog(ctx, record(n).ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		page, total, err := s.Catalog(ctx, 1, 5)
		if err != nil || total != 3 || len(page) != 2 || page[0].ID != record(2).ID || page[1].ID != record(1).ID {
			t.Fatalf("page from 1: %v total %d err %v: want products 2 and 1 of 3, newest first", ids(page), total, err)
		}
		if err := s.RemoveFromCatalog(ctx, record(2).ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveFromCatalog(ctx, record(2).ID); err != nil {
			t.Fatalf("removing an unlisted product: %v", err)
		}
		if err := s.Delete(ctx, record(2).ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, record(2).ID); apierr.CodeOf(err) != apierr.NotFound {
			t.Fatalf("after delete: %v, want NotFound", err)
		}
		page, total, err = s.Catalog(ctx, 0, 5)
		if err != nil || total != 2 || len(page) != 2 || page[0].ID != record(3).ID || page[1].ID != record(1).ID {
			t.Fatalf("after removal: %v total %d err %v", ids(page), total, err)
		}
	})
}

func ids(rs []products.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
