package main

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes(" 10.0.0.0/8, ,fd00::1/8,192.0.2.9/32")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.0.2.9/32")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parsePrefixes = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"10.0.0.0", "ingress", "10.0.0.0/33", "0.0.0.0/0", "::/0"} {
		if _, err := parsePrefixes(bad); err == nil {
			t.Errorf("parsePrefixes(%q) accepted it", bad)
		}
	}
}
