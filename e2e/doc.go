// Package e2e holds the suite's integration tests: they build the services,
// start them with real daprd sidecars through the runner library against the
// machine's Redis, and check what crosses the sidecars (invocation, state,
// pub/sub, secrets). The tests are in _test files; this file only documents.
package e2e
