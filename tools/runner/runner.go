package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options tune a run. The zero value is usable except for Daprd.
type Options struct {
	// Daprd is the path of the daprd binary.
	Daprd string
	// Sentry is the path of Dapr's sentry binary. When set, the run starts a
	// Sentry of its own first, and every daprd gets its certificate there:
	// sidecar-to-sidecar calls then use mTLS that only this run's sidecars
	// can join (see mtls.go). Empty: those calls are unauthenticated.
	Sentry string
	// Out receives every child's output, line by line with a prefix, and the
	// runner's own progress. Nil means os.Stdout.
	Out io.Writer
	// Color prefixes lines with ANSI colours (for a terminal).
	Color bool
	// ReadyTimeout bounds the wait for every daprd and app to be healthy (default 2m).
	ReadyTimeout time.Duration
	// StopGrace is how long children get after SIGTERM before SIGKILL (default 10s).
	StopGrace time.Duration
	// Env is added to the environment of every child: Sentry, daprd and app.
	Env []string
	// DaprdArgs are appended to every daprd's arguments.
	DaprdArgs []string
	// Restarts is what happens when a process exits on its own once the run
	// is up (supervise.go).
	Restarts Restarts
	// Zipkin is where every daprd sends its spans (a Zipkin-compatible
	// collector's /api/v2/spans URL). Empty: nowhere, whatever the apps'
	// Configurations name, so that spans never go to a port nobody of the
	// run listens on, which any local user could take (see names.go).
	// Every app gets it as ZIPKIN_URL: the gateway sends its span of each
	// request at the edge there.
	Zipkin string
}

// AppRun is one started instance of an app: its App with every port filled
// in, and the tokens of this instance: APIToken guards its sidecar's API
// (DAPR_API_TOKEN), AppToken is what its sidecar shows the app
// (APP_API_TOKEN). Each instance has tokens of its own: a token only ever
// travels between an app and its own sidecar, so nothing needs them shared,
// and one that leaks opens one instance, not every replica.
type AppRun struct {
	App
	// Instance numbers the app's instances from 1 (App.Replicas of them).
	Instance int
	// Name names the instance on the console and in errors: the app ID, and
	// "<id>-<n>" when the app has more than one instance.
	Name               string
	APIToken, AppToken string
	// SentryTokenFile holds what the sidecar shows Sentry for its
	// certificate ("" without Options.Sentry). Sentry signs for an app ID
	// (the SPIFFE ID names the app, not the instance), so the instances of
	// one app share it.
	SentryTokenFile string
}

// Run is a started suite. Stop it with Stop, or let Wait do it.
type Run struct {
	// Apps holds the first instance of every app, in the order of the file:
	// with one instance per app, every process of the run. Instances and
	// AllInstances list the others.
	Apps []*AppRun
	// Authority is the run's Sentry, nil without Options.Sentry.
	Authority *Authority

	opts      Options
	dir       string // 0700, removed by Stop: the name resolver's database, Sentry's files
	names     string // the name resolution Configuration every daprd gets (names.go)
	console   *console
	instances []*AppRun // every instance, app by app
	slots     []*slot   // every process the run keeps: Sentry, then each instance's daprd and app
	stopping  chan struct{}
	gaveUp    chan struct{} // closed when a process exited too often; failure says which
	failure   error
	stopOnce  sync.Once

	mu          sync.Mutex // guards the slots' processes and restarts, stopped, supervising, crashes
	stopped     bool
	supervising bool // the run is up: an exit is a crash to restart, not a failed start
	crashes     []Crash
}

// App returns the first instance of the app with the given ID, or nil.
func (r *Run) App(id string) *AppRun {
	for _, a := range r.Apps {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// Instances returns every instance of the app with the given ID, the first
// (App's) first; nil for an unknown ID.
func (r *Run) Instances(id string) []*AppRun {
	var out []*AppRun
	for _, a := range r.instances {
		if a.ID == id {
			out = append(out, a)
		}
	}
	return out
}

// AllInstances returns every instance of every app: the apps in the order
// of the file, each app's instances in order.
func (r *Run) AllInstances() []*AppRun {
	return append([]*AppRun(nil), r.instances...)
}

// Start starts a daprd and the app for every instance of every app of f and
// waits until all are healthy and every sidecar reaches every app ID. On
// failure it stops whatever it started and returns an error naming the
// process that failed, with its last lines of output. Once it returns, a
// process that exits on its own is started again (Options.Restarts).
func Start(ctx context.Context, f *File, opts Options) (*Run, error) {
	if opts.Daprd == "" {
		return nil, errors.New("runner: no daprd binary given")
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 10 * time.Second
	}
	opts.Restarts = opts.Restarts.withDefaults()
	r := &Run{opts: opts, stopping: make(chan struct{}), gaveUp: make(chan struct{})}
	var ids []string
	for _, a := range f.Apps {
		n := max(a.Replicas, 1)
		for i := 1; i <= n; i++ {
			inst := &AppRun{App: a, Instance: i, Name: a.ID, APIToken: newToken(), AppToken: newToken()}
			inst.Replicas = n
			if n > 1 {
				inst.Name = fmt.Sprintf("%s-%d", a.ID, i)
			}
			if i > 1 {
				// Ports fixed in the file are the first instance's.
				inst.AppPort, inst.DaprHTTPPort, inst.DaprGRPCPort, inst.DaprInternalGRPCPort, inst.MetricsPort = 0, 0, 0, 0, 0
				if len(a.Command) == 0 {
					return nil, fmt.Errorf("runner: app %s has no command, so it cannot have %d instances", a.ID, n)
				}
			}
			r.instances = append(r.instances, inst)
			if i == 1 {
				r.Apps = append(r.Apps, inst)
			}
		}
		ids = append(ids, a.ID)
	}
	names := []string{"sentry"}
	for _, a := range r.instances {
		names = append(names, a.Name)
	}
	r.console = newConsole(opts.Out, opts.Color, names)
	dir, err := os.MkdirTemp("", "daprun-") // 0700
	if err != nil {
		return nil, err
	}
	r.dir = dir
	if r.names, err = writeRunConfig(dir, opts.Zipkin); err != nil {
		r.Stop()
		return nil, err
	}
	var sentryPorts []*int
	if opts.Sentry != "" {
		auth, err := newAuthority(dir, ids, namespace(r.env()))
		if err != nil {
			r.Stop()
			return nil, err
		}
		r.Authority = auth
		sentryPorts = []*int{&auth.Port, &auth.HealthzPort, &auth.MetricsPort}
		for _, a := range r.instances {
			a.SentryTokenFile = auth.TokenFile(a.ID)
		}
	}
	if err := assignPorts(r.instances, sentryPorts...); err != nil {
		r.Stop()
		return nil, err
	}
	if r.Authority != nil {
		if err := r.startSentry(ctx, len(f.Apps)); err != nil {
			r.Stop()
			return nil, err
		}
	}
	appIndex := map[string]int{}
	for i, a := range f.Apps {
		appIndex[a.ID] = i
	}
	for _, a := range r.instances {
		if err := r.startInstance(appIndex[a.ID], a); err != nil {
			r.Stop()
			return nil, err
		}
	}
	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	r.supervise()
	return r, nil
}

// env is what every child's environment starts with.
func (r *Run) env() []string {
	return append(os.Environ(), r.opts.Env...)
}

// startSentry starts the run's Sentry and waits until it answers its health
// check: a daprd that finds no Sentry gives up after a few tries. color is
// its colour's index on the console.
func (r *Run) startSentry(ctx context.Context, color int) error {
	auth := r.Authority
	s := &slot{name: "sentry", app: "sentry", instance: 1, dir: auth.dir, health: auth.healthURL(),
		argv: append([]string{r.opts.Sentry}, auth.args()...), env: r.env(),
		prefix: r.console.prefix(color, "sentry", "")}
	p, err := r.add(s)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := r.waitHealthy(ctx, p, s.health); err != nil {
		return err
	}
	r.console.say("sentry ready at %s in %.1fs: sidecar-to-sidecar calls use mTLS", auth.Address(), time.Since(start).Seconds())
	return nil
}

// waitHealthy polls url until it answers 2xx, p exits, ctx ends or the ready
// timeout passes.
func (r *Run) waitHealthy(ctx context.Context, p *proc, url string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(r.opts.ReadyTimeout)
	for !healthy(ctx, client, url, "") {
		if err := p.failure(); err != nil {
			return err
		}
		select {
		case <-p.done:
			return p.failure()
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for %s", p.slot.name)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %s (checked %s)\n%s", p.slot.name, r.opts.ReadyTimeout, url, p.tail.render(p.slot.name))
		}
	}
	return nil
}

// startInstance starts one instance's daprd and, when the app has a
// command, the app. color is the app's colour on the console: every
// instance of an app has the same.
func (r *Run) startInstance(color int, a *AppRun) error {
	// Every listener on loopback: the internal gRPC port (sidecar to sidecar)
	// and the metrics port have flags of their own; daprd registers the
	// internal port's address with the run's name resolver (names.go), so
	// each instance is a row of its own there, and a daprd started again on
	// the same port replaces its old row (the table's address is unique).
	args := []string{
		"--app-id", a.ID,
		"--app-port", strconv.Itoa(a.AppPort),
		"--app-protocol", a.AppProtocol,
		"--app-channel-address", "127.0.0.1",
		"--dapr-listen-addresses", "127.0.0.1",
		"--dapr-http-port", strconv.Itoa(a.DaprHTTPPort),
		"--dapr-grpc-port", strconv.Itoa(a.DaprGRPCPort),
		"--dapr-internal-grpc-port", strconv.Itoa(a.DaprInternalGRPCPort),
		"--dapr-internal-grpc-listen-address", "127.0.0.1",
		"--metrics-port", strconv.Itoa(a.MetricsPort),
		"--metrics-listen-address", "127.0.0.1",
		"--log-level", a.LogLevel,
	}
	if a.HealthCheck {
		args = append(args, "--enable-app-health-check", "--app-health-check-path", a.HealthPath)
		for _, f := range []struct {
			flag string
			v    int
		}{{"--app-health-probe-interval", a.HealthProbeInterval}, {"--app-health-probe-timeout", a.HealthProbeTimeout}, {"--app-health-threshold", a.HealthThreshold}} {
			if f.v > 0 {
				args = append(args, f.flag, strconv.Itoa(f.v))
			}
		}
	}
	if r.Authority != nil {
		args = append(args, r.Authority.daprdArgs()...)
	}
	for _, p := range a.ResourcesPaths {
		args = append(args, "--resources-path", p)
	}
	if a.ConfigFile != "" {
		args = append(args, "--config", a.ConfigFile)
	}
	// After the app's own: it sets the run's name resolver on top of it.
	args = append(args, "--config", r.names)
	args = append(args, r.opts.DaprdArgs...)
	// Both sides of the app-sidecar link get both tokens; daprd does not see
	// the run file's env, as under the Dapr CLI.
	tokens := []string{"DAPR_API_TOKEN=" + a.APIToken, "APP_API_TOKEN=" + a.AppToken}
	// DAPR_HOST_IP: the address daprd gives for itself, instead of the host's.
	env := append(append(r.env(), tokens...), "DAPR_HOST_IP=127.0.0.1")
	if r.Authority != nil {
		env = append(env, r.Authority.daprdEnv(a.ID)...)
	}
	daprd := &slot{name: a.Name + " daprd", app: a.ID, instance: a.Instance, source: "daprd", dir: a.Dir,
		argv: append([]string{r.opts.Daprd}, args...), env: env,
		health: fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", a.DaprHTTPPort), prefix: r.console.prefix(color, a.Name, "daprd")}
	if _, err := r.add(daprd); err != nil {
		return err
	}
	if len(a.Command) == 0 {
		return nil
	}
	appEnv := r.env()
	keys := make([]string, 0, len(a.Env))
	for k := range a.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		appEnv = append(appEnv, k+"="+a.Env[k])
	}
	// The names the Dapr CLI gives an app; they win over the file's env so the
	// app and its sidecar always agree. APP_HOST: the address the sidecar
	// calls (--app-channel-address), the only one the app should listen on.
	appEnv = append(appEnv,
		"APP_ID="+a.ID,
		"APP_HOST=127.0.0.1",
		"APP_PORT="+strconv.Itoa(a.AppPort),
		"APP_PROTOCOL="+a.AppProtocol,
		"DAPR_HTTP_PORT="+strconv.Itoa(a.DaprHTTPPort),
		"DAPR_GRPC_PORT="+strconv.Itoa(a.DaprGRPCPort),
		"DAPR_METRICS_PORT="+strconv.Itoa(a.MetricsPort),
	)
	appEnv = append(appEnv, tokens...)
	if r.opts.Zipkin != "" {
		// The edge's own span (the gateway's, lib/tracecontext) goes where
		// the sidecars' go; set after the file's env, like the run's names.
		appEnv = append(appEnv, "ZIPKIN_URL="+r.opts.Zipkin)
	}
	app := &slot{name: a.Name + " app", app: a.ID, instance: a.Instance, source: "app", dir: a.Dir,
		argv: a.Command, env: appEnv, health: a.healthURL(), prefix: r.console.prefix(color, a.Name, "app")}
	_, err := r.add(app)
	return err
}

// healthURL is the app's health path on the instance's port.
func (a *AppRun) healthURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", a.AppPort, a.HealthPath)
}

// add starts s's process and makes s one of the run's processes.
func (r *Run) add(s *slot) (*proc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.spawnLocked(s)
	if err != nil {
		return nil, err
	}
	r.slots = append(r.slots, s)
	return p, nil
}

// spawnLocked starts s's process in its own process group, its output going
// to the console, and makes it s's current process. The caller holds r.mu.
func (r *Run) spawnLocked(s *slot) (*proc, error) {
	if r.stopped {
		return nil, errors.New("runner: the run is stopped")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir, cmd.Env = s.dir, s.env
	// A pipe given as *os.File is inherited directly: Wait does not hang on a
	// grandchild that keeps it open.
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = ChildAttr()
	p := &proc{slot: s, cmd: cmd, tail: newTail(40), done: make(chan struct{}), copied: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", s.name, strings.Join(s.argv, " "), err)
	}
	p.started = time.Now()
	pw.Close()
	s.cur = p
	var watch func(string)
	if s.source == "daprd" {
		watch = func(line string) {
			if resolverFailure(line) {
				p.noResolver.CompareAndSwap(nil, &line)
			}
		}
	}
	go func() {
		r.console.copy(pr, s.prefix, p.tail, watch)
		close(p.copied)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		r.exited(p)
	}()
	return p, nil
}

// slotOf returns the process of the run that is appID's instance n's source
// ("app", "daprd"), or the run's Sentry for appID "sentry" and source "".
func (r *Run) slotOf(appID string, n int, source string) (*slot, error) {
	if appID == "sentry" && source == "" {
		n = 1
	}
	for _, s := range r.slots {
		if s.app == appID && s.instance == n && s.source == source {
			return s, nil
		}
	}
	return nil, fmt.Errorf("runner: no %s %s in this run", instanceName(appID, n), source)
}

func instanceName(appID string, n int) string {
	if n == 1 {
		return appID
	}
	return fmt.Sprintf("%s instance %d", appID, n)
}

// waitReady polls every daprd's /v1.0/healthz and every app's health path.
func (r *Run) waitReady(ctx context.Context) error {
	type check struct {
		name, url string
		owner     *proc
	}
	var pending []check
	for _, a := range r.instances {
		daprd, _ := r.slotOf(a.ID, a.Instance, "daprd")
		pending = append(pending, check{daprd.name, daprd.health, daprd.cur})
		owner := daprd.cur
		if app, err := r.slotOf(a.ID, a.Instance, "app"); err == nil {
			owner = app.cur
		}
		pending = append(pending, check{a.Name + " app", a.healthURL(), owner})
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(r.opts.ReadyTimeout)
	start, lastReport := time.Now(), time.Now()
	for len(pending) > 0 {
		// Any process, also one whose own check passed already.
		if err := r.exitedEarly(); err != nil {
			return err
		}
		var still []check
		for _, c := range pending {
			if healthy(ctx, client, c.url, "") {
				continue
			}
			still = append(still, c)
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		names := make([]string, len(pending))
		for i, c := range pending {
			names[i] = c.name
		}
		if time.Now().After(deadline) {
			var tails []string
			for _, c := range pending {
				tails = append(tails, c.owner.tail.render(c.owner.slot.name))
			}
			return fmt.Errorf("not ready after %s: %s (checked %s)\n%s", r.opts.ReadyTimeout, strings.Join(names, ", "),
				pending[0].url, strings.Join(tails, "\n"))
		}
		if time.Since(lastReport) >= 5*time.Second {
			r.console.say("waiting %.0fs for %s", time.Since(start).Seconds(), strings.Join(names, ", "))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for %s", strings.Join(names, ", "))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := r.warmInvocation(ctx, client, deadline); err != nil {
		return err
	}
	// Once more: a daprd says it has no resolver before it answers its
	// health check, but the console may read that line only after the
	// checks above passed (its stand-in in tests answers invocations too).
	if err := r.exitedEarly(); err != nil {
		return err
	}
	if len(r.instances) > len(r.Apps) {
		r.console.say("all %d apps (%d instances) ready in %.1fs", len(r.Apps), len(r.instances), time.Since(start).Seconds())
	} else {
		r.console.say("all %d apps ready in %.1fs", len(r.Apps), time.Since(start).Seconds())
	}
	return nil
}

// warmInvocation calls every app's health path through every instance's
// sidecar until each call succeeds. Ready then also means "reachable by
// service invocation": the first lookups in the run's name resolver and the
// first mTLS connections between sidecars happen here, not in a request.
// (A call names an app ID, and the resolver picks one of its instances at
// random: every daprd is healthy by now, so every instance has its row.)
func (r *Run) warmInvocation(ctx context.Context, client *http.Client, deadline time.Time) error {
	for _, from := range r.instances {
		for _, to := range r.Apps {
			url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/%s", from.DaprHTTPPort, to.ID, strings.TrimPrefix(to.HealthPath, "/"))
			for !healthy(ctx, client, url, from.APIToken) {
				if err := r.exitedEarly(); err != nil {
					return err
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("not ready after %s: %s cannot invoke %s (checked %s)", r.opts.ReadyTimeout, from.Name, to.ID, url)
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("interrupted while checking invocation from %s to %s", from.Name, to.ID)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// exitedEarly names the first process that has exited, with its last lines,
// or the first daprd without a name resolver: while the suite starts, either
// is a failure.
func (r *Run) exitedEarly() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		if err := s.cur.failure(); err != nil {
			return err
		}
	}
	return nil
}

// healthy reports whether url answers 2xx; token, when set, goes in dapr-api-token.
func healthy(ctx context.Context, c *http.Client, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("dapr-api-token", token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// Wait blocks until ctx is done or a process has exited more often than
// Options.Restarts allows, then stops everything. It returns nil after a
// requested stop (ctx done) and an error naming the process that gave out.
func (r *Run) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		r.console.say("stopping")
		r.Stop()
		return nil
	case <-r.gaveUp:
		r.Stop()
		return r.failure
	}
}

// Stop ends every child: SIGTERM to each process group, SIGKILL to the groups
// after StopGrace, and it returns once every child has been reaped. A restart
// waiting out its backoff is called off. Safe to call more than once.
func (r *Run) Stop() {
	r.stopOnce.Do(func() {
		close(r.stopping)
		r.mu.Lock()
		r.stopped = true
		var live, all []*proc
		for _, s := range r.slots {
			s.cancelRestart()
			if s.cur == nil {
				continue
			}
			all = append(all, s.cur)
			if !s.cur.exited() {
				live = append(live, s.cur)
			}
		}
		r.mu.Unlock()
		for _, p := range live {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		}
		grace := time.After(r.opts.StopGrace)
		var stubborn []string
		for _, p := range live {
			select {
			case <-p.done:
			case <-grace:
				// grace never fires twice: mark the rest without waiting again,
				// but not one that has exited (select picks at random between
				// two ready cases).
				grace = closed
				if !p.exited() {
					stubborn = append(stubborn, p.slot.name)
				}
			}
		}
		// Kill every group that was live, also those whose leader exited: a
		// grandchild (such as the binary under `go run`) may still be in it.
		// (A process that had exited before had its group killed then.)
		for _, p := range live {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		for _, p := range all {
			<-p.done
		}
		if len(stubborn) > 0 {
			r.console.say("killed after %s: %s", r.opts.StopGrace, strings.Join(stubborn, ", "))
		}
		if r.dir != "" {
			_ = os.RemoveAll(r.dir)
		}
		if r.console != nil {
			r.console.say("stopped %d processes", len(all))
		}
	})
}

// closed is a channel that is always ready.
var closed = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// proc is one run of a slot's process.
type proc struct {
	slot    *slot
	cmd     *exec.Cmd
	tail    *tail
	started time.Time
	done    chan struct{} // closed once the process is reaped; err is then set
	err     error
	copied  chan struct{} // closed once its output has reached the console
	handled bool          // its exit has been judged (exited); guarded by Run.mu
	// noResolver is the line of a daprd that says it has no name resolver.
	noResolver atomic.Pointer[string]
}

// failure says why p cannot serve the run yet: it has exited, or it is a
// daprd that runs without a name resolver (none of its invocations would
// work, and waiting for them would only time out). Nil otherwise.
func (p *proc) failure() error {
	if p.exited() {
		return fmt.Errorf("%s exited before it was ready (%v)\n%s", p.slot.name, p.err, p.tail.render(p.slot.name))
	}
	if line := p.noResolver.Load(); line != nil {
		return fmt.Errorf("%s has no name resolver, so it cannot invoke any app: this runner needs a daprd with "+
			"nameresolution.sqlite, which tools/toolchain.sh daprd (make tools) builds into .bin/daprd\n%s", p.slot.name, *line)
	}
	return nil
}

// exited reports, without waiting, whether p has exited (err is then set).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// assignPorts fills zero ports with free ones and checks that fixed ones are
// free; extra ports (zero) get free ones too, none the same as another.
func assignPorts(apps []*AppRun, extra ...*int) error {
	var holds []net.Listener
	defer func() {
		for _, l := range holds {
			l.Close()
		}
	}()
	var errs []error
	for _, a := range apps {
		for _, p := range []struct {
			name string
			port *int
		}{
			{"appPort", &a.AppPort}, {"daprHTTPPort", &a.DaprHTTPPort}, {"daprGRPCPort", &a.DaprGRPCPort},
			{"daprInternalGRPCPort", &a.DaprInternalGRPCPort}, {"metricsPort", &a.MetricsPort},
		} {
			// An app the runner does not start is already listening on its port.
			if p.name == "appPort" && len(a.Command) == 0 {
				continue
			}
			var l net.Listener
			var err error
			if *p.port == 0 {
				l, err = listenFree()
			} else {
				l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*p.port)))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s %d is in use (stop what holds it, or remove the port from the run file to get a free one)", a.Name, p.name, *p.port))
				continue
			}
			holds = append(holds, l)
			*p.port = l.Addr().(*net.TCPAddr).Port
		}
	}
	for _, p := range extra {
		l, err := listenFree()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		holds = append(holds, l)
		*p = l.Addr().(*net.TCPAddr).Port
	}
	return errors.Join(errs...)
}

// newToken returns a random token for one run.
func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// FreePort returns a loopback TCP port that was free a moment ago, below
// the kernel's ephemeral range when it can (ports.go).
func FreePort() (int, error) {
	l, err := listenFree()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
