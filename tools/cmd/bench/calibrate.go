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
// default) the bench reads how busy the machine is with the suite idle
// (Kafka's consumers poll, sidecars probe their apps), then a short
// calibration stream at calibrationRate prices an order in the machine's
// CPU beyond that, and the stream runs at streamShare of what the cores
// left over serve at that price.
const (
	calibrationRate     = 10
	calibrationDuration = 15 * time.Second
	idleWindow          = 5 * time.Second
	streamShare         = 0.75
	// maxAutoRate bounds the chosen rate (and the customers signed up for
	// it before the calibration).
	maxAutoRate = 50
)

// calibration is how the stream's rate was chosen.
type calibration struct {
	Rate   int `json:"rate"`
	Orders int `json:"orders"`
	// IdleCores is how busy the machine was with the suite idle (-1: not
	// read, as where /proc/stat is missing).
	IdleCores float64 `json:"idle_cores"`
	// OrderMS is an order's CPU beyond the idle machine's: the machine's
	// where it can be read, else the suite's processes' (ms).
	OrderMS float64 `json:"cpu_ms_per_order"`
	// SpareCores is the cores left over with the suite idle; Sustained the
	// orders per second they serve at OrderMS; Chosen the stream's rate,
	// streamShare of it.
	SpareCores float64 `json:"spare_cores"`
	Sustained  float64 `json:"sustained_per_s"`
	Chosen     int     `json:"chosen_rate"`
}

// calibrate reads the idle machine, runs the calibration stream and returns
// the rate for the sustained stream.
func calibrate(ctx context.Context, o options, s shop, cores int) (*calibration, error) {
	idle := -1.0
	if m0, ok := machineCPU(); ok {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(idleWindow):
		}
		if m1, ok := machineCPU(); ok {
			idle = (m1 - m0) / idleWindow.Seconds()
		}
	}
	c := o
	c.streamRate, c.streamDuration = calibrationRate, calibrationDuration
	st, err := runStream(ctx, c, s)
	if err != nil {
		return nil, err
	}
	return priced(st, cores, idle), nil
}

// priced works the stream's rate out of a calibration stream's figures and
// the idle machine's busy cores (negative: unknown).
func priced(st *streamFigures, cores int, idle float64) *calibration {
	cal := &calibration{Rate: st.Rate, Orders: st.Orders, IdleCores: idle, SpareCores: float64(cores)}
	if b := st.Busy; b != nil && idle >= 0 && b.Seconds > 0 && st.Orders > 0 {
		cal.OrderMS = max(0, b.Machine-idle) * b.Seconds * 1000 / float64(st.Orders)
		cal.SpareCores -= idle
	} else {
		cal.IdleCores = -1
		for _, f := range st.CPU {
			cal.OrderMS += f.MS
		}
	}
	if cal.OrderMS > 0 && cal.SpareCores > 0 {
		cal.Sustained = cal.SpareCores * 1000 / cal.OrderMS
	}
	cal.Chosen = min(maxAutoRate, max(1, int(streamShare*cal.Sustained)))
	return cal
}

// markdown says how the stream's rate was chosen.
func (c *calibration) markdown() string {
	how := fmt.Sprintf("%.1f ms of the suite's processes' CPU an order (the machine's CPU could not be read)", c.OrderMS)
	if c.IdleCores >= 0 {
		how = fmt.Sprintf("%.1f ms of the machine's CPU an order beyond the %.2f cores it kept busy with the suite idle", c.OrderMS, c.IdleCores)
	}
	return fmt.Sprintf("\nThe stream's rate was chosen by the bench (-stream-rate 0): a calibration stream of %d orders at %d/s cost %s, "+
		"at which the %.2f cores left serve %.1f orders/s; the stream runs at %.0f%% of that, %d/s.\n",
		c.Orders, c.Rate, how, c.SpareCores, c.Sustained, 100*streamShare, c.Chosen)
}
