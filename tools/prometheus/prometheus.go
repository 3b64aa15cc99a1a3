// Package prometheus holds what the suite's Prometheus setup needs from code:
// the scrape targets of a run (every service's /metrics and every daprd's
// metrics port, with the labels the dashboards filter on) in Prometheus's
// file service discovery format, and reading alerting rules and the metric
// selectors of their expressions, for tests that run them.
package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/daprshop/suite/tools/runner"
)

// App is what Prometheus scrapes of one app: its own port (serving
// /metrics) and its sidecar's metrics port.
type App struct {
	ID                   string
	AppPort, MetricsPort int
}

// AppsOf returns the scrape targets of a run file's apps.
func AppsOf(apps []runner.App) []App {
	var out []App
	for _, a := range apps {
		out = append(out, App{ID: a.ID, AppPort: a.AppPort, MetricsPort: a.MetricsPort})
	}
	return out
}

// Rule is an alerting rule of a rule file.
type Rule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

// Rules reads the alerting rules of a Prometheus rule file.
func Rules(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Groups []struct {
			Rules []Rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// Selectors returns the vector selectors of a PromQL expression as they are
// written (metric name and matchers), each one a query of its own.
func Selectors(expr string) ([]string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.String())
		}
		return nil
	})
	return out, nil
}

// Namespace is the namespace label of a local run.
const Namespace = "local"

// group is one entry of a file_sd targets file.
type group struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Targets returns the contents of targets/services.json and
// targets/daprd.json for apps.
func Targets(apps []App) (services, daprd []byte, err error) {
	var ss, ds []group
	for _, a := range apps {
		ss = append(ss, group{Targets: []string{fmt.Sprintf("127.0.0.1:%d", a.AppPort)}, Labels: map[string]string{"namespace": Namespace, "service": a.ID}})
		ds = append(ds, group{Targets: []string{fmt.Sprintf("127.0.0.1:%d", a.MetricsPort)}, Labels: map[string]string{"namespace": Namespace, "app_id": a.ID}})
	}
	if services, err = json.MarshalIndent(ss, "", "  "); err != nil {
		return nil, nil, err
	}
	daprd, err = json.MarshalIndent(ds, "", "  ")
	return append(services, '\n'), append(daprd, '\n'), err
}

// WriteTargets writes the targets of apps into dir/targets.
func WriteTargets(dir string, apps []App) error {
	services, daprd, err := Targets(apps)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "targets", "services.json"), services, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "targets", "daprd.json"), daprd, 0o644)
}
