// Package admit is the gateway's admission control: for each class of
// request it bounds how many are in flight through the suite at once, with a
// limit that adapts to the latency the admitted ones get, and refuses the
// rest at once.
//
// Why at the edge: two cores serve about 50 orders a second (33 ms of CPU
// each across the services and their sidecars, docs/performance.md). A
// client asking 200 a second, with nothing bounding the work, had every
// request wait somewhere (the gateway's heap, orders, the sidecars) until
// all of them were seconds late and timed out: p50 3.9 s, hundreds of
// errors, 60 MB held by the gateway. Work admitted beyond what the suite
// finishes within the latency target only makes every request late; refused
// at the gateway, the excess costs a fraction of a millisecond, and what is
// admitted stays fast.
//
// Why no queue: a request over the limit is refused, not kept waiting for a
// slot. Under a sustained overload a queue is always full, so it only adds
// its length to the latency of what is admitted, and memory to the gateway;
// a client told 503 with Retry-After at once can go elsewhere or come back.
//
// Why adaptive: how many orders the suite can hold in flight within the
// target depends on the machine, the replicas, the other load (reads, the
// events every order causes after its reply, the refusals themselves) and
// the store, so it is measured rather than configured. The limit follows
// AIMD on latency, as in Netflix's concurrency-limits: after every window of
// Window completed requests in which a client was refused, a median above
// Target cuts the limit in proportion to how far over it is (by half at
// most, to Min at least), and a median within Target raises it by one. The
// median, not a high percentile: an overload moves every request, while a
// few slow ones (a restart, a retry, a collection) move only the tail, and
// must not shrink the limit.
//
// A limit nobody reached is never cut: clients that are never refused are
// a closed group (a test's 16 parallel requests, 50 orders at once), whose
// latency fewer in flight would not improve, as each would wait its turn
// anyway. So that an overload does reach the limit soon, a limit
// nobody reached in a window within the target comes down to twice what was
// in flight (Burst at least): from a calm rate, a spike meets a limit near
// what the calm needed and is refused beyond it at once, and the limit
// grows while the latency allows. Once nothing of the class has been in
// flight for Idle, the limit is Max again: a client's burst after a quiet
// spell (50 orders at once) is admitted whole. Not at once: under an
// overload the last request in flight may end a moment before the next one
// comes, and the limit must hold then. Requests admitted before a cut tell
// of the limit before it, and are left out of the windows after it.
//
// A window's median speaks only after Window requests complete, too late
// for the first second of a spike: the requests admitted up to the limit
// in that second all wait behind each other, and nothing is decided until
// they are done. So a client refused while an admitted request has been in
// flight longer than Late (twice the target, as the gateway sets it) cuts
// the limit at once, in proportion, as a window would; only requests
// admitted after the last cut are looked at, so that one slow request cuts
// once.
//
// Classes keep cheap reads from being starved by orders (an order costs
// the CPU of 7 to 15 reads): each class has its own limit, target and
// bounds. But they share the machine: under an open-loop overload, reads
// that never reach their limit (two a journey, each quick) took half the
// CPU while orders were refused, and both classes ran 4 to 9 times over
// their targets (a slower machine, k6 stress at 60 journeys/s: 6,218
// reads admitted, none refused, orders' limit at 1). Classes given one
// Pressure (Config.Shared) therefore read a refusal in any of them as the
// machine's overload: a window whose median is over the target then cuts
// its class's limit even though none of its own clients was refused, from
// what was in flight at most. A closed group with nobody refused anywhere
// (16 parallel orders) is still not cut.
//
// Nor did anything stop the climb into an overload: from a calm rate, the
// limit sits at Burst (16 orders) while nobody reaches it, and as the
// arrival rate rose past what the machine serves, orders piled up under it,
// each slower than the one before, until the sixteenth: at 60 journeys/s
// every admitted order slower than 250 ms (80 of 669) came from those four
// seconds, and none after. A closed group does not pile up: once its
// clients are in, as many are in flight as a moment before, or fewer, while
// arrivals faster than completions make more in flight now than at any
// moment a second earlier. So, with Hold, an arrival that finds more in
// flight than the most of the second before the last (by more than two),
// while a request admitted since the last cut is older than Late, holds the
// limit at the most in flight during the last second: the arrivals after
// it are refused, which the cuts above need. Not held: a burst that arrives
// together (none is late yet), a group of clients of any size that started
// together, and jitter within a group (its dips and returns stay within the
// most of a second earlier). Held: clients that keep joining while requests
// are late, whether each comes once or back to back, as that is a load
// still rising. A window within the target with nobody refused brings the
// held limit back to twice what was in flight (Burst at least), so that a
// hold after a moment's stall does not refuse the calm after it. Classes opt
// in (Config.Hold), and the gateway leaves it off unless ADMIT_ORDER_HOLD
// says otherwise: an attack (simulated) found it refuses calm traffic that
// arrives in clumps (Poisson at 15 a second, half the machine: a clump of
// three while one order is late), groups whose clients join over more than
// Late, and worker pools whose jobs mix orders with other requests (the
// orders of 16 workers held, then cut to Min for as long as they ran), none
// of which the default refuses. Telling those from a pile-up needs more
// evidence than one late request and a rise of three. An earlier hold that
// read one window's two counts (in flight at its start and at its close)
// took a closed group's jitter for a pile-up, and is gone.
package admit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Config bounds one class of requests.
type Config struct {
	// Target is the median latency the limit aims for: a window of admitted
	// requests whose median is above it cuts the limit.
	Target time.Duration
	// Min is the least the limit falls to: that many requests are always
	// admitted, whatever the latency.
	Min int
	// Burst is the least a limit nobody reached comes down to: from a
	// calm state, a burst of that many is admitted at once.
	Burst int
	// Max is the most the limit rises to, and the limit of an idle class
	// (see Idle): a burst of that many after a quiet spell is admitted.
	Max int
	// Window is how many completed requests make one decision.
	Window int
	// Late is how long an admitted request may be in flight while clients
	// are refused before the limit is cut without waiting for a window;
	// 0 waits for the window always.
	Late time.Duration
	// Hold is whether requests piling up while one is older than Late hold
	// the limit where they are (see the package doc): more in flight than
	// at any moment of the second before the last. Only for a class
	// whose parallel clients come alone: a closed group that mixes classes
	// (16 parallel requests, some reads, some orders) has no fixed number
	// in flight in any one class, and a class held at its share of the
	// moment would refuse its share of the next.
	Hold bool
	// Idle is how long nothing of the class must be in flight for the limit
	// to go back to Max: long enough that a class under a steady overload,
	// whose last request ends a moment before the next comes, keeps its
	// limit.
	Idle time.Duration
	// Shared is the pressure of the classes that share the machine (nil:
	// this class alone): see the package doc.
	Shared *Pressure
}

// Pressure is when a request of any of the classes sharing it was last
// refused. It is safe for concurrent use.
type Pressure struct {
	mu   sync.Mutex
	last time.Time
}

// refused records a refusal at now.
func (p *Pressure) refused(now time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.After(p.last) {
		p.last = now
	}
}

// since reports whether a request was refused at t or later.
func (p *Pressure) since(t time.Time) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.last.IsZero() && !p.last.Before(t)
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.Target <= 0 {
		errs = append(errs, errors.New("target must be positive"))
	}
	if c.Min < 1 {
		errs = append(errs, errors.New("min must be at least 1"))
	}
	if c.Burst < c.Min {
		errs = append(errs, fmt.Errorf("burst (%d) must be at least min (%d)", c.Burst, c.Min))
	}
	if c.Max < c.Burst {
		errs = append(errs, fmt.Errorf("max (%d) must be at least burst (%d)", c.Max, c.Burst))
	}
	if c.Window < 1 {
		errs = append(errs, errors.New("window must be at least 1"))
	}
	if c.Idle < 0 {
		errs = append(errs, errors.New("idle must not be negative"))
	}
	if c.Late < 0 {
		errs = append(errs, errors.New("late must not be negative"))
	}
	return errors.Join(errs...)
}

// Limiter admits the requests of one class while fewer than its limit are in
// flight. It is safe for concurrent use.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	limit    float64
	inFlight int
	// The current window: latencies of completed requests, the most in
	// flight at once, and whether any arrival found the limit reached.
	samples []time.Duration
	peak    int
	reached bool
	// recent is the most in flight in each of the last spans, for Hold.
	recent spans
	// windowStart is when the current window began.
	windowStart time.Time
	// cutAt is when the limit was last cut: requests admitted before it
	// tell of the limit before, and are left out of the windows after.
	cutAt time.Time
	// idleSince is when the last request in flight ended.
	idleSince time.Time
	// started holds when each request in flight was admitted, by ticket.
	started map[uint64]time.Time
	nextID  uint64
	// Totals, for metrics.
	admitted, shed uint64
}

// New returns a limiter for cfg, at its Max; now is the clock (time.Now).
func New(cfg Config, now func() time.Time) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg, now: now, limit: float64(cfg.Max), windowStart: now(), recent: newSpans(now()),
		samples: make([]time.Duration, 0, cfg.Window), started: map[uint64]time.Time{}}, nil
}

// Ticket is one admitted request; Done must be called once it is over.
type Ticket struct {
	l     *Limiter
	id    uint64
	start time.Time
}

// Acquire admits a request if fewer than the limit are in flight. It never
// waits: false means refused.
func (l *Limiter) Acquire() (Ticket, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idle(now) {
		// Nothing of the class was in flight for a while: whatever
		// overload cut the limit has drained.
		l.limit = float64(l.cfg.Max)
	}
	if l.inFlight >= int(l.limit) {
		l.shed++
		l.reached = true
		l.cfg.Shared.refused(now)
		l.cutIfLate(now)
		return Ticket{}, false
	}
	l.inFlight++
	l.admitted++
	l.peak = max(l.peak, l.inFlight)
	if l.cfg.Hold {
		l.recent.note(now, l.inFlight-1, l.inFlight)
		// Piling up while one is late: hold the limit at once, as a window
		// would, instead of after the next Window completions.
		if before, lately := l.recent.most(now); l.inFlight > before+pileUp && l.late(now) {
			l.cut(float64(max(l.inFlight, lately)), now)
		}
	}
	l.nextID++
	l.started[l.nextID] = now
	return Ticket{l: l, id: l.nextID, start: now}, true
}

// idle reports whether nothing of the class has been in flight for Idle.
func (l *Limiter) idle(now time.Time) bool {
	return l.inFlight == 0 && now.Sub(l.idleSince) >= l.cfg.Idle
}

// cutIfLate cuts the limit when a request admitted since the last cut has
// been in flight longer than Late, in proportion to its age.
func (l *Limiter) cutIfLate(now time.Time) {
	if oldest := l.oldest(now); l.cfg.Late > 0 && oldest > l.cfg.Late {
		l.cut(l.limit*l.factor(oldest), now)
	}
}

// late reports whether a request admitted since the last cut has been in
// flight longer than Late (never, with Late 0).
func (l *Limiter) late(now time.Time) bool {
	return l.cfg.Late > 0 && l.oldest(now) > l.cfg.Late
}

// oldest is how long the oldest request admitted since the last cut has
// been in flight.
func (l *Limiter) oldest(now time.Time) time.Duration {
	var oldest time.Duration
	for _, start := range l.started {
		if !start.Before(l.cutAt) {
			oldest = max(oldest, now.Sub(start))
		}
	}
	return oldest
}

// factor is how much a latency of took over the target cuts the limit: in
// proportion, by half at most and a tenth at least.
func (l *Limiter) factor(took time.Duration) float64 {
	return max(0.5, math.Min(0.9, float64(l.cfg.Target)/float64(took)))
}

// Done records that the request is over, and its latency.
func (t Ticket) Done() {
	l := t.l
	if l == nil {
		return
	}
	end := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if l.cfg.Hold {
		l.recent.note(end, l.inFlight+1, l.inFlight)
	}
	delete(l.started, t.id)
	if !t.start.Before(l.cutAt) {
		l.samples = append(l.samples, end.Sub(t.start))
		if len(l.samples) >= l.cfg.Window {
			l.decide(end)
		}
	}
	if l.inFlight == 0 {
		l.idleSince = end
	}
}

// decide closes the window. With a client refused in it (the limit
// reached): a median over the target cuts the limit in proportion to how far
// over (by half at most, to Min at least), one within raises it by one.
// Without a refusal: a median within the target brings the limit to twice
// what was in flight at most (Burst at least): down, or with Hold also up,
// so that a hold does not outlive the moment that caused it; one over it
// changes nothing, as clients that are never refused are a closed group,
// whose latency fewer in flight would not improve, unless a class sharing
// the machine refused a client during the window: then it cuts, in
// proportion, what was in flight at most.
func (l *Limiter) decide(now time.Time) {
	slices.Sort(l.samples)
	median := l.samples[len(l.samples)/2]
	over := median > l.cfg.Target
	switch {
	case over && l.reached:
		l.cut(l.limit*l.factor(median), now)
	case over && l.cfg.Shared.since(l.windowStart):
		l.cut(math.Min(l.limit, float64(l.peak))*l.factor(median), now)
	case l.reached:
		l.limit = math.Min(float64(l.cfg.Max), l.limit+1)
	case !over && l.cfg.Hold:
		l.limit = math.Min(float64(l.cfg.Max), math.Max(float64(l.cfg.Burst), float64(2*l.peak)))
	case !over:
		l.limit = math.Min(l.limit, math.Max(float64(l.cfg.Burst), float64(2*l.peak)))
	}
	l.samples = l.samples[:0]
	l.peak = l.inFlight
	l.reached = false
	l.windowStart = now
}

// cut lowers the limit to to (Min at least); requests admitted before now
// are left out of the windows from here on.
func (l *Limiter) cut(to float64, now time.Time) {
	l.limit = math.Max(float64(l.cfg.Min), math.Min(l.limit, math.Floor(to)))
	l.cutAt = now
}

// State is a limiter's figures at one moment.
type State struct {
	// Limit is how many may be in flight at once now.
	Limit int
	// InFlight is how many are.
	InFlight int
	// Admitted and Shed count the requests admitted and refused so far.
	Admitted, Shed uint64
}

// State returns the limiter's figures now.
func (l *Limiter) State() State {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := int(l.limit)
	if l.idle(now) {
		// What the next request will find (Acquire resets it then): an
		// idle class's gauge must not show the cut of its last overload.
		limit = l.cfg.Max
	}
	return State{Limit: limit, InFlight: l.inFlight, Admitted: l.admitted, Shed: l.shed}
}

// pileUp is by how many the requests in flight must exceed the most in
// flight during the older half of the recent spans (a second, two seconds
// ago) to count as piling up: a closed group's momentary dips and returns
// stay within it.
const pileUp = 2

// A Limiter remembers the most in flight in each of the last spanCount
// spans of spanWidth: the newer half is the last second, the older half the
// second before.
const (
	spanWidth = 100 * time.Millisecond
	spanCount = 20
)

// spans is the most in flight in each of the last spanCount spans of
// spanWidth, by span number since origin (a ring).
type spans struct {
	origin time.Time
	last   int64
	peak   [spanCount]int
}

func newSpans(now time.Time) spans { return spans{origin: now} }

// note records that the requests in flight went from before to after at
// now: the spans since the last note held before throughout.
func (s *spans) note(now time.Time, before, after int) {
	cur := s.span(now)
	for i := s.last + 1; i <= cur && i <= s.last+spanCount; i++ {
		s.peak[i%spanCount] = before
	}
	s.last = max(s.last, cur)
	s.peak[cur%spanCount] = max(s.peak[cur%spanCount], after)
}

// most returns the most in flight during the older half of the spans and
// during the newer half, as of the last note (made at now).
func (s *spans) most(now time.Time) (older, newer int) {
	cur := s.span(now)
	for i := range int64(spanCount) {
		m := s.peak[((cur-i)%spanCount+spanCount)%spanCount]
		if i < spanCount/2 {
			newer = max(newer, m)
		} else {
			older = max(older, m)
		}
	}
	return older, newer
}

// span is the number of the span now is in, never before the last noted (a
// clock that steps back counts as the last span).
func (s *spans) span(now time.Time) int64 {
	return max(s.last, int64(now.Sub(s.origin)/spanWidth))
}
