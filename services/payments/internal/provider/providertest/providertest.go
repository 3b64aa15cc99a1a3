// Package providertest is the provider.Memory contract: one suite that the
// in-memory MemMemory and the Dapr adapter (on lib/sidecar/sidecartest)
// both pass.
package providertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/services/payments/internal/provider"
)

// Run checks the contract on memories newMemory returns, each empty.
func Run(t *testing.T, newMemory func(t *testing.T) provider.Memory) {
	ctx := context.Background()
	t.Run("settings", func(t *testing.T) {
		m := newMemory(t)
		if _, found, err := m.Settings(ctx); err != nil || found {
			t.Fatalf("fresh memory: found %v err %v", found, err)
		}
		s := provider.Settings{FailureRate: 0.25, Latency: 40 * time.Millisecond, LatencyMS: 40}
		if err := m.SaveSettings(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, found, err := m.Settings(ctx)
		if err != nil || !found || got.FailureRate != 0.25 || got.LatencyMS != 40 {
			t.Fatalf("settings %+v found %v err %v", got, found, err)
		}
	})
	t.Run("the first answer to a key is kept", func(t *testing.T) {
		m := newMemory(t)
		if _, found, err := m.Answer(ctx, "ord_1"); err != nil || found {
			t.Fatalf("fresh memory: found %v err %v", found, err)
		}
		first := provider.Answer{Ref: "sim_1"}
		if kept, err := m.Remember(ctx, "ord_1", first); err != nil || kept != first {
			t.Fatalf("first answer: kept %+v err %v", kept, err)
		}
		if kept, err := m.Remember(ctx, "ord_1", provider.Answer{Declined: true}); err != nil || kept != first {
			t.Fatalf("second answer: kept %+v err %v, want the first", kept, err)
		}
		if got, found, err := m.Answer(ctx, "ord_1"); err != nil || !found || got != first {
			t.Fatalf("answer %+v found %v err %v", got, found, err)
		}
	})
	t.Run("racing answers agree", func(t *testing.T) {
		m := newMemory(t)
		kept := make([]provider.Answer, 8)
		var wg sync.WaitGroup
		for i := range kept {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := m.Remember(ctx, "ord_2", provider.Answer{Ref: string(rune('a' + i))})
				if err != nil {
					t.Error(err)
				}
				kept[i] = a
			}()
		}
		wg.Wait()
		for _, a := range kept {
			if a != kept[0] {
				t.Fatalf("answers kept %v: one key, one answer", kept)
			}
		}
	})
}
