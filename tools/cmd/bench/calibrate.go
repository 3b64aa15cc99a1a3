package main

import (
	"context"
	"fmt"
	"time"
)

// The sustained stream runs at the rate this machine sustains, not at a
// rate fixed for another: the same code measured 1.2 ms and 3.0 ms for the
// floor's two-hop call on two machines of one kind, and a stream above the
// machine's ceiling measures only its backlog. With -stream-rate 0 (the
// default) a short calibration stream at calibrationRate prices an order in
// the machine's CPU (the suite's processes, and the broker, stores and
// generator in proportion), and the stream runs at streamShare of what the
// machine's cores serve at that price.
const (
	calibrationRate     = 10
	calibrationDuration = 15 * time.Second
	streamShare         = 0.75
	// maxAutoRate bounds the chosen rate (and the customers signed up for
	// it before the calibration).
	maxAutoRate = 50
)

// calibration is how the stream's rate was chosen.
type calibration struct {
	Rate   int `json:"rate"`
	Orders int `json:"orders"`
	// MachineMS is an order's CPU on the whole machine, SuiteMS in the
	// suite's processes alone (ms).
	MachineMS float64 `json:"machine_cpu_ms_per_order"`
	SuiteMS   float64 `json:"suite_cpu_ms_per_order"`
	// Sustained is the orders per second the machine's cores serve at
	// MachineMS; Chosen is the stream's rate, streamShare of it.
	Sustained float64 `json:"sustained_per_s"`
	Chosen    int     `json:"chosen_rate"`
}

// calibrate runs the calibration stream and returns the rate for the
// sustained stream.
func calibrate(ctx context.Context, o options, s shop, cores int) (*calibration, error) {
	c := o
	c.streamRate, c.streamDuration = calibrationRate, calibrationDuration
	st, err := runStream(ctx, c, s)
	if err != nil {
		return nil, err
	}
	return priced(st, cores), nil
}

// priced works the stream's rate out of a calibration stream's figures.
func priced(st *streamFigures, cores int) *calibration {
	cal := &calibration{Rate: st.Rate, Orders: st.Orders}
	for _, f := range st.CPU {
		cal.SuiteMS += f.MS
	}
	cal.MachineMS = cal.SuiteMS
	if st.Busy != nil && st.Busy.Suite > 0 && st.Busy.Machine > st.Busy.Suite {
		cal.MachineMS *= st.Busy.Machine / st.Busy.Suite
	}
	if cal.MachineMS > 0 {
		cal.Sustained = float64(cores) * 1000 / cal.MachineMS
	}
	cal.Chosen = min(maxAutoRate, max(1, int(streamShare*cal.Sustained)))
	return cal
}

// markdown says how the stream's rate was chosen.
func (c *calibration) markdown(cores int) string {
	return fmt.Sprintf("\nThe stream's rate was chosen by the bench (-stream-rate 0): a calibration stream of %d orders at %d/s cost %.1f ms of the machine's CPU an order "+
		"(%.1f ms in the suite's processes, the rest the broker, the stores and the generator in proportion), at which %d cores serve %.1f orders/s; "+
		"the stream runs at %.0f%% of that, %d/s.\n",
		c.Orders, c.Rate, c.MachineMS, c.SuiteMS, cores, c.Sustained, 100*streamShare, c.Chosen)
}
