package sidecar

import (
	"context"
	"fmt"
	"sync"

	"github.com/daprshop/suite/lib/apierr"
)

// SecretGetter is the part of the Dapr client Secret needs.
type SecretGetter interface {
	GetSecret(ctx context.Context, store, key string, meta map[string]string) (map[string]string, error)
}

// Secret is one value of a Dapr secret store (the secret Name, and the key of
// the same name inside it), read on first use and kept. A failed read is
// retried on the next call rather than remembered, so a service can start
// before its sidecar is ready.
type Secret struct {
	Client SecretGetter
	Store  string // secret store component name
	Name   string

	mu    sync.Mutex
	value string
}

// Value returns the secret; an unreachable store or an empty secret is an
// apierr Unavailable error.
func (s *Secret) Value(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.value != "" {
		return s.value, nil
	}
	vals, err := s.Client.GetSecret(ctx, s.Store, s.Name, nil)
	if err != nil {
		return "", apierr.Unavailablef(err, "secret store unavailable")
	}
	if vals[s.Name] == "" {
		return "", apierr.Unavailablef(fmt.Errorf("secret %q in store %q is empty", s.Name, s.Store), "secret unavailable")
	}
	s.value = vals[s.Name]
	return s.value, nil
}

// Bytes is Value as bytes, for keys.
func (s *Secret) Bytes(ctx context.Context) ([]byte, error) {
	v, err := s.Value(ctx)
	return []byte(v), err
}
