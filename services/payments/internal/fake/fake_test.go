package fake_test

import (
	"testing"

	"github.com/daprshop/suite/services/payments/internal/fake"
	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) (payments.Store, storetest.Events) {
		s := fake.NewStore()
		return s, s.EventTypes
	})
}
