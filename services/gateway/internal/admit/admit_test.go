package admit_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/gateway/internal/admit"
)

const (
	target = 100 * time.Millisecond
	idle   = 250 * time.Millisecond
)

func newLimiter(t *testing.T, min, max, window int) (*admit.Limiter, *leasetest.Clock) {
	t.Helper()
	clock := leasetest.NewClock()
	l, err := admit.New(admit.Config{Target: target, Min: min, Burst: min, Max: max, Window: window, Idle: idle}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

// fill admits n requests, failing if any is refused.
func fill(t *testing.T, l *admit.Limiter, n int) []admit.Ticket {
	t.Helper()
	var ts []admit.Ticket
	for i := range n {
		tk, ok := l.Acquire()
		if !ok {
			t.Fatalf("request %d of %d refused: %+v", i+1, n, l.State())
		}
		ts = append(ts, tk)
	}
	return ts
}

// finish ends tickets after took each (one after another on the clock).
func finish(clock *leasetest.Clock, took time.Duration, ts ...admit.Ticket) {
	clock.Add(took)
	for _, tk := range ts {
		tk.Done()
	}
}

func wantLimit(t *testing.T, l *admit.Limiter, want int, when string) {
	t.Helper()
	if got := l.State().Limit; got != want {
		t.Fatalf("%s: limit %d, want %d (%+v)", when, got, want, l.State())
	}
}

func TestConfigValidate(t *testing.T) {
	good := admit.Config{Target: time.Millisecond, Min: 1, Burst: 1, Max: 1, Window: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("%+v: %v", good, err)
	}
	for name, c := range map[string]admit.Config{
		"no target":   {Min: 1, Max: 1, Window: 1},
		"min 0":       {Target: time.Second, Min: 0, Max: 1, Window: 1},
		"max < min":   {Target: time.Second, Min: 4, Max: 3, Window: 1},
		"no window":   {Target: time.Second, Min: 1, Max: 1},
		"late < 0":    {Target: time.Second, Min: 1, Burst: 1, Max: 1, Window: 1, Late: -1},
		"all at once": {},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, c)
		}
		if _, err := admit.New(c, time.Now); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
}

// TestRefusesAtOnceOverTheLimit: a new limiter admits Max, refuses the next
// without waiting, and admits again once one is done.
func TestRefusesAtOnceOverTheLimit(t *testing.T) {
	l, clock := newLimiter(t, 1, 3, 100)
	ts := fill(t, l, 3)
	if _, ok := l.Acquire(); ok {
		t.Fatal("a 4th request admitted with a limit of 3")
	}
	if s := l.State(); s.Admitted != 3 || s.Shed != 1 || s.InFlight != 3 || s.Limit != 3 {
		t.Fatalf("state %+v", s)
	}
	finish(clock, time.Millisecond, ts[0])
	tk, ok := l.Acquire()
	if !ok {
		t.Fatal("refused after one was done")
	}
	finish(clock, time.Millisecond, tk, ts[1], ts[2])
	if s := l.State(); s.InFlight != 0 || s.Admitted != 4 {
		t.Fatalf("state after all done %+v", s)
	}
}

// round admits n more requests and ends them after took each.
func round(t *testing.T, l *admit.Limiter, clock *leasetest.Clock, n int, took time.Duration) {
	t.Helper()
	finish(clock, took, fill(t, l, n)...)
}

// refuse asks for one more request, which must be refused: a client met
// the limit.
func refuse(t *testing.T, l *admit.Limiter) {
	t.Helper()
	if _, ok := l.Acquire(); ok {
		t.Fatalf("admitted over the limit: %+v", l.State())
	}
}

// full is round with the limit reached: n more fill it, and one is refused.
func full(t *testing.T, l *admit.Limiter, clock *leasetest.Clock, n int, took time.Duration) {
	t.Helper()
	ts := fill(t, l, n)
	refuse(t, l)
	finish(clock, took, ts...)
}

// TestLimitShrinksWhenLatencyExceedsTarget: at the limit, a window whose
// median is twice the target halves it; the requests admitted before the
// cut do not cut it again; a median far over the target cuts by half at
// most; the limit never falls below Min.
func TestLimitShrinksWhenLatencyExceedsTarget(t *testing.T) {
	l, clock := newLimiter(t, 3, 20, 4)
	old := fill(t, l, 20)
	refuse(t, l)
	finish(clock, 2*target, old[:4]...)
	wantLimit(t, l, 10, "after a window at twice the target")
	refuse(t, l) // 16 in flight
	// Admitted before the cut: they tell of the old limit.
	finish(clock, 5*target, old[4:12]...)
	wantLimit(t, l, 10, "after 8 requests admitted before the cut")
	old = old[12:] // 8 in flight from before: room for 2
	full(t, l, clock, 2, 10*target)
	full(t, l, clock, 2, 10*target)
	wantLimit(t, l, 5, "after a window at 10 times the target")
	finish(clock, 0, old[:4]...) // 4 left: room for 1 at a time
	for range 4 {
		full(t, l, clock, 1, 10*target)
	}
	wantLimit(t, l, 3, "at the floor")
	finish(clock, 0, old[4:6]...) // 2 left: room for 1 at a time
	for range 8 {
		full(t, l, clock, 1, 10*target)
	}
	wantLimit(t, l, 3, "still at the floor")
	finish(clock, 0, old[6:]...)
}

// TestLimitGrowsBack: after a cut, windows within the target at the limit
// raise it by one each, up to Max and no further; a window within the
// target that did not reach the limit does not raise it.
func TestLimitGrowsBack(t *testing.T) {
	l, clock := newLimiter(t, 1, 10, 4)
	old := fill(t, l, 10)
	refuse(t, l)
	finish(clock, 3*target, old[:4]...)
	wantLimit(t, l, 5, "after the cut")
	hold := old[4:8] // 4 stay in flight throughout: the class is never idle
	finish(clock, 0, old[8:]...)
	for range 4 { // a window of 4, each at the limit of 5, one refused
		full(t, l, clock, 1, target/10)
	}
	wantLimit(t, l, 6, "after one window at the limit within the target")
	// Below the limit: 1 of 2 free slots used, none refused.
	for range 4 {
		round(t, l, clock, 1, target/10)
	}
	wantLimit(t, l, 6, "after a window that did not reach the limit")
	for range 100 {
		full(t, l, clock, l.State().Limit-l.State().InFlight, target/10)
	}
	wantLimit(t, l, 10, "after many windows at the limit within the target")
	finish(clock, 0, hold...)
}

// TestIdleClassGoesBackToMax: once nothing of the class has been in flight
// for Idle, the limit is Max again, whatever cut it; a class whose last
// request ended a moment before the next came keeps its limit.
func TestIdleClassGoesBackToMax(t *testing.T) {
	l, clock := newLimiter(t, 1, 8, 2)
	old := fill(t, l, 8)
	refuse(t, l)
	finish(clock, 10*target, old[:2]...)
	wantLimit(t, l, 4, "after the cut")
	finish(clock, 10*target, old[2:7]...)
	wantLimit(t, l, 4, "with one still in flight")
	finish(clock, 0, old[7])
	clock.Add(idle - time.Millisecond)
	ts := fill(t, l, 4)
	if _, ok := l.Acquire(); ok {
		t.Fatalf("a 5th request admitted after %s idle: %+v", idle-time.Millisecond, l.State())
	}
	finish(clock, 0, ts...)
	wantLimit(t, l, 4, "the moment the last request ended")
	clock.Add(idle)
	wantLimit(t, l, 8, "with none in flight for "+idle.String()+", before a request came (the gauge)")
	fill(t, l, 8)
	wantLimit(t, l, 8, "after a request came with none in flight for "+idle.String())
}

// TestUnreachedLimit: a limit nobody reached is not cut for a slow median
// (a closed group of clients, none refused), and comes down to twice what
// was in flight, Burst at least, after a window within the target.
func TestUnreachedLimit(t *testing.T) {
	clock := leasetest.NewClock()
	l, err := admit.New(admit.Config{Target: target, Min: 1, Burst: 6, Max: 40, Window: 4, Idle: idle}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	hold := fill(t, l, 1) // never idle
	ts := fill(t, l, 16)
	finish(clock, 5*target, ts[:4]...)
	wantLimit(t, l, 40, "after a window at 5 times the target, 17 in flight, none refused")
	finish(clock, 0, ts[4:]...) // three more such windows
	wantLimit(t, l, 40, "after four such windows")
	round(t, l, clock, 4, target/2) // 5 in flight at most
	wantLimit(t, l, 10, "after a window within the target with 5 in flight")
	round(t, l, clock, 1, target/2)
	round(t, l, clock, 1, target/2)
	round(t, l, clock, 1, target/2)
	round(t, l, clock, 1, target/2) // 2 in flight at most
	wantLimit(t, l, 6, "after a window within the target with 2 in flight (Burst 6)")
	round(t, l, clock, 4, 10*target) // 5 in flight, 10 times the target
	wantLimit(t, l, 6, "after a window at 10 times the target with 5 in flight, none refused")
	finish(clock, 0, hold...)
}

// TestSharedPressureCutsAnUnreachedClass: a class whose limit nobody
// reached is cut for a slow median when a class sharing its Pressure
// refused a client during the window, from what it had in flight; a
// refusal before the window, or in a class with a pressure of its own,
// does not cut it.
func TestSharedPressureCutsAnUnreachedClass(t *testing.T) {
	clock := leasetest.NewClock()
	shared := &admit.Pressure{}
	mk := func(max int, p *admit.Pressure) *admit.Limiter {
		l, err := admit.New(admit.Config{Target: target, Min: 1, Burst: min(6, max), Max: max, Window: 4, Idle: idle, Shared: p}, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	reads, orders, alone := mk(40, shared), mk(1, shared), mk(40, &admit.Pressure{})
	holdReads, holdAlone := fill(t, reads, 1), fill(t, alone, 1) // never idle
	held := fill(t, orders, 1)
	refuse(t, orders)
	round(t, reads, clock, 4, target/2) // 5 in flight at most
	wantLimit(t, reads, 10, "after a window within the target with 5 in flight")
	// The orders' refusal came before this window: it tells nothing of it.
	round(t, reads, clock, 4, 4*target)
	wantLimit(t, reads, 10, "after a slow window with the orders' refusal before it")

	refuse(t, orders)
	round(t, alone, clock, 4, 4*target)
	wantLimit(t, alone, 40, "a class with a pressure of its own, after a slow window with the orders' refusal in it")
	round(t, reads, clock, 4, 4*target)
	wantLimit(t, reads, 2, "after a slow window with the orders' refusal in it: half of the 5 in flight")
	finish(clock, 0, held...)
	finish(clock, 0, holdReads...)
	finish(clock, 0, holdAlone...)
}

// TestOneSlowRequestDoesNotCut: the decision reads the median, so a window
// with one request 50 times the target and the others fast keeps the limit.
func TestOneSlowRequestDoesNotCut(t *testing.T) {
	l, clock := newLimiter(t, 1, 10, 5)
	ts := fill(t, l, 10)
	finish(clock, target/10, ts[:4]...)
	finish(clock, 50*target, ts[4])
	wantLimit(t, l, 10, "after one slow request among five")
	finish(clock, 0, ts[5:]...)
}

// TestLateRequestCutsAtOnce: a client refused while an admitted request has
// been in flight longer than Late cuts the limit without waiting for a
// window; the same requests do not cut it again, a request admitted after
// the cut that is late cuts once more, and nothing is cut while no client
// is refused or with Late 0.
func TestLateRequestCutsAtOnce(t *testing.T) {
	clock := leasetest.NewClock()
	cfg := admit.Config{Target: target, Min: 1, Burst: 16, Max: 16, Window: 100, Idle: idle, Late: 2 * target}
	l, err := admit.New(cfg, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	old := fill(t, l, 16)
	clock.Add(2 * target)
	refuse(t, l)
	wantLimit(t, l, 16, "refused at exactly Late")
	clock.Add(time.Millisecond)
	refuse(t, l)
	wantLimit(t, l, 8, "refused after Late")
	clock.Add(10 * target)
	refuse(t, l)
	wantLimit(t, l, 8, "refused again, the same requests in flight")
	finish(clock, 0, old[:9]...) // 7 in flight: room for 1
	tk := fill(t, l, 1)
	clock.Add(4 * target)
	refuse(t, l)
	wantLimit(t, l, 4, "refused with a request admitted after the cut in flight for 4 times the target")
	finish(clock, 0, old[9:]...)
	finish(clock, 0, tk...)

	cfg.Late = 0
	calm, err := admit.New(cfg, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	hold := fill(t, calm, 16)
	clock.Add(10 * target)
	refuse(t, calm)
	wantLimit(t, calm, 16, "Late 0")
	finish(clock, 0, hold...)

	cfg.Late = target
	unreached, err := admit.New(cfg, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	hold = fill(t, unreached, 8)
	clock.Add(10 * target)
	wantLimit(t, unreached, 16, "late requests in flight, nobody refused")
	finish(clock, 0, hold...)
}

// TestPilingUpHoldsTheLimit: with Hold, an arrival that finds more in
// flight than the most of the second before the last (by more than two)
// while one is late holds the limit at the most in flight during the last
// second; a burst that arrives together, a group that stays the same size
// while late, and two more than a calm's most are not held; a window within the target with nobody
// refused brings the held limit back up; with Late 0 or without Hold
// nothing is held.
func TestPilingUpHoldsTheLimit(t *testing.T) {
	clock := leasetest.NewClock()
	cfg := admit.Config{Target: target, Min: 1, Burst: 16, Max: 40, Window: 4, Idle: idle, Late: 2 * target, Hold: true}
	mk := func(cfg admit.Config) *admit.Limiter {
		l, err := admit.New(cfg, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// calm keeps one request in flight for 2 s, one ending as the next
	// comes, so that the class is never idle.
	calm := func(l *admit.Limiter) admit.Ticket {
		tk := fill(t, l, 1)[0]
		for range 20 {
			clock.Add(100 * time.Millisecond)
			next := fill(t, l, 1)[0]
			tk.Done()
			tk = next
		}
		return tk
	}

	l := mk(cfg)
	last := calm(l)
	wantLimit(t, l, 16, "after calm windows (Burst)")
	burst := fill(t, l, 15) // at once: none late as they arrive
	wantLimit(t, l, 16, "a burst arriving at once")
	// The burst stays in flight, late, the same size: each that ends is
	// replaced at once, for 3 s.
	for range 30 {
		clock.Add(100 * time.Millisecond)
		burst[0].Done()
		burst = append(burst[1:], fill(t, l, 1)...)
	}
	wantLimit(t, l, 16, "a group of 16 that stayed the same size for 3 s, late")
	finish(clock, 0, append(burst, last)...)

	l = mk(cfg)
	last = calm(l)
	clock.Add(3 * target)
	few := fill(t, l, 2)
	wantLimit(t, l, 16, "two arrivals while the calm's one is late: within two of the calm's 2")
	finish(clock, 0, append(few, last)...)

	l = mk(cfg)
	last = calm(l)
	// Arrivals every 50 ms that do not end: 1 in flight a second ago.
	var piled []admit.Ticket
	for len(piled) < 20 && l.State().Limit == 16 {
		clock.Add(50 * time.Millisecond)
		piled = append(piled, fill(t, l, 1)...)
	}
	// The calm had 2 in flight at each handoff: the first arrival that
	// makes 5 in flight while one is older than Late (200 ms: the calm
	// request, 250 ms old at the fifth) holds the limit where it is.
	if got := len(piled); got != 5 {
		t.Fatalf("held after %d arrivals, want 5 (%+v)", got, l.State())
	}
	wantLimit(t, l, 6, "held: 6 in flight")
	refuse(t, l)
	// The window with the refusal in it raises the limit by one; the next,
	// within the target with nobody refused, brings it back to twice what
	// was in flight, Burst at least.
	finish(clock, 0, piled...)
	clock.Add(100 * time.Millisecond)
	last.Done()
	for range 4 {
		round(t, l, clock, 1, target/2)
	}
	wantLimit(t, l, 7, "after the window with the refusal, within the target")
	for range 4 {
		round(t, l, clock, 1, target/2)
	}
	wantLimit(t, l, 16, "after a window within the target, nobody refused")

	for _, off := range []struct {
		name string
		cfg  func(*admit.Config)
	}{
		{"Late 0", func(c *admit.Config) { c.Late = 0 }},
		{"Hold false", func(c *admit.Config) { c.Hold = false }},
	} {
		c := cfg
		off.cfg(&c)
		l = mk(c)
		last = calm(l)
		piled = nil
		for range 15 {
			clock.Add(50 * time.Millisecond)
			piled = append(piled, fill(t, l, 1)...)
		}
		wantLimit(t, l, 16, off.name+": piling up while late")
		finish(clock, 0, append(piled, last)...)
	}
}

// slow is a handler that holds its request until release is closed.
type slow struct {
	started chan struct{}
	release chan struct{}
}

func (s slow) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.started <- struct{}{}
	<-s.release
	w.WriteHeader(http.StatusNoContent)
}

// TestHandlerRefusesAtOnceWithRetryAfter: over the limit, a request is
// answered at once (the one in flight is still held) with 503, Retry-After
// and the error model, and next never sees it.
func TestHandlerRefusesAtOnceWithRetryAfter(t *testing.T) {
	l, _ := newLimiter(t, 1, 1, 10)
	h := slow{started: make(chan struct{}, 1), release: make(chan struct{})}
	srv := l.Handler(slog.New(slog.DiscardHandler), h)
	first := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("POST", "/api/orders", nil))
		first <- w.Code
	}()
	<-h.started
	refused := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("POST", "/api/orders", strings.NewReader(`{}`)))
		refused <- w
	}()
	var w *httptest.ResponseRecorder
	select {
	case w = <-refused:
	case <-h.started:
		t.Fatal("the second request reached the handler with a limit of 1")
	case <-time.After(5 * time.Second):
		t.Fatal("the second request waited instead of being refused")
	}
	close(h.release)
	if code := <-first; code != http.StatusNoContent {
		t.Fatalf("the admitted request got %d", code)
	}
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("refusal: %d Retry-After %q Content-Type %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Content-Type"))
	}
	var body web.ErrorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error.Code != "unavailable" || body.Error.Message != admit.ShedMessage {
		t.Fatalf("refusal body: %v %+v", err, body)
	}
	if s := l.State(); s.Admitted != 1 || s.Shed != 1 || s.InFlight != 0 {
		t.Fatalf("state %+v", s)
	}
}

func TestNilLimiterAdmitsEverything(t *testing.T) {
	var l *admit.Limiter
	called := 0
	h := l.Handler(slog.New(slog.DiscardHandler), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called++ }))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if called != 3 {
		t.Fatalf("next called %d times, want 3", called)
	}
}

func TestCollector(t *testing.T) {
	order, clock := newLimiter(t, 1, 2, 10)
	read, _ := newLimiter(t, 1, 5, 10)
	ts := fill(t, order, 2)
	order.Acquire()
	order.Acquire()
	finish(clock, time.Millisecond, ts[0])
	reg := prometheus.NewRegistry()
	reg.MustRegister(admit.Collector(map[string]*admit.Limiter{"order": order, "read": read}))
	want := `
# HELP admission_in_flight How many admitted requests of the class are in flight now.
# TYPE admission_in_flight gauge
admission_in_flight{class="order"} 1
admission_in_flight{class="read"} 0
# HELP admission_limit How many requests of the class may be in flight through the suite now (the adaptive limit).
# TYPE admission_limit gauge
admission_limit{class="order"} 2
admission_limit{class="read"} 5
# HELP admission_requests_total Requests the gateway's admission control admitted or refused at once (shed), by class (read, track, order, write).
# TYPE admission_requests_total counter
admission_requests_total{class="order",outcome="admitted"} 2
admission_requests_total{class="order",outcome="shed"} 2
admission_requests_total{class="read",outcome="admitted"} 0
admission_requests_total{class="read",outcome="shed"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	finish(clock, 0, ts[1])
}
