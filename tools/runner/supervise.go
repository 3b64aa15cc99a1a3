package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Once a run is up, a process that exits on its own (a crash, an OOM kill,
// a kill -9 from a shell) is started again, as Kubernetes restarts a
// container: after a wait that doubles from Restarts.Backoff up to
// Restarts.MaxBackoff, and starts over once the process has stayed up for
// Restarts.StableAfter. The others keep running. Only a process that exits
// Restarts.Limit times within Restarts.Window ends the run: the runner then
// stops everything, and Wait returns an error naming it with its last
// lines. Processes ended by Kill wait for Restart instead: fault tests
// decide when those come back.

// Restarts is the policy for processes that exit on their own once the run
// is up. Zero fields take the defaults.
type Restarts struct {
	// Backoff is the wait before the first restart (default 1s); it doubles
	// with every exit, up to MaxBackoff (default 30s).
	Backoff, MaxBackoff time.Duration
	// StableAfter: a process that stayed up this long waits Backoff again
	// at its next exit (default 1m).
	StableAfter time.Duration
	// Limit exits of one process within Window (default 5 within 5m) stop
	// the run. 1 stops it at the first exit.
	Limit  int
	Window time.Duration
}

func (p Restarts) withDefaults() Restarts {
	if p.Backoff <= 0 {
		p.Backoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	p.MaxBackoff = max(p.MaxBackoff, p.Backoff)
	if p.StableAfter <= 0 {
		p.StableAfter = time.Minute
	}
	if p.Limit <= 0 {
		p.Limit = 5
	}
	if p.Window <= 0 {
		p.Window = 5 * time.Minute
	}
	return p
}

// Crash is one exit of a process of the run that nobody asked for.
type Crash struct {
	// Process names it as the console does: "orders-2 app", "payments daprd", "sentry".
	Process string
	// App, Instance and Source address it as KillInstance does.
	App      string
	Instance int
	Source   string
	// At is when it exited; Status how ("exit status 3", "signal: killed").
	At     time.Time
	Status string
	// Restarted is when the runner started it again, Healthy when it then
	// answered its health check; zero until then (and for good when the
	// run gave up or stopped first).
	Restarted, Healthy time.Time
}

// slot is one process the run keeps going: Sentry, or an instance's daprd
// or app. Each start of it is a proc.
type slot struct {
	name     string // on the console and in errors: "orders-2 daprd", "sentry"
	app      string // the app ID; "sentry" for Sentry
	instance int    // from 1
	source   string // "app", "daprd"; "" for Sentry
	prefix   string // of its lines on the console
	dir      string
	argv     []string
	env      []string
	health   string // answers 2xx while it serves

	// Guarded by Run.mu.
	cur   *proc       // the latest start
	held  bool        // ended by Kill: waits for Restart
	timer *time.Timer // a restart waiting out its backoff
	seq   int         // bumped to call off a restart whose timer may be firing
	exits []time.Time // unexpected exits within the window
	delay time.Duration
}

// cancelRestart calls off a restart waiting out its backoff. The caller
// holds Run.mu.
func (s *slot) cancelRestart() {
	s.seq++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// supervise turns on restarts: from now on an exit is a crash. A process
// that exited between the readiness checks and now is judged at once.
func (r *Run) supervise() {
	r.mu.Lock()
	r.supervising = true
	var gone []*proc
	for _, s := range r.slots {
		if s.cur.exited() {
			gone = append(gone, s.cur)
		}
	}
	r.mu.Unlock()
	for _, p := range gone {
		r.exited(p)
	}
}

// exited judges p's exit: nothing to do when the run is stopping, when Kill
// ended it, or before the run is up (Start fails then); otherwise a crash,
// restarted after its backoff, or the last straw.
func (r *Run) exited(p *proc) {
	// Whatever the process left in its group (a grandchild holding its port)
	// goes with it, so that a restart finds its ports free.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	// Its last lines, for the message (the group is gone, so the pipe ends).
	select {
	case <-p.copied:
	case <-time.After(time.Second):
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := p.slot
	if p.handled || r.stopped || !r.supervising || s.held || s.cur != p {
		return
	}
	p.handled = true
	r.crashedLocked(s, exitText(p.err), time.Since(p.started), p.tail)
}

// crashedLocked records an exit of s that nobody asked for (status says
// how, after up; t holds its last lines) and restarts s after its backoff,
// or ends the run when s has exited too often. The caller holds r.mu.
func (r *Run) crashedLocked(s *slot, status string, up time.Duration, t *tail) {
	rs := r.opts.Restarts
	now := time.Now()
	recent := s.exits[:0]
	for _, at := range s.exits {
		if now.Sub(at) < rs.Window {
			recent = append(recent, at)
		}
	}
	s.exits = append(recent, now)
	r.crashes = append(r.crashes, Crash{Process: s.name, App: s.app, Instance: s.instance, Source: s.source, At: now, Status: status})
	crash := len(r.crashes) - 1
	if n := len(s.exits); n >= rs.Limit {
		times := ""
		if n > 1 {
			times = fmt.Sprintf(", %d times within %s: giving up on it", n, rs.Window)
		}
		r.failure = fmt.Errorf("%s exited unexpectedly (%s)%s\n%s", s.name, status, times, t.render(s.name))
		r.console.say("%s exited (%s)%s; stopping everything", s.name, status, times)
		close(r.gaveUp)
		go r.Stop() // Stop takes r.mu: not from under it
		return
	}
	if s.delay == 0 || up >= rs.StableAfter {
		s.delay = rs.Backoff
	}
	wait := s.delay
	s.delay = min(2*s.delay, rs.MaxBackoff)
	r.console.say("%s exited (%s) after %s up; restarting it in %s (exit %d; the %s within %s stops the run)\n%s",
		s.name, status, up.Round(100*time.Millisecond), wait, len(s.exits), ordinal(rs.Limit), rs.Window, t.last(5, s.name))
	s.cancelRestart()
	seq := s.seq
	s.timer = time.AfterFunc(wait, func() { r.respawn(s, seq, crash) })
}

// respawn starts s again once its backoff is over, unless the restart was
// called off (seq moved on) or the run is stopping.
func (r *Run) respawn(s *slot, seq, crash int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || s.held || s.seq != seq {
		return
	}
	s.timer = nil
	p, err := r.spawnLocked(s)
	if err != nil {
		// It cannot even start (its binary replaced by a build?): that
		// counts as an exit too.
		t := newTail(1)
		t.add(err.Error())
		r.crashedLocked(s, "cannot start", 0, t)
		return
	}
	r.crashes[crash].Restarted = p.started
	r.console.say("restarted %s (pid %d)", s.name, p.cmd.Process.Pid)
	go r.watchBack(p, crash)
}

// watchBack says when a restarted process answers its health check again.
func (r *Run) watchBack(p *proc, crash int) {
	client := &http.Client{Timeout: time.Second}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok := healthy(ctx, client, p.slot.health, "")
		cancel()
		if ok {
			break
		}
		select {
		case <-p.done:
			return
		case <-r.stopping:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.mu.Lock()
	c := &r.crashes[crash]
	c.Healthy = time.Now()
	after := c.Healthy.Sub(c.At)
	r.mu.Unlock()
	r.console.say("%s is back: healthy %.1fs after it exited", p.slot.name, after.Seconds())
}

// Crashes returns every unexpected exit of the run's processes so far, the
// oldest first. Tests that kill a process from outside (kill -9 of its PID)
// wait here for the runner to bring it back; others can check that nothing
// crashed behind their back.
func (r *Run) Crashes() []Crash {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Crash(nil), r.crashes...)
}

// PID returns the process ID of appID's instance n's source ("app",
// "daprd"; Sentry: "sentry", 1, ""), or 0 while it is not running. The
// process leads a process group of its own.
func (r *Run) PID(appID string, n int, source string) int {
	s, err := r.slotOf(appID, n, source)
	if err != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.cur == nil || s.cur.exited() {
		return 0
	}
	return s.cur.cmd.Process.Pid
}

// Kill ends one process of the run as a crash would: SIGKILL to the process
// group of appID's app (source "app") or sidecar (source "daprd"), its first
// instance, or of the run's Sentry (appID "sentry", source ""), and returns
// once it has exited. It is not restarted, and does not count as a crash,
// until Restart brings it back. Fault tests use it.
func (r *Run) Kill(appID, source string) error {
	return r.KillInstance(appID, 1, source)
}

// KillInstance is Kill for appID's instance n (from 1).
func (r *Run) KillInstance(appID string, n int, source string) error {
	s, err := r.slotOf(appID, n, source)
	if err != nil {
		return err
	}
	p := r.hold(s)
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
	r.console.say("killed %s", s.name)
	return nil
}

// hold makes s's next exit one that was asked for (not restarted, not a
// crash) until it is started again, and returns its current process.
func (r *Run) hold(s *slot) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.held = true
	s.cancelRestart()
	return s.cur
}

// Restart starts again the process Kill ended (or one the runner is about
// to restart after a crash), with the same arguments, ports and tokens, and
// waits until it answers its health check. From then on it is restarted
// after a crash like any other.
func (r *Run) Restart(ctx context.Context, appID, source string) error {
	return r.RestartInstance(ctx, appID, 1, source)
}

// RestartInstance is Restart for appID's instance n (from 1).
func (r *Run) RestartInstance(ctx context.Context, appID string, n int, source string) error {
	s, err := r.slotOf(appID, n, source)
	if err != nil {
		return err
	}
	if err := r.bringBack(ctx, s); err != nil {
		return err
	}
	r.console.say("restarted %s", s.name)
	return nil
}

// bringBack starts s's process again, with the same arguments, ports and
// tokens, and waits until it answers its health check.
func (r *Run) bringBack(ctx context.Context, s *slot) error {
	r.mu.Lock()
	if !s.cur.exited() {
		r.mu.Unlock()
		return fmt.Errorf("runner: %s is still running", s.name)
	}
	s.cancelRestart()
	p, err := r.spawnLocked(s)
	if err == nil {
		s.held = false
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := r.waitHealthy(ctx, p, s.health); err != nil {
		return fmt.Errorf("after its restart: %w", err)
	}
	return nil
}

// RollInstance restarts appID's instance n the way a rolling update
// replaces a pod, failing none of the requests it serves. First no new call
// is sent to the instance: it leaves the run's name resolution (as a pod
// leaves its Service's endpoints) and the calls that picked it before get
// drainWait to arrive. Then SIGTERM to the app, which answers what it has in
// hand and exits (lib/web.Serve), and SIGTERM to its daprd; each gets
// StopGrace before SIGKILL. The app starts again first and, once it answers
// its health check, its daprd, on a new internal port (moveInternalPort),
// whose registration is held out of the resolution until it answers its
// health check (holdNames). RollInstance returns when both are back.
//
// Leaving the resolution first matters: a caller's sidecar that picks an
// instance whose daprd has just stopped gets a connection error, and with a
// resiliency policy for that app (a timeout is one) Dapr 1.14 keeps the
// failed connection, backing off, and fails every call it sends there for
// seconds after the instance is back (TestRollingRestartFailsNoCall has the
// figures).
func (r *Run) RollInstance(ctx context.Context, appID string, n int) error {
	app, err := r.slotOf(appID, n, "app")
	if err != nil {
		return err
	}
	daprd, err := r.slotOf(appID, n, "daprd")
	if err != nil {
		return err
	}
	start := time.Now()
	if r.PID(appID, n, "daprd") != 0 {
		inst := r.instance(appID, n)
		if err := r.leaveNames(inst.DaprInternalGRPCPort); err != nil {
			return err
		}
		time.Sleep(drainWait)
	}
	slots := []*slot{app, daprd}
	for _, s := range slots {
		r.terminate(s)
	}
	port, err := r.moveInternalPort(appID, n, daprd)
	if err == nil {
		err = r.holdNames(port)
	}
	if err != nil {
		for _, s := range slots {
			r.release(s)
		}
		return fmt.Errorf("rolling %s: %w", strings.TrimSuffix(app.name, " app"), err)
	}
	for i, s := range slots {
		if err := r.bringBack(ctx, s); err != nil {
			// It is left to the restarts after a crash; the rest starts
			// without waiting (a daprd waits for its app), and joins the
			// resolution as it registers, as after any crash.
			for _, rest := range slots[i+1:] {
				r.release(rest)
			}
			if uerr := r.joinNames(appID, port); uerr != nil && !errors.Is(uerr, errNotRegistered) {
				err = errors.Join(err, uerr)
			}
			return fmt.Errorf("rolling %s: %w", s.name, err)
		}
	}
	if err := r.joinNames(appID, port); err != nil {
		return err
	}
	r.console.say("rolled %s: stopped and healthy again in %.1fs", strings.TrimSuffix(app.name, " app"), time.Since(start).Seconds())
	return nil
}

// drainWait is how long RollInstance lets calls that picked an instance
// before it left the name resolution reach it before stopping its app (which
// then answers them before it exits).
const drainWait = 500 * time.Millisecond

// instance returns appID's instance n, or nil.
func (r *Run) instance(appID string, n int) *AppRun {
	for _, a := range r.instances {
		if a.ID == appID && a.Instance == n {
			return a
		}
	}
	return nil
}

// moveInternalPort gives the instance's daprd, stopped, a new internal gRPC
// port (the one other sidecars call) and returns it, as a replaced pod comes
// back at a new address. A caller's sidecar keeps a connection per address,
// and one to the old address may sit in gRPC's reconnect backoff after the
// stop, failing at once every call sent there (Dapr's transport retries,
// which would drop it, are off for apps with a resiliency policy). A new
// address gets a new connection. The ports the app uses stay.
func (r *Run) moveInternalPort(appID string, n int, daprd *slot) (int, error) {
	port, err := r.unusedPort()
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(daprd.argv, "--dapr-internal-grpc-port")
	if i < 0 || i+1 >= len(daprd.argv) {
		return 0, fmt.Errorf("runner: %s has no --dapr-internal-grpc-port", daprd.name)
	}
	daprd.argv[i+1] = strconv.Itoa(port)
	r.instance(appID, n).DaprInternalGRPCPort = port
	return port, nil
}

// freePort is FreePort; tests replace it.
var freePort = FreePort

// unusedPort is a free port that is none of the run's own: while an
// instance is stopped its ports are free too, and its daprd, given one of
// them as its new internal port, failed to listen (seen: the metrics port,
// "bind: address already in use", in e2e TestFaultRollingRestart).
func (r *Run) unusedPort() (int, error) {
	r.mu.Lock()
	taken := map[int]bool{}
	for _, a := range r.instances {
		for _, p := range []int{a.AppPort, a.DaprHTTPPort, a.DaprGRPCPort, a.DaprInternalGRPCPort, a.MetricsPort} {
			taken[p] = true
		}
	}
	if r.Authority != nil {
		taken[r.Authority.Port], taken[r.Authority.HealthzPort], taken[r.Authority.MetricsPort] = true, true, true
	}
	r.mu.Unlock()
	for range 100 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if !taken[port] {
			return port, nil
		}
	}
	return 0, errors.New("runner: no free port outside the run's own in 100 tries")
}

// Roll restarts every instance of every app with RollInstance, one at a
// time, in the run's order.
//
// An instance that does not come back is left to the restarts after a
// crash, and the roll goes on with the next one; the errors are returned
// together at the end.
func (r *Run) Roll(ctx context.Context) error {
	var errs []error
	for _, a := range r.AllInstances() {
		if len(a.Command) == 0 {
			continue // an app the runner does not start has nothing to roll
		}
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		if err := r.RollInstance(ctx, a.ID, a.Instance); err != nil {
			r.console.say("rolling %s failed, going on with the next instance: %v", a.Name, err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// release starts s's process again, without waiting for it, if it is not
// running; from then on it is restarted after a crash like any other.
func (r *Run) release(s *slot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || !s.cur.exited() {
		return
	}
	if _, err := r.spawnLocked(s); err != nil {
		r.console.say("%s cannot start: %v", s.name, err)
		return
	}
	s.held = false
}

// terminate stops s's process as Stop does, SIGTERM and SIGKILL after
// StopGrace, holding it until bringBack starts it again.
func (r *Run) terminate(s *slot) {
	p := r.hold(s)
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(r.opts.StopGrace):
		r.console.say("killed %s after %s", s.name, r.opts.StopGrace)
	}
	// Whatever is left in its group (a grandchild holding a port) goes too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// last returns t's last n lines, each under name, for a message.
func (t *tail) last(n int, name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines[max(0, len(t.lines)-n):]
	if len(lines) == 0 {
		return "(" + name + " printed nothing)"
	}
	return fmt.Sprintf("its last lines:\n  %s", strings.Join(lines, "\n  "))
}

// Restarts returns the run's restart policy, defaults filled in.
func (r *Run) Restarts() Restarts { return r.opts.Restarts }

// ordinal spells n as "1st", "2nd", "5th".
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
