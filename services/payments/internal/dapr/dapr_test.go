package dapr_test

import (
	"encoding/json"
	"testing"

	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/payments/internal/dapr"
	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
	"github.com/daprshop/suite/services/payments/internal/provider/providertest"
	"github.com/daprshop/suite/services/payments/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (payments.Store, storetest.Events) {
		st := &sidecartest.State{}
		return &dapr.Store{Client: st, Outbox: st, Name: "payments-store"}, func() []string {
			var out []string
			for _, p := range st.Published() {
				var e payments.Event
				if err := json.Unmarshal(p.Data, &e); err != nil {
					t.Fatal(err)
				}
				out = append(out, e.Type)
			}
			return out
		}
	})
}

func TestProviderMemoryContract(t *testing.T) {
	providertest.Run(t, func(*testing.T) provider.Memory {
		return &dapr.ProviderMemory{Client: &sidecartest.State{}, Name: "payments-store"}
	})
}
