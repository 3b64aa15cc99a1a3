// Package provider is a simulated payment provider: it checks that it was given
// an API key, waits a configurable latency, and declines a configurable share
// of charges. Both can be changed while it runs, so fault and load tests can
// shape its behaviour.
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
}

var _ payments.Provider = (*Simulated)(nil)

// NewSimulated returns a provider that declines failureRate (0..1) of charges
// after waiting latency.
func NewSimulated(failureRate float64, latency time.Duration, seed uint64) *Simulated {
	return &Simulated{failureRate: failureRate, latency: latency, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
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

// Refund implements payments.Provider: refunds always go through.
func (p *Simulated) Refund(_ context.Context, key, ref string) error {
	if key == "" || ref == "" {
		return errors.New("provider rejected the refund: no API key or charge reference")
	}
	return nil
}

// Charge implements payments.Provider.
func (p *Simulated) Charge(ctx context.Context, key string, _ int64, _ string) (string, error) {
	if key == "" {
		return "", errors.New("provider rejected the request: no API key")
	}
	p.mu.Lock()
	latency, decline := p.latency, p.rng.Float64() < p.failureRate
	p.mu.Unlock()
	if latency > 0 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(latency):
		}
	}
	if decline {
		return "", payments.ErrDeclined
	}
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	return "sim_" + hex.EncodeToString(b[:]), nil
}
