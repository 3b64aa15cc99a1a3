// Package id is the one definition of every kind of ID the suite mints: a
// prefix naming the kind, then lowercase hex digits. Services check IDs,
// mint them and route on them only through these kinds, so no two of them
// can disagree on what an order or a user ID is.
package id

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Kind is one kind of ID: its prefix and its number of hex digits.
type Kind struct {
	prefix string
	digits int
}

// The kinds the suite mints. Users, products and orders get 96 random bits;
// a charge's ID is derived from its idempotency key (80 bits of SHA-256), so
// a retried charge lands on the same record; a shipment's from its order's
// ID, so an order has one shipment whichever replica of shipping made it
// (a TypeScript service: the same rule in services/shipping/src/id.ts). (A
// notification's ID is the CloudEvent ID of the event it is about, minted
// by whoever published it, not by the suite.)
var (
	User     = Kind{prefix: "usr_", digits: 24}
	Product  = Kind{prefix: "prd_", digits: 24}
	Order    = Kind{prefix: "ord_", digits: 24}
	Charge   = Kind{prefix: "ch_", digits: 20}
	Shipment = Kind{prefix: "shp_", digits: 24}
)

// Prefix is what every ID of the kind starts with (e.g. "usr_").
func (k Kind) Prefix() string { return k.prefix }

// New returns a fresh random ID of the kind.
func (k Kind) New() string {
	b := make([]byte, k.digits/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it aborts the program instead)
	return k.prefix + hex.EncodeToString(b)
}

// Derive returns the ID of the kind that seed always maps to.
func (k Kind) Derive(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return k.prefix + hex.EncodeToString(sum[:k.digits/2])
}

// Valid reports whether s is an ID of the kind: the prefix and exactly the
// kind's number of lowercase hex digits, nothing before or after.
func (k Kind) Valid(s string) bool {
	digits, ok := strings.CutPrefix(s, k.prefix)
	if !ok || len(digits) != k.digits {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Pattern is the regular expression of the kind, unanchored, for a route
// variable (gorilla/mux "{id:<Pattern>}" anchors it to the whole segment).
func (k Kind) Pattern() string { return k.prefix + "[0-9a-f]{" + strconv.Itoa(k.digits) + "}" }

// Var is the route variable name with the kind's pattern, for a route
// template: Var("id") is "{id:usr_[0-9a-f]{24}}".
func (k Kind) Var(name string) string { return "{" + name + ":" + k.Pattern() + "}" }

// Example is a valid ID of the kind whose digits are all zero except the
// last ones, which are n in hex: for tests and documentation.
func (k Kind) Example(n uint64) string {
	h := strconv.FormatUint(n, 16)
	if len(h) > k.digits {
		h = h[len(h)-k.digits:]
	}
	return k.prefix + strings.Repeat("0", k.digits-len(h)) + h
}
