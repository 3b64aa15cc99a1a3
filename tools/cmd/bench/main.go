// Command bench measures the sidecar floor and the suite in one run on one
// machine: a no-op app directly, behind one daprd and behind two (the way one
// service invokes another), then, when the suite answers on -gateway, each
// read endpoint and the order journey through the gateway, all at the same
// arrival rate. It prints a Markdown report with every figure's ratio to the
// two-hop floor and the resident memory of every service and sidecar, and
// writes it with the raw figures (JSON) into -out.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/daprshop/suite/tools/bench"
	"github.com/daprshop/suite/tools/prometheus"
	"github.com/daprshop/suite/tools/runner"
)

type options struct {
	daprd, sentry, gateway, runFile, secrets, adminEmail, out, pprof string
	rate                                                             int
	duration                                                         time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.daprd, "daprd", "../.bin/daprd", "the daprd binary for the floor")
	flag.StringVar(&o.sentry, "sentry", "../.bin/sentry", "Dapr's sentry binary: the floor's sidecars use mTLS, as the suite's do")
	flag.IntVar(&o.rate, "rate", 200, "arrivals per second of every measurement")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of every measurement")
	flag.StringVar(&o.gateway, "gateway", "http://127.0.0.1:8080", "the suite's gateway; the suite part is skipped when it does not answer")
	flag.StringVar(&o.runFile, "f", "../dapr.yaml", "the run file, for the ports of the services and sidecars (memory)")
	flag.StringVar(&o.secrets, "secrets", "../components/local-secrets.json", "the secrets file the suite runs with (admin password)")
	flag.StringVar(&o.adminEmail, "admin-email", "admin@daprshop.local", "the suite's admin account")
	flag.StringVar(&o.out, "out", "../loadtest/results", "directory for bench.md and bench.json")
	flag.StringVar(&o.pprof, "pprof", "", "app=host:port,...: CPU-profile these apps (started with PPROF_ADDR) during the order journey")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bench [flags]\n\nMeasures the sidecar floor and the suite at one arrival rate (make bench).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	daprd, err := filepath.Abs(o.daprd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(daprd); err != nil {
		return fmt.Errorf("no daprd at %s: run make tools", daprd)
	}
	sentry, err := filepath.Abs(o.sentry)
	if err != nil {
		return err
	}
	if _, err := os.Stat(sentry); err != nil {
		return fmt.Errorf("no sentry at %s: run make tools", sentry)
	}
	waitIdle(ctx, o.runFile)
	say("floor: starting Sentry, two daprd sidecars (mTLS between them) and no-op apps")
	floor, err := bench.StartFloor(ctx, daprd, sentry, io.Discard)
	if err != nil {
		return err
	}
	say("floor: %d/s for %s each: direct, 1 hop, 2 hops", o.rate, o.duration)
	direct, one, two := floor.Measure(ctx, o.rate, o.duration)
	floor.Stop()
	results := []bench.Result{direct, one, two}

	var (
		profiles  []profile
		cpu       []cpuFigure
		sustained []memoryFigure // after the journey below saturation
	)
	var confirmed *confirmFigures
	suite, s, err := suiteRequests(o)
	switch {
	case errors.Is(err, errNoSuite):
		say("suite: skipped (%v)", err)
	case err != nil:
		// The suite answers but could not be set up (a login refused, a
		// wrong secrets file): a floor-only report would hide it.
		return fmt.Errorf("setting up the suite's measurements: %w", err)
	default:
		say("suite: placed to confirmed, %d orders one after another", confirmOrders)
		f, err := placedToConfirmed(ctx, s, confirmOrders)
		if err != nil {
			return fmt.Errorf("placed to confirmed: %w", err)
		}
		confirmed = &f
		for i, m := range suite {
			if i == len(suite)-1 { // the order journey: also below saturation, with its CPU cost
				say("suite: %s at %d/s", m.name, max(1, o.rate/4))
				before := cpuSeconds(o.runFile)
				r := bench.Measure(ctx, m.name, max(1, o.rate/4), o.duration, m.req)
				results = append(results, r)
				cpu = cpuPerOrder(before, cpuSeconds(o.runFile), r.Throughput*o.duration.Seconds())
				sustained = rss(o.runFile)
			}
			say("suite: %s", m.name)
			var wait func() []profile
			if i == len(suite)-1 {
				wait = profileApps(o.pprof, o.duration, o.out)
			}
			results = append(results, bench.Measure(ctx, m.name, o.rate, o.duration, m.req))
			if wait != nil {
				profiles = wait()
			}
		}
	}
	memory := rss(o.runFile)

	var md strings.Builder
	fmt.Fprintf(&md, "Measured %s, %d arrivals/s for %s each (open loop, at most %d in flight).\n\n", time.Now().UTC().Format(time.RFC3339), o.rate, o.duration, bench.MaxInFlight)
	md.WriteString(bench.Table(results, &two))
	fmt.Fprintf(&md, "\nAdded by a sidecar hop: p50 %+.2f ms, p90 %+.2f ms (one hop minus direct); the second hop p50 %+.2f ms, p90 %+.2f ms.\n",
		one.P50-direct.P50, one.P90-direct.P90, two.P50-one.P50, two.P90-one.P90)
	if confirmed != nil {
		md.WriteString(confirmTable(*confirmed))
	}
	if len(memory) > 0 {
		md.WriteString(memoryTable(sustained, memory, max(1, o.rate/4), o.rate))
	}
	if len(cpu) > 0 {
		total := 0.0
		md.WriteString("\nCPU per order (the journey below saturation; process_cpu_seconds_total before and after, divided by the orders done):\n\n| process | CPU ms per order |\n|---|---|\n")
		for _, c := range cpu {
			total += c.ms
			fmt.Fprintf(&md, "| %s | %.2f |\n", c.name, c.ms)
		}
		fmt.Fprintf(&md, "| all services and sidecars | %.2f (at most %.0f orders/s on %d cores, Redis and the generator not counted) |\n", total, 1000*float64(runtime.NumCPU())/total, runtime.NumCPU())
	}
	for _, p := range profiles {
		fmt.Fprintf(&md, "\nWhere %s spends its CPU during the order journey (`go tool pprof -top %s`):\n\n```\n%s```\n", p.app, p.file, p.top)
	}
	fmt.Println()
	fmt.Print(md.String())
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(map[string]any{"rate": o.rate, "duration": o.duration.String(), "results": results, "memory_mb": memory,
		"memory_mb_below_saturation": sustained, "placed_to_confirmed_ms": confirmed}, "", "  ")
	if err := os.WriteFile(filepath.Join(o.out, "bench.json"), raw, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.out, "bench.md"), []byte(md.String()), 0o644)
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

type measurement struct {
	name string
	req  bench.Request
}

// errNoSuite says nothing answers at the gateway: only the floor is measured.
var errNoSuite = errors.New("the suite is not running")

// confirmOrders is how many orders the placed-to-confirmed figures time.
const confirmOrders = 50

// suiteRequests signs up a customer, logs the admin in, creates a product
// with plenty of stock and returns the requests to measure.
func suiteRequests(o options) ([]measurement, shop, error) {
	resp, err := bench.Client.Get(o.gateway + "/healthz")
	if err != nil {
		return nil, shop{}, fmt.Errorf("%w: nothing answers at %s (make run, then make bench)", errNoSuite, o.gateway)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, shop{}, fmt.Errorf("%w: %s/healthz answers %d", errNoSuite, o.gateway, resp.StatusCode)
	}
	b, err := os.ReadFile(o.secrets)
	if err != nil {
		return nil, shop{}, err
	}
	var secrets map[string]string
	if err := json.Unmarshal(b, &secrets); err != nil {
		return nil, shop{}, fmt.Errorf("%s: %w", o.secrets, err)
	}
	// Orders come from many customers, as in a shop: one customer's orders
	// share that customer's order list and notifications (one key each, ETag
	// guarded), which would measure that key's contention instead.
	// 20 customers: with the admin, within users' 30 logins per address and
	// minute.
	var tokens []string
	for i := range 20 {
		email := fmt.Sprintf("bench-%d-%d@example.com", time.Now().UnixNano(), i)
		if err := call(o.gateway, "POST", "/api/users", "", map[string]string{"email": email, "password": "bench password 1", "name": "Bench"}, 201, nil); err != nil {
			return nil, shop{}, err
		}
		var login struct{ Token string }
		if err := call(o.gateway, "POST", "/api/login", "", map[string]string{"email": email, "password": "bench password 1"}, 200, &login); err != nil {
			return nil, shop{}, err
		}
		tokens = append(tokens, login.Token)
	}
	var admin struct{ Token string }
	if err := call(o.gateway, "POST", "/api/login", "", map[string]string{"email": o.adminEmail, "password": secrets["admin-password"]}, 200, &admin); err != nil {
		return nil, shop{}, fmt.Errorf("admin login: %w", err)
	}
	// Orders spread over several products: one product takes its
	// reservations one at a time (ETag, first write wins), which would
	// measure that key's contention instead of the journey.
	var ids []string
	for i := range 20 {
		var p struct{ ID string }
		if err := call(o.gateway, "POST", "/api/products", admin.Token, map[string]any{"name": fmt.Sprint("Bench widget ", i), "price": 100, "currency": "EUR", "stock": 1_000_000}, 201, &p); err != nil {
			return nil, shop{}, err
		}
		ids = append(ids, p.ID)
	}
	auth := http.Header{"Authorization": {"Bearer " + tokens[0]}}
	return []measurement{
		{"suite: GET /api/products/{id} (gateway → products)", bench.Get(o.gateway+"/api/products/"+ids[0], nil)},
		{"suite: GET /api/products?limit=20 (a catalog page)", bench.Get(o.gateway+"/api/products?limit=20", nil)},
		{"suite: GET /api/me (gateway → users)", bench.Get(o.gateway+"/api/me", auth)},
		{"suite: GET /api/orders (gateway → orders)", bench.Get(o.gateway+"/api/orders", auth)},
		{"suite: GET /api/notifications (gateway → notifications)", bench.Get(o.gateway+"/api/notifications", auth)},
		{"suite: POST /api/orders (the order journey)", bench.Request{Want: http.StatusCreated, Make: func(i int) (*http.Request, error) {
			order := fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}]}`, ids[i%len(ids)])
			req, err := http.NewRequest(http.MethodPost, o.gateway+"/api/orders", strings.NewReader(order))
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}}},
	}, shop{gateway: o.gateway, tokens: tokens, ids: ids}, nil
}

// call sends one request to the gateway, with body as JSON unless nil.
func call(base, method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := bench.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, reply)
	}
	if out != nil {
		return json.Unmarshal(reply, out)
	}
	return nil
}

type memoryFigure struct {
	name string
	mb   float64
}

// rss reads process_resident_memory_bytes of every service and sidecar of
// the run file that answers.
func rss(runFile string) []memoryFigure {
	f, err := runner.Load(runFile)
	if err != nil {
		return nil
	}
	var out []memoryFigure
	for _, a := range prometheus.AppsOf(f.Apps) {
		for _, t := range []struct {
			name string
			port int
		}{{a.ID, a.AppPort}, {a.ID + " daprd", a.MetricsPort}} {
			if v, err := residentBytes(fmt.Sprintf("http://127.0.0.1:%d/metrics", t.port)); err == nil {
				out = append(out, memoryFigure{t.name, v / 1e6})
			}
		}
	}
	return out
}

// memoryTable puts the resident memory after the journey below saturation
// (the load the suite sustains) beside the memory after the whole run, whose
// last step overloads it.
func memoryTable(sustained, after []memoryFigure, low, high int) string {
	at := map[string]float64{}
	for _, m := range sustained {
		at[m.name] = m.mb
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| process | resident memory after the journey at %d/s | after the run (the journey at %d/s last) |\n|---|---|---|\n", low, high)
	for _, m := range after {
		below := "-"
		if v, ok := at[m.name]; ok {
			below = fmt.Sprintf("%.1f MB", v)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f MB |\n", m.name, below, m.mb)
	}
	return b.String()
}

func residentBytes(url string) (float64, error) {
	return metricValue(url, "process_resident_memory_bytes")
}

// metricValue reads the first sample of an unlabelled metric from a
// Prometheus endpoint (with or without the service label).
func metricValue(url, name string) (float64, error) {
	resp, err := bench.Client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			var v float64
			if _, err := fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v); err == nil {
				return v, nil
			}
		}
	}
	return 0, errors.New("no " + name)
}

// cpuSeconds reads process_cpu_seconds_total of every service and sidecar
// of the run file.
func cpuSeconds(runFile string) map[string]float64 {
	f, err := runner.Load(runFile)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, a := range prometheus.AppsOf(f.Apps) {
		for name, port := range map[string]int{a.ID: a.AppPort, a.ID + " daprd": a.MetricsPort} {
			if v, err := metricValue(fmt.Sprintf("http://127.0.0.1:%d/metrics", port), "process_cpu_seconds_total"); err == nil {
				out[name] = v
			}
		}
	}
	return out
}

// profile is one app's CPU profile and its top functions.
type profile struct {
	app, file, top string
}

// profileApps starts CPU profiles of the apps in spec (app=host:port,...)
// for about d and returns a function that waits for them.
func profileApps(spec string, d time.Duration, dir string) func() []profile {
	if spec == "" {
		return nil
	}
	var (
		out  []profile
		mu   sync.Mutex
		wg   sync.WaitGroup
		secs = max(1, int(d.Seconds())-1)
	)
	for _, kv := range strings.Split(spec, ",") {
		app, addr, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: d + 30*time.Second}
			resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
			if err != nil {
				say("pprof %s: %v (start it with PPROF_ADDR=%s)", app, err, addr)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				say("pprof %s: %d", app, resp.StatusCode)
				return
			}
			file := filepath.Join(dir, app+".cpu.pprof")
			if err := os.MkdirAll(dir, 0o755); err != nil || os.WriteFile(file, b, 0o644) != nil {
				return
			}
			top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", file).Output()
			if err != nil {
				say("pprof %s: %v", app, err)
				return
			}
			mu.Lock()
			out = append(out, profile{app: app, file: file, top: string(top)})
			mu.Unlock()
		}()
	}
	return func() []profile {
		wg.Wait()
		slices.SortFunc(out, func(a, b profile) int { return strings.Compare(a.app, b.app) })
		return out
	}
}

// cpuFigure is one process's CPU time per order.
type cpuFigure struct {
	name string
	ms   float64
}

// cpuPerOrder divides each process's CPU seconds between before and after
// by the orders done, heaviest first.
func cpuPerOrder(before, after map[string]float64, orders float64) []cpuFigure {
	if orders < 1 {
		return nil
	}
	var out []cpuFigure
	for name, b := range before {
		if a, ok := after[name]; ok {
			out = append(out, cpuFigure{name, (a - b) * 1000 / orders})
		}
	}
	slices.SortFunc(out, func(x, y cpuFigure) int {
		switch {
		case x.ms > y.ms:
			return -1
		case x.ms < y.ms:
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	return out
}

// waitIdle waits (up to a minute) until the suite, if it runs, uses less
// than a tenth of a core: a suite that just started drains its event
// backlog, which would blur the floor.
func waitIdle(ctx context.Context, runFile string) {
	prev := cpuSeconds(runFile)
	if len(prev) == 0 {
		return
	}
	for i := 0; i < 60 && ctx.Err() == nil; i++ {
		time.Sleep(time.Second)
		cur, busy := cpuSeconds(runFile), 0.0
		for k, v := range cur {
			busy += v - prev[k]
		}
		if busy < 0.1 {
			return
		}
		if i%5 == 4 {
			say("waiting for the suite to settle (%.2f cores busy)", busy)
		}
		prev = cur
	}
}
