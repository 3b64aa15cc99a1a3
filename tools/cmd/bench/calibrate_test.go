package main

import (
	"strings"
	"testing"
)

// TestPricedRunsTheStreamBelowTheMachinesCeiling: the machine's CPU per
// order (the suite's, scaled by how much of the machine the suite was)
// sets what the cores serve, and the stream runs at three quarters of it,
// within its bounds.
func TestPricedRunsTheStreamBelowTheMachinesCeiling(t *testing.T) {
	st := &streamFigures{Rate: 10, Orders: 150, CPU: []cpuFigure{{"orders", 30}, {"orders daprd", 20}}, Busy: &busy{Machine: 1.0, Suite: 0.8}}
	c := priced(st, 2)
	if c.SuiteMS != 50 || c.MachineMS != 62.5 || c.Sustained != 32 || c.Chosen != 24 {
		t.Fatalf("%+v: want 50 ms in the suite, 62.5 on the machine, 32/s sustained, 24/s chosen", c)
	}
	if md := c.markdown(2); !strings.Contains(md, "150 orders at 10/s cost 62.5 ms") || !strings.Contains(md, "2 cores serve 32.0 orders/s") ||
		!strings.Contains(md, "75% of that, 24/s") {
		t.Errorf("%s", md)
	}
	st.Busy = nil // no machine figures (not Linux): the suite's own
	if c := priced(st, 2); c.MachineMS != 50 || c.Chosen != 30 {
		t.Errorf("%+v: want 50 ms and 30/s", c)
	}
	st.CPU = []cpuFigure{{"orders", 1}}
	if c := priced(st, 2); c.Chosen != maxAutoRate {
		t.Errorf("%+v: want the bound, %d/s", c, maxAutoRate)
	}
	st.CPU = []cpuFigure{{"orders", 5000}}
	if c := priced(st, 2); c.Chosen != 1 {
		t.Errorf("%+v: want at least 1/s", c)
	}
}
