// Package payments is the payments domain: charges and refunds against a
// payment provider, made idempotent by a client-chosen key so the same key
// never charges (or refunds) twice. Every decided charge is announced on the
// payments topic together with the write that records it.
package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/optimistic"
)

// Status is the outcome of a charge.
type Status string

// Charge outcomes. A processing charge has been claimed by a request that has
// not yet heard back from the provider.
const (
	Processing Status = "processing"
	Succeeded  Status = "succeeded"
	Declined   Status = "declined"
	Refunded   Status = "refunded"
)

// Charge is one attempt to take money for an order.
type Charge struct {
	ID             string    `json:"id"`
	OrderID        string    `json:"order_id"`
	UserID         string    `json:"user_id"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	IdempotencyKey string    `json:"idempotency_key"`
	Status         Status    `json:"status"`
	DeclineReason  string    `json:"decline_reason,omitempty"`
	ProviderRef    string    `json:"provider_ref,omitempty"`
	KeyFingerprint string    `json:"key_fingerprint,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// ChargeRequest asks for a charge.
type ChargeRequest struct {
	OrderID        string `json:"order_id"`
	UserID         string `json:"user_id"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	IdempotencyKey string `json:"idempotency_key"`
}

var (
	keyPattern      = regexp.MustCompile(`^[A-Za-z0-9_\-:.]{1,128}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// MaxAmount bounds a single charge (in minor units) to catch unit mistakes.
const MaxAmount = 100_000_000

// Validate reports every invalid field of r at once.
func (r ChargeRequest) Validate() error {
	var fields apierr.FieldErrors
	bad := fields.Add
	if !keyPattern.MatchString(r.OrderID) {
		bad("order_id", "is required: 1-128 letters, digits or _-:.")
	}
	if !keyPattern.MatchString(r.UserID) {
		bad("user_id", "is required: 1-128 letters, digits or _-:.")
	}
	if r.Amount <= 0 || r.Amount > MaxAmount {
		bad("amount", fmt.Sprintf("must be between 1 and %d minor units", MaxAmount))
	}
	if !currencyPattern.MatchString(r.Currency) {
		bad("currency", "must be an ISO 4217 code such as EUR")
	}
	if !keyPattern.MatchString(r.IdempotencyKey) {
		bad("idempotency_key", "is required: 1-128 letters, digits or _-:.")
	}
	return fields.Err("charge")
}

// ChargeID derives the charge ID from the idempotency key, so a retried
// request lands on the same record.
func ChargeID(idempotencyKey string) string { return id.Charge.Derive(idempotencyKey) }

// Fingerprint identifies a provider key without revealing it.
func Fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:6])
}

// Event types on the payments topic.
const (
	EventSucceeded = "payment.succeeded"
	EventDeclined  = "payment.declined"
	EventRefunded  = "payment.refunded"
)

// Event is the payload published on the payments topic.
type Event struct {
	Type     string    `json:"type"`
	ChargeID string    `json:"charge_id"`
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

func eventFor(c Charge, typ string) *Event {
	return &Event{Type: typ, ChargeID: c.ID, OrderID: c.OrderID, UserID: c.UserID, Amount: c.Amount,
		Currency: c.Currency, Reason: c.DeclineReason, At: c.UpdatedAt}
}

// ErrDeclined is returned by a Provider that refuses a charge.
var ErrDeclined = errors.New("declined by provider")

// Provider takes money and gives it back. key is the provider API key.
// Charge and Refund are idempotent per idempotencyKey, as real providers are
// (an Idempotency-Key header): asking again gives the first answer.
type Provider interface {
	Charge(ctx context.Context, key, idempotencyKey string, amount int64, currency string) (ref string, err error)
	Refund(ctx context.Context, key, idempotencyKey, ref string) error
}

// Store keeps charges.
type Store interface {
	// Get returns the charge or an apierr NotFound error.
	Get(ctx context.Context, id string) (Charge, error)
	// GetWithETag is Get that also returns the record's ETag.
	GetWithETag(ctx context.Context, id string) (Charge, string, error)
	// Create stores a new charge, or fails with apierr Conflict if its ID
	// exists, and returns the new record's ETag.
	Create(ctx context.Context, c Charge) (etag string, err error)
	// Update overwrites the charge stored with the given ETag and, atomically,
	// publishes ev.
	Update(ctx context.Context, c Charge, etag string, ev *Event) error
	// Claim overwrites the charge stored with the given ETag, publishing
	// nothing, and returns the new ETag: a claim taken over or given up.
	// Claims are never deleted: a store whose versions start again when a
	// key is re-created (state.redis) would let a stale ETag match a newer
	// claim.
	Claim(ctx context.Context, c Charge, etag string) (string, error)
}

// Keys yields the provider API key from the secret store.
type Keys interface {
	ProviderKey(ctx context.Context) (string, error)
}

// Service charges orders.
type Service struct {
	Store    Store
	Provider Provider
	Keys     Keys
	Now      func() time.Time
	// ClaimTimeout is how long a charge may stay processing before a retry
	// may take its claim over (default DefaultClaimTimeout). Longer than any
	// provider call, so a live request is never overtaken.
	ClaimTimeout time.Duration
	// Leases serialises the refunds of one charge across replicas (the
	// lease "refund:<charge ID>"): on Redis a lost ETag race would still
	// publish its event (see Store.Update), a second payment.refunded.
	Leases *lease.Manager
}

// DefaultClaimTimeout is ClaimTimeout's default.
const DefaultClaimTimeout = 20 * time.Second

// claimTimeout is ClaimTimeout, or its default.
func (s *Service) claimTimeout() time.Duration {
	if s.ClaimTimeout <= 0 {
		return DefaultClaimTimeout
	}
	return s.ClaimTimeout
}

// Charge takes the money once per idempotency key. It reports created=false when
// it returns the result of an earlier request with the same key. A declined
// charge is an outcome, not an error: callers read its Status.
func (s *Service) Charge(ctx context.Context, req ChargeRequest) (c Charge, created bool, err error) {
	if err := req.Validate(); err != nil {
		return Charge{}, false, err
	}
	// A charge is seen through even when its caller goes away (a client
	// that disconnected, daprd's invocation timeout): given up between the
	// claim and the outcome, its claim would hold the key, and every retry
	// of the order, until ClaimTimeout (measured: an order left pending 34 s
	// after a reload of the storefront mid-order). Bounded by half the claim
	// timeout, so that a takeover never races a charge still running.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.claimTimeout()/2)
	defer cancel()
	key, err := s.Keys.ProviderKey(ctx)
	if err != nil {
		return Charge{}, false, err
	}
	now := s.Now().UTC()
	c = Charge{
		ID: ChargeID(req.IdempotencyKey), OrderID: req.OrderID, UserID: req.UserID, Amount: req.Amount, Currency: req.Currency,
		IdempotencyKey: req.IdempotencyKey, Status: Processing, KeyFingerprint: Fingerprint(key),
		CreatedAt: now, UpdatedAt: now,
	}
	// Claim the key before calling the provider: of two concurrent requests with
	// the same key only one gets past Create.
	etag, err := s.Store.Create(ctx, c)
	if err != nil {
		if apierr.CodeOf(err) != apierr.Conflict {
			return Charge{}, false, err
		}
		return s.replay(ctx, req, key, c.ID)
	}
	return s.settle(ctx, req, key, c, etag)
}

// settle asks the provider for the charge c claims (stored at etag) and
// records the outcome with its event.
func (s *Service) settle(ctx context.Context, req ChargeRequest, key string, c Charge, etag string) (Charge, bool, error) {
	ref, err := s.Provider.Charge(ctx, key, req.IdempotencyKey, req.Amount, req.Currency)
	typ := EventSucceeded
	switch {
	case errors.Is(err, ErrDeclined):
		c.Status, c.DeclineReason, typ = Declined, err.Error(), EventDeclined
	case err != nil:
		// No answer (it may have taken the money): give the claim up,
		// stale at once (UpdatedAt zero), so that the next charge or
		// refund under the key asks again. With a context of its own: the
		// provider's error is often this request's deadline.
		unavailable := apierr.Unavailablef(err, "payment provider unavailable")
		c.UpdatedAt = time.Time{}
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), giveUpTimeout)
		defer cancel()
		if _, cerr := s.Store.Claim(gctx, c, etag); cerr != nil {
			return Charge{}, false, errors.Join(unavailable, cerr)
		}
		return Charge{}, false, unavailable
	default:
		c.Status, c.ProviderRef = Succeeded, ref
	}
	c.UpdatedAt = s.Now().UTC()
	if err := s.Store.Update(ctx, c, etag, eventFor(c, typ)); err != nil {
		if apierr.CodeOf(err) != apierr.Conflict {
			return Charge{}, false, err
		}
		// Taken over while this request waited (frozen past the claim
		// timeout): the other may have recorded the provider's same answer.
		if cur, cerr := s.Store.Get(ctx, c.ID); cerr == nil && cur.Status == c.Status {
			return cur, false, nil
		}
		return Charge{}, false, err
	}
	return c, true, nil
}

// giveUpTimeout bounds the write that gives a claim up.
const giveUpTimeout = 5 * time.Second

// resolve settles the charge id when its claim's outcome is unknown (given
// up, or left by a request that died) before a refund reads it: the claim
// is taken over and the provider asked again under the charge's key, which
// it answers as the first time. A claim still fresh is left to its holder,
// and a missing charge to the refund, which says so.
func (s *Service) resolve(ctx context.Context, id string) error {
	c, etag, err := s.Store.GetWithETag(ctx, id)
	if apierr.CodeOf(err) == apierr.NotFound || err == nil && (c.Status != Processing || s.Now().Sub(c.UpdatedAt) <= s.claimTimeout()) {
		return nil
	}
	if err != nil {
		return err
	}
	key, err := s.Keys.ProviderKey(ctx)
	if err != nil {
		return err
	}
	req := ChargeRequest{OrderID: c.OrderID, UserID: c.UserID, Amount: c.Amount, Currency: c.Currency, IdempotencyKey: c.IdempotencyKey}
	if _, _, err = s.takeOver(ctx, req, key, c, etag); errors.Is(err, errTakenOver) {
		return nil // the refund finds it in progress
	}
	return err
}

// errTakenOver is takeOver's answer when another request took the claim
// over first.
var errTakenOver = errors.New("the claim was taken over by another request")

// takeOver claims the stale charge c, read at etag, for req (its request
// died, or gave the claim up) and asks the provider again under key, which
// answers as the first time. Over the ETag read, so that of two requests
// taking it over one does; the other gets errTakenOver.
func (s *Service) takeOver(ctx context.Context, req ChargeRequest, key string, c Charge, etag string) (Charge, bool, error) {
	c.UserID, c.KeyFingerprint, c.UpdatedAt = req.UserID, Fingerprint(key), s.Now().UTC()
	etag, err := s.Store.Claim(ctx, c, etag)
	if apierr.CodeOf(err) == apierr.Conflict {
		return Charge{}, false, errTakenOver
	}
	if err != nil {
		return Charge{}, false, err
	}
	return s.settle(ctx, req, key, c, etag)
}

// replay answers a repeated request from the stored charge. A claim left
// processing for longer than ClaimTimeout belongs to a request that died
// between claiming the key and recording the outcome (payments was killed),
// or was given up (the provider did not answer): it is taken over
// (takeOver); key is the provider key.
func (s *Service) replay(ctx context.Context, req ChargeRequest, key, id string) (Charge, bool, error) {
	prev, etag, err := s.Store.GetWithETag(ctx, id)
	if err != nil {
		return Charge{}, false, err
	}
	if prev.OrderID != req.OrderID || prev.Amount != req.Amount || prev.Currency != req.Currency {
		return Charge{}, false, apierr.Errorf(apierr.Conflict, "idempotency key %q was used for a different charge", req.IdempotencyKey)
	}
	if prev.Status != Processing {
		return prev, false, nil
	}
	inProgress := &apierr.Error{Code: apierr.Conflict, Message: "a charge with this idempotency key is in progress", RetryAfter: time.Second}
	if s.Now().Sub(prev.UpdatedAt) <= s.claimTimeout() {
		return Charge{}, false, inProgress
	}
	c, created, err := s.takeOver(ctx, req, key, prev, etag)
	if errors.Is(err, errTakenOver) {
		return Charge{}, false, inProgress
	}
	return c, created, err
}

// Refund gives back the money of the charge made with idempotencyKey, once.
// A declined or already refunded charge is returned as it is. Refunds of one
// charge run one at a time, whatever the replica (its lease), and reach the
// provider under one refund key derived from the charge, so the money goes
// back once whoever wins; a refund that finds another in progress for
// longer than the lease's wait is a Conflict with a Retry-After. A charge
// whose outcome is unknown (its claim given up or left by a request that
// died) is settled first (resolve): the provider may have taken the money.
func (s *Service) Refund(ctx context.Context, idempotencyKey string) (Charge, error) {
	if !keyPattern.MatchString(idempotencyKey) {
		return Charge{}, apierr.Invalidf("idempotency_key", "is required: 1-128 letters, digits or _-:.")
	}
	id := ChargeID(idempotencyKey)
	l, err := s.Leases.Acquire(ctx, "refund:"+id)
	if errors.As(err, new(*lease.HeldError)) {
		return Charge{}, &apierr.Error{Code: apierr.Conflict, Message: "a refund of this charge is in progress", RetryAfter: time.Second, Cause: err}
	}
	if err != nil {
		return Charge{}, err
	}
	defer l.Release(ctx) // one not released expires
	ctx, cancel, err := l.Step(ctx)
	defer cancel()
	if err != nil {
		return Charge{}, apierr.Unavailablef(err, "refund interrupted, retry")
	}
	if err := s.resolve(ctx, id); err != nil {
		return Charge{}, err
	}
	return optimistic.Update(ctx, optimistic.Policy(), "charge "+id,
		func(ctx context.Context) (Charge, string, error) { return s.Store.GetWithETag(ctx, id) },
		func(c *Charge) error {
			switch c.Status {
			case Processing:
				return &apierr.Error{Code: apierr.Conflict, Message: "the charge is still in progress", RetryAfter: time.Second}
			case Declined, Refunded:
				return optimistic.ErrUnchanged
			}
			key, err := s.Keys.ProviderKey(ctx)
			if err != nil {
				return err
			}
			// Again after a lost race: the provider answers the refund
			// key once.
			if err := s.Provider.Refund(ctx, key, RefundKey(c.ID), c.ProviderRef); err != nil {
				return apierr.Unavailablef(err, "payment provider unavailable")
			}
			c.Status, c.UpdatedAt = Refunded, s.Now().UTC()
			return nil
		},
		func(ctx context.Context, c Charge, etag string) error {
			return s.Store.Update(ctx, c, etag, eventFor(c, EventRefunded))
		})
}

// RefundKey is the provider idempotency key of the refund of charge id:
// distinct from the charge's own key, the same for every refund attempt.
func RefundKey(chargeID string) string { return "refund:" + chargeID }

// Get returns a charge by ID.
func (s *Service) Get(ctx context.Context, id string) (Charge, error) {
	return s.Store.Get(ctx, id)
}
