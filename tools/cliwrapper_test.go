package tools_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// wrapper is the daprd that dapr.yaml's runtimePath points the Dapr CLI at.
const wrapper = "cli/runtime/.dapr/bin/daprd"

// recordingDaprd writes a fake daprd that answers --version with 1.14.0 and
// otherwise writes its arguments (one per line) and DAPR_HOST_IP to
// out.<app-id>.
func recordingDaprd(t *testing.T, dir string) string {
	t.Helper()
	script := `#!/bin/sh
[ "$1" = --version ] && { echo 1.14.0; exit 0; }
app=x; prev=""
for a in "$@"; do [ "$prev" = --app-id ] && app=$a; prev=$a; done
{ for a in "$@"; do echo "$a"; done; echo "DAPR_HOST_IP=$DAPR_HOST_IP"; } > "` + dir + `/out.$app"
`
	return fakeFile(t, filepath.Join(dir, "daprd"), script)
}

func fakeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCLIWrapperClosesTheSidecar: the wrapper runs the real daprd with the
// CLI's flags plus the loopback addresses the CLI cannot pass, a second
// --config naming the run's own SQLite resolver (its database created in
// WAL mode, once, however many sidecars start at once) and
// DAPR_HOST_IP=127.0.0.1, and writes every sidecar's address to
// sidecars.env.
func TestCLIWrapperClosesTheSidecar(t *testing.T) {
	dir := t.TempDir()
	real := recordingDaprd(t, dir)
	run := filepath.Join(dir, "run")
	apps := map[string]string{"gateway": "3500", "orders": "3501", "payments-x": "3502"}
	var wg sync.WaitGroup
	for app, port := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(wrapper, "--app-id", app, "--dapr-http-port", port, "--config", "/app.yaml")
			cmd.Env = append(os.Environ(), "DAPRD="+real, "DAPRSHOP_RUN_DIR="+run)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", app, err, b)
			}
		}()
	}
	wg.Wait()
	names := filepath.Join(run, "cli", "names.yaml")
	for app, port := range apps {
		b, err := os.ReadFile(filepath.Join(dir, "out."+app))
		if err != nil {
			t.Fatalf("%s: the real daprd did not run: %v", app, err)
		}
		got := strings.Join(strings.Split(strings.TrimSpace(string(b)), "\n"), " ")
		want := "--app-id " + app + " --dapr-http-port " + port + " --config /app.yaml --config " + names +
			" --dapr-internal-grpc-listen-address 127.0.0.1 --metrics-listen-address 127.0.0.1 DAPR_HOST_IP=127.0.0.1"
		if got != want {
			t.Errorf("%s: daprd got\n  %s\nwant\n  %s", app, got, want)
		}
	}
	cfg, err := os.ReadFile(names)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(run, "cli", "names.db")
	if !strings.Contains(string(cfg), "component: sqlite") || !strings.Contains(string(cfg), `connectionString: "`+db+`"`) {
		t.Errorf("names.yaml:\n%s", cfg)
	}
	header, err := os.ReadFile(db)
	if err != nil || len(header) < 20 || !bytes.HasPrefix(header, []byte("SQLite format 3\x00")) || header[18] != 2 || header[19] != 2 {
		t.Errorf("names.db is not an SQLite database in WAL mode (err %v)", err)
	}
	env, err := os.ReadFile(filepath.Join(run, "sidecars.env"))
	if err != nil {
		t.Fatal(err)
	}
	for app, port := range apps {
		name := strings.ToUpper(strings.ReplaceAll(app, "-", "_"))
		if !strings.Contains(string(env), name+"_DAPR_HTTP=http://127.0.0.1:"+port+"\n") {
			t.Errorf("sidecars.env lacks %s's address:\n%s", app, env)
		}
	}
	if st, err := os.Stat(filepath.Join(run, "sidecars.env")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("sidecars.env mode: %v %v, want 0600 (it may hold the API token)", st.Mode(), err)
	}
}

// TestCLIWrapperRefusesItself: a DAPRD that is the wrapper itself, or
// names nothing, is an error, not an endless loop or a silent fallback;
// DAPR_RUNTIME_PATH pointing back at the wrapper is skipped. The wrapper
// runs from a copy in a tree without .bin/daprd, so no real daprd starts.
func TestCLIWrapperRefusesItself(t *testing.T) {
	tree := t.TempDir()
	rt := filepath.Join(tree, "tools", "cli", "runtime")
	self := filepath.Join(rt, ".dapr", "bin", "daprd")
	if err := os.MkdirAll(filepath.Dir(self), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wrapper)
	if err != nil {
		t.Fatal(err)
	}
	fakeFile(t, self, string(b))
	run := func(env ...string) (string, error) {
		cmd := exec.Command(self, "--app-id", "a")
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "DAPRSHOP_RUN_DIR=" + t.TempDir()}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, daprd := range []string{self, filepath.Join(tree, "none"), tree} {
		if out, err := run("DAPRD=" + daprd); err == nil || !strings.Contains(out, "is not a daprd") {
			t.Errorf("DAPRD=%s: %v %s, want a refusal", daprd, err, out)
		}
	}
	notDaprd := fakeFile(t, filepath.Join(tree, "true"), "#!/bin/sh\nexit 0\n")
	if out, err := run("DAPRD=" + notDaprd); err == nil || !strings.Contains(out, "does not answer --version as a daprd does") {
		t.Errorf("DAPRD=a program that is no daprd: %v %s, want a refusal", err, out)
	}
	if out, err := run("DAPR_RUNTIME_PATH=" + rt); err == nil || !strings.Contains(out, "daprd not found") {
		t.Errorf("DAPR_RUNTIME_PATH at the wrapper, no other daprd: %v %s, want 'daprd not found'", err, out)
	}
}

// TestCLIWrapperPrefersTheSuitesDaprd: without DAPRD the wrapper runs the
// suite's patched build (.bin/daprd, metrics on loopback) before the one
// `dapr init --slim` installs, as make run does.
func TestCLIWrapperPrefersTheSuitesDaprd(t *testing.T) {
	tree, home := t.TempDir(), t.TempDir()
	self := filepath.Join(tree, "tools", "cli", "runtime", ".dapr", "bin", "daprd")
	for _, dir := range []string{filepath.Dir(self), filepath.Join(tree, ".bin"), filepath.Join(home, ".dapr", "bin")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(wrapper)
	if err != nil {
		t.Fatal(err)
	}
	fakeFile(t, self, string(b))
	db, err := os.ReadFile("cli/runtime/names-wal.db")
	if err != nil {
		t.Fatal(err)
	}
	fakeFile(t, filepath.Join(tree, "tools", "cli", "runtime", "names-wal.db"), string(db))
	out := t.TempDir()
	fakeFile(t, filepath.Join(tree, ".bin", "daprd"), "#!/bin/sh\n[ \"$1\" = --version ] && { echo 1.14.0; exit 0; }\ntouch "+out+"/suite\n")
	fakeFile(t, filepath.Join(home, ".dapr", "bin", "daprd"), "#!/bin/sh\n[ \"$1\" = --version ] && { echo 1.14.0; exit 0; }\ntouch "+out+"/cli\n")
	cmd := exec.Command(self, "--app-id", "a")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "DAPRSHOP_RUN_DIR=" + t.TempDir()}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, b)
	}
	if _, err := os.Stat(filepath.Join(out, "suite")); err != nil {
		t.Errorf("the suite's .bin/daprd did not run (the CLI's ran: %v)", fileExists(filepath.Join(out, "cli")))
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
