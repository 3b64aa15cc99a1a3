package provider_test

import (
	"context"
	"errors"
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
		for range n {
			ref, err := p.Charge(ctx, "key", 100, "EUR")
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
	_, err := provider.NewSimulated(0, 0, 1).Charge(context.Background(), "", 100, "EUR")
	if err == nil || errors.Is(err, payments.ErrDeclined) {
		t.Fatalf("err = %v, want a non-decline error", err)
	}
}
