// Package breaker wraps sony/gobreaker with the settings vocabulary of a Dapr
// Resiliency circuitBreaker policy (maxRequests, interval, timeout, a trip after
// N consecutive failures), exports the breaker state as a Prometheus gauge and
// logs every state change. Only failures of the dependency count: a client error
// relayed from upstream (invalid, declined, not found...) leaves the breaker alone.
//
// Breakers and retries of calls between apps live here, in code, and not in
// Dapr Resiliency: Dapr 1.14 counts every reply of an app outside 200-399 as
// a failure of the target's breaker and retries it (pkg/api/http/
// directmessaging.go, the codeError returned to the policy runner), so two
// bad requests from one client could open a breaker for every client.
package breaker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/retry"
)

// Settings mirror a Dapr Resiliency circuitBreaker policy.
type Settings struct {
	// Name identifies the protected dependency in logs and metrics, e.g. "payments".
	Name string
	// MaxRequests may pass while half-open.
	MaxRequests uint32
	// Interval is the cyclic period of the closed state after which counts reset (0: never).
	Interval time.Duration
	// Timeout is how long the breaker stays open before trying half-open.
	Timeout time.Duration
	// ConsecutiveFailures trips the breaker when exceeded (trip: consecutiveFailures > N).
	ConsecutiveFailures uint32
}

// Config is Settings as read from the environment; give each dependency its
// own prefix (conf's `prefix` tag), e.g. PAYMENTS_BREAKER_FAILURES.
type Config struct {
	MaxRequests         uint32        `env:"BREAKER_MAX_REQUESTS" default:"1"`
	Interval            time.Duration `env:"BREAKER_INTERVAL" default:"30s"`
	Timeout             time.Duration `env:"BREAKER_TIMEOUT" default:"10s"`
	ConsecutiveFailures uint32        `env:"BREAKER_FAILURES" default:"5"`
}

// Settings names c's dependency.
func (c Config) Settings(name string) Settings {
	return Settings{Name: name, MaxRequests: c.MaxRequests, Interval: c.Interval, Timeout: c.Timeout, ConsecutiveFailures: c.ConsecutiveFailures}
}

// Gauge reports breaker state per dependency: 0 closed, 1 half-open, 2 open.
// Register it once per registry and share it among a service's breakers.
func Gauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "circuit_breaker_state",
		Help: "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.",
	}, []string{"name"})
}

// Breaker guards calls to one dependency.
type Breaker struct {
	cb      *gobreaker.CircuitBreaker
	timeout time.Duration
}

// New returns a closed breaker. gauge may be nil.
func New(s Settings, log *slog.Logger, gauge *prometheus.GaugeVec) *Breaker {
	if gauge != nil {
		gauge.WithLabelValues(s.Name).Set(stateValue(gobreaker.StateClosed))
	}
	cb := gobreaker.NewCircuitBreaker(gobreaker.Settings{
		Name:        s.Name,
		MaxRequests: s.MaxRequests,
		Interval:    s.Interval,
		Timeout:     s.Timeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures > s.ConsecutiveFailures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Warn("circuit breaker state change", "breaker", name, "from", from.String(), "to", to.String())
			if gauge != nil {
				gauge.WithLabelValues(name).Set(stateValue(to))
			}
		},
		IsSuccessful: func(err error) bool { return !IsFailure(err) },
	})
	return &Breaker{cb: cb, timeout: s.Timeout}
}

// IsFailure reports whether err says the dependency is unhealthy. Errors the
// dependency returned on purpose about the request itself are not failures, and
// neither is the caller giving up (its context cancelled).
func IsFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch apierr.CodeOf(err) {
	case apierr.Unavailable, apierr.Internal:
		return true
	default:
		return false
	}
}

// Retryable reports whether a call that failed with err may be tried again:
// the dependency failed (IsFailure), and not because its circuit is open.
func Retryable(err error) bool { return IsFailure(err) && !errors.Is(err, ErrOpen) }

// ErrOpen is the cause of the error a breaker answers with while open (or
// while half-open and already probing): errors.Is(err, ErrOpen).
var ErrOpen = errors.New("circuit open")

// Do runs fn through the breaker. While open it fails fast with an Unavailable
// error (caused by ErrOpen) that tells the client when to retry.
func (b *Breaker) Do(fn func() error) error {
	_, err := b.cb.Execute(func() (any, error) { return nil, fn() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return &apierr.Error{Code: apierr.Unavailable, Message: b.cb.Name() + " unavailable (circuit open)", RetryAfter: b.timeout, Cause: ErrOpen}
	}
	return err
}

// Guard protects the calls to one dependency: every attempt goes through
// Breaker, and an attempt that failed (Retryable) is tried again as Retry
// allows. A client error is returned at once and leaves the breaker alone;
// an open circuit is returned at once too.
type Guard struct {
	Breaker *Breaker
	Retry   retry.Policy
}

// Do runs fn, with its retries, through the breaker.
func (g Guard) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return g.Retry.Do(ctx, Retryable, func(ctx context.Context) error {
		return g.Breaker.Do(func() error { return fn(ctx) })
	})
}

// State returns "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	default:
		return 0
	}
}
