package main

import (
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/services/gateway/internal/admit"
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

// parseEnv reads the gateway's configuration from env alone.
func parseEnv(t *testing.T, env map[string]string) config {
	t.Helper()
	var cfg config
	if err := conf.Parse(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestAdmissionConfig(t *testing.T) {
	a, byName, err := parseEnv(t, nil).admission(time.Now)
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
	a, byName, err = parseEnv(t, map[string]string{"ADMIT": "false"}).admission(time.Now)
	if err != nil || a != (httpapi.Admission{}) || len(byName) != 0 {
		t.Fatalf("ADMIT=false: %+v %v %v", a, byName, err)
	}
	_, _, err = parseEnv(t, map[string]string{"ADMIT_ORDER_MIN": "0", "ADMIT_READ_MAX": "1"}).admission(time.Now)
	if err == nil || !strings.Contains(err.Error(), "ADMIT_ORDER_") || !strings.Contains(err.Error(), "ADMIT_READ_") {
		t.Fatalf("bad bounds: %v", err)
	}
	if _, _, err = parseEnv(t, map[string]string{"ADMIT_LATE": "-1"}).admission(time.Now); err == nil || !strings.Contains(err.Error(), "late") {
		t.Fatalf("ADMIT_LATE=-1: %v", err)
	}
}

// TestDefaultOrderAdmissionNeverRefusesClosedLoops simulates, on the
// gateway's default order admission, n clients that each place an order,
// wait for it, pause up to 30 ms and place the next, for 10 s, on a machine
// where an order takes 16 ms for each one in flight (two cores shared), with
// jitter: no seed may refuse any of them. A closed group is never refused
// for its own latency. Either hold (ADMIT_ORDER_HOLD) refuses some of
// these in other shapes (docs/performance.md), which is why it is off.
func TestDefaultOrderAdmissionNeverRefusesClosedLoops(t *testing.T) {
	for _, n := range []int{4, 8, 16, 32, 50} {
		for seed := int64(1); seed <= 20; seed++ {
			clock := leasetest.NewClock()
			a, _, err := parseEnv(t, nil).admission(clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			if admitted, refused := closedLoop(a.Order, clock, n, seed); refused > 0 {
				t.Fatalf("%d clients, seed %d: %d refused, %d admitted", n, seed, refused, admitted)
			}
		}
	}
}

// closedLoop runs the simulation of
// TestDefaultOrderAdmissionNeverRefusesClosedLoops on l, whose clock is
// clock, and returns how many orders were admitted and refused; a refused
// client comes back after Retry-After (1 s).
func closedLoop(l *admit.Limiter, clock *leasetest.Clock, n int, seed int64) (admitted, refused int) {
	start := clock.Now()
	rng := rand.New(rand.NewSource(seed))
	type event struct {
		at     time.Duration
		ticket *admit.Ticket // nil: the client asks for its next order
	}
	events := make([]event, n)
	for len(events) > 0 {
		i := 0
		for j, e := range events {
			if e.at < events[i].at {
				i = j
			}
		}
		e := events[i]
		events = append(events[:i], events[i+1:]...)
		if e.at > 10*time.Second {
			continue
		}
		clock.Add(start.Add(e.at).Sub(clock.Now()))
		if e.ticket != nil {
			e.ticket.Done()
			events = append(events, event{at: e.at + time.Duration(rng.Int63n(int64(30*time.Millisecond)))})
			continue
		}
		tk, ok := l.Acquire()
		if !ok {
			refused++
			events = append(events, event{at: e.at + time.Second})
			continue
		}
		admitted++
		took := 16*time.Millisecond*time.Duration(l.State().InFlight) + time.Duration(rng.Int63n(int64(16*time.Millisecond)))
		events = append(events, event{at: e.at + took, ticket: &tk})
	}
	return admitted, refused
}
