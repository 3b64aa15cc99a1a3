// Package provider is a simulated payment provider: it checks that it was given
// an API key, waits a configurable latency, and declines a configurable share
// of charges. Both can be changed while it runs, so fault and load tests can
// shape its behaviour. Like a real provider it answers a repeated idempotency
// key with its first answer.
//
// A real provider is one system, whichever replica of payments calls it: its
// settings and its answers live in a Memory that every replica shares (the
// payments state store: dapr.ProviderMemory), so a setting changed through
// one replica holds for all, and a charge retried on another replica (the
// first died after calling the provider) gets the first answer.
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

// Settings are the provider's behaviour.
type Settings struct {
	FailureRate float64       `json:"failure_rate"`
	Latency     time.Duration `json:"-"`
	LatencyMS   int64         `json:"latency_ms"`
}

// Answer is what the provider said to an idempotency key: a charge's
// reference, or that it declined.
type Answer struct {
	Ref      string `json:"ref"`
	Declined bool   `json:"declined,omitempty"`
}

// Memory is what the provider remembers, shared by every replica.
type Memory interface {
	// Settings returns the stored settings; found is false before any.
	Settings(ctx context.Context) (s Settings, found bool, err error)
	SaveSettings(ctx context.Context, s Settings) error
	// Answer returns the answer given to key, if any.
	Answer(ctx context.Context, key string) (a Answer, found bool, err error)
	// Remember keeps a as key's answer unless key has one already, and
	// returns the answer kept: of two replicas answering one key, the first
	// to write wins.
	Remember(ctx context.Context, key string, a Answer) (Answer, error)
}

// Simulated is a payments.Provider that never talks to a network.
type Simulated struct {
	Memory Memory
	// Initial is the behaviour until someone sets another (configuration).
	Initial Settings

	mu      sync.Mutex
	rng     *rand.Rand
	refunds int
}

var _ payments.Provider = (*Simulated)(nil)

// NewSimulated returns a provider that declines failureRate (0..1) of charges
// after waiting latency, until its settings are changed, remembering in m.
func NewSimulated(m Memory, failureRate float64, latency time.Duration, seed uint64) *Simulated {
	return &Simulated{Memory: m, Initial: Settings{FailureRate: failureRate, Latency: latency, LatencyMS: latency.Milliseconds()},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Settings returns the current behaviour.
func (p *Simulated) Settings(ctx context.Context) (Settings, error) {
	s, found, err := p.Memory.Settings(ctx)
	if err != nil || !found {
		return p.Initial, err
	}
	s.Latency = time.Duration(s.LatencyMS) * time.Millisecond
	return s, nil
}

// Set changes the behaviour for the charges that follow, on every replica.
func (p *Simulated) Set(ctx context.Context, failureRate float64, latency time.Duration) error {
	return p.Memory.SaveSettings(ctx, Settings{FailureRate: failureRate, Latency: latency, LatencyMS: latency.Milliseconds()})
}

// Refund implements payments.Provider: refunds always go through, once per
// idempotency key.
func (p *Simulated) Refund(ctx context.Context, key, idempotencyKey, ref string) error {
	if key == "" || ref == "" {
		return errors.New("provider rejected the refund: no API key or charge reference")
	}
	if _, found, err := p.Memory.Answer(ctx, idempotencyKey); err != nil || found {
		return err
	}
	mine := Answer{Ref: newRef("rf_")}
	kept, err := p.Memory.Remember(ctx, idempotencyKey, mine)
	if err != nil {
		return err
	}
	if kept == mine {
		p.mu.Lock()
		p.refunds++
		p.mu.Unlock()
	}
	return nil
}

// Refunds returns how many refunds this process made through the provider:
// what its dashboard would show, for tests that count money given back.
func (p *Simulated) Refunds() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refunds
}

// Charge implements payments.Provider.
func (p *Simulated) Charge(ctx context.Context, key, idempotencyKey string, _ int64, _ string) (string, error) {
	if key == "" {
		return "", errors.New("provider rejected the request: no API key")
	}
	a, found, err := p.Memory.Answer(ctx, idempotencyKey)
	if err != nil {
		return "", err
	}
	if !found {
		if a, err = p.decide(ctx, idempotencyKey); err != nil {
			return "", err
		}
	}
	if a.Declined {
		return "", payments.ErrDeclined
	}
	return a.Ref, nil
}

// decide answers a key the provider has not seen: after the latency, a
// decline at the failure rate, or a new reference; a concurrent request
// with the key that answered first wins.
func (p *Simulated) decide(ctx context.Context, idempotencyKey string) (Answer, error) {
	s, err := p.Settings(ctx)
	if err != nil {
		return Answer{}, err
	}
	if s.Latency > 0 {
		select {
		case <-ctx.Done():
			return Answer{}, ctx.Err()
		case <-time.After(s.Latency):
		}
	}
	p.mu.Lock()
	declined := p.rng.Float64() < s.FailureRate
	p.mu.Unlock()
	return p.Memory.Remember(ctx, idempotencyKey, Answer{Ref: newRef("sim_"), Declined: declined})
}

// newRef is a provider reference no one else has.
func newRef(prefix string) string {
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// MaxRemembered bounds the answers a MemMemory keeps.
const MaxRemembered = 100_000

// MemMemory is a Memory in this process (one replica, or tests), keeping
// the last MaxRemembered answers. The zero value is ready to use.
type MemMemory struct {
	mu       sync.Mutex
	settings *Settings
	answers  map[string]Answer
	order    []string // keys in the order they came, to forget the oldest
}

var _ Memory = (*MemMemory)(nil)

// Settings implements Memory.
func (m *MemMemory) Settings(context.Context) (Settings, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.settings == nil {
		return Settings{}, false, nil
	}
	return *m.settings, true, nil
}

// SaveSettings implements Memory.
func (m *MemMemory) SaveSettings(_ context.Context, s Settings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settings = &s
	return nil
}

// Answer implements Memory.
func (m *MemMemory) Answer(_ context.Context, key string) (Answer, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.answers[key]
	return a, ok, nil
}

// Remember implements Memory.
func (m *MemMemory) Remember(_ context.Context, key string, a Answer) (Answer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.answers[key]; ok {
		return prev, nil
	}
	if m.answers == nil {
		m.answers = map[string]Answer{}
	}
	m.answers[key] = a
	m.order = append(m.order, key)
	if len(m.order) > MaxRemembered {
		delete(m.answers, m.order[0])
		m.order = m.order[1:]
	}
	return a, nil
}
