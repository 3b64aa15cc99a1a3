package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
		for _, p := range runnertest.Tagged(marker) {
			var pid int
			fmt.Sscanf(p, "%d:", &pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return cmd, out, marker
}

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
			waitFor(t, out, "the suite is up", 30*time.Second)
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

// TestChildCrashStopsEverything: an app dying stops the suite with a non-zero
// exit that names it and shows its last lines.
func TestChildCrashStopsEverything(t *testing.T) {
	dir := suite(t, map[string]string{"TESTAPP_CRASH_AFTER": "1500ms", "TESTAPP_GRANDCHILD": "1"})
	cmd, out, marker := start(t, dir, "-stop-grace", "2s")
	if code := exitCode(t, cmd, 30*time.Second); code == 0 {
		t.Fatalf("exit code 0 after a crash\n%s", out)
	}
	for _, want := range []string{"beta app exited unexpectedly (exit status 3)", "last ", "testapp crashing on purpose"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	assertClean(t, marker, out.String())
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
	waitFor(t, out, "the suite is up", 30*time.Second)
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

// TestAppEnvReachesOneApp: -app-env gives one app a variable (here one that
// makes the test app crash), and names an unknown app or a malformed value.
func TestAppEnvReachesOneApp(t *testing.T) {
	dir := suite(t, nil)
	cmd, out, marker := start(t, dir, "-stop-grace", "2s", "-app-env", "alpha:TESTAPP_CRASH_AFTER=1s")
	if code := exitCode(t, cmd, 30*time.Second); code == 0 || !strings.Contains(out.String(), "alpha app exited unexpectedly (exit status 3)") {
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
// service, so even SIGKILL (no chance to clean up) leaves nothing behind. The
// run file's command keeps the app one process further down, as `go run .`
// does; -bin must replace it.
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
	waitFor(t, out, "the suite is up", 30*time.Second)
	if strings.Contains(out.String(), "sh -c") {
		t.Fatalf("an app still runs its command:\n%s", out)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
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
// sidecars, gives every daprd what it needs for mTLS, and stops Sentry with
// the rest; a -sentry that does not exist stops it before anything starts.
func TestSentryRunsWithTheSuite(t *testing.T) {
	dir := suite(t, nil)
	cmd, out, marker := start(t, dir, "-sentry", filepath.Join(t.TempDir(), "sentry"))
	if code := exitCode(t, cmd, 10*time.Second); code == 0 || !strings.Contains(out.String(), "sentry") || !strings.Contains(out.String(), "not found") {
		t.Fatalf("a missing -sentry: exit %d\n%s", code, out)
	}
	if left := runnertest.Tagged(marker); len(left) > 0 {
		t.Fatalf("started without its Sentry: %v", left)
	}

	cmd, out, marker = start(t, dir, "-sentry", filepath.Join(bins, "fakesentry"), "-stop-grace", "2s")
	waitFor(t, out, "the suite is up", 30*time.Second)
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
		waitFor(t, out, "the suite is up", 30*time.Second)
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
