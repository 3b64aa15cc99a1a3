// Package sidecartest is an in-memory stand-in for a daprd state store, for
// the unit tests of the services' Dapr adapters.
package sidecartest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// State keeps values with integer ETags and first-write semantics, and fails
// like daprd: codes.Aborted on an ETag mismatch, a plain error on a refused
// insert. Down makes every call fail; FailSaves makes the saves of keys with
// that prefix fail. The zero value is ready to use.
type State struct {
	mu        sync.Mutex
	vals      map[string][]byte
	ver       map[string]int
	Down      bool
	FailSaves string
}

// GetState implements the Dapr client's GetState.
func (m *State) GetState(_ context.Context, _, key string, _ map[string]string) (*dapr.StateItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Down {
		return nil, errors.New("connection refused")
	}
	if _, ok := m.vals[key]; !ok {
		return &dapr.StateItem{Key: key}, nil
	}
	return &dapr.StateItem{Key: key, Value: m.vals[key], Etag: fmt.Sprint(m.ver[key])}, nil
}

// GetBulkState implements the Dapr client's GetBulkState.
func (m *State) GetBulkState(ctx context.Context, store string, keys []string, meta map[string]string, _ int32) ([]*dapr.BulkStateItem, error) {
	out := make([]*dapr.BulkStateItem, 0, len(keys))
	for _, k := range keys {
		it, err := m.GetState(ctx, store, k, meta)
		if err != nil {
			return nil, err
		}
		out = append(out, &dapr.BulkStateItem{Key: k, Value: it.Value, Etag: it.Etag})
	}
	return out, nil
}

// SaveState implements the Dapr client's SaveState.
func (m *State) SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...dapr.StateOption) error {
	return m.SaveStateWithETag(ctx, store, key, data, "", meta, so...)
}

// SaveStateWithETag implements the Dapr client's SaveStateWithETag: without
// an ETag it inserts (first write), with one it overwrites that version only.
func (m *State) SaveStateWithETag(_ context.Context, _, key string, data []byte, etag string, _ map[string]string, _ ...dapr.StateOption) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Down || (m.FailSaves != "" && strings.HasPrefix(key, m.FailSaves)) {
		return errors.New("connection refused")
	}
	if m.vals == nil {
		m.vals, m.ver = map[string][]byte{}, map[string]int{}
	}
	_, exists := m.vals[key]
	switch {
	case etag == "" && exists:
		return errors.New("failed to set key")
	case etag != "" && etag != fmt.Sprint(m.ver[key]):
		return status.Error(codes.Aborted, "etag mismatch")
	}
	m.vals[key] = data
	m.ver[key]++
	return nil
}
