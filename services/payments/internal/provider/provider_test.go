package provider_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
)

func TestSimulatedDeclineRate(t *testing.T) {
	ctx := context.Background()
	for _, rate := range []float64{0, 0.3, 1} {
		p := provider.NewSimulated(rate, 0, 42)
		declined := 0
		const n = 2000
		for i := range n {
			ref, err := p.Charge(ctx, "key", fmt.Sprint("ord_", i), 100, "EUR")
			switch {
			case errors.Is(err, payments.ErrDeclined):
				declined++
			case err != nil:
				t.Fatal(err)
			case !strings.HasPrefix(ref, "sim_"):
				t.Fatalf("ref %q", ref)
			}
		}
		got := float64(declined) / n
		if got < rate-0.05 || got > rate+0.05 {
			t.Errorf("rate %.1f: declined %.3f", rate, got)
		}
	}
}

func TestSimulatedNeedsKey(t *testing.T) {
	_, err := provider.NewSimulated(0, 0, 1).Charge(context.Background(), "", "ord_1", 100, "EUR")
	if err == nil || errors.Is(err, payments.ErrDeclined) {
		t.Fatalf("err = %v, want a non-decline error", err)
	}
}

func TestSimulatedAnswersAKeyOnce(t *testing.T) {
	ctx := context.Background()
	p := provider.NewSimulated(0.5, 0, 7)
	for i := range 50 {
		key := fmt.Sprint("ord_", i)
		ref1, err1 := p.Charge(ctx, "key", key, 100, "EUR")
		ref2, err2 := p.Charge(ctx, "key", key, 100, "EUR")
		if ref1 != ref2 || errors.Is(err1, payments.ErrDeclined) != errors.Is(err2, payments.ErrDeclined) {
			t.Fatalf("key %s: %q %v, then %q %v", key, ref1, err1, ref2, err2)
		}
	}
}

func TestSimulatedRefundsAKeyOnce(t *testing.T) {
	ctx := context.Background()
	p := provider.NewSimulated(0, 0, 3)
	for range 3 {
		if err := p.Refund(ctx, "key", "refund:ch_1", "sim_1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Refund(ctx, "key", "refund:ch_2", "sim_2"); err != nil {
		t.Fatal(err)
	}
	if n := p.Refunds(); n != 2 {
		t.Fatalf("%d refunds for two keys", n)
	}
	if err := p.Refund(ctx, "", "refund:ch_3", "sim_3"); err == nil {
		t.Fatal("a refund without an API key went through")
	}
}
