package runner

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the run's name resolution database, as daprd's resolver keeps it
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
// The exporter too is the run's: an app's Configuration may name a Zipkin
// collector (the suite's name none since issue 14; they once named
// 127.0.0.1:9411, which a plain run does not start). Left so, every daprd
// would log a failed export every few seconds, and any local user could
// listen there and receive every span (routes with user and order IDs,
// state stores, ports): a security test did. So a run exports to
// Options.Zipkin, or nowhere.
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
// busyTimeout 10s: every daprd of a run migrates the new database as it
// starts, all at once, each waiting for the others' locks (800 ms by
// default; see also createNamesDB).
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
      busyTimeout: 10s
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
	if err := createNamesDB(db); err != nil {
		return "", err
	}
	path := filepath.Join(dir, namesConfig)
	return path, os.WriteFile(path, []byte(fmt.Sprintf(runConfigYAML, zipkin, db)), 0o600)
}

// createNamesDB creates the resolver's database in WAL mode, the mode each
// daprd's resolver sets as it opens it. Switching a database to WAL needs it
// alone, and SQLite does not wait for that (no busy handler): daprds that all
// opened a new database at once failed ("database is locked") and ran on
// without a resolver. On a database already in WAL mode the switch is a
// no-op, and the resolver's migrations wait for each other (busyTimeout).
func createNamesDB(path string) error {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode=WAL`).Scan(&mode); err != nil || mode != "wal" {
		return fmt.Errorf("runner: creating the run's name resolution database %s: journal mode %q, %v", path, mode, err)
	}
	return nil
}

// resolverFailure reports whether a daprd log line says its name resolver
// could not be created or initialised: daprd then runs on without one, and
// every invocation from it fails. A daprd built without the SQLite resolver
// says "couldn't find name resolver sqlite/v1".
func resolverFailure(line string) bool {
	return strings.Contains(line, "error occurred for nr (")
}

// An instance of a rolling restart (Run.RollInstance) leaves the run's name
// resolution before it stops and joins it again only once its daprd serves.
// The resolver's table, hosts, has a row per daprd: registration ID, address
// (127.0.0.1:<internal gRPC port>), app ID, last renewal. Leaving renames
// the row's app ID with leaving, which no call asks for: the daprd's
// renewals still find the row (they match registration and address), and its
// graceful stop deletes it. Deleting the row instead would make the daprd
// exit at its next renewal ("Host registration lost") while its app may
// still answer calls through it.
//
// Joining needs a hold: daprd 1.14 registers a millisecond before its
// internal gRPC server listens, and a caller's sidecar that dials it in that
// millisecond fails every call it sends there for a second (gRPC's
// reconnect backoff; measured under a stream of calls: a third failed). So
// the runner holds the new address first (a row in daprun_holds), and a
// trigger renames the daprd's registration as it is inserted, in the same
// statement; once the daprd answers its health check, joinNames lifts the
// hold and gives the row its app ID.
const leaving = " (leaving)"

// holdSchema is the runner's own part of the resolver's database.
const holdSchema = `CREATE TABLE IF NOT EXISTS daprun_holds (address TEXT PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS daprun_hold AFTER INSERT ON hosts
WHEN NEW.address IN (SELECT address FROM daprun_holds)
BEGIN
  UPDATE hosts SET app_id = NEW.app_id || '` + leaving + `' WHERE registration_id = NEW.registration_id;
END;`

// openNames opens the run's name resolution database; ok is false when no
// daprd has created its table yet (none registered: a daprd without the
// resolver, a stand-in in tests), and the caller has nothing to change.
func (r *Run) openNames() (db *sql.DB, ok bool, err error) {
	db, err = sql.Open("sqlite", "file:"+filepath.Join(r.dir, namesDB)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, false, err
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'hosts'`).Scan(&tables); err != nil {
		db.Close()
		return nil, false, fmt.Errorf("runner: reading the run's name resolution: %w", err)
	}
	return db, tables == 1, nil
}

// address is a daprd's registered address for its internal gRPC port.
func address(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// leaveNames takes the instance whose daprd's internal gRPC port is port out
// of the run's name resolution, its daprd still running. Calls that picked
// it before go on to it and are answered; no new call picks it.
func (r *Run) leaveNames(port int) error {
	db, ok, err := r.openNames()
	if err != nil || !ok {
		return err
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE hosts SET app_id = app_id || ? WHERE address = ? AND app_id NOT LIKE ?`, leaving, address(port), "%"+leaving)
	if err != nil {
		return fmt.Errorf("runner: taking %s out of the run's name resolution: %w", address(port), err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("runner: %s has %d registrations in the run's name resolution, want 1", address(port), n)
	}
	return nil
}

// holdNames makes the registration of a daprd on port, when it comes, one
// that no call picks until joinNames.
func (r *Run) holdNames(port int) error {
	db, ok, err := r.openNames()
	if err != nil || !ok {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(holdSchema); err != nil {
		return fmt.Errorf("runner: holding %s out of the run's name resolution: %w", address(port), err)
	}
	if _, err := db.Exec(`INSERT OR IGNORE INTO daprun_holds (address) VALUES (?)`, address(port)); err != nil {
		return fmt.Errorf("runner: holding %s out of the run's name resolution: %w", address(port), err)
	}
	return nil
}

// errNotRegistered: no daprd is registered at the address (yet).
var errNotRegistered = errors.New("not registered")

// joinNames lifts the hold on port and gives its daprd's registration the
// app ID appID, so that calls to appID reach it.
func (r *Run) joinNames(appID string, port int) error {
	db, ok, err := r.openNames()
	if err != nil || !ok {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM daprun_holds WHERE address = ?`, address(port)); err != nil {
		return fmt.Errorf("runner: joining %s to the run's name resolution: %w", address(port), err)
	}
	res, err := db.Exec(`UPDATE hosts SET app_id = ? WHERE address = ?`, appID, address(port))
	if err != nil {
		return fmt.Errorf("runner: joining %s to the run's name resolution: %w", address(port), err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("runner: %s has %d registrations in the run's name resolution, want 1: %w", address(port), n, errNotRegistered)
	}
	return nil
}
