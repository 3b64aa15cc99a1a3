package users

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// An unknown email must cost a login as much as a known one: bcrypt's time
// follows the cost in the hash compared against.
func TestDummyHashHasTheServiceCost(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, 10} {
		s := &Service{BcryptCost: cost}
		if got, err := bcrypt.Cost(s.dummyHash()); err != nil || got != cost {
			t.Errorf("service cost %d: dummy hash cost %d (%v)", cost, got, err)
		}
	}
}
