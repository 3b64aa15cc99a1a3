package fake_test

import (
	"testing"

	"github.com/daprshop/suite/services/products/internal/fake"
	"github.com/daprshop/suite/services/products/internal/products"
	"github.com/daprshop/suite/services/products/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) products.Store { return fake.NewStore() })
}
