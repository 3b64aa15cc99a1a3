package provider_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
	"github.com/daprshop/suite/services/payments/internal/provider/providertest"
)

func TestSimulatedDeclineRate(t *testing.T) {
	ctx := context.Background()
	for _, rate := range []float64{0, 0.3, 1} {
		p := provider.NewSimulated(&provider.MemMemory{}, rate, 0, 42)
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
	_, err := provider.NewSimulated(&provider.MemMemory{}, 0, 0, 1).Charge(context.Background(), "", "ord_1", 100, "EUR")
	if err == nil || errors.Is(err, payments.ErrDeclined) {
		t.Fatalf("err = %v, want a non-decline error", err)
	}
}

func TestSimulatedAnswersAKeyOnce(t *testing.T) {
	ctx := context.Background()
	p := provider.NewSimulated(&provider.MemMemory{}, 0.5, 0, 7)
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
	p := provider.NewSimulated(&provider.MemMemory{}, 0, 0, 3)
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

func TestMemMemoryContract(t *testing.T) {
	providertest.Run(t, func(*testing.T) provider.Memory { return &provider.MemMemory{} })
}

// Two replicas of payments share the provider, as they would share a real
// one: a setting changed through one holds for the other, and a key charged
// through one is answered the same through the other.
func TestReplicasShareOneProvider(t *testing.T) {
	ctx := context.Background()
	m := &provider.MemMemory{}
	a, b := provider.NewSimulated(m, 0, 0, 1), provider.NewSimulated(m, 0, 0, 2)
	if err := a.Set(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if s, err := b.Settings(ctx); err != nil || s.FailureRate != 1 {
		t.Fatalf("b's settings %+v %v after a's change", s, err)
	}
	if _, err := b.Charge(ctx, "key", "ord_declined", 100, "EUR"); !errors.Is(err, payments.ErrDeclined) {
		t.Fatalf("through b at rate 1: %v, want declined", err)
	}
	if err := b.Set(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	ref, err := a.Charge(ctx, "key", "ord_1", 100, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := b.Charge(ctx, "key", "ord_1", 100, "EUR"); err != nil || again != ref {
		t.Fatalf("the key again through b: %q %v, want a's %q", again, err, ref)
	}
	if _, err := a.Charge(ctx, "key", "ord_declined", 100, "EUR"); !errors.Is(err, payments.ErrDeclined) {
		t.Fatalf("the declined key through a: %v, want its first answer", err)
	}
	for _, p := range []*provider.Simulated{a, b, a} {
		if err := p.Refund(ctx, "key", "refund:ch_1", ref); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.Refunds() + b.Refunds(); n != 1 {
		t.Fatalf("%d refunds of one key through two replicas", n)
	}
}
