// Package sidecartest is an in-memory stand-in for a daprd state store, for
// the unit tests of the services' Dapr adapters.
package sidecartest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// State keeps values with integer ETags and first-write semantics, and fails
// like daprd: codes.Aborted on an ETag mismatch, a plain error on a refused
// insert. Down makes every call fail; FailSaves makes the saves of keys with
// that prefix fail. The zero value is ready to use.
//
// With Now set, a value saved with ttlInSeconds metadata disappears that
// long after its save, as state.redis and state.postgresql drop it.
// SaveWithEvent is the outbox (a state transaction with its event); with
// RedisTransactions it behaves as state.redis does, where a transaction
// whose ETag check fails still commits its outbox marker: the event is
// published although the value was not written.
type State struct {
	mu                sync.Mutex
	vals              map[string][]byte
	ver               map[string]int
	expires           map[string]time.Time
	Down              bool
	FailSaves         string
	Now               func() time.Time
	RedisTransactions bool
	// Hook, when set, runs before each call (outside the store's lock) with
	// the operation (get, save, delete, transaction) and key, so a test can
	// stop a caller at that point.
	Hook func(op, key string)

	ops       map[string]int
	published []Published
}

// Published is an event the outbox published.
type Published struct {
	Key, Type string
	Data      json.RawMessage
}

func (m *State) hook(op, key string) {
	if m.Hook != nil {
		m.Hook(op, key)
	}
}

// count records one call of op; the caller holds mu.
func (m *State) count(op string) {
	if m.ops == nil {
		m.ops = map[string]int{}
	}
	m.ops[op]++
}

// Ops returns how many calls of each operation the store served (get, save,
// delete, transaction; a bulk get counts each key), and resets the counts.
func (m *State) Ops() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ops := m.ops
	m.ops = nil
	return ops
}

// Published returns the events the outbox published, in order.
func (m *State) Published() []Published {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Published(nil), m.published...)
}

// TTL returns the time left before key expires (0: it does not).
func (m *State) TTL(key string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.expires[key]; ok && m.Now != nil {
		return e.Sub(m.Now())
	}
	return 0
}

// Keys returns the keys the store holds (expired ones excluded).
func (m *State) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.vals {
		if !m.expired(k) {
			out = append(out, k)
		}
	}
	return out
}

// expired drops key if its TTL has run out and reports whether it did. The
// caller holds mu.
func (m *State) expired(key string) bool {
	e, ok := m.expires[key]
	if !ok || m.Now == nil || m.Now().Before(e) {
		return false
	}
	delete(m.vals, key)
	delete(m.ver, key)
	delete(m.expires, key)
	return true
}

// GetState implements the Dapr client's GetState.
func (m *State) GetState(_ context.Context, _, key string, _ map[string]string) (*dapr.StateItem, error) {
	m.hook("get", key)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.get(key)
}

func (m *State) get(key string) (*dapr.StateItem, error) {
	m.count("get")
	if m.Down {
		return nil, errors.New("connection refused")
	}
	if _, ok := m.vals[key]; !ok || m.expired(key) {
		return &dapr.StateItem{Key: key}, nil
	}
	return &dapr.StateItem{Key: key, Value: m.vals[key], Etag: fmt.Sprint(m.ver[key])}, nil
}

// GetBulkState implements the Dapr client's GetBulkState.
func (m *State) GetBulkState(_ context.Context, _ string, keys []string, _ map[string]string, _ int32) ([]*dapr.BulkStateItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*dapr.BulkStateItem, 0, len(keys))
	for _, k := range keys {
		it, err := m.get(k)
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
func (m *State) SaveStateWithETag(_ context.Context, _, key string, data []byte, etag string, meta map[string]string, _ ...dapr.StateOption) error {
	m.hook("save", key)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("save")
	return m.save(key, data, etag, meta)
}

func (m *State) save(key string, data []byte, etag string, meta map[string]string) error {
	if m.Down || (m.FailSaves != "" && strings.HasPrefix(key, m.FailSaves)) {
		return errors.New("connection refused")
	}
	if m.vals == nil {
		m.vals, m.ver, m.expires = map[string][]byte{}, map[string]int{}, map[string]time.Time{}
	}
	_, exists := m.vals[key]
	if exists && m.expired(key) {
		exists = false
	}
	switch {
	case etag == "" && exists:
		return errors.New("failed to set key")
	case etag != "" && etag != fmt.Sprint(m.ver[key]):
		return status.Error(codes.Aborted, "etag mismatch")
	}
	m.vals[key] = data
	m.ver[key]++
	delete(m.expires, key)
	if s, err := strconv.Atoi(meta["ttlInSeconds"]); err == nil && s > 0 && m.Now != nil {
		m.expires[key] = m.Now().Add(time.Duration(s) * time.Second)
	}
	return nil
}

// DeleteState implements the Dapr client's DeleteState.
func (m *State) DeleteState(ctx context.Context, store, key string, meta map[string]string) error {
	return m.DeleteStateWithETag(ctx, store, key, nil, meta, nil)
}

// DeleteStateWithETag implements the Dapr client's DeleteStateWithETag:
// with an ETag it deletes that version only (codes.Aborted otherwise, also
// for a missing key, as state.postgresql answers).
func (m *State) DeleteStateWithETag(_ context.Context, _, key string, etag *dapr.ETag, _ map[string]string, _ *dapr.StateOptions) error {
	m.hook("delete", key)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("delete")
	if m.Down {
		return errors.New("connection refused")
	}
	_, exists := m.vals[key]
	if exists && m.expired(key) {
		exists = false
	}
	if etag != nil && etag.Value != "" && (!exists || etag.Value != fmt.Sprint(m.ver[key])) {
		return status.Error(codes.Aborted, "etag mismatch")
	}
	delete(m.vals, key)
	delete(m.ver, key)
	delete(m.expires, key)
	return nil
}

// SaveWithEvent is sidecar.HTTP.SaveWithEvent on this store: it writes value
// (JSON) under key over etag ("" writes whatever is there, as a transaction
// does) and publishes event, both or neither; with RedisTransactions an
// ETag failure still publishes. A failure is a plain error, as daprd
// reports a failed transaction.
func (m *State) SaveWithEvent(_ context.Context, _, key string, value any, etag string, event any, eventType string) error {
	m.hook("transaction", key)
	data, err := json.Marshal(value)
	if err != nil {
		return err
	}
	ev, err := json.Marshal(event)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("transaction")
	if m.Down {
		return errors.New("connection refused")
	}
	if etag == "" {
		delete(m.vals, key) // a transaction's write without an ETag overwrites
	}
	err = m.save(key, data, etag, nil)
	if err == nil || m.RedisTransactions {
		m.published = append(m.published, Published{Key: key, Type: eventType, Data: ev})
	}
	if err != nil {
		return fmt.Errorf("transaction failed: %v", err)
	}
	return nil
}
