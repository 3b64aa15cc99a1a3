package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
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

// order returns the order journey's request: the i-th order is customer
// i's (modulo) for product i's; reply, if set, gets each 201.
func (s shop) order(reply func(i int, body []byte, at time.Time)) bench.Request {
	return bench.Request{Want: http.StatusCreated, Reply: reply, Make: func(i int) (*http.Request, error) {
		order := fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}]}`, s.ids[i%len(s.ids)])
		req, err := http.NewRequest(http.MethodPost, s.gateway+"/api/orders", strings.NewReader(order))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+s.tokens[i%len(s.tokens)])
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}}
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
// confirmed, reading it every pollEvery, at most within 15 s. It also
// returns when each order got its 201.
func placedToConfirmed(ctx context.Context, s shop, n int) (confirmFigures, map[string]time.Time, error) {
	var (
		f      confirmFigures
		took   []time.Duration
		placed = map[string]time.Time{}
	)
	for i := range n {
		tok := s.tokens[i%len(s.tokens)]
		var o struct{ ID, Status string }
		order := map[string]any{"items": []map[string]any{{"product_id": s.ids[i%len(s.ids)], "quantity": 1}}}
		if err := call(s.gateway, "POST", "/api/orders", tok, order, 201, &o); err != nil {
			return f, nil, err
		}
		at := time.Now()
		placed[o.ID] = at
		deadline := at.Add(15 * time.Second)
		for o.Status != "confirmed" {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return f, nil, fmt.Errorf("order %s still %s %s after its 201", o.ID, o.Status, time.Since(at).Round(time.Millisecond))
			}
			if o.Status == "cancelled" {
				return f, nil, fmt.Errorf("order %s was cancelled: the journey should confirm it", o.ID)
			}
			time.Sleep(pollEvery)
			if err := call(s.gateway, "GET", "/api/orders/"+o.ID, tok, nil, 200, &o); err != nil {
				return f, nil, err
			}
		}
		d := time.Since(at)
		took = append(took, d)
		f.Ms = append(f.Ms, float64(d.Microseconds())/1000)
	}
	f.N, f.P50, f.P90, f.P99, f.Max = n, bench.Percentile(took, 50), bench.Percentile(took, 90), bench.Percentile(took, 99), bench.Percentile(took, 100)
	return f, placed, nil
}

// latency is placed-to-notified for a set of orders: from each order's 201
// at the client to the created_at of its order.confirmed notification
// (when notifications handled the event; same machine, same clock), in ms.
type latency struct {
	Orders int     `json:"orders"`
	Found  int     `json:"found"` // orders whose order.confirmed notification was there
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

// confirmedEvent is the notification placed-to-notified looks for.
const confirmedEvent = "order.confirmed"

// notifiedAt reads every customer's notifications (after the stream: no
// polling under load) and returns when each order's order.confirmed
// notification was created.
func notifiedAt(ctx context.Context, s shop) (map[string]time.Time, error) {
	var (
		mu   sync.Mutex
		out  = map[string]time.Time{}
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 2)
	)
	for _, tok := range s.tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			var list struct {
				Notifications []struct {
					EventType string    `json:"event_type"`
					OrderID   string    `json:"order_id"`
					CreatedAt time.Time `json:"created_at"`
				}
			}
			err := call(s.gateway, "GET", "/api/notifications", tok, nil, 200, &list)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, n := range list.Notifications {
				if n.EventType == confirmedEvent {
					out[n.OrderID] = n.CreatedAt
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, ctx.Err()
}

// placedToNotified times each placed order (its 201) to its notification.
func placedToNotified(placed, notified map[string]time.Time) *latency {
	l := &latency{Orders: len(placed)}
	var ds []time.Duration
	for id, at := range placed {
		if n, ok := notified[id]; ok {
			ds = append(ds, n.Sub(at))
		}
	}
	l.Found = len(ds)
	l.P50, l.P90, l.P99, l.Max = bench.Percentile(ds, 50), bench.Percentile(ds, 90), bench.Percentile(ds, 99), bench.Percentile(ds, 100)
	return l
}

// confirmTable reports f and, for the same orders, n.
func confirmTable(f confirmFigures, n *latency) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPlaced to confirmed, %d orders one after another (below saturation: one in flight):\n\n", f.N)
	b.WriteString("| from the 201 to | orders | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| the order reading confirmed (polled every %s) | %d | %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n", pollEvery, f.N, f.P50, f.P90, f.P99, f.Max)
	if n != nil {
		b.WriteString(latencyRow("order.confirmed reaching notifications (its created_at)", n))
	}
	return b.String()
}

// latencyRow is one row of a placed-to-confirmed table.
func latencyRow(what string, l *latency) string {
	found := fmt.Sprint(l.Found)
	if l.Found != l.Orders {
		found = fmt.Sprintf("%d of %d (the others' notification was not in the list)", l.Found, l.Orders)
	}
	return fmt.Sprintf("| %s | %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n", what, found, l.P50, l.P90, l.P99, l.Max)
}
