package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
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

func TestAdmissionConfig(t *testing.T) {
	parse := func(env map[string]string) config {
		t.Helper()
		var cfg config
		if err := conf.Parse(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a, byName, err := parse(nil).admission(time.Now)
	if err != nil || a.Read == nil || a.Order == nil || a.Write == nil || a.Track == nil || len(byName) != 4 {
		t.Fatalf("defaults: %+v %v %v", a, byName, err)
	}
	// The defaults admit a burst of 50 orders and 32 reads on an idle suite.
	if s := a.Order.State(); s.Limit < 50 {
		t.Errorf("an idle order class admits %d at once", s.Limit)
	}
	if s := a.Read.State(); s.Limit < 32 {
		t.Errorf("an idle read class admits %d at once", s.Limit)
	}
	a, byName, err = parse(map[string]string{"ADMIT": "false"}).admission(time.Now)
	if err != nil || a != (httpapi.Admission{}) || len(byName) != 0 {
		t.Fatalf("ADMIT=false: %+v %v %v", a, byName, err)
	}
	_, _, err = parse(map[string]string{"ADMIT_ORDER_MIN": "0", "ADMIT_READ_MAX": "1"}).admission(time.Now)
	if err == nil || !strings.Contains(err.Error(), "ADMIT_ORDER_") || !strings.Contains(err.Error(), "ADMIT_READ_") {
		t.Fatalf("bad bounds: %v", err)
	}
	if _, _, err = parse(map[string]string{"ADMIT_LATE": "-1"}).admission(time.Now); err == nil || !strings.Contains(err.Error(), "late") {
		t.Fatalf("ADMIT_LATE=-1: %v", err)
	}
}
