package runner_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/daprshop/suite/tools/runner"
)

// writeTree creates files (path → content) under a temp dir and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadMergesCommonAndResolvesPaths(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"dapr.yaml": `version: 1
common:
  resourcesPaths: [./components]
  configFilePath: ./config.yaml
  env:
    SHARED: common
    OVERRIDE: common
apps:
  - appID: orders
    appDirPath: ./svc/orders
    appPort: 8081
    command: ["go", "run", "."]
    env:
      OVERRIDE: app
  - appDirPath: ./svc/payments
    resourcesPaths: ./res-a, ./res-b
    appHealthCheckPath: /readyz
`,
		"components/x.yaml":       "",
		"config.yaml":             "",
		"svc/orders/main.go":      "",
		"svc/payments/res-a/x":    "",
		"svc/payments/res-b/x":    "",
		"svc/payments/readme.txt": "",
	})
	f, err := runner.Load(dir) // a directory means its dapr.yaml
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Apps) != 2 {
		t.Fatalf("apps = %d", len(f.Apps))
	}
	o, p := f.Apps[0], f.Apps[1]
	if o.ID != "orders" || o.Dir != filepath.Join(dir, "svc/orders") || o.AppPort != 8081 {
		t.Errorf("orders = %+v", o)
	}
	if len(o.ResourcesPaths) != 1 || o.ResourcesPaths[0] != filepath.Join(dir, "components") || o.ConfigFile != filepath.Join(dir, "config.yaml") {
		t.Errorf("orders paths = %v %s", o.ResourcesPaths, o.ConfigFile)
	}
	if o.Env["SHARED"] != "common" || o.Env["OVERRIDE"] != "app" || o.HealthPath != "/healthz" || o.AppProtocol != "http" {
		t.Errorf("orders env/health = %v %s", o.Env, o.HealthPath)
	}
	// appID defaults to the directory name; app paths are relative to appDirPath.
	if p.ID != "payments" || p.HealthPath != "/readyz" || len(p.Command) != 0 ||
		strings.Join(p.ResourcesPaths, ",") != filepath.Join(dir, "svc/payments/res-a")+","+filepath.Join(dir, "svc/payments/res-b") {
		t.Errorf("payments = %+v", p)
	}
}

// TestLoadHealthCheck: enableAppHealthCheck and the probe's settings merge
// from common as under the Dapr CLI (an app's value wins; an app cannot
// turn common's check off), and a negative setting is refused.
func TestLoadHealthCheck(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"dapr.yaml": `version: 1
common:
  enableAppHealthCheck: true
  appHealthProbeInterval: 3
  appHealthThreshold: 2
apps:
  - appID: orders
    appDirPath: ./a
    appHealthProbeInterval: 1
    appHealthProbeTimeout: 400
  - appID: payments
    appDirPath: ./a
    enableAppHealthCheck: false
`,
		"off.yaml": "version: 1\napps: [{appID: users, appDirPath: ./a}]\n",
		"bad.yaml": "version: 1\napps: [{appID: users, appDirPath: ./a, appHealthThreshold: -1}]\n",
		"a/keep":   "",
	})
	f, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	o, p := f.Apps[0], f.Apps[1]
	if !o.HealthCheck || o.HealthProbeInterval != 1 || o.HealthProbeTimeout != 400 || o.HealthThreshold != 2 {
		t.Errorf("orders = check %v interval %d timeout %d threshold %d, want true 1 400 2",
			o.HealthCheck, o.HealthProbeInterval, o.HealthProbeTimeout, o.HealthThreshold)
	}
	if !p.HealthCheck || p.HealthProbeInterval != 3 {
		t.Errorf("payments = check %v interval %d, want common's true 3", p.HealthCheck, p.HealthProbeInterval)
	}
	off, err := runner.Load(filepath.Join(dir, "off.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if off.Apps[0].HealthCheck {
		t.Error("no enableAppHealthCheck anywhere: the check is on")
	}
	if _, err := runner.Load(filepath.Join(dir, "bad.yaml")); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("appHealthThreshold -1: err = %v, want a refusal", err)
	}
}

// TestLoadReplicas: "replicas" in an app wins over common's; without
// either an app has one instance.
func TestLoadReplicas(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"dapr.yaml": `version: 1
common:
  replicas: 2
apps:
  - appID: orders
    appDirPath: ./a
    replicas: 3
  - appID: payments
    appDirPath: ./a
`,
		"one.yaml": "version: 1\napps: [{appID: users, appDirPath: ./a}]\n",
		"a/keep":   "",
	})
	f, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := []int{f.Apps[0].Replicas, f.Apps[1].Replicas}; got[0] != 3 || got[1] != 2 {
		t.Errorf("replicas of orders, payments = %v, want [3 2]", got)
	}
	f, err = runner.Load(filepath.Join(dir, "one.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Apps[0].Replicas != 1 {
		t.Errorf("replicas without the key = %d, want 1", f.Apps[0].Replicas)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"version":       {"version: 2\napps: [{appDirPath: ./a}]", "version must be 1"},
		"no apps":       {"version: 1\n", "no apps"},
		"missing dir":   {"version: 1\napps: [{appDirPath: ./nope}]", "not a directory"},
		"no dir":        {"version: 1\napps: [{appID: x}]", "appDirPath is required"},
		"duplicate":     {"version: 1\napps: [{appID: x, appDirPath: ./a}, {appID: x, appDirPath: ./a}]", "duplicate appID"},
		"dotted id":     {"version: 1\napps: [{appID: a.b, appDirPath: ./a}]", "must not contain dots"},
		"grpc app":      {"version: 1\napps: [{appDirPath: ./a, appProtocol: grpc}]", "http apps only"},
		"bad resources": {"version: 1\ncommon: {resourcesPaths: [./missing]}\napps: [{appDirPath: ./a}]", "missing"},
		"not yaml":      {"version: [", "dapr.yaml"},
		"replicas":      {"version: 1\napps: [{appDirPath: ./a, replicas: -1}]", "replicas -1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"dapr.yaml": tc.yaml, "a/keep": ""})
			_, err := runner.Load(filepath.Join(dir, "dapr.yaml"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestRepoRunFile loads the suite's own dapr.yaml, which the Dapr CLI reads too.
func TestRepoRunFile(t *testing.T) {
	f, err := runner.Load("../../dapr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, a := range f.Apps {
		ids[a.ID] = true
		if len(a.Command) == 0 || a.AppPort == 0 || a.DaprHTTPPort == 0 || len(a.ResourcesPaths) == 0 || a.ConfigFile == "" {
			t.Errorf("app %s is missing a command, ports or paths: %+v", a.ID, a)
		}
	}
	for _, id := range []string{"orders", "payments"} {
		if !ids[id] {
			t.Errorf("dapr.yaml lacks %s", id)
		}
	}
}

// TestRepoSecretsFilesResolve: a local secrets file named by a profile must be
// found from every app's directory, where daprd runs (under the CLI too).
func TestRepoSecretsFilesResolve(t *testing.T) {
	f, err := runner.Load("../../dapr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	profiles, _ := filepath.Glob("../../components/*/secretstore.yaml")
	if len(profiles) == 0 {
		t.Fatal("no secretstore.yaml in any profile")
	}
	for _, p := range profiles {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if !strings.Contains(l, "name: secretsFile") || i+1 >= len(lines) {
				continue
			}
			rel := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "value:"))
			for _, a := range f.Apps {
				if _, err := os.Stat(filepath.Join(a.Dir, rel)); err != nil {
					t.Errorf("%s: secretsFile %s not found from %s's directory: %v", p, rel, a.ID, err)
				}
			}
		}
	}
}
