// Package k8s holds the tests of the Kubernetes manifests beside them: every
// overlay builds with kustomize, every object decodes strictly into its
// Kubernetes or Dapr type, and the manifests agree with dapr.yaml, the
// services' configuration and the kafka-postgres profile.
package k8s
