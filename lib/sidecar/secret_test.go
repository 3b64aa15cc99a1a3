package sidecar_test

import (
	"context"
	"errors"
	"testing"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
)

type secrets struct {
	calls int
	err   error
	vals  map[string]string
}

func (s *secrets) GetSecret(_ context.Context, _, _ string, _ map[string]string) (map[string]string, error) {
	s.calls++
	return s.vals, s.err
}

func TestSecretIsReadOnceAndRetriedAfterFailure(t *testing.T) {
	src := &secrets{err: errors.New("sidecar not ready")}
	s := &sidecar.Secret{Client: src, Store: "secrets", Name: "k"}
	if _, err := s.Value(context.Background()); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("err = %v", err)
	}
	src.err, src.vals = nil, map[string]string{"k": ""}
	if _, err := s.Value(context.Background()); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("empty secret: %v", err)
	}
	src.vals = map[string]string{"k": "v"}
	for range 3 {
		if v, err := s.Value(context.Background()); err != nil || v != "v" {
			t.Fatalf("%q %v", v, err)
		}
	}
	if src.calls != 3 {
		t.Fatalf("store read %d times, want 3 (two failures, then once)", src.calls)
	}
}
