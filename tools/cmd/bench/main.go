// Command bench measures the sidecar floor and the suite in one run on one
// machine: a no-op app directly, behind one daprd and behind two (the way one
// service invokes another), with the CPU the two sidecars spend per call;
// then, when the suite answers on -gateway, placed-to-confirmed for orders
// one after another, each read endpoint at -rate, a sustained stream of
// orders at -stream-rate (the order's latency, CPU and sidecar operations
// per order per process, the events each subscriber got per topic and
// second and how far each trailed the stream, placed-to-confirmed under that
// load) and last the order journey at -rate, which overloads two cores. It
// prints a Markdown report with every figure's ratio to the two-hop floor
// and writes it with the raw figures (JSON) into -out.
//
// "bench kafka -port 9092" runs a Kafka broker for the kafka-postgres
// profile whose topics get the partitions the Kubernetes deployment
// declares (k8s/kafka/topics.yaml; -partitions n: n for every topic);
// tools/loadtest.sh starts it before the suite.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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
	// profile names the components the suite runs with (the report says
	// it); resources is their directory (the pub/sub's topics); redis and
	// kafka are the pub/sub's broker, whose topics' records are counted
	// ("" for none).
	profile, resources, redis, kafka string
	// k8sTopics is the Kubernetes deployment's KafkaTopics, whose
	// partitions the report sets beside the broker's.
	k8sTopics string
	// The sustained stream of orders: its rate and length, the customers
	// placing them (0: enough that no customer's notification list
	// overflows), how often the subscribers' sidecars are read once it
	// stops, for how long nothing must change for the events to count as
	// settled, and how long to wait for that at most.
	streamRate, customers                         int
	streamDuration, sampleEvery, quiet, settleMax time.Duration
	confirmOrders                                 int
	// redisServer is the redis-server binary of the operations floor ("":
	// the operations floor is skipped).
	redisServer string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kafka" {
		if err := runKafka(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench kafka:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.daprd, "daprd", "../.bin/daprd", "the daprd binary for the floor")
	flag.StringVar(&o.sentry, "sentry", "../.bin/sentry", "Dapr's sentry binary: the floor's sidecars use mTLS, as the suite's do")
	flag.StringVar(&o.redisServer, "redis-server", bench.OpsRedisServer, "redis-server for the floor of each kind of operation (a private instance on a free port; empty: skip it)")
	flag.IntVar(&o.rate, "rate", 200, "arrivals per second of the floor, the reads and the last order journey")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of those measurements")
	flag.IntVar(&o.streamRate, "stream-rate", 0, "orders per second of the sustained stream (0: three quarters of what this machine sustains, priced by a calibration stream of 15 s at 10/s)")
	flag.DurationVar(&o.streamDuration, "stream-duration", 60*time.Second, "length of the sustained stream")
	flag.IntVar(&o.customers, "customers", 0, "customers placing the orders (0: enough that no one's notifications overflow their list)")
	flag.IntVar(&o.confirmOrders, "confirm-orders", 50, "orders placed one after another for placed-to-confirmed below saturation")
	flag.DurationVar(&o.sampleEvery, "sample-every", 250*time.Millisecond, "how often the subscribers' sidecars are read after the stream")
	flag.DurationVar(&o.quiet, "quiet", 3*time.Second, "events count as settled when no count changed for this long")
	flag.DurationVar(&o.settleMax, "settle-max", 45*time.Second, "the longest wait for the events to settle after the stream")
	flag.StringVar(&o.profile, "profile", "redis", "the components' profile the suite runs with (reported)")
	flag.StringVar(&o.resources, "resources", "", "the profile's components directory (default ../components/<profile>): the pub/sub's topics")
	flag.StringVar(&o.redis, "redis", "", "the redis profile's pub/sub Redis (host:port): its topics' records are counted")
	flag.StringVar(&o.kafka, "kafka", "", "the kafka-postgres profile's broker (host:port): its topics' partitions and records are read")
	flag.StringVar(&o.k8sTopics, "k8s-topics", "../k8s/kafka/topics.yaml", "the Kubernetes deployment's KafkaTopics: their partitions beside the broker's")
	flag.StringVar(&o.gateway, "gateway", "http://127.0.0.1:8080", "the suite's gateway; the suite part is skipped when it does not answer")
	flag.StringVar(&o.runFile, "f", "../dapr.yaml", "the run file, for the ports of the services and sidecars (memory, CPU, operations)")
	flag.StringVar(&o.secrets, "secrets", "../components/local-secrets.json", "the secrets file the suite runs with (admin password)")
	flag.StringVar(&o.adminEmail, "admin-email", "admin@daprshop.local", "the suite's admin account")
	flag.StringVar(&o.out, "out", "../loadtest/results", "directory for bench.md and bench.json")
	flag.StringVar(&o.pprof, "pprof", "", "app=host:port,...: CPU-profile these apps (started with PPROF_ADDR) during the last order journey")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bench [flags]\n       bench kafka [-port 9092] [-manifest ../k8s/kafka/topics.yaml] [-partitions n]\n\nMeasures the sidecar floor and the suite (make bench).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.resources == "" {
		o.resources = filepath.Join("..", "components", o.profile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// report is everything one run measured; bench.json is it as JSON.
type report struct {
	Measured time.Time      `json:"measured"`
	Profile  string         `json:"profile"`
	Rate     int            `json:"rate"`
	Duration string         `json:"duration"`
	Results  []bench.Result `json:"results"`
	// Floor is the two-hop floor (also in Results), FloorCPU its sidecars'
	// CPU per call, ms.
	Floor    bench.Result `json:"-"`
	FloorCPU float64      `json:"floor_cpu_ms_per_call"`
	Direct   bench.Result `json:"-"`
	OneHop   bench.Result `json:"-"`
	// OpCosts is the daprd CPU per operation of each kind an order is made
	// of (the operations floor); OpsSkipped says why it is missing.
	OpCosts    []bench.OpCost `json:"daprd_cpu_per_operation,omitempty"`
	OpsSkipped string         `json:"ops_floor_skipped,omitempty"`
	// Confirmed is placed-to-confirmed for orders one after another, the
	// order read until confirmed; ConfirmedNotified the same orders to
	// order.confirmed reaching notifications.
	Confirmed         *confirmFigures `json:"placed_to_confirmed_ms,omitempty"`
	ConfirmedNotified *latency        `json:"placed_to_notified_sequential_ms,omitempty"`
	Stream            *streamFigures  `json:"stream,omitempty"`
	// Calibration says how the stream's rate was chosen (nil: -stream-rate).
	Calibration *calibration   `json:"calibration,omitempty"`
	Memory      []memoryFigure `json:"memory_mb"`
	Profiles    []profile      `json:"-"`
	Cores       int            `json:"cores"`
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
	rep := &report{Measured: time.Now().UTC(), Profile: o.profile, Rate: o.rate, Duration: o.duration.String(),
		Results: []bench.Result{direct, one, two}, Direct: direct, OneHop: one, Floor: two, FloorCPU: two.CPU, Cores: runtime.NumCPU()}
	measureOps(ctx, o, daprd, sentry, rep)
	switch err := measureSuite(ctx, o, rep); {
	case errors.Is(err, errNoSuite):
		say("suite: skipped (%v)", err)
	case err != nil:
		return err
	}
	return write(o, rep)
}

// measureOps measures the floor of each kind of operation into rep: state
// save and get, publish and delivery, an outbox event. Without a
// redis-server it is skipped, and the report says so.
func measureOps(ctx context.Context, o options, daprd, sentry string, rep *report) {
	if o.redisServer == "" {
		rep.OpsSkipped = "-redis-server is empty"
		return
	}
	say("ops floor: starting a private redis-server, Sentry, two daprd sidecars and no-op apps")
	ops, err := bench.StartOps(ctx, daprd, sentry, o.redisServer, io.Discard)
	if err != nil {
		rep.OpsSkipped = err.Error()
		say("ops floor: skipped (%v)", err)
		return
	}
	defer ops.Stop()
	say("ops floor: %d/s for %s each (the outbox at most %d/s): state save, state get, publish + delivery, outbox event", o.rate, o.duration, bench.MaxOutboxRate)
	rep.OpCosts = ops.Measure(ctx, o.rate, o.duration)
}

// write prints the report and writes bench.md and bench.json into o.out.
func write(o options, rep *report) error {
	md := rep.markdown(o)
	fmt.Println()
	fmt.Print(md)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "bench.json"), raw, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.out, "bench.md"), []byte(md), 0o644)
}

// measureSuite measures the suite through its gateway into rep: errNoSuite
// when nothing answers there.
func measureSuite(ctx context.Context, o options, rep *report) error {
	reads, s, err := suiteRequests(o)
	if err != nil {
		if errors.Is(err, errNoSuite) {
			return err
		}
		// The suite answers but could not be set up (a login refused, a
		// wrong secrets file): a floor-only report would hide it.
		return fmt.Errorf("setting up the suite's measurements: %w", err)
	}
	say("suite: placed to confirmed, %d orders one after another", o.confirmOrders)
	f, placed, err := placedToConfirmed(ctx, s, o.confirmOrders)
	if err != nil {
		return fmt.Errorf("placed to confirmed: %w", err)
	}
	rep.Confirmed = &f
	for _, m := range reads {
		say("%s", m.name)
		rep.Results = append(rep.Results, bench.Measure(ctx, m.name, o.rate, o.duration, m.req))
	}
	if o.streamRate <= 0 {
		say("suite: a calibration stream, %d/s for %s, to price an order on this machine", calibrationRate, calibrationDuration)
		cal, err := calibrate(ctx, o, s, rep.Cores)
		if err != nil {
			return fmt.Errorf("the calibration stream: %w", err)
		}
		rep.Calibration = cal
		o.streamRate = cal.Chosen
	}
	say("suite: the order journey as a sustained stream, %d/s for %s", o.streamRate, o.streamDuration)
	st, err := runStream(ctx, o, s)
	if err != nil {
		return fmt.Errorf("the sustained stream: %w", err)
	}
	rep.Stream = st
	rep.Results = append(rep.Results, st.Result)
	say("suite: reading every customer's notifications")
	notified, err := notifiedAt(ctx, s)
	if err != nil {
		return fmt.Errorf("reading notifications: %w", err)
	}
	rep.ConfirmedNotified = placedToNotified(placed, notified)
	st.Latency = placedToNotified(st.placed, notified)

	say("suite: the order journey at %d/s (past what two cores sustain)", o.rate)
	wait := profileApps(o.pprof, o.duration, o.out)
	rep.Results = append(rep.Results, bench.Measure(ctx, "suite: POST /api/orders (the order journey)", o.rate, o.duration, s.order(nil)))
	if wait != nil {
		rep.Profiles = wait()
	}
	rep.Memory = rss(o.runFile)
	return nil
}

// markdown renders the report.
func (rep *report) markdown(o options) string {
	var md strings.Builder
	fmt.Fprintf(&md, "Measured %s on %d cores, profile **%s**%s. The floor, the reads and the last order journey at %d arrivals/s for %s each (open loop, at most %d in flight).\n\n",
		rep.Measured.Format(time.RFC3339), rep.Cores, rep.Profile, profileNote(rep), rep.Rate, rep.Duration, bench.MaxInFlight)
	md.WriteString(bench.Table(rep.Results, &rep.Floor))
	fmt.Fprintf(&md, "\nAdded by a sidecar hop: p50 %+.2f ms, p90 %+.2f ms (one hop minus direct); the second hop p50 %+.2f ms, p90 %+.2f ms.\n",
		rep.OneHop.P50-rep.Direct.P50, rep.OneHop.P90-rep.Direct.P90, rep.Floor.P50-rep.OneHop.P50, rep.Floor.P90-rep.OneHop.P90)
	if rep.FloorCPU > 0 {
		fmt.Fprintf(&md, "\nCPU of one two-hop no-op call (the floor's two sidecars, process_cpu_seconds_total before and after the two-hop measurement, divided by its calls): **%.3f ms**.\n", rep.FloorCPU)
	}
	md.WriteString(opsMarkdown(rep))
	if rep.Confirmed != nil {
		md.WriteString(confirmTable(*rep.Confirmed, rep.ConfirmedNotified))
	}
	if st := rep.Stream; st != nil {
		chosen := ""
		if rep.Calibration != nil {
			chosen = rep.Calibration.markdown()
		}
		md.WriteString(st.markdown(rep.FloorCPU, rep.Cores, chosen))
	}
	if len(rep.Memory) > 0 {
		var below []memoryFigure
		if rep.Stream != nil {
			below = rep.Stream.Memory
		}
		rate := o.streamRate
		if rep.Stream != nil {
			rate = rep.Stream.Rate
		}
		md.WriteString(memoryTable(below, rep.Memory, rate, o.rate))
	}
	for _, p := range rep.Profiles {
		fmt.Fprintf(&md, "\nWhere %s spends its CPU during the last order journey (`go tool pprof -top %s`):\n\n```\n%s```\n", p.app, p.file, p.top)
	}
	return md.String()
}

// opsMarkdown renders the daprd CPU per operation of each kind.
func opsMarkdown(rep *report) string {
	if len(rep.OpCosts) == 0 {
		if rep.OpsSkipped != "" {
			return fmt.Sprintf("\nThe floor of each kind of operation was not measured: %s.\n", rep.OpsSkipped)
		}
		return ""
	}
	return "\n" + bench.OpsMarkdown(rep.Floor, rep.OpCosts)
}

// profileNote says what the profile runs on.
func profileNote(rep *report) string {
	switch {
	case rep.Profile == "redis":
		return " (Redis state stores and pub/sub)"
	case rep.Profile == "kafka-postgres" && rep.Stream != nil && len(rep.Stream.Topics) > 0:
		parts := map[int]bool{}
		for _, t := range rep.Stream.Topics {
			parts[t.Partitions] = true
		}
		var ps []string
		for _, p := range slices.Sorted(maps.Keys(parts)) {
			ps = append(ps, strconv.Itoa(p))
		}
		return fmt.Sprintf(" (PostgreSQL state stores, Kafka pub/sub: %s partition(s) per topic; Dapr 1.14 takes a partition's messages one at a time)", strings.Join(ps, ", "))
	case rep.Profile == "kafka-postgres":
		return " (PostgreSQL state stores, Kafka pub/sub)"
	}
	return ""
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

type measurement struct {
	name string
	req  bench.Request
}

// errNoSuite says nothing answers at the gateway: only the floor is measured.
var errNoSuite = errors.New("the suite is not running")

// ordersPerCustomer bounds the stream's orders per customer: each order
// leaves about seven notifications in its customer's list (four of the
// order, three of its shipment), which keeps the newest 200 (notifications'
// MAX_PER_USER), and placed-to-confirmed under load reads them after the
// stream.
const ordersPerCustomer = 25

// suiteRequests signs up the customers, logs the admin in, creates products
// with plenty of stock and returns the reads to measure and the shop the
// orders act in.
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
	customers := o.customers
	if customers <= 0 {
		rate := o.streamRate
		if rate <= 0 { // the calibration's orders and the most it may choose
			rate = maxAutoRate + int(calibrationRate*calibrationDuration/o.streamDuration)
		}
		customers = max(20, int(float64(rate)*o.streamDuration.Seconds()/ordersPerCustomer)+1)
	}
	say("suite: signing up %d customers", customers)
	var tokens []string
	for i := range customers {
		email := fmt.Sprintf("bench-%d-%d@example.com", time.Now().UnixNano(), i)
		if err := call(o.gateway, "POST", "/api/users", "", map[string]string{"email": email, "password": "bench password 1", "name": "Bench"}, 201, nil); err != nil {
			return nil, shop{}, err
		}
		tok, err := login(o.gateway, email, "bench password 1")
		if err != nil {
			return nil, shop{}, err
		}
		tokens = append(tokens, tok)
	}
	admin, err := login(o.gateway, o.adminEmail, secrets["admin-password"])
	if err != nil {
		return nil, shop{}, fmt.Errorf("admin login: %w", err)
	}
	// Orders spread over several products: one product takes its
	// reservations one at a time (ETag, first write wins), which would
	// measure that key's contention instead of the journey.
	var ids []string
	for i := range 20 {
		var p struct{ ID string }
		if err := call(o.gateway, "POST", "/api/products", admin, map[string]any{"name": fmt.Sprint("Bench widget ", i), "price": 100, "currency": "EUR", "stock": 1_000_000}, 201, &p); err != nil {
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
	}, shop{gateway: o.gateway, tokens: tokens, ids: ids}, nil
}

// login logs a user in and returns the token. Users allows 30 logins a
// minute from one address (tools/loadtest.sh raises that for the suite it
// starts): a 429, like a 503, is waited out, within three minutes.
func login(gateway, email, password string) (string, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var out struct{ Token string }
		err := call(gateway, "POST", "/api/login", "", map[string]string{"email": email, "password": password}, 200, &out)
		var st statusError
		if err == nil || !errors.As(err, &st) || time.Now().After(deadline) ||
			st.status != http.StatusTooManyRequests && st.status != http.StatusServiceUnavailable {
			return out.Token, err
		}
		wait := 2 * time.Second
		if n, err := strconv.Atoi(st.retryAfter); err == nil && n > 0 && n < 60 {
			wait = time.Duration(n) * time.Second
		}
		say("login refused (%d): waiting %s (429: the suite's LOGIN_ATTEMPTS_PER_ADDRESS)", st.status, wait)
		time.Sleep(wait)
	}
}

// statusError is a reply of an unexpected status.
type statusError struct {
	method, path string
	status       int
	body         string
	retryAfter   string
}

func (e statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.body)
}

// call sends one request to the gateway, with body as JSON unless nil. A
// GET refused with 503 (the gateway's admission control sheds load, and
// says when to come back) is sent again, up to five times.
func call(base, method, path, token string, body any, want int, out any) error {
	for attempt := 1; ; attempt++ {
		err := callOnce(base, method, path, token, body, want, out)
		var st statusError
		if method != http.MethodGet || attempt == 5 || !errors.As(err, &st) || st.status != http.StatusServiceUnavailable {
			return err
		}
		wait := time.Second
		if n, err := strconv.Atoi(st.retryAfter); err == nil && n > 0 && n < 10 {
			wait = time.Duration(n) * time.Second
		}
		time.Sleep(wait)
	}
}

func callOnce(base, method, path, token string, body any, want int, out any) error {
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
		return statusError{method, path, resp.StatusCode, string(reply), resp.Header.Get("Retry-After")}
	}
	if out != nil {
		return json.Unmarshal(reply, out)
	}
	return nil
}

// memoryFigure is one process's resident memory.
type memoryFigure struct {
	Name string  `json:"process"`
	MB   float64 `json:"mb"`
}

// appsOf returns the apps of the run file, their ports and their sidecars'
// (nil if it cannot be read).
func appsOf(runFile string) []prometheus.App {
	f, err := runner.Load(runFile)
	if err != nil {
		return nil
	}
	return prometheus.AppsOf(f.Apps)
}

// rss reads process_resident_memory_bytes of every service and sidecar of
// the run file that answers.
func rss(runFile string) []memoryFigure {
	var out []memoryFigure
	for _, a := range appsOf(runFile) {
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

// memoryTable puts the resident memory after the sustained stream (the load
// the suite sustains) beside the memory after the whole run, whose last
// step overloads it.
func memoryTable(sustained, after []memoryFigure, low, high int) string {
	at := map[string]float64{}
	for _, m := range sustained {
		at[m.Name] = m.MB
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| process | resident memory after the stream at %d/s | after the run (the journey at %d/s last) |\n|---|---|---|\n", low, high)
	for _, m := range after {
		below := "-"
		if v, ok := at[m.Name]; ok {
			below = fmt.Sprintf("%.1f MB", v)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f MB |\n", m.Name, below, m.MB)
	}
	return b.String()
}

func residentBytes(url string) (float64, error) {
	return metricValue(url, "process_resident_memory_bytes")
}

// metricValue reads a metric of a Prometheus endpoint (a process_*
// metric: one sample, with or without the service label).
func metricValue(url, name string) (float64, error) {
	ss, err := bench.Scrape(context.Background(), url)
	if err != nil {
		return 0, err
	}
	if !ss.Has(name) {
		return 0, errors.New("no " + name)
	}
	return ss.Sum(name, nil), nil
}

// cpuSeconds reads process_cpu_seconds_total of every service and sidecar
// of the run file.
func cpuSeconds(runFile string) map[string]float64 {
	out := map[string]float64{}
	for _, a := range appsOf(runFile) {
		for name, port := range map[string]int{a.ID: a.AppPort, a.ID + " daprd": a.MetricsPort} {
			if v, err := metricValue(fmt.Sprintf("http://127.0.0.1:%d/metrics", port), bench.MetricCPU); err == nil {
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
	Name string  `json:"process"`
	MS   float64 `json:"ms"`
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
		case x.MS > y.MS:
			return -1
		case x.MS < y.MS:
			return 1
		}
		return strings.Compare(x.Name, y.Name)
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
