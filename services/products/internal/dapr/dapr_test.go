package dapr_test

import (
	"testing"

	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/products/internal/dapr"
	"github.com/daprshop/suite/services/products/internal/products"
	"github.com/daprshop/suite/services/products/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) products.Store {
		return &dapr.Store{Client: &sidecartest.State{}, Name: "products-store"}
	})
}
