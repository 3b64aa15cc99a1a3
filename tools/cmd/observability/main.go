// Command observability writes the generated files of observability/: the
// Grafana dashboards (package grafana) and the Prometheus scrape targets of
// dapr.yaml's fixed ports (package prometheus). Run it after changing either;
// a test fails while the files and their sources differ.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/daprshop/suite/tools/grafana"
	"github.com/daprshop/suite/tools/prometheus"
	"github.com/daprshop/suite/tools/runner"
)

func main() {
	root := flag.String("root", "..", "the repository's root")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: observability [-root DIR]\n\nWrites observability/grafana/dashboards/*.json and observability/prometheus/targets/*.json.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := write(*root); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

func write(root string) error {
	dir := filepath.Join(root, "observability", "grafana", "dashboards")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range grafana.All() {
		b, err := d.JSON()
		if err != nil {
			return fmt.Errorf("%s: %w", d.UID, err)
		}
		if err := os.WriteFile(filepath.Join(dir, d.UID+".json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	f, err := runner.Load(filepath.Join(root, "dapr.yaml"))
	if err != nil {
		return err
	}
	if err := prometheus.WriteTargets(filepath.Join(root, "observability", "prometheus"), prometheus.AppsOf(f.Apps)); err != nil {
		return err
	}
	fmt.Println("wrote the dashboards and the scrape targets under", filepath.Join(root, "observability"))
	return nil
}
