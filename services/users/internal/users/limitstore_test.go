package users_test

import (
	"testing"
	"time"

	"github.com/daprshop/suite/services/users/internal/limittest"
	"github.com/daprshop/suite/services/users/internal/users"
)

func TestMemStoreContract(t *testing.T) {
	limittest.Run(t, func(_ *testing.T, now func() time.Time) users.LimitStore { return &users.MemStore{Now: now} })
}
