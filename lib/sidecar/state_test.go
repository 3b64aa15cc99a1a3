package sidecar_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	dapr "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/sidecar/sidecartest"
)

// fakeState answers from a map; err, when set, is returned for every call.
type fakeState struct {
	m       map[string]string
	err     error
	keyErrs map[string]string // per key, in a bulk reply
}

func (f fakeState) GetState(_ context.Context, _, key string, _ map[string]string) (*dapr.StateItem, error) {
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.m[key]
	if !ok {
		return &dapr.StateItem{Key: key}, nil
	}
	return &dapr.StateItem{Key: key, Value: []byte(v), Etag: "7"}, nil
}

func (f fakeState) GetBulkState(_ context.Context, _ string, keys []string, _ map[string]string, _ int32) ([]*dapr.BulkStateItem, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []*dapr.BulkStateItem
	for i := len(keys) - 1; i >= 0; i-- { // reversed: the helper must restore the order
		out = append(out, &dapr.BulkStateItem{Key: keys[i], Value: []byte(f.m[keys[i]]), Error: f.keyErrs[keys[i]]})
	}
	return out, nil
}

type thing struct{ N int }

func TestGetJSON(t *testing.T) {
	s := fakeState{m: map[string]string{"a": `{"N":1}`, "bad": `{`}}
	var v thing
	etag, found, err := sidecar.GetJSON(context.Background(), s, "st", "a", &v)
	if err != nil || !found || etag != "7" || v.N != 1 {
		t.Fatalf("a: %v %v %q %+v", err, found, etag, v)
	}
	if _, found, err := sidecar.GetJSON(context.Background(), s, "st", "missing", &v); err != nil || found {
		t.Fatalf("missing: %v %v", err, found)
	}
	if _, _, err := sidecar.GetJSON(context.Background(), s, "st", "bad", &v); err == nil || apierr.CodeOf(err) != apierr.Internal {
		t.Fatalf("bad: %v", err)
	}
	down := fakeState{err: errors.New("connection refused")}
	if _, _, err := sidecar.GetJSON(context.Background(), down, "st", "a", &v); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("down: %v", err)
	}
}

func TestGetBulkJSONKeepsOrderAndSkipsMissing(t *testing.T) {
	s := fakeState{m: map[string]string{"a": `{"N":1}`, "b": `{"N":2}`}}
	got, err := sidecar.GetBulkJSON[thing](context.Background(), s, "st", []string{"b", "gone", "a"})
	if err != nil || len(got) != 2 || got[0].N != 2 || got[1].N != 1 {
		t.Fatalf("got %+v err %v", got, err)
	}
}

func TestInsertJSON(t *testing.T) {
	ctx := context.Background()
	m := &sidecartest.State{}
	if ok, err := sidecar.InsertJSON(ctx, m, "s", "k", thing{N: 1}); !ok || err != nil {
		t.Fatalf("first insert: %v %v", ok, err)
	}
	if ok, err := sidecar.InsertJSON(ctx, m, "s", "k", thing{N: 2}); ok || err != nil {
		t.Fatalf("second insert: %v %v", ok, err)
	}
	var v thing
	if _, _, err := sidecar.GetJSON(ctx, m, "s", "k", &v); err != nil || v.N != 1 {
		t.Fatalf("value %+v %v: the first insert must win", v, err)
	}
	m.Down = true
	if _, err := sidecar.InsertJSON(ctx, m, "s", "x", thing{}); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("outage: %v", err)
	}
}

func TestModifyJSONUnderContention(t *testing.T) {
	ctx := context.Background()
	m := &sidecartest.State{}
	type list struct{ IDs []int }
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := sidecar.ModifyJSON(ctx, m, "s", "list", func(l *list) bool {
				if slices.Contains(l.IDs, i) {
					return false
				}
				l.IDs = append(l.IDs, i)
				return true
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var l list
	_, _, _ = sidecar.GetJSON(ctx, m, "s", "list", &l)
	if len(l.IDs) != 30 {
		t.Fatalf("%d of 30 appends survived: %v", len(l.IDs), l.IDs)
	}
	m.Down = true
	if err := sidecar.ModifyJSON(ctx, m, "s", "list", func(*list) bool { return true }); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("outage: %v", err)
	}
}

func TestGetBulkJSONReportsAKeyThatFailed(t *testing.T) {
	s := fakeState{m: map[string]string{"a": `{"N":1}`}, keyErrs: map[string]string{"b": "connection reset"}}
	got, err := sidecar.GetBulkJSON[thing](context.Background(), s, "st", []string{"a", "b"})
	if apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("got %+v err %v: a failed key passed for a missing one", got, err)
	}
}
