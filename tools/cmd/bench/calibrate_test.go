package main

import (
	"strings"
	"testing"
)

// TestPricedRunsTheStreamBelowTheMachinesCeiling: an order's price is the
// machine's CPU beyond what it spends with the suite idle, the cores left
// over set what the machine serves, and the stream runs at three quarters
// of it, within its bounds; without the machine's figures the suite's own
// CPU per order prices it.
func TestPricedRunsTheStreamBelowTheMachinesCeiling(t *testing.T) {
	// 150 orders in 20 s with the machine 1.1 cores busy, 0.5 of it idle:
	// 0.6 × 20 s / 150 = 80 ms an order; 1.5 cores left serve 18.75/s.
	st := &streamFigures{Rate: 10, Orders: 150, CPU: []cpuFigure{{"orders", 30}, {"orders daprd", 20}},
		Busy: &busy{Machine: 1.1, Suite: 0.8, Seconds: 20}}
	c := priced(st, 2, 0.5)
	if !near(c.OrderMS, 80) || !near(c.Sustained, 18.75) || c.Chosen != 14 {
		t.Fatalf("%+v: want 80 ms an order, 18.75/s sustained, 14/s chosen", c)
	}
	if md := c.markdown(); !strings.Contains(md, "150 orders at 10/s cost 80.0 ms of the machine's CPU an order beyond the 0.50 cores") ||
		!strings.Contains(md, "the 1.50 cores left serve 18.") || !strings.Contains(md, "75% of that, 14/s") {
		t.Errorf("%s", md)
	}
	for _, idle := range []float64{-1, 0.5} {
		s := *st
		if idle >= 0 {
			s.Busy = nil // not Linux
		}
		if c := priced(&s, 2, idle); c.OrderMS != 50 || c.IdleCores != -1 || c.Chosen != 30 {
			t.Errorf("idle %v, busy %v: %+v; want the suite's 50 ms an order and 30/s", idle, s.Busy, c)
		} else if md := c.markdown(); !strings.Contains(md, "could not be read") || !strings.Contains(md, "the 2.00 cores left") {
			t.Errorf("%s", md)
		}
	}
	s := *st
	s.Busy, s.CPU = nil, []cpuFigure{{"orders", 1}}
	if c := priced(&s, 2, -1); c.Chosen != maxAutoRate {
		t.Errorf("%+v: want the bound, %d/s", c, maxAutoRate)
	}
	s.CPU = []cpuFigure{{"orders", 5000}}
	if c := priced(&s, 2, -1); c.Chosen != 1 {
		t.Errorf("%+v: want at least 1/s", c)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
