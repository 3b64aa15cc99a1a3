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
}

// AppRun is a started app: its App with every port filled in, and the
// tokens of this run: APIToken guards the sidecar's API (DAPR_API_TOKEN),
// AppToken is what the sidecar shows the app (APP_API_TOKEN).
type AppRun struct {
	App
	APIToken, AppToken string
	// SentryTokenFile holds what the sidecar shows Sentry for its
	// certificate ("" without Options.Sentry).
	SentryTokenFile string
}

// Run is a started suite. Stop it with Stop, or let Wait do it.
type Run struct {
	// Apps in the order of the file.
	Apps []*AppRun
	// Authority is the run's Sentry, nil without Options.Sentry.
	Authority *Authority

	opts     Options
	dir      string // 0700, removed by Stop: the name resolver's database, Sentry's files
	names    string // the name resolution Configuration every daprd gets (names.go)
	console  *console
	mu       sync.Mutex // guards procs and stopped: Restart adds to procs
	procs    []*proc
	stopped  bool
	exits    chan *proc
	stopOnce sync.Once
}

// App returns the started app with the given ID, or nil.
func (r *Run) App(id string) *AppRun {
	for _, a := range r.Apps {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// Start starts a daprd and the app for every app of f and waits until all are
// healthy. On failure it stops whatever it started and returns an error naming
// the process that failed, with its last lines of output.
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
	r := &Run{opts: opts, console: newConsole(opts.Out, opts.Color, f.Apps)}
	var ids []string
	for _, a := range f.Apps {
		r.Apps = append(r.Apps, &AppRun{App: a, APIToken: newToken(), AppToken: newToken()})
		ids = append(ids, a.ID)
	}
	dir, err := os.MkdirTemp("", "daprun-") // 0700
	if err != nil {
		return nil, err
	}
	r.dir = dir
	if r.names, err = writeNameResolution(dir); err != nil {
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
		for _, a := range r.Apps {
			a.SentryTokenFile = auth.TokenFile(a.ID)
		}
	}
	if err := assignPorts(r.Apps, sentryPorts...); err != nil {
		r.Stop()
		return nil, err
	}
	r.exits = make(chan *proc, 2*len(r.Apps)+1)
	if r.Authority != nil {
		if err := r.startSentry(ctx); err != nil {
			r.Stop()
			return nil, err
		}
	}
	for i, a := range r.Apps {
		if err := r.startApp(i, a); err != nil {
			r.Stop()
			return nil, err
		}
	}
	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// env is what every child's environment starts with.
func (r *Run) env() []string {
	return append(os.Environ(), r.opts.Env...)
}

// startSentry starts the run's Sentry and waits until it answers its health
// check: a daprd that finds no Sentry gives up after a few tries.
func (r *Run) startSentry(ctx context.Context) error {
	auth := r.Authority
	argv := append([]string{r.opts.Sentry}, auth.args()...)
	if err := r.spawn(len(r.Apps), "sentry", "", auth.dir, argv, r.env()); err != nil {
		return err
	}
	start := time.Now()
	if err := r.waitHealthy(ctx, r.current("sentry", ""), auth.healthURL()); err != nil {
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
			return fmt.Errorf("interrupted while waiting for %s", p.name)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %s (checked %s)\n%s", p.name, r.opts.ReadyTimeout, url, p.tail.render(p.name))
		}
	}
	return nil
}

func (r *Run) startApp(i int, a *AppRun) error {
	// Every listener on loopback: the internal gRPC port (sidecar to sidecar)
	// and the metrics port have flags of their own; daprd registers the
	// internal port's address with the run's name resolver (names.go).
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
	if err := r.spawn(i, a.ID, "daprd", a.Dir, append([]string{r.opts.Daprd}, args...), env); err != nil {
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
	return r.spawn(i, a.ID, "app", a.Dir, a.Command, appEnv)
}

// spawn starts one child in its own process group, its output going to the console.
func (r *Run) spawn(i int, app, source, dir string, argv, env []string) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	// A pipe given as *os.File is inherited directly: Wait does not hang on a
	// grandchild that keeps it open.
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the runner itself is killed outright, the kernel kills its children.
		Pdeathsig: syscall.SIGKILL,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		pr.Close()
		pw.Close()
		return errors.New("runner: the run is stopped")
	}
	p := &proc{name: strings.TrimSpace(app + " " + source), app: app, source: source, index: i, dir: dir, argv: argv, env: env,
		cmd: cmd, tail: newTail(40), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("starting %s (%s): %w", p.name, strings.Join(argv, " "), err)
	}
	pw.Close()
	r.procs = append(r.procs, p)
	prefix := r.console.prefix(i, app, source)
	var watch func(string)
	if source == "daprd" {
		watch = func(line string) {
			if resolverFailure(line) {
				p.noResolver.CompareAndSwap(nil, &line)
			}
		}
	}
	go r.console.copy(pr, prefix, p.tail, watch)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		if !p.killed.Load() {
			select {
			case r.exits <- p: // Wait reports the first one
			default:
			}
		}
	}()
	return nil
}

// Kill ends one process of the run as a crash would: SIGKILL to the process
// group of appID's app (source "app") or sidecar (source "daprd"), or of the
// run's Sentry (appID "sentry", source ""), and returns once it has exited.
// Fault tests use it; Wait does not count it as a failure. Restart brings
// the process back.
func (r *Run) Kill(appID, source string) error {
	p := r.current(appID, source)
	if p == nil {
		return fmt.Errorf("runner: no %s %s in this run", appID, source)
	}
	p.killed.Store(true)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	r.console.say("killed %s", p.name)
	return nil
}

// Restart starts again the process Kill ended, with the same arguments,
// ports and tokens, and waits until it answers its health check.
func (r *Run) Restart(ctx context.Context, appID, source string) error {
	p := r.current(appID, source)
	if p == nil {
		return fmt.Errorf("runner: no %s %s in this run", appID, source)
	}
	select {
	case <-p.done:
	default:
		return fmt.Errorf("runner: %s is still running", p.name)
	}
	if err := r.spawn(p.index, p.app, p.source, p.dir, p.argv, p.env); err != nil {
		return err
	}
	if err := r.waitHealthy(ctx, r.current(appID, source), r.healthURL(appID, source)); err != nil {
		return fmt.Errorf("after its restart: %w", err)
	}
	r.console.say("restarted %s", p.name)
	return nil
}

// healthURL is the health check of appID's source: "app", "daprd", or
// Sentry's (appID "sentry", source "").
func (r *Run) healthURL(appID, source string) string {
	if appID == "sentry" && source == "" {
		return r.Authority.healthURL()
	}
	a := r.App(appID)
	if source == "daprd" {
		return fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", a.DaprHTTPPort)
	}
	return fmt.Sprintf("http://127.0.0.1:%d%s", a.AppPort, a.HealthPath)
}

// current returns the latest process started for appID's source.
func (r *Run) current(appID, source string) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.procs) - 1; i >= 0; i-- {
		if p := r.procs[i]; p.app == appID && p.source == source {
			return p
		}
	}
	return nil
}

// waitReady polls every daprd's /v1.0/healthz and every app's health path.
func (r *Run) waitReady(ctx context.Context) error {
	type check struct {
		name, url string
		owner     *proc
	}
	var pending []check
	for _, a := range r.Apps {
		daprd := r.current(a.ID, "daprd")
		pending = append(pending, check{a.ID + " daprd", r.healthURL(a.ID, "daprd"), daprd})
		owner := daprd
		if len(a.Command) > 0 {
			owner = r.current(a.ID, "app")
		}
		pending = append(pending, check{a.ID + " app", r.healthURL(a.ID, "app"), owner})
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(r.opts.ReadyTimeout)
	start, lastReport := time.Now(), time.Now()
	for len(pending) > 0 {
		// Any process, also one whose own check passed already.
		if err := r.exited(); err != nil {
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
				tails = append(tails, c.owner.tail.render(c.owner.name))
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
	r.console.say("all %d apps ready in %.1fs", len(r.Apps), time.Since(start).Seconds())
	return nil
}

// warmInvocation calls every app's health path through every sidecar until
// each call succeeds. Ready then also means "reachable by service invocation":
// the first lookups in the run's name resolver and the first mTLS
// connections between sidecars happen here, not in a request.
func (r *Run) warmInvocation(ctx context.Context, client *http.Client, deadline time.Time) error {
	for _, from := range r.Apps {
		for _, to := range r.Apps {
			url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/%s", from.DaprHTTPPort, to.ID, strings.TrimPrefix(to.HealthPath, "/"))
			for !healthy(ctx, client, url, from.APIToken) {
				if err := r.exited(); err != nil {
					return err
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("not ready after %s: %s cannot invoke %s (checked %s)", r.opts.ReadyTimeout, from.ID, to.ID, url)
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("interrupted while checking invocation from %s to %s", from.ID, to.ID)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// exited names the first process that has exited, with its last lines, or
// the first daprd without a name resolver: while the suite starts, either is
// a failure.
func (r *Run) exited() error {
	for _, p := range r.procs {
		if err := p.failure(); err != nil {
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

// Wait blocks until ctx is done or a child exits, then stops everything. It
// returns nil after a requested stop (ctx done) and an error naming the child
// when one exited on its own.
func (r *Run) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		r.console.say("stopping")
		r.Stop()
		return nil
	case p := <-r.exits:
		r.console.say("%s exited; stopping everything", p.name)
		r.Stop()
		return fmt.Errorf("%s exited unexpectedly (%v)\n%s", p.name, exitText(p.err), p.tail.render(p.name))
	}
}

// Stop ends every child: SIGTERM to each process group, SIGKILL to the groups
// after StopGrace, and it returns once every child has been reaped. Safe to
// call more than once.
func (r *Run) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stopped = true
		for _, p := range r.procs {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		}
		grace := time.After(r.opts.StopGrace)
		var stubborn []string
		for _, p := range r.procs {
			select {
			case <-p.done:
			case <-grace:
				// grace never fires twice: mark the rest without waiting again,
				// but not one that has exited (select picks at random between
				// two ready cases).
				grace = closed
				if !p.exited() {
					stubborn = append(stubborn, p.name)
				}
			}
		}
		// Kill every group, also those whose leader exited: a grandchild (such
		// as the binary under `go run`) may still be in it.
		for _, p := range r.procs {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		for _, p := range r.procs {
			<-p.done
		}
		if len(stubborn) > 0 {
			r.console.say("killed after %s: %s", r.opts.StopGrace, strings.Join(stubborn, ", "))
		}
		if r.dir != "" {
			_ = os.RemoveAll(r.dir)
		}
		r.console.say("stopped %d processes", len(r.procs))
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

// proc is one child process, with what it takes to start it again.
type proc struct {
	name, app, source string
	index             int
	dir               string
	argv, env         []string
	cmd               *exec.Cmd
	tail              *tail
	done              chan struct{}
	err               error
	killed            atomic.Bool // by Kill: not an unexpected exit
	// noResolver is the line of a daprd that says it has no name resolver.
	noResolver atomic.Pointer[string]
}

// failure says why p cannot serve the run yet: it has exited, or it is a
// daprd that runs without a name resolver (none of its invocations would
// work, and waiting for them would only time out). Nil otherwise.
func (p *proc) failure() error {
	if p.exited() {
		return fmt.Errorf("%s exited before it was ready (%v)\n%s", p.name, p.err, p.tail.render(p.name))
	}
	if line := p.noResolver.Load(); line != nil {
		return fmt.Errorf("%s has no name resolver, so it cannot invoke any app: this runner needs a daprd with "+
			"nameresolution.sqlite, which tools/toolchain.sh daprd (make tools) builds into .bin/daprd\n%s", p.name, *line)
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
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*p.port)))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s %d is in use (stop what holds it, or remove the port from the run file to get a free one)", a.ID, p.name, *p.port))
				continue
			}
			holds = append(holds, l)
			*p.port = l.Addr().(*net.TCPAddr).Port
		}
	}
	for _, p := range extra {
		l, err := net.Listen("tcp", "127.0.0.1:0")
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

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
