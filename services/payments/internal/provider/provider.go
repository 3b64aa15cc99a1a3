// Package provider is a simulated payment provider: it checks that it was given
// an API key, waits a configurable latency, and declines a configurable share
// of charges. Both can be changed while it runs, so fault and load tests can
// shape its behaviour. Like a real provider it answers a repeated idempotency
// key with its first answer (it remembers the last MaxRemembered keys while
// it runs).
package provider

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/daprshop/suite/services/payments/internal/payments"
)

// Simulated is a payments.Provider that never talks to a network.
type Simulated struct {
	mu          sync.Mutex
	failureRate float64
	latency     time.Duration
	rng         *rand.Rand
	answers     map[string]answer // by idempotency key, charges and refunds
	order       []string          // keys in the order they came, to forget the oldest
	refunds     int
}

// answer is what the provider said to a key.
type answer struct {
	ref      string
	declined bool
}

// MaxRemembered bounds the idempotency keys the provider remembers.
const MaxRemembered = 100_000

var _ payments.Provider = (*Simulated)(nil)

// NewSimulated returns a provider that declines failureRate (0..1) of charges
// after waiting latency.
func NewSimulated(failureRate float64, latency time.Duration, seed uint64) *Simulated {
	return &Simulated{failureRate: failureRate, latency: latency, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		answers: map[string]answer{}}
}

// Settings are the provider's behaviour.
type Settings struct {
	FailureRate float64       `json:"failure_rate"`
	Latency     time.Duration `json:"-"`
	LatencyMS   int64         `json:"latency_ms"`
}

// Settings returns the current behaviour.
func (p *Simulated) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Settings{FailureRate: p.failureRate, Latency: p.latency, LatencyMS: p.latency.Milliseconds()}
}

// Set changes the behaviour for the charges that follow.
func (p *Simulated) Set(failureRate float64, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failureRate, p.latency = failureRate, latency
}

// Refund implements payments.Provider: refunds always go through, once per
// idempotency key.
func (p *Simulated) Refund(_ context.Context, key, idempotencyKey, ref string) error {
	if key == "" || ref == "" {
		return errors.New("provider rejected the refund: no API key or charge reference")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.answers[idempotencyKey]; ok && idempotencyKey != "" {
		return nil
	}
	p.remember(idempotencyKey, answer{ref: ref})
	p.refunds++
	return nil
}

// Refunds returns how many refunds the provider has made: what its
// dashboard would show, for tests that count money given back.
func (p *Simulated) Refunds() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refunds
}

// remember keeps the answer to key, forgetting the oldest beyond
// MaxRemembered. The caller holds p.mu.
func (p *Simulated) remember(key string, a answer) {
	if key == "" {
		return
	}
	p.answers[key] = a
	p.order = append(p.order, key)
	if len(p.order) > MaxRemembered {
		delete(p.answers, p.order[0])
		p.order = p.order[1:]
	}
}

// Charge implements payments.Provider.
func (p *Simulated) Charge(ctx context.Context, key, idempotencyKey string, _ int64, _ string) (string, error) {
	if key == "" {
		return "", errors.New("provider rejected the request: no API key")
	}
	p.mu.Lock()
	if a, ok := p.answers[idempotencyKey]; ok {
		p.mu.Unlock()
		if a.declined {
			return "", payments.ErrDeclined
		}
		return a.ref, nil
	}
	latency, decline := p.latency, p.rng.Float64() < p.failureRate
	p.mu.Unlock()
	if latency > 0 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(latency):
		}
	}
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	a := answer{ref: "sim_" + hex.EncodeToString(b[:]), declined: decline}
	p.mu.Lock()
	if prev, ok := p.answers[idempotencyKey]; ok {
		a = prev // a concurrent request with the key answered first
	} else {
		p.remember(idempotencyKey, a)
	}
	p.mu.Unlock()
	if a.declined {
		return "", payments.ErrDeclined
	}
	return a.ref, nil
}
