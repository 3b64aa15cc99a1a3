package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/daprshop/suite/tools/runner"
)

// Floor is the sidecar floor: a no-op app (GET /ping answers 200) behind its
// daprd, and a second daprd (with a no-op app of its own) that invokes it, so
// a request can take zero, one or two sidecar hops to the same handler.
type Floor struct {
	run     *runner.Run
	servers []*http.Server
	dir     string
}

// The floor's app IDs: distinct from the suite's, so both can run at once.
const (
	floorApp    = "bench-noop"
	floorCaller = "bench-caller"
)

// StartFloor starts the floor with the daprd and sentry binaries (the
// second hop then pays for mTLS, as the suite's calls do), its output going
// to out.
func StartFloor(ctx context.Context, daprd, sentry string, out io.Writer) (*Floor, error) {
	dir, err := os.MkdirTemp("", "bench-floor-")
	if err != nil {
		return nil, err
	}
	f := &Floor{dir: dir}
	// No components and no configuration: nothing but invocation.
	r, servers, err := noopSidecars(ctx, dir, []string{floorApp, floorCaller}, func(_ string, mux *http.ServeMux) {
		mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}, daprd, sentry, out)
	f.servers = servers
	if err != nil {
		f.Stop()
		return nil, fmt.Errorf("starting the floor's sidecars: %w", err)
	}
	f.run = r
	return f, nil
}

// Measure measures GET /ping directly, through the app's own daprd (one
// hop) and from the other daprd (two hops: the way one service invokes
// another), each at rate for d. twoHops.CPU is the CPU the two sidecars
// spent per request of the two-hop measurement (their
// process_cpu_seconds_total before and after; the no-op handler runs in
// this process, beside the generator, and is not counted): the floor of a
// call from one service to another, in CPU.
func (f *Floor) Measure(ctx context.Context, rate int, d time.Duration) (direct, oneHop, twoHops Result) {
	app, caller := f.run.App(floorApp), f.run.App(floorCaller)
	direct = Measure(ctx, "floor: no-op app, direct", rate, d, Get(fmt.Sprintf("http://127.0.0.1:%d/ping", app.AppPort), nil))
	oneHop = Measure(ctx, "floor: no-op app, 1 sidecar hop", rate, d,
		Get(fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/ping", app.DaprHTTPPort, floorApp), http.Header{"Dapr-Api-Token": {app.APIToken}}))
	before, errBefore := f.sidecarCPU(ctx)
	twoHops = Measure(ctx, "floor: no-op app, 2 sidecar hops", rate, d,
		Get(fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/ping", caller.DaprHTTPPort, floorApp), http.Header{"Dapr-Api-Token": {caller.APIToken}}))
	after, errAfter := f.sidecarCPU(ctx)
	if errBefore == nil && errAfter == nil && twoHops.Done > 0 {
		twoHops.CPU = (after - before) * 1000 / float64(twoHops.Done)
	}
	return direct, oneHop, twoHops
}

// sidecarCPU is the CPU seconds both sidecars of the floor have spent.
func (f *Floor) sidecarCPU(ctx context.Context) (float64, error) {
	return daprdCPU(ctx, f.run, []string{floorApp, floorCaller})
}

// daprdCPU is the CPU seconds the daprds of the apps ids of r have spent
// (their process_cpu_seconds_total, summed).
func daprdCPU(ctx context.Context, r *runner.Run, ids []string) (float64, error) {
	total := 0.0
	for _, id := range ids {
		ss, err := Scrape(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", r.App(id).MetricsPort))
		if err != nil {
			return 0, err
		}
		if !ss.Has(MetricCPU) {
			return 0, fmt.Errorf("%s's daprd has no %s", id, MetricCPU)
		}
		total += ss.Sum(MetricCPU, nil)
	}
	return total, nil
}

// noopSidecars starts, in dir, one no-op app per ID on a free loopback port
// (GET /healthz, and whatever routes adds for that ID) with its daprd,
// Sentry giving the sidecars mTLS as the suite's have; the components are
// dir's own. The servers it started come back even with an error, for the
// caller to close.
func noopSidecars(ctx context.Context, dir string, ids []string, routes func(id string, mux *http.ServeMux), daprd, sentry string, out io.Writer) (*runner.Run, []*http.Server, error) {
	var (
		apps    []runner.App
		servers []*http.Server
	)
	for _, id := range ids {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, servers, err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		routes(id, mux)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		servers = append(servers, srv)
		apps = append(apps, runner.App{ID: id, Dir: dir, AppPort: l.Addr().(*net.TCPAddr).Port, AppProtocol: "http",
			HealthPath: "/healthz", ResourcesPaths: []string{dir}, LogLevel: "warn"})
	}
	r, err := runner.Start(ctx, &runner.File{Dir: dir, Apps: apps}, runner.Options{Daprd: daprd, Sentry: sentry, Out: out, ReadyTimeout: time.Minute})
	return r, servers, err
}

// Stop stops the sidecars and the no-op apps.
func (f *Floor) Stop() {
	if f.run != nil {
		f.run.Stop()
	}
	for _, s := range f.servers {
		_ = s.Close()
	}
	_ = os.RemoveAll(f.dir)
}
