package e2e

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/runner"
	"github.com/daprshop/suite/tools/runner/runnertest"
)

// env is the running suite every test talks to, started once per pass and
// shared by its tests. Another suite with the same app IDs on the machine
// (make run, another checkout's tests, the second suite of
// TestTwoSuitesNeverCross) never reaches it: every run of the runner
// resolves app IDs in a database of its own, not through mDNS.
var env *suite

type suite struct {
	profile string
	run     *runner.Run
	probe   *probe
	secrets map[string]string // what this run's secret store holds
	logPath string
	spec    *contracts
	redis   *redisServer // the fault pass's own Redis, nil otherwise
	spans   *collector   // where the sidecars send their spans
	marker  string       // in the environment of every process of this pass
	// cli is the suite under the Dapr CLI (the cli pass), which has no run.
	cli *cliRun
}

// gatewayURL is the public API's address in the running suite.
func (s *suite) gatewayURL() string {
	if s.cli != nil {
		return fmt.Sprintf("http://127.0.0.1:%d", s.cli.ports["gateway"].app)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", s.run.App("gateway").AppPort)
}

// toolPath finds a tool the way the Makefile provides it: the path in the
// environment variable env, or .bin/name (make tools).
func toolPath(env, name string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", ".bin", name))
	return p
}

// daprdPath finds daprd.
func daprdPath() string { return toolPath("DAPRD", "daprd") }

// sentryPath finds Dapr's sentry (mTLS between the sidecars).
func sentryPath() string { return toolPath("SENTRY", "sentry") }

func TestMain(m *testing.M) {
	for _, bin := range []struct{ name, path string }{{"daprd", daprdPath()}, {"sentry", sentryPath()}, {"jaeger", jaegerPath()}} {
		name, path := bin.name, bin.path
		if _, err := os.Stat(path); err != nil {
			if os.Getenv("E2E_REQUIRED") != "" {
				fmt.Fprintf(os.Stderr, "e2e: %s not found at %s: run `make tools`\n", name, path)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "e2e: skipped, no %s at %s (run `make tools`, or `make test`)\n", name, path)
			os.Exit(0)
		}
	}
	os.Exit(runSuite(m))
}

// profiles are the component profiles the whole suite runs on, one after the
// other, with the same binaries: E2E_PROFILES narrows them ("none": only the
// fault pass).
func profiles() []string {
	if p := os.Getenv("E2E_PROFILES"); p == "none" {
		return nil
	} else if p != "" {
		return strings.Split(p, ",")
	}
	return []string{"redis", "kafka-postgres"}
}

func runSuite(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	spec, err := loadContracts("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: contracts:", err)
		return 1
	}
	f, err := runner.Load("../dapr.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if binaries, err = build(f.Apps, filepath.Join(tmp, "bin")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := 0
	// Fault tests kill processes and restart a Redis: they run apart, last,
	// on the redis profile pointed at a Redis server of their own
	// (E2E_FAULTS=0 leaves them out).
	skip := flag.Lookup("test.skip").Value.String()
	run := flag.Lookup("test.run").Value.String()
	passes := profiles()
	// The suite under the real Dapr CLI (cli_test.go) runs apart too, after
	// the profiles: it starts the suite its own way.
	cli, why := daprCLI()
	if os.Getenv("E2E_CLI") != "0" && (run == "" || strings.Contains(run, "CLI")) {
		if cli != "" {
			passes = append(passes, cliPass)
		} else if os.Getenv("E2E_CLI_REQUIRED") != "" {
			fmt.Fprintf(os.Stderr, "e2e: the Dapr CLI test is required (E2E_CLI_REQUIRED) but %s\n", why)
			code = 1
		} else {
			fmt.Printf("=== e2e pass %s SKIPPED: %s\n", cliPass, why)
		}
	}
	if os.Getenv("E2E_FAULTS") != "0" && (run == "" || strings.Contains(run, "Fault")) {
		passes = append(passes, faultsPass)
	}
	for _, profile := range passes {
		switch profile {
		case faultsPass:
			// TestZContracts too: the answers during faults must match the
			// documents as well.
			_ = flag.Set("test.run", cmp.Or(run, faultTests+"|^TestZContracts$"))
			_ = flag.Set("test.skip", joinPattern(cliTests, skip))
		case cliPass:
			_ = flag.Set("test.run", cmp.Or(run, cliTests))
			_ = flag.Set("test.skip", joinPattern(faultTests, skip))
			fmt.Printf("=== e2e pass %s: the suite under `dapr run -f .` (%s)\n", cliPass, cli)
			if c := runCLIPass(m, cli, filepath.Join(tmp, cliPass), spec); c != 0 {
				fmt.Printf("=== e2e pass %s FAILED\n", cliPass)
				code = c
			}
			continue
		default:
			_ = flag.Set("test.skip", joinPattern(faultTests+"|"+cliTests, skip))
		}
		fmt.Printf("=== e2e profile %s, %s of every service\n", profile, plural(replicasOf(profile), "replica"))
		if c := runProfile(m, profile, filepath.Join(tmp, profile), spec); c != 0 {
			fmt.Printf("=== e2e profile %s FAILED\n", profile)
			code = c
		}
	}
	return code
}

// replicasOf is how many instances of every service the pass runs:
// E2E_REPLICAS for every pass when set; otherwise one on the redis profile
// (what make run starts) and two on the others, the fault pass included, so
// that every change is tried against a single instance and against
// replicas, and the replica tests (replicas_test.go) run.
func replicasOf(pass string) int {
	if n, err := strconv.Atoi(os.Getenv("E2E_REPLICAS")); err == nil && n > 0 {
		return n
	}
	if pass == "redis" {
		return 1
	}
	return 2
}

// plural spells n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// faultsPass names the pass of the fault tests, faultTests matches them;
// cliPass and cliTests the same for the suite under the Dapr CLI.
const (
	faultsPass = "faults"
	faultTests = "^TestFault"
	cliPass    = "cli"
	cliTests   = "^TestCLI"
)

// joinPattern is the regexp matching a or b ("" matches nothing).
func joinPattern(a, b string) string {
	if b == "" {
		return a
	}
	return a + "|" + b
}

// runProfile starts the suite on one component profile, runs every test
// against it, and stops it.
func runProfile(m *testing.M, profile, dir string, spec *contracts) int {
	infra, err := startInfra(profile, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e %s: %v\n", profile, err)
		return 1
	}
	defer infra.close()
	marker := runnertest.NewMarker()
	s, err := startSuite(profile, dir, marker, infra.secrets, infra.redisAddr())
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e %s: starting the suite: %v\n", profile, err)
		dumpLog(filepath.Join(dir, "suite.log"))
		return 1
	}
	s.spec = spec.fresh() // each pass is judged on its own answers
	s.marker = marker
	s.redis = infra.redis
	env = s
	code := m.Run()
	s.run.Stop()
	s.probe.close()
	s.spans.close()
	return finishPass(profile, marker, s.logPath, code)
}

// finishPass fails a pass that left a process carrying marker behind (a
// stop must leave nothing, whatever the tests did), and shows the end of
// its log when it failed.
func finishPass(pass, marker, logPath string, code int) int {
	if left := runnertest.Tagged(marker); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e %s: processes left after stop:\n%s\n", pass, strings.Join(left, "\n"))
		code = 1
	}
	if code != 0 {
		dumpLog(logPath)
	}
	return code
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func dumpLog(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	last := tail(string(b), 300)
	fmt.Fprintf(os.Stderr, "--- last %d lines of the suite's output (%s) ---\n%s\n", strings.Count(last, "\n")+1, path, last)
}

// adminEmail is this run's admin account.
var adminEmail = "admin-" + randomHex(6) + "@daprshop.local"

// binaries maps each app ID to the binary built for it, once for all profiles.
var binaries map[string]string

// build compiles every app into dir: go build, or tools/nodeapp.sh for a
// Node.js service (a package.json in its directory).
func build(apps []runner.App, dir string) (map[string]string, error) {
	out := map[string]string{}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, a := range apps {
		bin := filepath.Join(dir, a.ID)
		out[a.ID] = bin
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-o", bin, ".")
			if _, err := os.Stat(filepath.Join(a.Dir, "package.json")); err == nil {
				cmd = exec.Command("bash", "../../tools/nodeapp.sh", "build", ".", bin)
			}
			cmd.Dir = a.Dir
			if b, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("building %s: %v\n%s", a.ID, err, b))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// startSuite starts every app of the repo's dapr.yaml on profile's components
// (a private copy whose secret store holds secrets), plus a probe subscriber,
// all on free ports.
func startSuite(profile, dir, marker string, secrets map[string]string, redisAddr string) (*suite, error) {
	f, err := runner.Load("../dapr.yaml")
	if err != nil {
		return nil, err
	}
	for i := range f.Apps {
		a := &f.Apps[i]
		a.Command = []string{binaries[a.ID]}
		a.AppPort, a.DaprHTTPPort, a.DaprGRPCPort, a.DaprInternalGRPCPort, a.MetricsPort = 0, 0, 0, 0, 0
		a.Replicas = replicasOf(profile)
		if a.Env == nil {
			a.Env = map[string]string{}
		}
		if a.ID == "users" {
			// Fast hashing keeps sign-ups cheap in tests; production keeps the default.
			a.Env["BCRYPT_COST"] = "4"
			// Accounts outlive a run in the machine's Redis: a fresh admin each run.
			a.Env["ADMIN_EMAIL"] = adminEmail
			// Every test logs in from 127.0.0.1; the per-account limit stays.
			a.Env["LOGIN_ATTEMPTS_PER_ADDRESS"] = "100000"
		}
		if a.ID == "notifications" {
			// The replica tests check every notification of hundreds of orders.
			a.Env["MAX_PER_USER"] = "100000"
		}
		if a.ID == "shipping" {
			// Shipments delivered within a test's patience.
			a.Env["SHIPPING_STEPS"] = shippingSteps
			a.Env["SHIPPING_TICK"] = "100ms"
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	components := profile
	if profile == faultsPass {
		components = "redis"
	}
	resources, err := privateResources(filepath.Join("..", "components", components), dir, secrets, redisAddr)
	if err != nil {
		return nil, err
	}
	// The fault pass traces nothing: Jaeger's CPU would only slow the
	// restarts it times on two cores.
	var spans *collector
	zipkin := ""
	if profile != faultsPass {
		if spans, err = newCollector(dir, marker); err != nil {
			return nil, err
		}
		zipkin = spans.url()
	}
	p, err := newProbe()
	if err != nil {
		spans.close()
		return nil, err
	}
	f.Apps = append(f.Apps, runner.App{
		ID: "e2e-probe", Dir: dir, AppPort: p.port, AppProtocol: "http", HealthPath: "/healthz",
		ConfigFile: f.Apps[0].ConfigFile, LogLevel: "info",
	})
	for i := range f.Apps {
		f.Apps[i].ResourcesPaths = []string{resources}
	}
	logPath := filepath.Join(dir, "suite.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	r, err := runner.Start(context.Background(), f, runner.Options{
		Daprd: daprdPath(), Sentry: sentryPath(), Out: logFile, ReadyTimeout: 2 * time.Minute, StopGrace: 10 * time.Second,
		// Each sidecar, and the gateway's edge, sends its spans to this
		// run's Jaeger.
		Zipkin:    zipkin,
		Env:       []string{marker},
		DaprdArgs: []string{"--dapr-graceful-shutdown-seconds", "1"},
	})
	if err != nil {
		p.close()
		spans.close()
		return nil, err
	}
	return &suite{profile: profile, run: r, probe: p, spans: spans, secrets: secrets, logPath: logPath}, nil
}

// privateResources copies the profile's resources into dir, pointing the
// local secret store at a secrets file holding secrets and, when redisAddr is
// set, every Redis component at it.
func privateResources(src, dir string, secrets map[string]string, redisAddr string) (string, error) {
	file := filepath.Join(dir, "secrets.json")
	b, _ := json.Marshal(secrets)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "resources")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	files, _ := filepath.Glob(filepath.Join(src, "*.yaml"))
	if len(files) == 0 {
		return "", fmt.Errorf("no components in %s", src)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		s := string(b)
		if redisAddr != "" {
			s = strings.ReplaceAll(s, "value: 127.0.0.1:6379", "value: "+redisAddr)
		} else if strings.Contains(s, "value: 127.0.0.1:6379") {
			// The machine's Redis: a database of the tests' own (see redisDB).
			s = strings.ReplaceAll(s, "      value: 127.0.0.1:6379\n", fmt.Sprintf("      value: 127.0.0.1:6379\n    - name: redisDB\n      value: \"%d\"\n", redisDB))
		}
		// The probe publishes test events and listens to every topic.
		for _, scope := range []string{"publishingScopes", "subscriptionScopes"} {
			s = addScope(s, scope, "e2e-probe="+strings.Join(probeTopics, ","))
		}
		if strings.Contains(s, "secretstores.local.file") {
			lines := strings.Split(s, "\n")
			for j, l := range lines {
				if strings.Contains(l, "- name: secretsFile") && j+1 < len(lines) {
					lines[j+1] = "      value: " + file
				}
			}
			s = strings.Join(lines, "\n")
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), []byte(s), 0o644); err != nil {
			return "", err
		}
	}
	return dst, nil
}

// addScope appends entry to the value of the pub/sub scope metadata named
// name in the component text s, if it has one.
func addScope(s, name, entry string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "- name: "+name && i+1 < len(lines) {
			lines[i+1] = strings.TrimSuffix(lines[i+1], `"`) + ";" + entry + `"`
		}
	}
	return strings.Join(lines, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// probe is a subscriber app running inside the test process behind its own
// daprd: it subscribes to every topic and dead-letter topic and keeps what
// arrives.
type probe struct {
	port int
	srv  *http.Server
	// since drops events made before this run: the machine's Redis keeps the
	// streams, and the probe's consumer group, from run to run.
	since time.Time
	mu    sync.Mutex
	got   []cloudEvent
}

// cloudEvent is the envelope Dapr delivers to subscribers.
type cloudEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Source     string          `json:"source"`
	Topic      string          `json:"topic"`
	PubSubName string          `json:"pubsubname"`
	Time       time.Time       `json:"time"`
	Data       json.RawMessage `json:"data"`
}

// probeTopics are the topics the probe listens to.
var probeTopics = []string{"orders", "payments", "shipments", "orders-deadletter", "payments-deadletter", "shipments-deadletter"}

func newProbe() (*probe, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// CloudEvent times have whole seconds.
	p := &probe{port: l.Addr().(*net.TCPAddr).Port, since: time.Now().Add(-time.Second).Truncate(time.Second)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
		var subs []map[string]string
		for _, t := range probeTopics {
			subs = append(subs, map[string]string{"pubsubname": "events", "topic": t, "route": "/events/" + t})
		}
		_ = json.NewEncoder(w).Encode(subs)
	})
	mux.HandleFunc("POST /events/{topic}", func(w http.ResponseWriter, r *http.Request) {
		var ev cloudEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ev.Topic = r.PathValue("topic")
		if ev.Time.Before(p.since) {
			_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
			return
		}
		p.mu.Lock()
		p.got = append(p.got, ev)
		p.mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *probe) close() { _ = p.srv.Close() }

// events returns the events received on topic whose data has order_id.
func (p *probe) events(topic, orderID string) []cloudEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []cloudEvent
	for _, ev := range p.got {
		var d struct {
			OrderID string `json:"order_id"`
		}
		if ev.Topic == topic && json.Unmarshal(ev.Data, &d) == nil && d.OrderID == orderID {
			out = append(out, ev)
		}
	}
	return out
}

// all returns every event received so far.
func (p *probe) all() []cloudEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]cloudEvent(nil), p.got...)
}
