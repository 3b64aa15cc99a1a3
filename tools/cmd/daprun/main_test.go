package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/runner"
	"github.com/daprshop/suite/tools/runner/runnertest"
)

// bins holds daprun, the fake daprd and sentry and the test app, built once.
var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "daprun-test-")
	if err != nil {
		panic(err)
	}
	for name, pkg := range map[string]string{"daprun": ".", "fakedaprd": "./testdata/fakedaprd", "fakesentry": "./testdata/fakesentry", "testapp": "./testdata/testapp"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", name, err, out)
			os.Exit(1)
		}
	}
	bins = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// suite writes a run file with two test apps; env entries go to the second app.
func suite(t *testing.T, secondEnv map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "res"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var env strings.Builder
	for k, v := range secondEnv {
		fmt.Fprintf(&env, "      %s: %q\n", k, v)
	}
	app := filepath.Join(bins, "testapp")
	yaml := fmt.Sprintf(`version: 1
common:
  resourcesPaths: [./res]
apps:
  - appID: alpha
    appDirPath: ./a
    command: [%q]
  - appID: beta
    appDirPath: ./b
    command: [%q]
    env:
      PLACEHOLDER: "1"
%s`, app, app, env.String())
	if err := os.WriteFile(filepath.Join(dir, "dapr.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// start runs daprun on dir with a fresh marker in its environment.
func start(t *testing.T, dir string, args ...string) (*exec.Cmd, *syncBuffer, string) {
	t.Helper()
	marker := runnertest.NewMarker()
	out := &syncBuffer{}
	cmd := exec.Command(filepath.Join(bins, "daprun"), append([]string{"-f", dir, "-daprd", filepath.Join(bins, "fakedaprd"), "-color", "never"}, args...)...)
	cmd.Env = append(os.Environ(), marker)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		killTagged(marker)
	})
	return cmd, out, marker
}

// suiteUp ends what daprun prints once the suite is up: the endpoints the
// tests read come before it, after "the suite is up" (a test that read them
// at that line found none once).
const suiteUp = "Press Ctrl-C to stop everything."

// waitFor polls out until it contains s.
func waitFor(t *testing.T, out *syncBuffer, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s; output:\n%s", s, within, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exitCode waits for cmd and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("daprun did not exit within %s", within)
		return -1
	}
}

// ports returns the app and sidecar ports daprun printed.
func ports(out string) []string {
	var ps []string
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(line) {
			if p, ok := strings.CutPrefix(f, ":"); ok {
				if _, err := strconv.Atoi(p); err == nil {
					ps = append(ps, p)
				}
			}
		}
	}
	return ps
}

// redisComponent adds a state.redis component pointing at a free port,
// where nothing answers, to the suite in dir, and returns the port.
func redisComponent(t *testing.T, dir string) int {
	t.Helper()
	port, _ := runner.FreePort()
	comp := fmt.Sprintf("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: kv}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n    - {name: redisHost, value: \"127.0.0.1:%d\"}\n", port)
	if err := os.WriteFile(filepath.Join(dir, "res", "kv.yaml"), []byte(comp), 0o644); err != nil {
		t.Fatal(err)
	}
	return port
}

// editRunFile replaces every old with new in the run file of the suite in
// dir, and fails when there is none.
func editRunFile(t *testing.T, dir, old, new string) {
	t.Helper()
	run := filepath.Join(dir, "dapr.yaml")
	b, err := os.ReadFile(run)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("the run file has no %q", old)
	}
	if err := os.WriteFile(run, []byte(strings.ReplaceAll(string(b), old, new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// failsWith waits for daprun to exit non-zero within d, with every want in
// its output and none of its processes left running.
func failsWith(t *testing.T, cmd *exec.Cmd, out *syncBuffer, marker string, d time.Duration, wants ...string) {
	t.Helper()
	if code := exitCode(t, cmd, d); code == 0 {
		t.Fatalf("exit code 0\n%s", out)
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("processes left behind: %v", left)
	}
}

func assertClean(t *testing.T, marker, out string) {
	t.Helper()
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("processes left behind:\n%s\noutput:\n%s", strings.Join(left, "\n"), out)
	}
	ps := ports(out)
	if len(ps) < 4 {
		t.Fatalf("expected at least 4 ports in the output, got %v", ps)
	}
	for _, p := range ps {
		l, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			t.Fatalf("port %s still taken after stop: %v", p, err)
		}
		l.Close()
	}
}

// TestSignalStopsEverything: on Ctrl-C or SIGTERM every child dies, including
// a grandchild and an app that ignores SIGTERM, and daprun exits 0.
func TestSignalStopsEverything(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := suite(t, map[string]string{"TESTAPP_STUBBORN": "1", "TESTAPP_GRANDCHILD": "1"})
			cmd, out, marker := start(t, dir, "-stop-grace", "1s")
			waitFor(t, out, suiteUp, 30*time.Second)
			waitFor(t, out, "grandchild sleeping", 5*time.Second)
			// daprun, 2 sidecars, 2 apps and the grandchild.
			if n := len(runnertest.Tagged(marker)); n != 6 {
				t.Fatalf("%d tagged processes while running, want 6:\n%s", n, strings.Join(runnertest.Tagged(marker), "\n"))
			}
			envFile := filepath.Join(dir, ".run", "sidecars.env")
			st, err := os.Stat(envFile)
			b, _ := os.ReadFile(envFile)
			if err != nil || st.Mode().Perm() != 0o600 || !strings.Contains(string(b), "ALPHA_DAPR_API_TOKEN=") || !strings.Contains(string(b), "BETA_DAPR_HTTP=http://127.0.0.1:") {
				t.Fatalf("sidecars.env: %v %v\n%s", err, st, b)
			}
			if !strings.Contains(out.String(), "sidecar-to-sidecar calls are NOT authenticated") {
				t.Errorf("no warning of a run without Sentry:\n%s", out)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd, 20*time.Second); code != 0 {
				t.Fatalf("exit code %d after %s, want 0\n%s", code, sig, out)
			}
			if !strings.Contains(out.String(), "killed after 1s: beta app") {
				t.Errorf("the stubborn app was not reported as killed:\n%s", out)
			}
			assertClean(t, marker, out.String())
			if _, err := os.Stat(envFile); !os.IsNotExist(err) {
				t.Fatalf("sidecars.env left behind: %v", err)
			}
		})
	}
}

// endpoint returns the app and dapr HTTP ports daprun printed for an app
// instance (its name as on the console: "beta", "beta-2").
func endpoint(t *testing.T, out, name string) (app, daprHTTP int) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == name && f[1] == "app" && f[3] == "dapr" {
			app, _ = strconv.Atoi(strings.TrimPrefix(f[2], ":"))
			daprHTTP, _ = strconv.Atoi(strings.TrimPrefix(f[5], ":"))
			return app, daprHTTP
		}
	}
	t.Fatalf("daprun printed no endpoints of %s:\n%s", name, out)
	return 0, 0
}

// hasLine reports whether out has a line of name's source ("app",
// "daprd") that holds text.
func hasLine(out, name, source, text string) bool {
	for _, line := range strings.Split(out, "\n") {
		prefix, rest, ok := strings.Cut(line, " | ")
		if f := strings.Fields(prefix); ok && len(f) == 2 && f[0] == name && f[1] == source && strings.Contains(rest, text) {
			return true
		}
	}
	return false
}

// get GETs url and returns the status and body; an error is a failed test.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tellToExit has the test app on port exit with status code, as a crash.
func tellToExit(t *testing.T, port, code int) {
	t.Helper()
	if status, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/exit?code=%d", port, code)); status != http.StatusAccepted {
		t.Fatalf("/exit: %d %s", status, body)
	}
}

// pidsOf returns the PIDs of the run's processes whose command line holds
// every one of words.
func pidsOf(marker string, words ...string) []int {
	var pids []int
	for _, p := range runnertest.Tagged(marker) {
		all := true
		for _, w := range words {
			all = all && strings.Contains(p, w)
		}
		if all {
			var pid int
			fmt.Sscanf(p, "%d:", &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

// killTagged sends SIGKILL to every process carrying marker and returns
// how many there were.
func killTagged(marker string) int {
	pids := pidsOf(marker)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// TestCrashIsRestarted: an app that exits on its own, and a sidecar killed
// with SIGKILL, are started again after the backoff, on the same ports
// (the app's grandchild, which would hold them, goes with it), and said so
// on the console; the other app's processes keep running, and the run goes
// on until Ctrl-C, which still leaves nothing behind.
func TestCrashIsRestarted(t *testing.T) {
	dir := suite(t, map[string]string{"TESTAPP_GRANDCHILD": "1"})
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-backoff", "200ms")
	waitFor(t, out, suiteUp, 30*time.Second)
	for _, want := range []string{"a process that exits is restarted after 200ms (doubling to 30s); 5 exits of one within 5m0s stop everything"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	alphaPIDs := pidsOf(marker, "--app-id alpha")
	alphaPIDs = append(alphaPIDs, pidsOf(marker, "APP_ID=alpha")...)
	betaApp, betaHTTP := endpoint(t, out.String(), "beta")
	before := len(runnertest.Tagged(marker))

	tellToExit(t, betaApp, 3)
	waitFor(t, out, "beta app exited (exit status 3) after ", 10*time.Second)
	waitFor(t, out, "beta app is back: healthy ", 20*time.Second)
	for _, want := range []string{"restarting it in 200ms (exit 1; the 5th within 5m0s stops the run)", "testapp exiting on request with status 3", "restarted beta app (pid "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if status, port := get(t, fmt.Sprintf("http://127.0.0.1:%d/port", betaApp)); status != http.StatusOK || port != strconv.Itoa(betaApp) {
		t.Fatalf("the restarted app on its port: %d %q", status, port)
	}

	daprd := pidsOf(marker, "fakedaprd", "--app-id beta")
	if len(daprd) != 1 {
		t.Fatalf("beta's sidecar: pids %v", daprd)
	}
	if err := syscall.Kill(daprd[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "beta daprd exited (signal: killed)", 10*time.Second)
	waitFor(t, out, "beta daprd is back: healthy ", 20*time.Second)
	if status, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", betaHTTP)); status != http.StatusNoContent {
		t.Fatalf("the restarted sidecar's health: %d", status)
	}
	// The restart of beta's app and sidecar came one at a time: each came
	// back after its first exit, at the first backoff.
	if n := strings.Count(out.String(), "restarting it in 200ms"); n != 2 {
		t.Errorf("%d restarts after 200ms, want 2:\n%s", n, out)
	}
	if n := len(runnertest.Tagged(marker)); n != before {
		t.Errorf("%d processes after the restarts, %d before:\n%s", n, before, strings.Join(runnertest.Tagged(marker), "\n"))
	}
	for _, pid := range alphaPIDs {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("alpha's process %d did not survive beta's crashes: %v", pid, err)
		}
	}
	if strings.Contains(out.String(), "stopping everything") {
		t.Fatalf("a crash stopped the run:\n%s", out)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after Ctrl-C, want 0\n%s", code, out)
	}
	assertClean(t, marker, out.String())
}

// crashLoop makes beta's command crash at once on every start but its
// first: a service that crashes and then cannot come back.
func crashLoop(t *testing.T, dir string) {
	t.Helper()
	app := filepath.Join(bins, "testapp")
	script := "if [ -e started ]; then echo testapp crashing at start on purpose; exit 3; fi; touch started; exec " + app
	editRunFile(t, dir, fmt.Sprintf("appDirPath: ./b\n    command: [%q]", app), fmt.Sprintf("appDirPath: ./b\n    command: [\"sh\", \"-c\", %q]", script))
}

// TestCrashLoopGivesUp: an app that keeps crashing is restarted with a
// doubling backoff until it has exited -crash-limit times, then daprun
// stops everything and exits non-zero, naming it with its last lines.
func TestCrashLoopGivesUp(t *testing.T) {
	dir := suite(t, nil)
	crashLoop(t, dir)
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-backoff", "50ms", "-crash-limit", "4")
	waitFor(t, out, suiteUp, 30*time.Second)
	betaApp, _ := endpoint(t, out.String(), "beta")
	tellToExit(t, betaApp, 3)
	failsWith(t, cmd, out, marker, 30*time.Second,
		"beta app exited (exit status 3) after ", "restarting it in 50ms (exit 1; the 4th within 5m0s stops the run)",
		"restarting it in 100ms (exit 2;", "restarting it in 200ms (exit 3;",
		"beta app exited (exit status 3), 4 times within 5m0s: giving up on it; stopping everything",
		"daprun: beta app exited unexpectedly (exit status 3), 4 times within 5m0s: giving up on it",
		"testapp crashing at start on purpose")
	if strings.Contains(out.String(), "alpha app exited") || strings.Contains(out.String(), "restarting it in 400ms") {
		t.Errorf("more than beta's 4 exits:\n%s", out)
	}
}

// TestInterruptDuringBackoff: Ctrl-C while a crashed app waits for its
// restart stops everything at once, restarts nothing, and leaves nothing.
func TestInterruptDuringBackoff(t *testing.T) {
	dir := suite(t, nil)
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-backoff", "10m")
	waitFor(t, out, suiteUp, 30*time.Second)
	betaApp, _ := endpoint(t, out.String(), "beta")
	tellToExit(t, betaApp, 3)
	waitFor(t, out, "restarting it in 10m0s", 10*time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after Ctrl-C, want 0\n%s", code, out)
	}
	if strings.Contains(out.String(), "restarted beta app") {
		t.Fatalf("restarted after Ctrl-C:\n%s", out)
	}
	assertClean(t, marker, out.String())
}

// TestReplicas: -replicas and the run file's replicas start that many
// instances of an app, each with its own daprd, ports and tokens (the
// file's fixed ports go to the first), named on the console and listed in
// sidecars.env; the readiness wait and the stop cover every one.
func TestReplicas(t *testing.T) {
	fixed, err := runner.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := suite(t, nil)
	editRunFile(t, dir, "appDirPath: ./a\n", "appDirPath: ./a\n    replicas: 2\n")
	editRunFile(t, dir, "appDirPath: ./b\n", fmt.Sprintf("appDirPath: ./b\n    appPort: %d\n", fixed))
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-replicas", "beta=3")
	waitFor(t, out, suiteUp, 30*time.Second)
	for _, want := range []string{"starting 2 apps (5 instances)", "all 2 apps (5 instances) ready"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range [][3]string{{"beta-2", "app", "testapp listening on"}, {"beta-3", "daprd", "fakedaprd listening on"},
		{"alpha-2", "app", "testapp listening on"}, {"alpha-1", "daprd", "fakedaprd listening on"}} {
		if !hasLine(out.String(), want[0], want[1], want[2]) {
			t.Errorf("no line of %s %s saying %q:\n%s", want[0], want[1], want[2], out)
		}
	}
	seen := map[int]string{}
	for _, name := range []string{"alpha-1", "alpha-2", "beta-1", "beta-2", "beta-3"} {
		app, daprHTTP := endpoint(t, out.String(), name)
		for _, p := range []int{app, daprHTTP} {
			if other, dup := seen[p]; dup {
				t.Errorf("%s and %s share port %d", name, other, p)
			}
			seen[p] = name
		}
		if status, port := get(t, fmt.Sprintf("http://127.0.0.1:%d/port", app)); status != 200 || port != strconv.Itoa(app) {
			t.Errorf("%s's app on :%d answers %d %q", name, app, status, port)
		}
	}
	if app, _ := endpoint(t, out.String(), "beta-1"); app != fixed {
		t.Errorf("beta-1's app port %d, want the file's %d", app, fixed)
	}
	// daprun, and a sidecar and an app per instance.
	if n := len(runnertest.Tagged(marker)); n != 11 {
		t.Errorf("%d processes, want 11:\n%s", n, strings.Join(runnertest.Tagged(marker), "\n"))
	}
	if n := len(pidsOf(marker, "fakedaprd", "--app-id beta ")); n != 3 {
		t.Errorf("%d sidecars of beta, want 3", n)
	}

	b, err := os.ReadFile(filepath.Join(dir, ".run", "sidecars.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	tokens := map[string]bool{}
	invoke := func(sidecar, token string) int {
		req, _ := http.NewRequest("GET", sidecar+"/v1.0/invoke/alpha/method/healthz", nil)
		req.Header.Set("dapr-api-token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, keys := range map[string][2]string{
		"alpha-1": {"ALPHA_DAPR_HTTP", "ALPHA_DAPR_API_TOKEN"}, "alpha-2": {"ALPHA_DAPR_HTTP_2", "ALPHA_DAPR_API_TOKEN_2"},
		"beta-1": {"BETA_DAPR_HTTP", "BETA_DAPR_API_TOKEN"}, "beta-2": {"BETA_DAPR_HTTP_2", "BETA_DAPR_API_TOKEN_2"},
		"beta-3": {"BETA_DAPR_HTTP_3", "BETA_DAPR_API_TOKEN_3"},
	} {
		_, daprHTTP := endpoint(t, out.String(), name)
		if got := env[keys[0]]; got != fmt.Sprintf("http://127.0.0.1:%d", daprHTTP) {
			t.Errorf("%s=%q, want %s's sidecar at :%d", keys[0], got, name, daprHTTP)
		}
		tok := env[keys[1]]
		if tok == "" || tokens[tok] {
			t.Errorf("%s=%q: empty or another instance's", keys[1], tok)
		}
		tokens[tok] = true
		// The token is the instance's: its sidecar takes it, the first
		// instance's takes none of another's.
		if code := invoke(env[keys[0]], tok); code != http.StatusOK {
			t.Errorf("%s's sidecar refuses its own token: %d", name, code)
		}
		if name != "beta-1" {
			if code := invoke(env[keys[0]], env["BETA_DAPR_API_TOKEN"]); code != http.StatusUnauthorized {
				t.Errorf("%s's sidecar takes beta-1's token: %d", name, code)
			}
		}
	}
	if env["ALPHA_INSTANCES"] != "2" || env["BETA_INSTANCES"] != "3" {
		t.Errorf("instances in sidecars.env: alpha %q, beta %q", env["ALPHA_INSTANCES"], env["BETA_INSTANCES"])
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, out)
	}
	assertClean(t, marker, out.String())

	for _, bad := range []string{"gamma=2", "beta=0", "beta", "=2", "x"} {
		cmd, out, _ := start(t, dir, "-replicas", bad)
		if code := exitCode(t, cmd, 10*time.Second); code == 0 || !strings.Contains(out.String(), "replicas") {
			t.Errorf("-replicas %s: exit %d:\n%s", bad, code, out)
		}
	}
}

// TestReadinessCoversEveryInstance: an instance that never gets healthy
// fails the start, named, though the app's first instance is healthy.
func TestReadinessCoversEveryInstance(t *testing.T) {
	fixed, err := runner.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := suite(t, map[string]string{"TESTAPP_HEALTHY_PORT": strconv.Itoa(fixed)})
	editRunFile(t, dir, "appDirPath: ./b\n", fmt.Sprintf("appDirPath: ./b\n    appPort: %d\n", fixed))
	cmd, out, marker := start(t, dir, "-ready-timeout", "3s", "-stop-grace", "2s", "-replicas", "beta=2")
	failsWith(t, cmd, out, marker, 30*time.Second, "not ready after 3s: beta-2 app (checked", "health check failing on purpose")
	if strings.Contains(out.String(), "not ready after 3s: beta-1") || strings.Contains(out.String(), "beta-1 app,") {
		t.Errorf("the healthy first instance is named:\n%s", out)
	}
}

// TestReadinessFailureNamesTheApp: an app that never gets healthy fails the
// run after the timeout, naming the app and showing its last lines.
func TestReadinessFailureNamesTheApp(t *testing.T) {
	dir := suite(t, map[string]string{"TESTAPP_UNHEALTHY": "1"})
	cmd, out, marker := start(t, dir, "-ready-timeout", "3s", "-stop-grace", "2s")
	failsWith(t, cmd, out, marker, 30*time.Second, "not ready after 3s: beta app", "last ", "health check failing on purpose")
}

// TestBusyPortIsReported: a fixed port that is taken fails before anything starts.
func TestBusyPortIsReported(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dir := suite(t, nil)
	b, _ := os.ReadFile(filepath.Join(dir, "dapr.yaml"))
	b = bytes.Replace(b, []byte("appDirPath: ./a\n"), []byte(fmt.Sprintf("appDirPath: ./a\n    daprHTTPPort: %d\n", port)), 1)
	if err := os.WriteFile(filepath.Join(dir, "dapr.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, out, _ := start(t, dir)
	if code := exitCode(t, cmd, 10*time.Second); code == 0 || !strings.Contains(out.String(), fmt.Sprintf("alpha daprHTTPPort %d is in use", port)) {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// TestMissingRedisIsExplained: components naming a Redis that does not answer
// stop the run before any child starts, with what is missing and how to get it.
func TestMissingRedisIsExplained(t *testing.T) {
	dir := suite(t, nil)
	port := redisComponent(t, dir)
	cmd, out, marker := start(t, dir)
	if code := exitCode(t, cmd, 10*time.Second); code == 0 {
		t.Fatalf("exit 0 without Redis\n%s", out)
	}
	for _, want := range []string{fmt.Sprintf("Redis does not answer at 127.0.0.1:%d", port), "components kv need it"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(runnertest.Tagged(marker)) > 0 {
		t.Fatal("children started without Redis")
	}

	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed: -start-redis not testable here")
	}
	cmd, out, marker = start(t, dir, "-start-redis")
	waitFor(t, out, suiteUp, 30*time.Second)
	if !strings.Contains(out.String(), "started a private redis-server at 127.0.0.1:") {
		t.Fatalf("no private Redis:\n%s", out)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("left behind (the private Redis too?): %v", left)
	}
}

// TestKillAndRestartOneProcess: the library's Kill ends one app or sidecar
// like a crash, Restart brings it back on the same port, and Stop still
// leaves nothing behind.
func TestKillAndRestartOneProcess(t *testing.T) {
	dir := suite(t, nil)
	f, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	marker := runnertest.NewMarker()
	out := &syncBuffer{}
	r, err := runner.Start(t.Context(), f, runner.Options{Daprd: filepath.Join(bins, "fakedaprd"), Out: out,
		Env: []string{marker}, StopGrace: 2 * time.Second, ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	beta := r.App("beta")
	healthURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", beta.AppPort)
	for _, source := range []string{"app", "daprd"} {
		before := len(runnertest.Tagged(marker))
		if err := r.Kill("beta", source); err != nil {
			t.Fatal(err)
		}
		if n := len(runnertest.Tagged(marker)); n != before-1 {
			t.Fatalf("after killing beta %s: %d processes, want %d", source, n, before-1)
		}
		if source == "app" {
			if resp, err := http.Get(healthURL); err == nil {
				resp.Body.Close()
				t.Fatal("the killed app still answers")
			}
		}
		if err := r.Restart(t.Context(), "beta", source); err != nil {
			t.Fatal(err)
		}
		if n := len(runnertest.Tagged(marker)); n != before {
			t.Fatalf("after restarting beta %s: %d processes, want %d", source, n, before)
		}
	}
	resp, err := http.Get(healthURL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("restarted app: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := r.Restart(t.Context(), "beta", "app"); err == nil {
		t.Fatal("restarting a running process must fail")
	}
	if err := r.Kill("gamma", "app"); err == nil {
		t.Fatal("killing an unknown app must fail")
	}
	r.Stop()
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("processes left behind:\n%s\n%s", strings.Join(left, "\n"), out)
	}
	if err := r.Restart(t.Context(), "beta", "app"); err == nil {
		t.Fatal("restarting after Stop must fail")
	}
}

// TestKillAndRestartOneInstance: KillInstance ends one instance's app or
// sidecar and no other, RestartInstance brings it back on its ports, and
// neither counts as a crash; PID says what runs.
func TestKillAndRestartOneInstance(t *testing.T) {
	dir := suite(t, nil)
	f, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.Apps[1].Replicas = 3
	marker := runnertest.NewMarker()
	out := &syncBuffer{}
	r, err := runner.Start(t.Context(), f, runner.Options{Daprd: filepath.Join(bins, "fakedaprd"), Out: out,
		Env: []string{marker}, StopGrace: 2 * time.Second, ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	betas := r.Instances("beta")
	if len(betas) != 3 || r.App("beta") != betas[0] || len(r.Apps) != 2 || len(r.AllInstances()) != 4 {
		t.Fatalf("instances: %d of beta, Apps %d, all %d", len(betas), len(r.Apps), len(r.AllInstances()))
	}
	for i, b := range betas {
		if b.Instance != i+1 || b.Name != fmt.Sprintf("beta-%d", i+1) || b.Replicas != 3 {
			t.Errorf("instance %d: %d %q replicas %d", i+1, b.Instance, b.Name, b.Replicas)
		}
	}
	pids := func() map[string]int {
		m := map[string]int{}
		for _, a := range r.AllInstances() {
			for _, source := range []string{"app", "daprd"} {
				m[a.Name+" "+source] = r.PID(a.ID, a.Instance, source)
			}
		}
		return m
	}
	before := pids()
	for name, pid := range before {
		if pid == 0 {
			t.Fatalf("no PID for %s", name)
		}
	}
	answers := func(a *runner.AppRun) bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/port", a.AppPort))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}
	for _, source := range []string{"app", "daprd"} {
		if err := r.KillInstance("beta", 2, source); err != nil {
			t.Fatal(err)
		}
		now := pids()
		for name, pid := range before {
			if want := pid; name == "beta-2 "+source {
				want = 0
				if now[name] != want {
					t.Errorf("beta-2 %s still runs as %d", source, now[name])
				}
			} else if now[name] != want {
				t.Errorf("killing beta-2 %s changed %s: %d, was %d", source, name, now[name], want)
			}
		}
		if source == "app" && (answers(betas[1]) || !answers(betas[0]) || !answers(betas[2])) {
			t.Fatal("after killing beta-2's app: it answers, or another instance does not")
		}
		if err := r.RestartInstance(t.Context(), "beta", 2, source); err != nil {
			t.Fatal(err)
		}
		if !answers(betas[1]) {
			t.Fatalf("beta-2 does not answer on its port after its %s came back", source)
		}
		before = pids()
	}
	if c := r.Crashes(); len(c) != 0 {
		t.Errorf("Kill counted as a crash: %+v", c)
	}
	if err := r.KillInstance("beta", 4, "app"); err == nil {
		t.Error("killing a fourth instance of three must fail")
	}
	if err := r.RestartInstance(t.Context(), "beta", 3, "app"); err == nil {
		t.Error("restarting a running instance must fail")
	}
	r.Stop()
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("processes left behind:\n%s\n%s", strings.Join(left, "\n"), out)
	}
}

// TestCrashedInstanceComesBack: an instance's app and sidecar killed from
// outside (kill -9 of the PID) are started again by the runner, the app on
// the same port; Crashes says what exited, how, and when it was back, and
// no other process was touched.
func TestCrashedInstanceComesBack(t *testing.T) {
	dir := suite(t, nil)
	f, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.Apps[1].Replicas = 2
	marker := runnertest.NewMarker()
	out := &syncBuffer{}
	r, err := runner.Start(t.Context(), f, runner.Options{Daprd: filepath.Join(bins, "fakedaprd"), Out: out,
		Env: []string{marker}, StopGrace: 2 * time.Second, ReadyTimeout: 20 * time.Second,
		Restarts: runner.Restarts{Backoff: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	others := map[[2]string]int{}
	for _, id := range []string{"alpha", "beta"} {
		for _, source := range []string{"app", "daprd"} {
			others[[2]string{id, source}] = r.PID(id, 1, source)
		}
	}
	for i, source := range []string{"app", "daprd"} {
		pid := r.PID("beta", 2, source)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for c := r.Crashes(); len(c) <= i || c[i].Healthy.IsZero(); c = r.Crashes() {
			if time.Now().After(deadline) {
				t.Fatalf("beta-2 %s not back within 20s: %+v\n%s", source, c, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c := r.Crashes()[i]
		if c.Process != "beta-2 "+source || c.App != "beta" || c.Instance != 2 || c.Source != source || c.Status != "signal: killed" ||
			c.Restarted.Before(c.At) || c.Healthy.Before(c.Restarted) {
			t.Errorf("crash %d: %+v", i, c)
		}
		if now := r.PID("beta", 2, source); now == 0 || now == pid {
			t.Errorf("beta-2 %s: pid %d after the restart, %d before", source, now, pid)
		}
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/port", r.Instances("beta")[1].AppPort)); err != nil {
		t.Fatalf("beta-2's app on its port: %v", err)
	} else {
		resp.Body.Close()
	}
	for p, pid := range others {
		if now := r.PID(p[0], 1, p[1]); now != pid || pid == 0 {
			t.Errorf("%s %s (first instance): pid %d, was %d", p[0], p[1], now, pid)
		}
	}
	if len(r.Crashes()) != 2 {
		t.Errorf("crashes: %+v", r.Crashes())
	}
}

// TestAppEnvReachesOneApp: -app-env gives one app a variable (here one that
// makes the test app crash), and names an unknown app or a malformed value.
func TestAppEnvReachesOneApp(t *testing.T) {
	dir := suite(t, nil)
	// -crash-limit 1: the first exit stops the run, as without restarts.
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-crash-limit", "1", "-app-env", "alpha:TESTAPP_CRASH_AFTER=1s")
	if code := exitCode(t, cmd, 30*time.Second); code == 0 || !strings.Contains(out.String(), "alpha app exited unexpectedly (exit status 3)\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	assertClean(t, marker, out.String())
	for _, bad := range []string{"gamma:X=1", "alpha", "alpha:X"} {
		cmd, out, _ := start(t, dir, "-app-env", bad)
		if code := exitCode(t, cmd, 10*time.Second); code == 0 || !strings.Contains(out.String(), "app-env") {
			t.Errorf("-app-env %s: exit %d:\n%s", bad, code, out)
		}
	}
}

// TestKilledDaprunTakesItsAppsAlong: with -bin, daprun is the parent of every
// service, so even SIGKILL (no chance to clean up) leaves nothing behind on
// Linux (the kernel's parent-death signal). The run file's command keeps the
// app one process further down, as `go run .` does; -bin must replace it.
// Elsewhere (macOS) there is no such signal, and the README says a killed
// daprun leaves its children running: the test holds that too, then stops
// them.
func TestKilledDaprunTakesItsAppsAlong(t *testing.T) {
	dir := suite(t, nil)
	app := filepath.Join(bins, "testapp")
	editRunFile(t, dir, fmt.Sprintf("command: [%q]", app), fmt.Sprintf("command: [\"sh\", \"-c\", %q]", app+"; exit $?"))
	binDir := t.TempDir()
	for _, id := range []string{"alpha", "beta"} {
		if err := os.Symlink(app, filepath.Join(binDir, id)); err != nil {
			t.Fatal(err)
		}
	}
	// A killed daprun leaves its run's directory behind: in the test's.
	t.Setenv("TMPDIR", t.TempDir())
	cmd, out, marker := start(t, dir, "-bin", binDir)
	waitFor(t, out, suiteUp, 30*time.Second)
	if strings.Contains(out.String(), "sh -c") {
		t.Fatalf("an app still runs its command:\n%s", out)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if runtime.GOOS != "linux" {
		time.Sleep(time.Second)
		left := killTagged(marker)
		if left == 0 {
			t.Fatal("a killed daprun left nothing behind here: the README says it does on " + runtime.GOOS + "; update it")
		}
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(runnertest.Tagged(marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("left behind by a killed daprun:\n%s", strings.Join(runnertest.Tagged(marker), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashWhileOthersStartIsNamed: a process that passed its own check and
// then dies while another is still starting fails the start at once, named
// with its last lines, instead of after the whole ready timeout.
func TestCrashWhileOthersStartIsNamed(t *testing.T) {
	dir := suite(t, map[string]string{"TESTAPP_CRASH_AFTER": "1s"})
	editRunFile(t, dir, "appDirPath: ./a\n", "appDirPath: ./a\n    env:\n      TESTAPP_UNHEALTHY: \"1\"\n")
	cmd, out, marker := start(t, dir, "-ready-timeout", "60s", "-stop-grace", "2s")
	failsWith(t, cmd, out, marker, 20*time.Second, "beta app exited before it was ready (exit status 3)", "testapp crashing on purpose")
}

// TestPrivateRedisThatFailsIsShown: a private redis-server that exits at
// once fails the start at once, with what it said.
func TestPrivateRedisThatFailsIsShown(t *testing.T) {
	fakeBin := t.TempDir()
	// Writes its complaint where it is told to log, as redis-server does, and fails.
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --logfile ] && echo '# Fatal error, cannot listen: on purpose' > \"$2\"; shift; done\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "redis-server"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := suite(t, nil)
	redisComponent(t, dir)
	t.Setenv("PATH", fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd, out, marker := start(t, dir, "-start-redis")
	failsWith(t, cmd, out, marker, 8*time.Second, "exited (exit status 1)", "cannot listen: on purpose")
}

// TestSentryRunsWithTheSuite: with -sentry, daprun starts Sentry before the
// sidecars, gives every daprd what it needs for mTLS, starts it again when
// it dies, and stops it with the rest; a -sentry that does not exist stops
// it before anything starts.
func TestSentryRunsWithTheSuite(t *testing.T) {
	dir := suite(t, nil)
	cmd, out, marker := start(t, dir, "-sentry", filepath.Join(t.TempDir(), "sentry"))
	if code := exitCode(t, cmd, 10*time.Second); code == 0 || !strings.Contains(out.String(), "sentry") || !strings.Contains(out.String(), "not found") {
		t.Fatalf("a missing -sentry: exit %d\n%s", code, out)
	}
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("started without its Sentry: %v", left)
	}

	cmd, out, marker = start(t, dir, "-sentry", filepath.Join(bins, "fakesentry"), "-stop-grace", "2s", "-backoff", "100ms")
	waitFor(t, out, suiteUp, 30*time.Second)
	for _, want := range []string{"sentry ready at 127.0.0.1:", "sidecar to sidecar: mTLS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "NOT authenticated") {
		t.Errorf("warns of no Sentry while it runs one:\n%s", out)
	}
	procs := runnertest.Tagged(marker)
	// daprun, Sentry, 2 sidecars, 2 apps.
	if len(procs) != 6 {
		t.Fatalf("%d tagged processes while running, want 6:\n%s", len(procs), strings.Join(procs, "\n"))
	}
	sidecars := 0
	for _, p := range procs {
		if strings.Contains(p, ": "+filepath.Join(bins, "fakedaprd")+" ") {
			sidecars++
			if !strings.Contains(p, "--enable-mtls --sentry-address 127.0.0.1:") {
				t.Errorf("a sidecar without mTLS: %s", p)
			}
		}
	}
	if sidecars != 2 {
		t.Fatalf("%d sidecars, want 2:\n%s", sidecars, strings.Join(procs, "\n"))
	}
	// A Sentry that dies is started again like any other process.
	sentry := pidsOf(marker, filepath.Join(bins, "fakesentry")+" --issuer-credentials")
	if len(sentry) != 1 {
		t.Fatalf("Sentry's pids: %v", sentry)
	}
	if err := syscall.Kill(sentry[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "sentry exited (signal: killed)", 10*time.Second)
	waitFor(t, out, "sentry is back: healthy ", 20*time.Second)
	if again := pidsOf(marker, filepath.Join(bins, "fakesentry")+" --issuer-credentials"); len(again) != 1 || again[0] == sentry[0] {
		t.Fatalf("Sentry's pids after its restart: %v, before %v", again, sentry)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, out)
	}
	assertClean(t, marker, out.String())
}

// TestEachRunHasItsOwnNameResolver: every daprd of a run gets, as its last
// --config, the SQLite name resolver on a file of that run alone (another run
// at the same time gets another), in a private directory that the stop
// removes.
func TestEachRunHasItsOwnNameResolver(t *testing.T) {
	configs := func(out string) []string {
		var cs []string
		for _, line := range strings.Split(out, "\n") {
			if _, path, ok := strings.Cut(line, "fakedaprd name resolution "); ok {
				cs = append(cs, strings.TrimSpace(path))
			}
		}
		return cs
	}
	var (
		cmds    []*exec.Cmd
		outs    []*syncBuffer
		markers []string
		seen    = map[string]bool{}
	)
	for range 2 {
		cmd, out, marker := start(t, suite(t, nil), "-stop-grace", "2s")
		waitFor(t, out, suiteUp, 30*time.Second)
		cs := configs(out.String())
		if len(cs) != 2 || cs[0] != cs[1] {
			t.Fatalf("want one name resolution file for both sidecars, got %v\n%s", cs, out)
		}
		if seen[cs[0]] {
			t.Fatalf("two runs share %s", cs[0])
		}
		seen[cs[0]] = true
		b, err := os.ReadFile(cs[0])
		if err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(filepath.Dir(cs[0]), "names.db")
		if !strings.Contains(string(b), fmt.Sprintf("connectionString: %q", db)) || !strings.Contains(string(b), `cleanupInterval: "0"`) {
			t.Fatalf("%s does not point at %s without cleanup:\n%s", cs[0], db, b)
		}
		if st, err := os.Stat(filepath.Dir(cs[0])); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("the run's directory: %v %v, want mode 0700", st, err)
		}
		cmds, outs, markers = append(cmds, cmd), append(outs, out), append(markers, marker)
	}
	for i, cmd := range cmds {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, cmd, 20*time.Second); code != 0 {
			t.Fatalf("exit code %d\n%s", code, outs[i])
		}
		assertClean(t, markers[i], outs[i].String())
	}
	for c := range seen {
		if _, err := os.Stat(filepath.Dir(c)); !os.IsNotExist(err) {
			t.Errorf("the run's directory %s outlives the run: %v", filepath.Dir(c), err)
		}
	}
}

// TestDaprdWithoutTheResolverIsNamed: a daprd that cannot create the run's
// name resolver (one built without nameresolution.sqlite) fails the start at
// once, saying how to get the right daprd, instead of after the whole ready
// timeout of invocations that cannot work.
func TestDaprdWithoutTheResolverIsNamed(t *testing.T) {
	t.Setenv("FAKEDAPRD_NO_RESOLVER", "1")
	cmd, out, marker := start(t, suite(t, nil), "-ready-timeout", "10m", "-stop-grace", "2s")
	failsWith(t, cmd, out, marker, 30*time.Second, "daprd has no name resolver", "tools/toolchain.sh daprd",
		"couldn't find name resolver sqlite/v1")
}

// TestSIGUSR1RollsEveryInstance: kill -USR1 of daprun restarts every
// instance, one at a time, each app before its daprd, with new processes
// on the same ports; nothing counts as a crash and the run goes on.
func TestSIGUSR1RollsEveryInstance(t *testing.T) {
	dir := suite(t, nil)
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-replicas", "beta=2")
	waitFor(t, out, suiteUp, 30*time.Second)
	before := pidsOf(marker, "--app-id")
	betaApp, _ := endpoint(t, out.String(), "beta-2")
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "rolling restart done", 60*time.Second)
	text := out.String()
	last := -1
	for _, name := range []string{"alpha", "beta-1", "beta-2"} {
		i := strings.Index(text, "rolled "+name+": ")
		if i < 0 || i < last {
			t.Fatalf("%s not rolled after the one before it:\n%s", name, text)
		}
		last = i
	}
	if strings.Contains(text, "exited (") {
		t.Errorf("the roll counted as a crash:\n%s", text)
	}
	after := pidsOf(marker, "--app-id")
	for _, p := range before {
		if slices.Contains(after, p) {
			t.Errorf("sidecar %d survived the roll", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d sidecars after the roll, %d before", len(after), len(before))
	}
	if status, port := get(t, fmt.Sprintf("http://127.0.0.1:%d/port", betaApp)); status != 200 || port != strconv.Itoa(betaApp) {
		t.Errorf("beta-2's app after the roll: %d %q", status, port)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, out)
	}
	assertClean(t, marker, out.String())
}
