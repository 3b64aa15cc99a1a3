// Package tools_test checks toolchain.sh's choice of the daprd that
// `make run` starts, with fake daprd and go programs: never a real build.
package tools_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDaprd writes an executable at path that answers --version with v.
func fakeDaprd(t *testing.T, path, v string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho "+v+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// daprdPath runs `toolchain.sh daprd-path` with env (and an empty .bin, a
// fake go that reports its version and fails at anything else, so a build
// fails at once) and returns its stdout, stderr and whether it succeeded.
func daprdPath(t *testing.T, env ...string) (string, string, bool) {
	t.Helper()
	fakeBin := t.TempDir()
	goScript := "#!/bin/sh\n[ \"$1 $2\" = \"env GOVERSION\" ] && { echo go1.26.0; exit 0; }\necho fake go refuses \"$@\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte(goScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "toolchain.sh", "daprd-path")
	cmd.Env = append([]string{"PATH=" + fakeBin + ":/usr/bin:/bin", "BIN=" + t.TempDir()}, env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return strings.TrimSpace(out.String()), errOut.String(), err == nil
}

// TestMakeRunTakesAnInstalledDaprd: DAPRD first, then the Dapr CLI's
// daprd ($DAPR_RUNTIME_PATH, else $HOME) when it is the pinned version,
// with a note that it lacks the suite's patches (the fake go cannot read
// its build information); another version means a build
// of the pinned one, and a DAPRD that is not a program is an error.
func TestMakeRunTakesAnInstalledDaprd(t *testing.T) {
	home, rt := t.TempDir(), t.TempDir()
	cliDaprd := fakeDaprd(t, filepath.Join(home, ".dapr", "bin", "daprd"), "1.14.0")
	explicit := fakeDaprd(t, filepath.Join(t.TempDir(), "daprd"), "1.14.0")

	if out, errOut, ok := daprdPath(t, "HOME="+home, "DAPRD="+explicit); !ok || out != explicit {
		t.Errorf("DAPRD set: %q (ok %v), want %s\n%s", out, ok, explicit, errOut)
	}
	out, errOut, ok := daprdPath(t, "HOME="+home)
	if !ok || out != cliDaprd || !strings.Contains(errOut, "without the suite's\n==>   patches") {
		t.Errorf("the CLI's daprd 1.14.0: %q (ok %v), want %s with a note that it lacks the suite's patches\n%s", out, ok, cliDaprd, errOut)
	}
	rtDaprd := fakeDaprd(t, filepath.Join(rt, ".dapr", "bin", "daprd"), "1.14.0")
	if out, errOut, ok := daprdPath(t, "HOME="+home, "DAPR_RUNTIME_PATH="+rt); !ok || out != rtDaprd {
		t.Errorf("DAPR_RUNTIME_PATH: %q (ok %v), want %s\n%s", out, ok, rtDaprd, errOut)
	}

	fakeDaprd(t, cliDaprd, "1.15.2")
	out, errOut, ok = daprdPath(t, "HOME="+home)
	if ok || out != "" || !strings.Contains(errOut, "is Dapr '1.15.2', not 1.14.0: building the pinned one") {
		t.Errorf("the CLI's daprd is 1.15.2: %q (ok %v), want a build of the pinned one (which the fake go fails)\n%s", out, ok, errOut)
	}
	out, errOut, ok = daprdPath(t, "HOME="+home, "DAPRD="+filepath.Join(home, "nothing"))
	if ok || !strings.Contains(errOut, "is not an executable file") {
		t.Errorf("DAPRD names nothing: %q (ok %v), want an error\n%s", out, ok, errOut)
	}
}
