package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dapr "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/optimistic"
	"github.com/daprshop/suite/lib/tracecontext"
)

// StateGetter is the part of the Dapr client GetJSON needs.
type StateGetter interface {
	GetState(ctx context.Context, store, key string, meta map[string]string) (*dapr.StateItem, error)
}

// GetJSON reads key from store into v. found is false when the key does not
// exist. A sidecar or store failure is an apierr Unavailable error.
func GetJSON(ctx context.Context, c StateGetter, store, key string, v any) (etag string, found bool, err error) {
	item, err := c.GetState(ctx, store, key, nil)
	if err != nil {
		return "", false, apierr.Unavailablef(err, "%s unavailable", store)
	}
	if item == nil || len(item.Value) == 0 {
		return "", false, nil
	}
	if err := json.Unmarshal(item.Value, v); err != nil {
		return "", false, fmt.Errorf("decoding %s/%s: %w", store, key, err)
	}
	return item.Etag, true, nil
}

// BulkGetter is the part of the Dapr client GetBulkJSON needs.
type BulkGetter interface {
	GetBulkState(ctx context.Context, store string, keys []string, meta map[string]string, parallelism int32) ([]*dapr.BulkStateItem, error)
}

// GetBulkJSON reads keys from store, in the order given, skipping missing keys.
func GetBulkJSON[T any](ctx context.Context, c BulkGetter, store string, keys []string) ([]T, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	items, err := c.GetBulkState(ctx, store, keys, nil, 8)
	if err != nil {
		return nil, apierr.Unavailablef(err, "%s unavailable", store)
	}
	byKey := make(map[string]*dapr.BulkStateItem, len(items))
	for _, it := range items {
		byKey[it.Key] = it
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		it := byKey[k]
		// A key that failed comes back with its error and no value: check
		// the error first, or a failed read would pass for a missing key.
		if it != nil && it.Error != "" {
			return nil, apierr.Unavailablef(fmt.Errorf("%s", it.Error), "%s unavailable", store)
		}
		if it == nil || len(it.Value) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(it.Value, &v); err != nil {
			return nil, fmt.Errorf("decoding %s/%s: %w", store, k, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// JSONMeta marks a saved value as JSON, so stores that understand it (and the
// outbox) keep it as a JSON document rather than bytes. A new map each time:
// the Dapr client may keep it, callers may add to it.
func JSONMeta() map[string]string { return map[string]string{"contentType": "application/json"} }

// IsETagMismatch reports whether a SaveState or DeleteState call failed
// because the ETag given is no longer current (first-write-wins lost): the
// caller should re-read and try again.
func IsETagMismatch(err error) bool {
	return status.Code(errors.Unwrap(err)) == codes.Aborted || status.Code(err) == codes.Aborted
}

// SaveWithEvent writes value under key in store and publishes event in one
// state transaction, through the Dapr outbox configured on the store's
// component (outboxPublishPubsub, outboxPublishTopic): the event is published
// if and only if the write commits, at least once. The event is the outbox
// projection of the write, and eventType becomes its CloudEvent type. A
// non-empty etag makes the write conditional (first-write-wins); a failed
// write is an apierr Unavailable error (the store does not say why).
//
// It uses daprd's HTTP API: only there (Dapr 1.14) does the projection keep
// its JSON content type, so subscribers get the event as a JSON object. Redis
// runs a transaction's writes without rollback: when the ETag check fails,
// the outbox marker may still commit and publish the event, so callers keep
// ETag conflicts out of transactions (serialise writers of a key) there;
// PostgreSQL rolls back.
func (c *HTTP) SaveWithEvent(ctx context.Context, store, key string, value any, etag string, event any, eventType string) error {
	type request struct {
		Key         string            `json:"key"`
		Value       any               `json:"value"`
		ETag        string            `json:"etag,omitempty"`
		ContentType string            `json:"contentType,omitempty"`
		Options     map[string]string `json:"options,omitempty"`
		Metadata    map[string]string `json:"metadata"`
	}
	type op struct {
		Operation string  `json:"operation"`
		Request   request `json:"request"`
	}
	// The outbox copies the write's metadata into the CloudEvent: "type"
	// names it, and the request's trace context goes into traceparent
	// (Dapr 1.14's outbox does not carry the trace of an HTTP transaction by
	// itself, so subscribers would start new traces). No contentType on the
	// write itself: Dapr 1.14's Redis store would switch to RedisJSON
	// commands, which a plain Redis lacks.
	write := request{Key: key, Value: value, Metadata: map[string]string{"type": eventType}}
	if tp := tracecontext.From(ctx); tp != "" {
		write.Metadata["traceparent"], write.Metadata["traceid"] = tp, tp
	}
	if etag != "" {
		write.ETag, write.Options = etag, map[string]string{"concurrency": "first-write"}
	}
	projection := request{Key: key, Value: event, ContentType: "application/json",
		Metadata: map[string]string{"outbox.projection": "true"}}
	body, err := json.Marshal(map[string]any{"operations": []op{{"upsert", write}, {"upsert", projection}}})
	if err != nil {
		return err
	}
	reply, err := c.do(ctx, "state_transaction", store, http.MethodPost, "/v1.0/state/"+store+"/transaction", body, nil)
	if err != nil {
		return err
	}
	if reply.Status/100 != 2 {
		return apierr.Unavailablef(fmt.Errorf("%d %s", reply.Status, reply.Body), "%s unavailable", store)
	}
	return nil
}

// firstWrite makes a write conditional: without an ETag it inserts, with one
// it overwrites only that version.
var firstWrite = dapr.WithConcurrency(dapr.StateConcurrencyFirstWrite)

// Saver is the part of the Dapr client SaveJSON needs.
type Saver interface {
	StateGetter
	SaveStateWithETag(ctx context.Context, store, key string, data []byte, etag string, meta map[string]string, so ...dapr.StateOption) error
}

// SaveJSON writes value under key over the version etag, or only if key
// does not exist when etag is "" (first-write concurrency either way). A key
// that changed meanwhile (or exists, for "") is an apierr Conflict; a
// failed write, Unavailable. Stores refuse a taken key with an error that
// does not say why, so a refused insert is checked by reading the key.
//
// ttl > 0 lets the store drop the key that long after this write: Dapr's
// ttlInSeconds, which state.redis (EXPIRE) and state.postgresql v1 (an
// expiry column, rows swept every cleanupInterval) honour. Give it on every
// write of a key that should expire: PostgreSQL clears the expiry of a row
// written without one.
func SaveJSON(ctx context.Context, c Saver, store, key string, value any, etag string, ttl time.Duration) error {
	b, err := json.Marshal(value)
	if err != nil {
		return err
	}
	meta := JSONMeta()
	if ttl > 0 {
		meta["ttlInSeconds"] = strconv.FormatInt(int64((ttl+time.Second-1)/time.Second), 10)
	}
	// A refused insert whose key is gone by the time it is read was most
	// likely deleted meanwhile (a lease released): the insert is tried once
	// more before the refusal counts as a failed store.
	for attempt := 0; ; attempt++ {
		serr := c.SaveStateWithETag(ctx, store, key, b, etag, meta, firstWrite)
		switch {
		case serr == nil:
			return nil
		case IsETagMismatch(serr):
			return apierr.Errorf(apierr.Conflict, "%s changed meanwhile", store)
		case etag != "":
			return apierr.Unavailablef(serr, "%s unavailable", store)
		}
		var existing json.RawMessage
		_, found, err := GetJSON(ctx, c, store, key, &existing)
		switch {
		case err != nil || !found && attempt > 0:
			return apierr.Unavailablef(serr, "%s unavailable", store)
		case found:
			return apierr.Errorf(apierr.Conflict, "%s: key exists", store)
		}
	}
}

// Deleter is the part of the Dapr client DeleteJSON needs.
type Deleter interface {
	StateGetter
	DeleteStateWithETag(ctx context.Context, store, key string, etag *dapr.ETag, meta map[string]string, opts *dapr.StateOptions) error
}

// DeleteJSON deletes key if it is still at the version etag: a key that
// changed is an apierr Conflict, one that is gone is no error.
func DeleteJSON(ctx context.Context, c Deleter, store, key, etag string) error {
	err := c.DeleteStateWithETag(ctx, store, key, &dapr.ETag{Value: etag}, nil,
		&dapr.StateOptions{Concurrency: dapr.StateConcurrencyFirstWrite})
	if err == nil {
		return nil
	}
	if !IsETagMismatch(err) {
		return apierr.Unavailablef(err, "%s unavailable", store)
	}
	// PostgreSQL answers a missing key like a changed one.
	var existing json.RawMessage
	if _, found, gerr := GetJSON(ctx, c, store, key, &existing); gerr != nil {
		return gerr
	} else if !found {
		return nil
	}
	return apierr.Errorf(apierr.Conflict, "%s changed meanwhile", store)
}

// Inserter is the part of the Dapr client InsertJSON needs.
type Inserter interface {
	StateGetter
	SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...dapr.StateOption) error
}

// InsertJSON writes value under key only if key does not exist yet, and
// reports whether it did. Stores refuse a taken key with an error that does
// not say why, so a refusal is checked by reading the key: present means
// taken, absent means the store failed (Unavailable).
func InsertJSON(ctx context.Context, c Inserter, store, key string, value any) (bool, error) {
	err := SaveJSON(ctx, inserter{c}, store, key, value, "", 0)
	if apierr.CodeOf(err) == apierr.Conflict {
		return false, nil
	}
	return err == nil, err
}

// inserter lets an Inserter serve SaveJSON for inserts.
type inserter struct{ Inserter }

func (i inserter) SaveStateWithETag(ctx context.Context, store, key string, data []byte, _ string, meta map[string]string, so ...dapr.StateOption) error {
	return i.SaveState(ctx, store, key, data, meta, so...)
}

// Modifier is the part of the Dapr client ModifyJSON needs.
type Modifier = Saver

// ModifyJSON reads key into a T (the zero value when missing), lets change
// edit it, and writes it back over the version it read (an insert when it
// was missing): one optimistic.Update cycle with the suite's policy. change
// returns false when there is nothing to write.
func ModifyJSON[T any](ctx context.Context, c Modifier, store, key string, change func(*T) bool) error {
	_, err := optimistic.Update(ctx, optimistic.Policy(), store,
		func(ctx context.Context) (T, string, error) {
			var v T
			etag, _, err := GetJSON(ctx, c, store, key, &v)
			return v, etag, err
		},
		func(v *T) error {
			if !change(v) {
				return optimistic.ErrUnchanged
			}
			return nil
		},
		func(ctx context.Context, v T, etag string) error {
			return SaveJSON(ctx, c, store, key, v, etag, 0)
		})
	return err
}
