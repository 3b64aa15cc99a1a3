// Package k8s holds the tests of the Kubernetes manifests beside them: every
// overlay builds with kustomize, every object decodes strictly into its
// Kubernetes or Dapr type, and the manifests agree with dapr.yaml, the
// services' configuration and the kafka-postgres profile (manifests_test.go);
// then a real API server (kube-apiserver on etcd, apiserver_test.go) takes
// every overlay by server-side apply, the README's deploy steps as written,
// and refuses what it must, and the objects it stored are cross-checked
// (live_test.go).
package k8s
