package id_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/daprshop/suite/lib/id"
)

var kinds = map[string]id.Kind{"user": id.User, "product": id.Product, "order": id.Order, "charge": id.Charge, "shipment": id.Shipment}

func TestNewIsValidAndFresh(t *testing.T) {
	for name, k := range kinds {
		seen := map[string]bool{}
		for range 100 {
			s := k.New()
			if !k.Valid(s) || seen[s] {
				t.Fatalf("%s: New() = %q (valid %v, repeated %v)", name, s, k.Valid(s), seen[s])
			}
			seen[s] = true
		}
	}
}

// The IDs already stored were minted as prefix + 24 (charges: 20) lowercase
// hex digits; they must stay valid.
func TestTodaysStoredIDsStayValid(t *testing.T) {
	for _, s := range []string{
		"usr_8f14e45fceea167a5a36dedd", "prd_c9f0f895fb98ab9159f51fd0", "ord_45c48cce2e2d7fbdea1afc51",
		"ch_d3d9446802a44259755d",
	} {
		n := 0
		for _, k := range kinds {
			if k.Valid(s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q is valid for %d kinds, want 1", s, n)
		}
	}
}

func TestValidRefusesEverythingElse(t *testing.T) {
	good := id.Order.Example(1)
	for _, s := range []string{
		"", "ord_", "ord_1", good + "0", good[:len(good)-1], strings.ToUpper(good), "ORD_" + good[4:],
		"usr_" + good[4:], " " + good, good + " ", good + "\x00", good + "/", good + "%2F", good + "#", good + "?x",
		good + "\n", "ord_00000000000000000000000g", "ord_../../../../../../../etc", "xord_000000000000000000000001",
		"ord_０００００００００００００００００００００００１",
	} {
		if id.Order.Valid(s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

func TestPatternAgreesWithValid(t *testing.T) {
	for name, k := range kinds {
		re := regexp.MustCompile("^" + k.Pattern() + "$")
		for _, s := range []string{k.New(), k.Example(0), k.Example(1<<63 - 1), k.Prefix() + "x", k.New() + "a", strings.ToUpper(k.New())} {
			if re.MatchString(s) != k.Valid(s) {
				t.Errorf("%s: pattern and Valid disagree on %q", name, s)
			}
		}
		if v := k.Var("id"); v != "{id:"+k.Pattern()+"}" {
			t.Errorf("%s: Var = %q", name, v)
		}
	}
}

func TestDeriveIsStable(t *testing.T) {
	a, b := id.Charge.Derive("ord_1"), id.Charge.Derive("ord_1")
	if a != b || !id.Charge.Valid(a) || id.Charge.Derive("ord_2") == a {
		t.Fatalf("Derive: %q %q", a, b)
	}
	// The charge IDs already stored were derived so: sha256, first 10 bytes.
	// shipping (TypeScript) derives the same: e2e checks its shipments' IDs.
	if got := id.Shipment.Derive("abc"); got != "shp_ba7816bf8f01cfea414140de" {
		t.Fatalf("Derive(abc) = %s", got)
	}
	if got := id.Charge.Derive("abc"); got != "ch_ba7816bf8f01cfea4141" {
		t.Fatalf("Derive(abc) = %q", got)
	}
}

func TestExample(t *testing.T) {
	if got := id.User.Example(0x1f); got != "usr_00000000000000000000001f" || !id.User.Valid(got) {
		t.Fatalf("Example = %q", got)
	}
}
