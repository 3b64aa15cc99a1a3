package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/daprshop/suite/tools/runner"
	"github.com/daprshop/suite/tools/runner/runnertest"
)

// The suite under the real Dapr CLI: `dapr run -f .` on the repository's
// dapr.yaml, changed only where a test must (free ports, the pass's own
// Redis and secrets, a fresh admin), apps started by the file's own
// command (built into .bin/, then run), daprd through the file's runtimePath
// (tools/cli/runtime). These tests run in a pass of their own (cli), after
// the profiles.

// daprCLI finds the Dapr CLI: DAPR_CLI (CI builds tools/cli into
// .bin/dapr), else a dapr on PATH; why says what is missing when neither is.
func daprCLI() (path, why string) {
	if p := os.Getenv("DAPR_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("DAPR_CLI=%s: %v", p, err)
		}
		return p, ""
	}
	if p, err := exec.LookPath("dapr"); err == nil {
		return p, ""
	}
	return "", "no Dapr CLI: set DAPR_CLI, or put dapr on PATH " +
		"(https://docs.dapr.io/getting-started/install-dapr-cli/; tools/toolchain.sh dapr builds 1.14.1 into .bin/dapr)"
}

// cliRun is the suite as the Dapr CLI runs it.
type cliRun struct {
	cli     string // the CLI binary
	dir     string // holds the run file, dapr.yaml
	runDir  string // DAPRSHOP_RUN_DIR: the daprd wrapper's files, sidecars.env
	console string // the CLI's output
	marker  string // in the environment of every process of the run
	ports   map[string]cliPorts
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the CLI has exited
}

// cliPorts are one app's ports in the run file.
type cliPorts struct{ app, http, grpc, metrics int }

// runCLIPass runs the CLI tests against a Redis server of their own.
func runCLIPass(m *testing.M, cli, dir string, spec *contracts) int {
	infra, err := startInfra(cliPass, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e %s: %v\n", cliPass, err)
		return 1
	}
	defer infra.close()
	resources, err := privateResources(filepath.Join("..", "components", "redis"), dir, infra.secrets, infra.redisAddr())
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e %s: %v\n", cliPass, err)
		return 1
	}
	marker := runnertest.NewMarker()
	run, err := writeCLIRunFile(cli, dir, resources, marker)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e %s: %v\n", cliPass, err)
		return 1
	}
	env = &suite{profile: cliPass, secrets: infra.secrets, spec: spec.fresh(), marker: marker, redis: infra.redis, cli: run}
	code := m.Run()
	run.kill() // if a test left it running
	return finishPass(cliPass, marker, run.console, code)
}

// writeCLIRunFile writes dir/dapr.yaml: the repository's run file with free
// ports, the pass's resources, absolute paths (the file is elsewhere) and
// test settings in the apps' env; every other key as it is.
func writeCLIRunFile(cli, dir, resources, marker string) (*cliRun, error) {
	b, err := os.ReadFile("../dapr.yaml")
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	common, _ := f["common"].(map[string]any)
	apps, _ := f["apps"].([]any)
	if common == nil || len(apps) == 0 {
		return nil, errors.New("../dapr.yaml: no common section or no apps")
	}
	common["resourcesPaths"] = []string{resources}
	rt, _ := common["runtimePath"].(string)
	if rt == "" {
		return nil, errors.New("../dapr.yaml: common.runtimePath is not set (the daprd wrapper in tools/cli/runtime)")
	}
	common["runtimePath"] = filepath.Join(root, rt)
	run := &cliRun{cli: cli, dir: filepath.Join(dir, "cli"), marker: marker, ports: map[string]cliPorts{}, exited: make(chan struct{})}
	run.runDir = filepath.Join(run.dir, "run")
	run.console = filepath.Join(run.dir, "console.log")
	// Every app's four ports, no two alike: the CLI refuses a port an
	// earlier app's daprd took.
	free, err := freePorts(4 * len(apps))
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		app, _ := a.(map[string]any)
		id, _ := app["appID"].(string)
		appDir, _ := app["appDirPath"].(string)
		if id == "" || appDir == "" {
			return nil, fmt.Errorf("../dapr.yaml: an app without appID or appDirPath: %v", app)
		}
		app["appDirPath"] = filepath.Join(root, appDir)
		var p cliPorts
		for key, port := range map[string]*int{"appPort": &p.app, "daprHTTPPort": &p.http, "daprGRPCPort": &p.grpc, "metricsPort": &p.metrics} {
			*port, free = free[0], free[1:]
			app[key] = *port
		}
		run.ports[id] = p
		appEnv, _ := app["env"].(map[string]any)
		if appEnv == nil {
			appEnv = map[string]any{}
		}
		if id == "users" {
			appEnv["BCRYPT_COST"] = "4"
			appEnv["ADMIN_EMAIL"] = adminEmail
		}
		app["env"] = appEnv
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(run.dir, 0o755); err != nil {
		return nil, err
	}
	return run, os.WriteFile(filepath.Join(run.dir, "dapr.yaml"), out, 0o644)
}

// start runs `dapr run -f .` in the run file's directory, in a process
// group of its own (as a terminal's job is), daprd found by the wrapper
// through DAPRD.
func (r *cliRun) start() error {
	out, err := os.Create(r.console)
	if err != nil {
		return err
	}
	r.cmd = exec.Command(r.cli, "run", "-f", ".")
	r.cmd.Dir = r.dir
	r.cmd.Env = append(os.Environ(), "DAPRD="+daprdPath(), "DAPRSHOP_RUN_DIR="+r.runDir, r.marker)
	r.cmd.Stdout, r.cmd.Stderr = out, out
	r.cmd.SysProcAttr = runner.ChildAttr()
	if err := r.cmd.Start(); err != nil {
		out.Close()
		return err
	}
	go func() {
		_ = r.cmd.Wait()
		out.Close()
		close(r.exited)
	}()
	return nil
}

// dapr runs a CLI command in the run file's directory and returns its output.
func (r *cliRun) dapr(args ...string) (string, error) {
	cmd := exec.Command(r.cli, args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "DAPRSHOP_RUN_DIR="+r.runDir)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// kill ends whatever is left of the run: the CLI's process group, then
// every process carrying the marker (an app that left the group).
func (r *cliRun) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
	default:
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
	}
	for _, p := range runnertest.Tagged(r.marker) {
		var pid int
		if _, err := fmt.Sscanf(p, "%d:", &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// consoleText is what the CLI has printed so far.
func (r *cliRun) consoleText() string {
	b, _ := os.ReadFile(r.console)
	return string(b)
}

// sidecarsEnv reads the sidecars.env the daprd wrapper writes, as the
// README's walk-through sources it.
func (r *cliRun) sidecarsEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(r.runDir, "sidecars.env"))
	if err != nil {
		t.Fatalf("the walk-through sources .run/sidecars.env: %v", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// TestCLIRunFile runs the suite with the real Dapr CLI, checks that the run
// is as closed as make run's (every listener on loopback, no mDNS, daprd
// probing each app's health, no span export to a collector that is not
// there), passes the README's order journey through the gateway, failure
// rate step included, and stops it with `dapr stop -f .`, which must leave
// no process.
func TestCLIRunFile(t *testing.T) {
	r := env.cli
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.kill)
	ready := &http.Client{Timeout: 2 * time.Second}
	// go run . compiles each service first: minutes on a cold cache.
	eventually(t, 5*time.Minute, func() string {
		select {
		case <-r.exited:
			t.Fatalf("dapr run -f . exited while starting:\n%s", tail(r.consoleText(), 60))
		default:
		}
		for id, p := range r.ports {
			resp, err := ready.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.app))
			if err != nil {
				return fmt.Sprintf("%s: %v", id, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Sprintf("%s /readyz: %d", id, resp.StatusCode)
			}
		}
		return ""
	})

	t.Run("dapr list shows the run file's apps", func(t *testing.T) {
		var rows []struct {
			AppID           string `json:"appId"`
			RunTemplatePath string `json:"runTemplatePath"`
		}
		eventually(t, 30*time.Second, func() string {
			out, err := r.dapr("list", "-o", "json")
			if err != nil {
				return fmt.Sprintf("dapr list: %v\n%s", err, out)
			}
			rows = nil
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				return fmt.Sprintf("dapr list -o json: %v\n%s", err, out)
			}
			mine := 0
			for _, row := range rows {
				if row.RunTemplatePath == filepath.Join(r.dir, "dapr.yaml") {
					mine++
				}
			}
			if mine != len(r.ports) {
				return fmt.Sprintf("dapr list shows %d apps of %s, want %d: %s", mine, r.dir, len(r.ports), out)
			}
			return ""
		})
	})

	t.Run("every listener on loopback, no mDNS", func(t *testing.T) {
		ls, err := runnertest.Listening(r.marker)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, l := range ls {
			seen[int(l.Addr.Port())] = true
			if !l.Addr.Addr().IsLoopback() {
				t.Errorf("listens on %s", l)
			}
		}
		for id, p := range r.ports {
			for _, port := range []int{p.app, p.http, p.grpc, p.metrics} {
				if !seen[port] {
					t.Errorf("%s: nothing of the run listens on port %d (listeners: %v)", id, port, ls)
				}
			}
		}
		udp, err := runnertest.UDP(r.marker)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range udp {
			if u.Addr.Port() == 5353 {
				t.Errorf("mDNS socket: %s (the wrapper's SQLite name resolution should replace it)", u)
			}
		}
	})

	t.Run("every app is the CLI's own child", func(t *testing.T) {
		// A grandchild (the binary under `go run .`) outlives a SIGTERM to
		// the CLI, holding its port.
		ls, err := runnertest.Listening(r.marker)
		if err != nil {
			t.Fatal(err)
		}
		for id, p := range r.ports {
			i := slices.IndexFunc(ls, func(l runnertest.Listener) bool { return int(l.Addr.Port()) == p.app })
			if i < 0 {
				t.Errorf("%s: no listener on its port %d", id, p.app)
				continue
			}
			out, err := exec.Command("ps", "-o", "ppid=", "-p", strconv.Itoa(ls[i].PID)).Output()
			if ppid, _ := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || ppid != r.cmd.Process.Pid {
				t.Errorf("%s (pid %d: %s) is a child of %s, not of the CLI (pid %d)", id, ls[i].PID, ls[i].Command, strings.TrimSpace(string(out)), r.cmd.Process.Pid)
			}
		}
	})

	t.Run("daprd probes every app's health", func(t *testing.T) {
		for id, p := range r.ports {
			status, body := rawCall(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", p.http), "", "")
			checkHealthProbe(t, id, status, body)
		}
	})

	t.Run("the README's order journey", func(t *testing.T) {
		u, tok := signUp(t)
		admin := adminToken(t)
		p := newProduct(t, admin, 1250, 5)
		status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 2})
		if status != 201 || o.Status != "paid" || o.Total != 2500 {
			t.Fatalf("order: %d %s, want 201 paid 2500", status, reply)
		}
		eventually(t, 30*time.Second, func() string {
			var got order
			gateway(t, tok).mustCall(t, "GET", "/api/orders/"+o.ID, nil, 200, &got)
			if got.Status != "confirmed" {
				return "order " + got.Status
			}
			// The order's four events, then shipping's (TypeScript, built
			// and started by dapr.yaml's command) three steps: label,
			// shipped 3 s later, delivered 5 s after that.
			var ns struct{ Notifications []notification }
			gateway(t, tok).mustCall(t, "GET", "/api/notifications", nil, 200, &ns)
			if len(ns.Notifications) != 7 {
				return fmt.Sprintf("%d notifications of %s, want 7", len(ns.Notifications), u.ID)
			}
			return ""
		})
		var s shipment
		gateway(t, tok).mustCall(t, "GET", "/api/orders/"+o.ID+"/shipment", nil, 200, &s)
		if s.Status != "delivered" || s.OrderID != o.ID {
			t.Fatalf("shipment %+v, want delivered", s)
		}
		// The failure-rate step: payments' sidecar, found in sidecars.env.
		vars := r.sidecarsEnv(t)
		provider := vars["PAYMENTS_DAPR_HTTP"] + "/v1.0/invoke/payments/method/provider"
		if code, b := rawCall(t, "PUT", provider, `{"failure_rate":1}`, vars["PAYMENTS_DAPR_API_TOKEN"]); code != 200 {
			t.Fatalf("PUT %s: %d %s", provider, code, b)
		}
		status, o, reply = placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1})
		if status != 201 || o.Status != "cancelled" || o.CancelReason != "payment declined" {
			t.Errorf("order while payments decline: %d %s, want 201 cancelled (payment declined)", status, reply)
		}
		if code, b := rawCall(t, "PUT", provider, `{"failure_rate":0}`, vars["PAYMENTS_DAPR_API_TOKEN"]); code != 200 {
			t.Errorf("PUT %s: %d %s", provider, code, b)
		}
	})

	t.Run("the console shows both sides, no span export", func(t *testing.T) {
		out := r.consoleText()
		for id := range r.ports {
			if !strings.Contains(out, "== APP - "+id+" ==") || !strings.Contains(out, "app_id="+id) {
				t.Errorf("console lacks %s's app lines or its daprd's (app_id=%s)", id, id)
			}
		}
		for _, bad := range []string{"api/v2/spans", "level=fatal", "error occurred for nr ("} {
			if strings.Contains(out, bad) {
				t.Errorf("console says %q:\n%s", bad, linesWith(out, bad))
			}
		}
	})

	out, err := r.dapr("stop", "-f", ".")
	if err != nil || !strings.Contains(out, "stopped successfully") {
		t.Fatalf("dapr stop -f .: %v\n%s", err, out)
	}
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("dapr run -f . still running 30s after dapr stop -f .")
	}
	eventually(t, 15*time.Second, func() string {
		if left := runnertest.Tagged(r.marker); len(left) > 0 {
			return "left after dapr stop -f .:\n" + strings.Join(left, "\n")
		}
		return ""
	})
}

// linesWith is the lines of s holding sub.
func linesWith(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return tail(strings.Join(out, "\n"), 10)
}
