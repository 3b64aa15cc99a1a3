// Command daprun runs a multi-app Dapr suite from a dapr.yaml in the Dapr CLI's
// multi-app schema (what `dapr run -f .` reads), for machines without the CLI:
// one daprd per app instance plus the app (-replicas: several instances),
// prefixed logs on one console, readiness waits, a restart with backoff of
// a child that dies, and on Ctrl-C, SIGTERM or a child that keeps dying, a
// stop of every child.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/daprshop/suite/tools/broker"
	"github.com/daprshop/suite/tools/runner"
)

const usage = `daprun runs every app of a dapr.yaml with its own daprd sidecar.

Usage:
  daprun [flags]

It reads the Dapr CLI's multi-app run file, starts one daprd and one app per
entry (ports from the file, or free ones), prefixes every output line with the
app and its source, waits until every daprd (/v1.0/healthz) and app (health
path) answers and every sidecar reaches every app, and prints where to send
requests. Ctrl-C or SIGTERM stops everything.

kill -USR1 <daprun's PID> restarts every instance gracefully, one at a time,
as a rolling update of a Deployment would (the app, then its daprd, each
stopped with SIGTERM and started again once it stopped; the next instance
only once both answer their health checks): with two replicas or more of an
app, its clients see no failed request.

-replicas orders=3,payments=2 (or "replicas: 3" in an app of the run file,
which the Dapr CLI ignores) starts that many instances of an app, each with
its own daprd and ports (the file's ports are the first instance's); the
sidecars spread their calls to an app over its instances at random.

A child that exits on its own (the app or its daprd, or Sentry) is started
again after -backoff, doubling up to -max-backoff with every exit (back to
-backoff once it stayed up a minute), while the others keep running. One
that exits -crash-limit times within -crash-window stops everything, and
daprun exits non-zero naming it with its last lines.

With -sentry (make run passes .bin/sentry, which make tools builds) it
first starts a Dapr Sentry of this run alone, and every sidecar-to-sidecar
call uses mTLS with its certificates: only this run's sidecars can call each
other's internal gRPC port. Without it those calls are unauthenticated, and
daprun says so.

Before starting it checks that every Redis named in the components answers.
With -start-redis it starts a private redis-server when none does. With
-kafka it runs an in-process Kafka broker on that loopback port for the
kafka-postgres profile.

Flags:
`

// config is the command line, parsed once.
type config struct {
	file         string
	daprd        string
	sentry       string
	zipkin       string
	resources    string
	readyTimeout time.Duration
	stopGrace    time.Duration
	color        string
	startRedis   bool
	privateRedis bool
	kafkaPort    int
	bin          string
	appEnv       [][3]string // app, key, value
	replicas     replicas
	restarts     runner.Restarts
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the usage is printed, nothing failed
		}
		fmt.Fprintln(os.Stderr, "daprun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("daprun", flag.ContinueOnError)
	fs.SetOutput(out) // -h | less: the help on stdout
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	fs.StringVar(&cfg.file, "f", ".", "run file, or a directory holding dapr.yaml")
	fs.StringVar(&cfg.daprd, "daprd", "", "daprd binary (default: $DAPRD, else .bin/daprd beside the run file, else daprd on PATH)")
	fs.StringVar(&cfg.zipkin, "zipkin", "", "send every sidecar's spans to this Zipkin-compatible collector (e.g. http://127.0.0.1:9411/api/v2/spans); default: nowhere, whatever the apps' Configurations name")
	fs.StringVar(&cfg.sentry, "sentry", "", "Dapr's sentry binary: mTLS between the sidecars (default: .bin/sentry beside the run file when there is one; make run passes it)")
	fs.StringVar(&cfg.resources, "resources", "", "comma-separated resources paths that replace every app's (switches the component profile)")
	fs.DurationVar(&cfg.readyTimeout, "ready-timeout", 2*time.Minute, "how long to wait for every daprd and app to be healthy")
	fs.DurationVar(&cfg.stopGrace, "stop-grace", 10*time.Second, "how long children get after SIGTERM before SIGKILL")
	fs.StringVar(&cfg.color, "color", "auto", "colour the prefixes: auto, always or never")
	fs.BoolVar(&cfg.startRedis, "start-redis", false, "start a private redis-server on a free port when the components' Redis does not answer")
	fs.BoolVar(&cfg.privateRedis, "private-redis", false, "always start a private, empty redis-server on a free port (load tests: no data or event backlog of other runs)")
	fs.IntVar(&cfg.kafkaPort, "kafka", 0, "run an in-process Kafka broker on this loopback port (kafka-postgres profile)")
	fs.StringVar(&cfg.bin, "bin", "", "run DIR/<app-id> instead of an app's command where that binary exists (make run: .bin); daprun is then the service's parent, so even a killed daprun takes it along")
	fs.Func("app-env", "APP:KEY=VALUE: add an environment variable to one app (repeatable), e.g. orders:PPROF_ADDR=127.0.0.1:6061", func(v string) error {
		app, kv, ok := strings.Cut(v, ":")
		key, val, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 || app == "" || key == "" {
			return fmt.Errorf("want APP:KEY=VALUE, got %q", v)
		}
		cfg.appEnv = append(cfg.appEnv, [3]string{app, key, val})
		return nil
	})
	fs.Var(&cfg.replicas, "replicas", "instances per app: ID=N[,ID=N...], or N for every app (overrides the run file's replicas), e.g. orders=3,payments=2")
	fs.DurationVar(&cfg.restarts.Backoff, "backoff", time.Second, "wait before restarting a child that exited; doubles with each exit")
	fs.DurationVar(&cfg.restarts.MaxBackoff, "max-backoff", 30*time.Second, "longest wait before a restart")
	fs.IntVar(&cfg.restarts.Limit, "crash-limit", 5, "stop everything when one child exits this often within -crash-window (1: at the first exit)")
	fs.DurationVar(&cfg.restarts.Window, "crash-window", 5*time.Minute, "the window of -crash-limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	if !slices.Contains([]string{"auto", "always", "never"}, cfg.color) {
		return fmt.Errorf("-color %q: want auto, always or never", cfg.color)
	}

	f, err := runner.Load(cfg.file)
	if err != nil {
		return err
	}
	if err := cfg.replicas.apply(f); err != nil {
		return err
	}
	for _, e := range cfg.appEnv {
		i := slices.IndexFunc(f.Apps, func(a runner.App) bool { return a.ID == e[0] })
		if i < 0 {
			return fmt.Errorf("-app-env: no app %q in %s", e[0], f.Path)
		}
		if f.Apps[i].Env == nil {
			f.Apps[i].Env = map[string]string{}
		}
		f.Apps[i].Env[e[1]] = e[2]
	}
	if cfg.bin != "" {
		if err := useBinaries(f, cfg.bin, out); err != nil {
			return err
		}
	}
	if cfg.resources != "" {
		var paths []string
		for _, p := range strings.Split(cfg.resources, ",") {
			abs, err := filepath.Abs(strings.TrimSpace(p))
			if err != nil {
				return err
			}
			if _, err := os.Stat(abs); err != nil {
				return fmt.Errorf("-resources: %w", err)
			}
			paths = append(paths, abs)
		}
		for i := range f.Apps {
			f.Apps[i].ResourcesPaths = append([]string(nil), paths...)
		}
	}
	daprd, err := findDaprd(cfg.daprd, f.Dir)
	if err != nil {
		return err
	}
	sentry, err := findSentry(cfg.sentry, f.Dir)
	if err != nil {
		return err
	}
	if sentry == "" {
		fmt.Fprintln(out, unauthenticated)
	}
	opts := runner.Options{
		Daprd: daprd, Sentry: sentry, Zipkin: cfg.zipkin, Out: out, ReadyTimeout: cfg.readyTimeout, StopGrace: cfg.stopGrace,
		Restarts: cfg.restarts,
		Color:    cfg.color == "always" || (cfg.color == "auto" && isTerminal(out)),
	}

	cleanup, err := ensureRedis(f, cfg.startRedis, cfg.privateRedis, out)
	defer cleanup()
	if err != nil {
		return err
	}

	if cfg.kafkaPort != 0 {
		b, err := broker.Start(cfg.kafkaPort)
		if err != nil {
			return err
		}
		defer b.Close()
		fmt.Fprintf(out, "daprun: in-process Kafka broker at %s\n", b.Addr())
	}

	instances := 0
	for _, a := range f.Apps {
		instances += max(a.Replicas, 1)
	}
	if instances > len(f.Apps) {
		fmt.Fprintf(out, "daprun: starting %d apps (%d instances) from %s with %s\n", len(f.Apps), instances, f.Path, daprd)
	} else {
		fmt.Fprintf(out, "daprun: starting %d apps from %s with %s\n", len(f.Apps), f.Path, daprd)
	}
	if sentry != "" {
		fmt.Fprintf(out, "daprun: sidecar-to-sidecar calls use mTLS with certificates from %s\n", sentry)
	}
	// Taken from here on: a SIGUSR1 while the suite starts waits for it
	// (its default action would end daprun).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	r, err := runner.Start(ctx, f, opts)
	if err != nil {
		return err
	}
	envFile, err := writeSidecarsEnv(f.Dir, r)
	if err != nil {
		r.Stop()
		return err
	}
	defer os.Remove(envFile)
	printEndpoints(out, r, envFile)
	go rollOnSignal(ctx, r, usr1, out)
	return r.Wait(ctx)
}

// rollOnSignal restarts every instance of the run, one at a time, at each
// signal on sig until ctx is done; a signal during a roll is taken after it.
func rollOnSignal(ctx context.Context, r *runner.Run, sig <-chan os.Signal, out io.Writer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		fmt.Fprintln(out, "daprun: SIGUSR1: restarting every instance, one at a time")
		if err := r.Roll(ctx); err != nil {
			fmt.Fprintf(out, "daprun: rolling restart stopped: %v\n", err)
			continue
		}
		fmt.Fprintln(out, "daprun: rolling restart done")
	}
}

// writeSidecarsEnv writes, for shells, each sidecar's HTTP address and API
// token (they change every run) to .run/sidecars.env beside the run file,
// readable by the owner only: <APP>_DAPR_HTTP and <APP>_DAPR_API_TOKEN for
// an app's first instance, the same with _<N> at the end for its instance N
// (no app ID can make those names), and <APP>_INSTANCES. It is removed when
// the run ends.
func writeSidecarsEnv(dir string, r *runner.Run) (string, error) {
	var b strings.Builder
	b.WriteString("# Written by daprun for this run only: source it to call sidecars directly.\n")
	for _, first := range r.Apps {
		name := strings.ToUpper(strings.ReplaceAll(first.ID, "-", "_"))
		insts := r.Instances(first.ID)
		for _, a := range insts {
			suffix := ""
			if a.Instance > 1 {
				suffix = fmt.Sprintf("_%d", a.Instance)
			}
			fmt.Fprintf(&b, "%s_DAPR_HTTP%s=http://127.0.0.1:%d\n%s_DAPR_API_TOKEN%s=%s\n", name, suffix, a.DaprHTTPPort, name, suffix, a.APIToken)
		}
		fmt.Fprintf(&b, "%s_INSTANCES=%d\n", name, len(insts))
	}
	path := filepath.Join(dir, ".run", "sidecars.env")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// findDaprd resolves the daprd binary to use.
func findDaprd(flagValue, dir string) (string, error) {
	for _, c := range []string{flagValue, os.Getenv("DAPRD"), filepath.Join(dir, ".bin", "daprd")} {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return filepath.Abs(c)
		}
		if c == flagValue {
			return "", fmt.Errorf("daprd %s: not found", c)
		}
	}
	if p, err := exec.LookPath("daprd"); err == nil {
		return p, nil
	}
	return "", errors.New("no daprd found: run `make tools` to build the pinned daprd into .bin/, or pass -daprd")
}

// unauthenticated is the warning of a run without Sentry.
const unauthenticated = `daprun: WARNING: no Sentry (-sentry): sidecar-to-sidecar calls are NOT authenticated.
daprun:   Any process that reaches a sidecar's internal gRPC port can call every route of its app,
daprun:   with the app token added. Build Sentry with tools/toolchain.sh sentry (make tools) and
daprun:   pass -sentry .bin/sentry, as make run does.`

// findSentry resolves the sentry binary: the flag's (which must exist), else
// .bin/sentry beside the run file, else none ("").
func findSentry(flagValue, dir string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("-sentry %s: not found (tools/toolchain.sh sentry builds it)", flagValue)
		}
		return filepath.Abs(flagValue)
	}
	if p := filepath.Join(dir, ".bin", "sentry"); fileExists(p) {
		return p, nil
	}
	return "", nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// ensureRedis checks every Redis the components name. When one does not answer
// and startRedis is set, it starts a private redis-server and points the
// components at it. The returned cleanup stops that server.
func ensureRedis(f *runner.File, startRedis, private bool, out io.Writer) (func(), error) {
	nop := func() {}
	hosts, err := runner.RedisHosts(f.Apps)
	if err != nil {
		return nop, err
	}
	addrs := make([]string, 0, len(hosts))
	for a := range hosts {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		if private {
			bin, err := exec.LookPath("redis-server")
			if err != nil {
				return nop, fmt.Errorf("-private-redis needs redis-server on PATH: %v", err)
			}
			return startPrivateRedis(f, bin, addr, out)
		}
		perr := runner.PingRedis(addr, 2*time.Second)
		if perr == nil {
			fmt.Fprintf(out, "daprun: Redis answers at %s (used by %s)\n", addr, strings.Join(hosts[addr], ", "))
			continue
		}
		bin, lerr := exec.LookPath("redis-server")
		if !startRedis || lerr != nil {
			return nop, fmt.Errorf("Redis does not answer at %s (%v); components %s need it.\n%s",
				addr, perr, strings.Join(hosts[addr], ", "), redisHelp(lerr == nil))
		}
		return startPrivateRedis(f, bin, addr, out)
	}
	return nop, nil
}

func redisHelp(haveBinary bool) string {
	if haveBinary {
		return "Start it (redis-server --port 6379 --save '' --daemonize yes), or run `make run`, which starts a private one."
	}
	return "Install Redis and start it on 127.0.0.1:6379:\n" +
		"  Debian/Ubuntu: sudo apt-get install redis-server\n" +
		"  macOS:         brew install redis && brew services start redis\n" +
		"  Docker:        docker run -d -p 6379:6379 redis:7"
}

// startPrivateRedis runs redis-server on a free loopback port, in memory only,
// and rewrites the components to use it.
func startPrivateRedis(f *runner.File, bin, from string, out io.Writer) (func(), error) {
	nop := func() {}
	port, err := runner.FreePort()
	if err != nil {
		return nop, err
	}
	fmt.Fprintf(out, "daprun: Redis does not answer at %s; started a private redis-server at 127.0.0.1:%d\n", from, port)
	r, err := runner.StartRedis(bin, port)
	if err != nil {
		return nop, err
	}
	return r.Stop, runner.RewriteRedis(f.Apps, from, r.Addr, r.Dir)
}

func printEndpoints(out io.Writer, r *runner.Run, envFile string) {
	fmt.Fprintln(out, "\ndaprun: the suite is up.")
	for _, a := range r.AllInstances() {
		fmt.Fprintf(out, "  %-16s app :%-5d  dapr http :%-5d  grpc :%-5d  metrics :%d\n", a.Name, a.AppPort, a.DaprHTTPPort, a.DaprGRPCPort, a.MetricsPort)
	}
	if g := r.App("gateway"); g != nil {
		fmt.Fprintf(out, "\n  public API: http://127.0.0.1:%d/api   e.g. curl -s http://127.0.0.1:%d/api/products\n", g.AppPort, g.AppPort)
	}
	fmt.Fprintf(out, "  sidecars want their API token (dapr-api-token header); addresses and tokens: source %s\n", envFile)
	rs := r.Restarts()
	fmt.Fprintf(out, "  a process that exits is restarted after %s (doubling to %s); %d exits of one within %s stop everything\n",
		rs.Backoff, rs.MaxBackoff, rs.Limit, rs.Window)
	if r.Authority == nil {
		fmt.Fprintln(out, "\n"+unauthenticated)
	} else {
		fmt.Fprintf(out, "  sidecar to sidecar: mTLS, certificates from this run's Sentry at %s\n", r.Authority.Address())
	}
	fmt.Fprintln(out, "\nPress Ctrl-C to stop everything.")
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// useBinaries replaces the command of every app that has a binary named
// after it in dir. `go run .` starts the service as its own child, which the
// kernel's parent-death signal of daprun's children does not reach.
func useBinaries(f *runner.File, dir string, out io.Writer) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return fmt.Errorf("-bin %s: not a directory", dir)
	}
	for i, a := range f.Apps {
		if len(a.Command) == 0 {
			continue
		}
		path := filepath.Join(abs, a.ID)
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			fmt.Fprintf(out, "daprun: %s: no binary %s, running %q\n", a.ID, path, strings.Join(a.Command, " "))
			continue
		}
		f.Apps[i].Command = []string{path}
	}
	return nil
}

// replicas is -replicas: ID=N pairs, or N for every app.
type replicas struct {
	all   int
	perID map[string]int
	text  string
}

func (rp *replicas) String() string { return rp.text }

func (rp *replicas) Set(v string) error {
	rp.text = v
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		id, count, named := strings.Cut(item, "=")
		if !named {
			id, count = "", item
		}
		n, err := strconv.Atoi(strings.TrimSpace(count))
		if err != nil || n < 1 || (named && strings.TrimSpace(id) == "") {
			return fmt.Errorf("want ID=N[,ID=N...] or N with N at least 1, got %q", item)
		}
		if !named {
			rp.all = n
			continue
		}
		if rp.perID == nil {
			rp.perID = map[string]int{}
		}
		rp.perID[strings.TrimSpace(id)] = n
	}
	return nil
}

// apply sets the instances of f's apps; an ID that f lacks is an error.
func (rp *replicas) apply(f *runner.File) error {
	for id := range rp.perID {
		if !slices.ContainsFunc(f.Apps, func(a runner.App) bool { return a.ID == id }) {
			return fmt.Errorf("-replicas: no app %q in %s", id, f.Path)
		}
	}
	for i := range f.Apps {
		if rp.all > 0 {
			f.Apps[i].Replicas = rp.all
		}
		if n, ok := rp.perID[f.Apps[i].ID]; ok {
			f.Apps[i].Replicas = n
		}
	}
	return nil
}
