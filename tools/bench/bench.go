// Package bench measures latency and throughput at a fixed arrival rate, the
// way the suite's performance report needs them: the same generator for the
// sidecar floor (a no-op app behind zero, one and two daprd hops, with the
// CPU its sidecars spend per call) and for the suite's endpoints, so every
// figure can be read as a ratio to the floor of the same run on the same
// machine. It also reads what the figures are made of: each daprd's
// Prometheus counters (operations by kind, deliveries by topic, CPU) and
// the records of the pub/sub's topics at the broker (Redis streams, Kafka
// topics), and runs a Kafka broker whose topics get a chosen number of
// partitions.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one measurement gave.
type Result struct {
	Name    string `json:"name"`
	Rate    int    `json:"rate"`    // requests/s asked
	Sent    int    `json:"sent"`    // requests sent
	Errors  int    `json:"errors"`  // transport errors and unexpected statuses
	Dropped int    `json:"dropped"` // not sent: too many in flight
	Done    int    `json:"done"`    // successful requests
	// Failures counts the errors by kind: the status of an unexpected
	// reply, "timeout" or "transport" for none.
	Failures   map[string]int `json:"failures,omitempty"`
	Throughput float64        `json:"throughput"` // successful requests/s
	P50        float64        `json:"p50_ms"`     // latency percentiles of successful requests, ms
	P90        float64        `json:"p90_ms"`
	P99        float64        `json:"p99_ms"`
	// CPU is the CPU time the measured processes spent per successful
	// request, in ms, where the measurement reads it (the floor's two
	// sidecars for two hops); 0 where it does not.
	CPU  float64 `json:"cpu_ms_per_request,omitempty"`
	Note string  `json:"note,omitempty"`
}

// Request is one call of a measurement: it builds the request for the i-th
// call and names the status that counts as success. Reply, if set, is
// called (from the request's goroutine) with every reply of that status,
// its body and the time it arrived.
type Request struct {
	Make  func(i int) (*http.Request, error)
	Want  int
	Reply func(i int, body []byte, at time.Time)
}

// MaxInFlight bounds the requests a measurement keeps open; beyond it,
// arrivals are dropped and counted, so an overloaded target shows up as
// drops, not as a generator that slows down to match it.
const MaxInFlight = 512

// Client is the HTTP client of the measurements: keep-alive connections, as
// many as the generator may keep in flight.
var Client = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConns:        MaxInFlight,
		MaxIdleConnsPerHost: MaxInFlight,
		IdleConnTimeout:     30 * time.Second,
	},
}

// Measure sends r at rate per second for d (open loop: arrivals do not wait
// for replies) and returns the figures.
func Measure(ctx context.Context, name string, rate int, d time.Duration, r Request) Result {
	res := Result{Name: name, Rate: rate}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
		inflight  atomic.Int64
		wg        sync.WaitGroup
	)
	fail := func(kind string) {
		errs.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if res.Failures == nil {
			res.Failures = map[string]int{}
		}
		res.Failures[kind]++
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; ; i++ {
		next := start.Add(time.Duration(i) * interval)
		if !next.Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			res.Note = "interrupted"
		case <-time.After(time.Until(next)):
		}
		if ctx.Err() != nil {
			break
		}
		if inflight.Load() >= MaxInFlight {
			res.Dropped++
			continue
		}
		req, err := r.Make(i)
		if err != nil {
			fail("request")
			continue
		}
		res.Sent++
		inflight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inflight.Add(-1)
			t0 := time.Now()
			resp, err := Client.Do(req.WithContext(ctx))
			if err != nil {
				var nerr net.Error
				if errors.As(err, &nerr) && nerr.Timeout() {
					fail("timeout")
				} else {
					fail("transport")
				}
				return
			}
			var body []byte
			if r.Reply != nil && resp.StatusCode == r.Want {
				body, err = io.ReadAll(resp.Body)
			} else {
				_, err = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
			at := time.Now()
			took := at.Sub(t0)
			if resp.StatusCode != r.Want {
				fail(strconv.Itoa(resp.StatusCode))
				return
			}
			if err != nil {
				fail("transport")
				return
			}
			if r.Reply != nil {
				r.Reply(i, body, at)
			}
			mu.Lock()
			latencies = append(latencies, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	res.Errors = int(errs.Load())
	res.Done = len(latencies)
	res.Throughput = float64(len(latencies)) / elapsed.Seconds()
	res.P50, res.P90, res.P99 = Percentile(latencies, 50), Percentile(latencies, 90), Percentile(latencies, 99)
	return res
}

// Percentile returns the p-th percentile of ds in milliseconds (0 for
// none), nearest rank: the one definition of every figure in the report.
func Percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}

// Get returns a Request for GET url with the given headers, wanting 200.
func Get(url string, header http.Header) Request {
	return Request{Want: http.StatusOK, Make: func(int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err == nil {
			req.Header = header.Clone()
		}
		return req, err
	}}
}

// Table renders results as a Markdown table with each one's ratio to floor
// (by p50 and p90; floor may be nil).
func Table(results []Result, floor *Result) string {
	var b strings.Builder
	b.WriteString("| measurement | rate/s | sent | errors | dropped | done/s | p50 ms | p90 ms | p99 ms | × floor p50 | × floor p90 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ratio50, ratio90 := "", ""
		if floor != nil && floor.P50 > 0 && floor.P90 > 0 {
			ratio50, ratio90 = fmt.Sprintf("%.1f", r.P50/floor.P50), fmt.Sprintf("%.1f", r.P90/floor.P90)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.0f | %.2f | %.2f | %.2f | %s | %s |\n",
			r.Name, r.Rate, r.Sent, r.Errors, r.Dropped, r.Throughput, r.P50, r.P90, r.P99, ratio50, ratio90)
	}
	return b.String()
}
