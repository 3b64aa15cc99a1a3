// Package lib is the root of the suite's shared library module. It holds no code
// of its own: each subpackage has one purpose that several services need (error
// mapping, HTTP plumbing, metrics, circuit breaking, configuration, talking to the
// Dapr sidecar, ID kinds). Domain types never live here.
package lib
