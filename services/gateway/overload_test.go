package main

import (
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/services/gateway/internal/admit"
)

// TestOrderHoldUnderOverload simulates the gateway's order admission with
// the hold on (ADMIT_ORDER_HOLD=true, the other settings their defaults) in
// front of a machine that shares itself among the orders in flight (33 ms
// of work each, half to one and a half times that: 30 orders a second at
// most), fed by k6's open-loop scenarios on a fake clock: the stress ramp
// (0 to 60 a second in 20 s, held 40 s) and the spike (20 a second, 200
// within 5 s, held 20 s, calm again), 5 seeds each. The
// admitted orders' p99 must stay within the 250 ms the k6 thresholds ask
// for, while a calm rate just under what the machine serves (20 and 27 a
// second, evenly spaced) is never refused. Without the hold (the default)
// the stress gives p99 376 ms and the spike 305 ms: the pile-up of the ramp
// (internal/admit's package doc).
func TestOrderHoldUnderOverload(t *testing.T) {
	for _, c := range []struct {
		name   string
		rate   func(time.Duration) float64
		dur    time.Duration
		refuse bool
	}{
		{"stress", rates(0, 0, 20, 60, 60, 60), 60 * time.Second, true},
		{"spike", rates(0, 20, 15, 20, 20, 200, 40, 200, 45, 20, 60, 20), 60 * time.Second, true},
		{"calm 20/s", rates(0, 20, 60, 20), 60 * time.Second, false},
		{"calm 27/s", rates(0, 27, 60, 27), 60 * time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var all []time.Duration
			refused := 0
			for seed := int64(1); seed <= 5; seed++ {
				clock := leasetest.NewClock()
				a, _, err := parseEnv(t, map[string]string{"ADMIT_ORDER_HOLD": "true"}).admission(clock.Now)
				if err != nil {
					t.Fatal(err)
				}
				lat, r := sharedMachine(a.Order, clock, c.rate, c.dur, seed)
				all = append(all, lat...)
				refused += r
			}
			slices.Sort(all)
			p99 := all[len(all)*99/100]
			t.Logf("%d admitted, %d refused, p99 %v", len(all), refused, p99)
			if c.refuse && p99 > 250*time.Millisecond {
				t.Errorf("admitted orders' p99 %v, want 250ms at most", p99)
			}
			if !c.refuse && refused > 0 {
				t.Errorf("%d refused at a rate the machine serves", refused)
			}
		})
	}
}

// TestDefaultOrderAdmissionServesCalmClumps: orders at 15 a second (half
// the simulated machine) arriving at random (Poisson), so in clumps, for 60
// s, 20 seeds: the default admission refuses none. With the hold on, most
// seeds have refusals (a clump of three while one order is late), one of
// the reasons it is off (docs/performance.md).
func TestDefaultOrderAdmissionServesCalmClumps(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		clock := leasetest.NewClock()
		a, _, err := parseEnv(t, nil).admission(clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewSource(1000 + seed))
		// A millisecond has an arrival with probability rate/1000: the
		// count in it is then 0 or 1, and whole seconds are Poisson-like.
		clumps := func(time.Duration) float64 {
			if rng.Float64() < 15.0/1000 {
				return 1000
			}
			return 0
		}
		if lat, refused := sharedMachine(a.Order, clock, clumps, 60*time.Second, seed); refused > 0 {
			t.Errorf("seed %d: %d refused, %d admitted", seed, refused, len(lat))
		}
	}
}

// rates is a rate that goes linearly between points given as (second,
// rate per second) pairs, and stays at the last.
func rates(points ...float64) func(time.Duration) float64 {
	return func(at time.Duration) float64 {
		s := at.Seconds()
		for i := 2; i < len(points); i += 2 {
			if s <= points[i] {
				t0, r0, t1, r1 := points[i-2], points[i-1], points[i], points[i+1]
				return r0 + (r1-r0)*(s-t0)/(t1-t0)
			}
		}
		return points[len(points)-1]
	}
}

// sharedMachine runs TestOrderHoldUnderOverload's simulation on l, whose
// clock is clock, for dur in steps of a millisecond, arrivals due at rate
// (evenly spaced for a smooth rate), and returns the latencies of the admitted orders
// and how many were refused.
func sharedMachine(l *admit.Limiter, clock *leasetest.Clock, rate func(time.Duration) float64, dur time.Duration, seed int64) (lat []time.Duration, refused int) {
	rng := rand.New(rand.NewSource(seed))
	type order struct {
		left  time.Duration
		start time.Duration
		tk    admit.Ticket
	}
	var (
		orders []order
		due    float64
	)
	const step = time.Millisecond
	for now := time.Duration(0); now < dur; now += step {
		clock.Add(step)
		for due += rate(now) * step.Seconds(); due >= 1; due-- {
			tk, ok := l.Acquire()
			if !ok {
				refused++
				continue
			}
			work := time.Duration(float64(33*time.Millisecond) * (0.5 + rng.Float64()))
			orders = append(orders, order{left: work, start: now, tk: tk})
		}
		if len(orders) == 0 {
			continue
		}
		share := step / time.Duration(len(orders))
		kept := orders[:0]
		for _, o := range orders {
			if o.left -= share; o.left > 0 {
				kept = append(kept, o)
				continue
			}
			o.tk.Done()
			lat = append(lat, now-o.start)
		}
		orders = kept
	}
	return lat, refused
}
