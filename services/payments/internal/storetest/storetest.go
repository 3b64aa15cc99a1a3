// Package storetest is the payments.Store contract: one suite that the
// in-memory fake and the Dapr adapter (on lib/sidecar/sidecartest) both
// pass, so that the fake the domain is tested with cannot drift from the
// store the service runs on.
package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/services/payments/internal/payments"
)

// Events returns the types of the events stored with charges, in order.
type Events func() []string

func charge() payments.Charge {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return payments.Charge{ID: payments.ChargeID("ord_1"), OrderID: "ord_1", UserID: "usr_1", Amount: 900, Currency: "EUR",
		IdempotencyKey: "ord_1", Status: payments.Processing, CreatedAt: at, UpdatedAt: at}
}

// Run checks the contract on stores newStore returns, each empty.
func Run(t *testing.T, newStore func(t *testing.T) (payments.Store, Events)) {
	ctx := context.Background()
	t.Run("create once, get with its ETag", func(t *testing.T) {
		s, _ := newStore(t)
		c := charge()
		etag, err := s.Create(ctx, c)
		if err != nil || etag == "" {
			t.Fatalf("create: etag %q err %v", etag, err)
		}
		got, e, err := s.GetWithETag(ctx, c.ID)
		if err != nil || e != etag || got.ID != c.ID || got.Status != payments.Processing || !got.CreatedAt.Equal(c.CreatedAt) {
			t.Fatalf("got %+v etag %q err %v, want the created charge at %q", got, e, err, etag)
		}
		if _, err := s.Create(ctx, c); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("a second create: %v, want Conflict (the claim is taken)", err)
		}
		if _, err := s.Get(ctx, payments.ChargeID("ord_2")); apierr.CodeOf(err) != apierr.NotFound {
			t.Fatalf("a missing charge: %v, want NotFound", err)
		}
	})
	t.Run("update over the ETag read only, with its event", func(t *testing.T) {
		s, events := newStore(t)
		c := charge()
		etag, _ := s.Create(ctx, c)
		c.Status = payments.Succeeded
		if err := s.Update(ctx, c, etag, &payments.Event{Type: payments.EventSucceeded, ChargeID: c.ID}); err != nil {
			t.Fatal(err)
		}
		c.Status = payments.Refunded
		if err := s.Update(ctx, c, etag, &payments.Event{Type: payments.EventRefunded, ChargeID: c.ID}); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("update over a stale ETag: %v, want Conflict", err)
		}
		if got, _ := s.Get(ctx, c.ID); got.Status != payments.Succeeded {
			t.Fatalf("status %s after a refused update", got.Status)
		}
		if evs := events(); !slices.Equal(evs, []string{payments.EventSucceeded}) {
			t.Fatalf("events %v: a refused update publishes nothing", evs)
		}
	})
	t.Run("claim over the ETag read only, publishing nothing", func(t *testing.T) {
		s, events := newStore(t)
		c := charge()
		stale, _ := s.Create(ctx, c)
		c.UserID = "usr_taken_over"
		etag, err := s.Claim(ctx, c, stale)
		if err != nil {
			t.Fatal(err)
		}
		if got, now, _ := s.GetWithETag(ctx, c.ID); got.UserID != "usr_taken_over" || now != etag || etag == stale {
			t.Fatalf("after the claim: %+v at %q, claim answered %q (stale %q)", got, now, etag, stale)
		}
		if _, err := s.Claim(ctx, c, stale); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("claim at a stale ETag: %v, want Conflict", err)
		}
		if err := s.Update(ctx, c, etag, &payments.Event{Type: payments.EventSucceeded, ChargeID: c.ID}); err != nil {
			t.Fatalf("update at the claim's ETag: %v", err)
		}
		if evs := events(); !slices.Equal(evs, []string{payments.EventSucceeded}) {
			t.Fatalf("events %v: a claim publishes nothing", evs)
		}
	})
}
