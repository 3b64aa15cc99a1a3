package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Name resolution: how a daprd finds the sidecar of the app it invokes.
// Left alone, a standalone daprd uses mDNS, which has no namespace: two runs
// with the same app IDs on one machine or network (make run and make test,
// two checkouts, two laptops) answer for each other, and every daprd
// announces itself on UDP 5353 of every interface (issue 13).
//
// A run of the runner has a resolver of its own instead: Dapr's SQLite name
// resolver (nameresolution.sqlite, which tools/dapr/daprd.patch builds into
// .bin/daprd) on a database in the run's private directory. Each daprd
// registers its app ID and internal gRPC address (127.0.0.1:<port>) there,
// renews the registration every few seconds, and resolves an app ID to one
// of its live registrations, picked at random on every call; a daprd of
// another run reads another file and never learns of this run's sidecars.
//
// The resolver reaches daprd as a second --config: a standalone daprd reads
// every --config file in turn onto one Configuration (pkg/config,
// LoadStandaloneConfiguration), so the app's own Configuration (metrics,
// secret scopes) stays as it is and only spec.nameResolution and the span
// exporter are set.
//
// The exporter too is the run's: the apps' Configurations name a Zipkin
// collector at 127.0.0.1:9411, which a plain run does not start. Left so,
// every daprd would log a failed export every few seconds, and any local
// user could listen there and receive every span (routes with user and
// order IDs, state stores, ports): a security test did. So a run exports
// to Options.Zipkin, or nowhere.
const (
	// namesDB is the resolver's database in the run's directory.
	namesDB = "names.db"
	// namesConfig is the Configuration that points daprd at it.
	namesConfig = "names.yaml"
)

// runConfigYAML is the Configuration of a run's resolver and exporter.
//
// cleanupInterval 0 turns off the resolver's periodic cleanup: in Dapr 1.14
// its query deletes the live registrations instead of the expired ones, and
// a daprd whose registration is gone exits ("Host registration lost") at its
// next renewal, every sidecar of the run within seconds of each other
// (measured: with cleanupInterval 3s, daprd logged "Removed 1 expired rows"
// and exited a second later; the default, 1h, would end a run after an
// hour). Nothing needs the cleanup: lookups skip registrations not renewed
// within updateInterval (5s), a daprd started again on its address replaces
// its old row, and the database goes with the run.
//
// samplingRate is set with the exporter, as the apps' Configurations set it,
// so that the tracing block stands whole whatever the decoder keeps of the
// app's.
const runConfigYAML = `# Written by daprun for one run: this run's sidecars find each other here only,
# and send their spans to the run's collector, if any.
apiVersion: dapr.io/v1alpha1
kind: Configuration
spec:
  tracing:
    samplingRate: "1"
    zipkin:
      endpointAddress: %q
  nameResolution:
    component: sqlite
    version: v1
    configuration:
      connectionString: %q
      cleanupInterval: "0"
`

// writeRunConfig writes the run's Configuration (resolver, span exporter
// zipkin) into dir and returns its path, for every daprd's --config.
func writeRunConfig(dir, zipkin string) (string, error) {
	if strings.ContainsAny(zipkin, "$\n\"") {
		return "", fmt.Errorf("runner: the span collector's address %q holds $, a quote or a newline", zipkin)
	}
	db := filepath.Join(dir, namesDB)
	// daprd expands $VARS in a Configuration, and the resolver reads a "?"
	// as the start of connection options: a path with either would name
	// another file.
	if strings.ContainsAny(db, "$?,") {
		return "", fmt.Errorf("runner: the run's directory %s holds $, ? or a comma; set TMPDIR to a plainer path", dir)
	}
	path := filepath.Join(dir, namesConfig)
	return path, os.WriteFile(path, []byte(fmt.Sprintf(runConfigYAML, zipkin, db)), 0o600)
}

// resolverFailure reports whether a daprd log line says its name resolver
// could not be created or initialised: daprd then runs on without one, and
// every invocation from it fails. A daprd built without the SQLite resolver
// says "couldn't find name resolver sqlite/v1".
func resolverFailure(line string) bool {
	return strings.Contains(line, "error occurred for nr (")
}
