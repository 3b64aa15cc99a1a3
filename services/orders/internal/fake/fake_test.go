package fake_test

import (
	"testing"

	"github.com/daprshop/suite/services/orders/internal/fake"
	"github.com/daprshop/suite/services/orders/internal/orders"
	"github.com/daprshop/suite/services/orders/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) (orders.Store, storetest.Events) {
		s := fake.NewStore()
		return s, s.EventTypes
	})
}
