// Package runner starts a multi-app Dapr suite described by a dapr.yaml in the
// Dapr CLI's multi-app run schema: for every app one daprd and the app itself,
// and with Options.Sentry a Dapr Sentry of the run's own, so that the sidecars
// call each other over mTLS (mtls.go); every listener on loopback, output
// prefixed on one console, readiness waits, and a stop that kills every
// child's whole process group. It is the library behind the daprun command
// and the suite's integration tests.
package runner

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is a parsed dapr.yaml with every path made absolute and the common
// section merged into each app.
type File struct {
	// Path is the absolute path of the file; Dir its directory.
	Path, Dir string
	Apps      []App
}

// App is one application and its sidecar.
type App struct {
	ID string
	// Dir is the working directory of the app and of its daprd (appDirPath),
	// as under the Dapr CLI, so relative paths inside components (a secrets
	// file) resolve the same way under both.
	Dir string
	// Command starts the app; empty means only the sidecar is started (the app
	// runs elsewhere, e.g. inside a test, on AppPort).
	Command []string
	// Ports; zero means "pick a free one".
	AppPort, DaprHTTPPort, DaprGRPCPort, DaprInternalGRPCPort, MetricsPort int
	AppProtocol                                                            string
	// HealthPath is the app's health endpoint (appHealthCheckPath, default /healthz).
	HealthPath string
	// HealthCheck turns on daprd's own probe of HealthPath
	// (enableAppHealthCheck): daprd then stops calls and events to an app
	// that fails it, as on Kubernetes. The runner waits for HealthPath
	// either way.
	HealthCheck bool
	// HealthProbeInterval (seconds), HealthProbeTimeout (milliseconds) and
	// HealthThreshold tune that probe; zero keeps daprd's defaults.
	HealthProbeInterval, HealthProbeTimeout, HealthThreshold int
	ResourcesPaths                                           []string
	ConfigFile                                               string
	LogLevel                                                 string
	// Env is given to the app only, as the Dapr CLI does.
	Env map[string]string
	// Replicas is how many instances of the app the runner starts, each
	// with its own daprd and ports (0 means 1). The run file's "replicas"
	// (in an app or in common) sets it; the Dapr CLI ignores that key and
	// runs one instance.
	Replicas int
}

// rawApp is the schema of one app entry, and of the common section.
type rawApp struct {
	AppID                string            `yaml:"appID"`
	AppDirPath           string            `yaml:"appDirPath"`
	Command              []string          `yaml:"command"`
	AppPort              int               `yaml:"appPort"`
	AppProtocol          string            `yaml:"appProtocol"`
	AppHealthCheckPath   string            `yaml:"appHealthCheckPath"`
	EnableAppHealthCheck bool              `yaml:"enableAppHealthCheck"`
	AppHealthInterval    int               `yaml:"appHealthProbeInterval"`
	AppHealthTimeout     int               `yaml:"appHealthProbeTimeout"`
	AppHealthThreshold   int               `yaml:"appHealthThreshold"`
	DaprHTTPPort         int               `yaml:"daprHTTPPort"`
	DaprGRPCPort         int               `yaml:"daprGRPCPort"`
	DaprInternalGRPCPort int               `yaml:"daprInternalGRPCPort"`
	MetricsPort          int               `yaml:"metricsPort"`
	ResourcesPath        string            `yaml:"resourcesPath"`
	ResourcesPaths       stringList        `yaml:"resourcesPaths"`
	ConfigFilePath       string            `yaml:"configFilePath"`
	LogLevel             string            `yaml:"logLevel"`
	Env                  map[string]string `yaml:"env"`
	// Replicas is this runner's own key: the Dapr CLI (1.14) decodes the run
	// file with yaml.v2's non-strict Unmarshal, which skips keys it does not
	// know, so the same file serves both.
	Replicas int `yaml:"replicas"`
}

type rawFile struct {
	Version int      `yaml:"version"`
	Common  rawApp   `yaml:"common"`
	Apps    []rawApp `yaml:"apps"`
}

// stringList accepts a YAML list or a comma-separated string, as the CLI does.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*l = append(*l, s)
			}
		}
		return nil
	}
	var ss []string
	if err := n.Decode(&ss); err != nil {
		return err
	}
	*l = ss
	return nil
}

// Load reads and checks a dapr.yaml. path may name the file or its directory.
func Load(path string) (*File, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "dapr.yaml")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("reading run file: %w", err)
	}
	var raw rawFile
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	if raw.Version != 1 {
		return nil, fmt.Errorf("%s: version must be 1, got %d", abs, raw.Version)
	}
	if len(raw.Apps) == 0 {
		return nil, fmt.Errorf("%s: no apps", abs)
	}
	f := &File{Path: abs, Dir: filepath.Dir(abs)}
	var errs []error
	seen := map[string]bool{}
	for i, ra := range raw.Apps {
		a, err := f.resolve(raw.Common, ra)
		if err != nil {
			errs = append(errs, fmt.Errorf("apps[%d]: %w", i, err))
			continue
		}
		if seen[a.ID] {
			errs = append(errs, fmt.Errorf("apps[%d]: duplicate appID %q", i, a.ID))
		}
		seen[a.ID] = true
		f.Apps = append(f.Apps, a)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	return f, nil
}

// resolve merges common into ra and makes paths absolute: common paths are
// relative to the file, an app's paths to its appDirPath.
func (f *File) resolve(common, ra rawApp) (App, error) {
	if ra.AppDirPath == "" {
		return App{}, errors.New("appDirPath is required")
	}
	dir := abs(f.Dir, ra.AppDirPath)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return App{}, fmt.Errorf("appDirPath %s is not a directory", dir)
	}
	id := ra.AppID
	if id == "" {
		id = filepath.Base(dir)
	}
	if strings.ContainsAny(id, ". /") {
		return App{}, fmt.Errorf("appID %q must not contain dots, spaces or slashes", id)
	}
	a := App{
		ID: id, Dir: dir, Command: ra.Command,
		AppPort: ra.AppPort, DaprHTTPPort: ra.DaprHTTPPort, DaprGRPCPort: ra.DaprGRPCPort,
		DaprInternalGRPCPort: ra.DaprInternalGRPCPort, MetricsPort: ra.MetricsPort,
		AppProtocol: first(ra.AppProtocol, common.AppProtocol, "http"),
		HealthPath:  first(ra.AppHealthCheckPath, common.AppHealthCheckPath, "/healthz"),
		LogLevel:    first(ra.LogLevel, common.LogLevel, "info"),
		Env:         map[string]string{},
		// As the CLI merges common: an app's false cannot undo common's true.
		HealthCheck:         ra.EnableAppHealthCheck || common.EnableAppHealthCheck,
		HealthProbeInterval: cmp.Or(ra.AppHealthInterval, common.AppHealthInterval),
		HealthProbeTimeout:  cmp.Or(ra.AppHealthTimeout, common.AppHealthTimeout),
		HealthThreshold:     cmp.Or(ra.AppHealthThreshold, common.AppHealthThreshold),
	}
	if a.HealthProbeInterval < 0 || a.HealthProbeTimeout < 0 || a.HealthThreshold < 0 {
		return App{}, fmt.Errorf("app %s: appHealthProbeInterval, appHealthProbeTimeout and appHealthThreshold must not be negative", id)
	}
	a.Replicas = ra.Replicas
	if a.Replicas == 0 {
		a.Replicas = common.Replicas
	}
	if a.Replicas < 0 {
		return App{}, fmt.Errorf("app %s: replicas %d: want 1 or more", id, a.Replicas)
	}
	if a.Replicas == 0 {
		a.Replicas = 1
	}
	if a.AppProtocol != "http" {
		return App{}, fmt.Errorf("appProtocol %q: this runner supports http apps only", a.AppProtocol)
	}
	switch {
	case len(ra.ResourcesPaths) > 0 || ra.ResourcesPath != "":
		a.ResourcesPaths = absAll(dir, append([]string(ra.ResourcesPaths), nonEmpty(ra.ResourcesPath)...))
	default:
		a.ResourcesPaths = absAll(f.Dir, append([]string(common.ResourcesPaths), nonEmpty(common.ResourcesPath)...))
	}
	switch {
	case ra.ConfigFilePath != "":
		a.ConfigFile = abs(dir, ra.ConfigFilePath)
	case common.ConfigFilePath != "":
		a.ConfigFile = abs(f.Dir, common.ConfigFilePath)
	}
	for _, p := range append(a.ResourcesPaths, nonEmpty(a.ConfigFile)...) {
		if _, err := os.Stat(p); err != nil {
			return App{}, fmt.Errorf("app %s: %w", id, err)
		}
	}
	for k, v := range common.Env {
		a.Env[k] = v
	}
	for k, v := range ra.Env {
		a.Env[k] = v
	}
	return a, nil
}

func abs(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

func absAll(base string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = abs(base, p)
	}
	return out
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
