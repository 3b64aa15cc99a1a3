// Package dapr holds the payments adapters that go through the Dapr sidecar:
// the charge store on the service's own state store (decided charges are
// announced through the Dapr outbox), the simulated provider's memory in the
// same store, and the provider key read from the secret store.
package dapr

import (
	"context"
	"time"

	daprc "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
)

// StateClient is the part of the Dapr client the store uses.
type StateClient interface {
	sidecar.Saver
	SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...daprc.StateOption) error
}

// Outbox writes a value and publishes its event in one transaction
// (sidecar.HTTP.SaveWithEvent).
type Outbox interface {
	SaveWithEvent(ctx context.Context, store, key string, value any, etag string, event any, eventType string) error
}

// Store keeps charges in a Dapr state store, one key per charge.
type Store struct {
	Client StateClient
	Outbox Outbox
	Name   string // state store component name
}

var _ payments.Store = (*Store)(nil)

func chargeKey(id string) string { return "charge:" + id }

// Get implements payments.Store.
func (s *Store) Get(ctx context.Context, id string) (payments.Charge, error) {
	c, _, err := s.GetWithETag(ctx, id)
	return c, err
}

// GetWithETag implements payments.Store.
func (s *Store) GetWithETag(ctx context.Context, id string) (payments.Charge, string, error) {
	var c payments.Charge
	etag, found, err := sidecar.GetJSON(ctx, s.Client, s.Name, chargeKey(id), &c)
	if err != nil {
		return payments.Charge{}, "", err
	}
	if !found {
		return payments.Charge{}, "", apierr.Errorf(apierr.NotFound, "charge %s not found", id)
	}
	return c, etag, nil
}

// Create implements payments.Store with a first-write-wins insert: the state
// store refuses it when the key already exists.
func (s *Store) Create(ctx context.Context, c payments.Charge) (string, error) {
	inserted, err := sidecar.InsertJSON(ctx, s.Client, s.Name, chargeKey(c.ID), c)
	if err != nil {
		return "", err
	}
	if !inserted {
		return "", apierr.Errorf(apierr.Conflict, "charge %s exists", c.ID)
	}
	_, etag, err := s.GetWithETag(ctx, c.ID)
	return etag, err
}

// Update implements payments.Store. A charge has one writer at a time (its
// claim while it is processing, then the lease of its refund), so the ETag
// check inside the transaction does not race on Redis.
func (s *Store) Update(ctx context.Context, c payments.Charge, etag string, ev *payments.Event) error {
	err := s.Outbox.SaveWithEvent(ctx, s.Name, chargeKey(c.ID), c, etag, ev, ev.Type)
	if err == nil {
		return nil
	}
	if _, now, gerr := s.GetWithETag(ctx, c.ID); gerr == nil && now != etag {
		return apierr.Errorf(apierr.Conflict, "charge %s changed meanwhile", c.ID)
	}
	return unavailable("saving charge", err)
}

// Claim implements payments.Store: a plain write over the ETag (no
// transaction, no event), then a read for the new ETag, which nobody else
// writes meanwhile: the claim is fresh.
func (s *Store) Claim(ctx context.Context, c payments.Charge, etag string) (string, error) {
	if err := sidecar.SaveJSON(ctx, s.Client, s.Name, chargeKey(c.ID), c, etag, 0); err != nil {
		return "", err
	}
	_, now, err := s.GetWithETag(ctx, c.ID)
	return now, err
}

// ProviderMemory is the simulated provider's memory in the payments state
// store, shared by every replica: its settings under one key, and each
// idempotency key's answer under a key of its own, inserted once (first
// write wins) and dropped by the store after AnswerTTL.
type ProviderMemory struct {
	Client StateClient
	Name   string // state store component name
}

var _ provider.Memory = (*ProviderMemory)(nil)

// AnswerTTL is how long the provider remembers an idempotency key, as real
// providers do for a day.
const AnswerTTL = 24 * time.Hour

const settingsKey = "provider:settings"

func answerKey(key string) string { return "provider:answer:" + key }

// Settings implements provider.Memory.
func (m *ProviderMemory) Settings(ctx context.Context) (provider.Settings, bool, error) {
	var s provider.Settings
	_, found, err := sidecar.GetJSON(ctx, m.Client, m.Name, settingsKey, &s)
	return s, found, err
}

// SaveSettings implements provider.Memory: the last setting wins.
func (m *ProviderMemory) SaveSettings(ctx context.Context, s provider.Settings) error {
	return sidecar.ModifyJSON(ctx, m.Client, m.Name, settingsKey, func(cur *provider.Settings) bool {
		*cur = s
		return true
	})
}

// Answer implements provider.Memory.
func (m *ProviderMemory) Answer(ctx context.Context, key string) (provider.Answer, bool, error) {
	var a provider.Answer
	_, found, err := sidecar.GetJSON(ctx, m.Client, m.Name, answerKey(key), &a)
	return a, found, err
}

// Remember implements provider.Memory.
func (m *ProviderMemory) Remember(ctx context.Context, key string, a provider.Answer) (provider.Answer, error) {
	err := sidecar.SaveJSON(ctx, m.Client, m.Name, answerKey(key), a, "", AnswerTTL)
	if apierr.CodeOf(err) != apierr.Conflict {
		return a, err
	}
	kept, found, err := m.Answer(ctx, key)
	if err == nil && !found {
		err = apierr.Unavailablef(nil, "provider memory unavailable")
	}
	return kept, err
}

// Keys reads the provider API key from the secret store.
type Keys struct{ Secret *sidecar.Secret }

var _ payments.Keys = Keys{}

// ProviderKey implements payments.Keys.
func (k Keys) ProviderKey(ctx context.Context) (string, error) { return k.Secret.Value(ctx) }

// unavailable reports a sidecar failure: the caller may retry later.
func unavailable(what string, err error) error {
	return apierr.Unavailablef(err, "%s: store unavailable", what)
}
