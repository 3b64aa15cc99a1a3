package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/daprshop/suite/tools/bench"
)

// shop is what the suite's measurements act as: customers' tokens and
// products with stock.
type shop struct {
	gateway string
	tokens  []string
	ids     []string
}

// confirmFigures are the times from an order's 201 to its reading
// confirmed (payments' event has reached orders through the outbox), in
// milliseconds.
type confirmFigures struct {
	N   int       `json:"orders"`
	P50 float64   `json:"p50"`
	P90 float64   `json:"p90"`
	P99 float64   `json:"p99"`
	Max float64   `json:"max"`
	Ms  []float64 `json:"each"`
}

// pollEvery is how often an order is read while it waits to be confirmed.
const pollEvery = 10 * time.Millisecond

// placedToConfirmed places n orders one after another (below saturation:
// one in flight) and times each from its 201 to the gateway answering it
// confirmed, reading it every pollEvery, at most within 15 s.
func placedToConfirmed(ctx context.Context, s shop, n int) (confirmFigures, error) {
	var (
		f    confirmFigures
		took []time.Duration
	)
	for i := range n {
		tok := s.tokens[i%len(s.tokens)]
		var o struct{ ID, Status string }
		order := map[string]any{"items": []map[string]any{{"product_id": s.ids[i%len(s.ids)], "quantity": 1}}}
		if err := call(s.gateway, "POST", "/api/orders", tok, order, 201, &o); err != nil {
			return f, err
		}
		placed := time.Now()
		deadline := placed.Add(15 * time.Second)
		for o.Status != "confirmed" {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return f, fmt.Errorf("order %s still %s %s after its 201", o.ID, o.Status, time.Since(placed).Round(time.Millisecond))
			}
			if o.Status == "cancelled" {
				return f, fmt.Errorf("order %s was cancelled: the journey should confirm it", o.ID)
			}
			time.Sleep(pollEvery)
			if err := call(s.gateway, "GET", "/api/orders/"+o.ID, tok, nil, 200, &o); err != nil {
				return f, err
			}
		}
		d := time.Since(placed)
		took = append(took, d)
		f.Ms = append(f.Ms, float64(d.Microseconds())/1000)
	}
	f.N, f.P50, f.P90, f.P99, f.Max = n, bench.Percentile(took, 50), bench.Percentile(took, 90), bench.Percentile(took, 99), bench.Percentile(took, 100)
	return f, nil
}

// confirmTable reports f.
func confirmTable(f confirmFigures) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPlaced to confirmed (%d orders one after another; from the 201 to the order reading confirmed, polled every %s):\n\n", f.N, pollEvery)
	b.WriteString("| p50 | p90 | p99 | max |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n", f.P50, f.P90, f.P99, f.Max)
	return b.String()
}
