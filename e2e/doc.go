// Package e2e holds the suite's integration tests: they build the services,
// start them with real daprd sidecars through the runner library, once per
// component profile (Redis; Kafka and PostgreSQL) and once more for the
// fault tests, and check what crosses the sidecars (invocation, state,
// pub/sub, secrets); a pass of its own runs the suite under the real Dapr
// CLI (`dapr run -f .`, cli_test.go). The tests are in _test files; this
// file only documents.
package e2e
