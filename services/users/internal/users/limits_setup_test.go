package users_test

import (
	"time"

	"github.com/daprshop/suite/services/users/internal/users"
)

// policy is the login policy the limit tests run and state their bounds in.
var policy = users.DefaultLoginPolicy()

// limitedService returns a service with policy's login limits on clock,
// each of their stores holding at most maxKeys entries (0: the default),
// and a function that reports how many entries each store holds.
func limitedService(clock func() time.Time, maxKeys int) (*users.Service, *memStore, func() []int) {
	svc, st := newService()
	svc.Now = clock
	lim := users.NewLimits(policy, clock)
	stores := []*users.MemStore{{MaxKeys: maxKeys, Now: clock}, {MaxKeys: maxKeys, Now: clock}, {MaxKeys: maxKeys, Now: clock}}
	lim.Addresses, lim.Failures, lim.Familiar = stores[0], stores[1], stores[2]
	svc.Limits = lim
	return svc, st, func() []int {
		var n []int
		for _, s := range stores {
			n = append(n, s.Len())
		}
		return n
	}
}
