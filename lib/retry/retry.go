// Package retry tries a call again after failures that a later attempt may
// not meet, waiting longer each time. Which errors are worth another try is
// the caller's decision (for calls between apps: lib/breaker.Retryable), so a
// client error is never sent twice.
//
// The suite retries calls between apps here, in code, and not in Dapr
// Resiliency: Dapr 1.14 retries every non-2xx reply of an app, 4xx included
// (docs/resilience.md).
package retry

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Config is a Policy as read from the environment; give each dependency its
// own prefix (conf's `prefix` tag), e.g. PAYMENTS_RETRY_MAX_RETRIES. The
// defaults are the invokeRetry policy Dapr applied before: exponential from
// 500 ms, at most 1 s apart, 2 retries.
type Config struct {
	MaxRetries      uint32        `env:"RETRY_MAX_RETRIES" default:"2"`
	InitialInterval time.Duration `env:"RETRY_INITIAL_INTERVAL" default:"500ms"`
	MaxInterval     time.Duration `env:"RETRY_MAX_INTERVAL" default:"1s"`
}

// Policy returns c as a Policy whose attempts and waits together take at
// most total (0: only the caller's context bounds them).
func (c Config) Policy(total time.Duration) Policy {
	return Policy{Retries: int(c.MaxRetries), Initial: c.InitialInterval, Max: c.MaxInterval, Jitter: DefaultJitter, Total: total}
}

// DefaultJitter is the part of each wait Config.Policy leaves to chance, so
// that callers that failed together do not all come back at once.
const DefaultJitter = 0.2

// Policy says how often and how far apart a call is tried again. The zero
// value tries once.
type Policy struct {
	// Retries is the number of attempts after the first.
	Retries int
	// Initial is the wait before the first retry; each next wait doubles, up to Max.
	Initial, Max time.Duration
	// Jitter (0 to 1) is the part of each wait that is random: a wait d
	// becomes a value between d*(1-Jitter) and d.
	Jitter float64
	// Total, when positive, bounds all attempts and waits together.
	Total time.Duration
	// Sleep waits d or until ctx ends (then it returns ctx's error). Nil: a
	// timer. Tests give a fake that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Wait returns the wait before retry n (1 for the first), before jitter:
// Initial doubled n-1 times, at most Max.
func (p Policy) Wait(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && (p.Max <= 0 || d < p.Max) && d < math.MaxInt64/2; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return d
}

// jittered takes up to Jitter of d away, at random.
func (p Policy) jittered(d time.Duration) time.Duration {
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	return d - time.Duration(min(p.Jitter, 1)*rand.Float64()*float64(d))
}

// Do calls fn until it succeeds or returns an error retryable refuses, the
// retries are spent, or the context ends; it returns fn's last error (or
// nil). It does not start a wait that would end after ctx's deadline: the
// attempt after it could not finish anyway.
func (p Policy) Do(ctx context.Context, retryable func(error) bool, fn func(ctx context.Context) error) error {
	if p.Total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Total)
		defer cancel()
	}
	sleep := p.Sleep
	if sleep == nil {
		sleep = timer
	}
	for n := 1; ; n++ {
		err := fn(ctx)
		if err == nil || n > p.Retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		d := p.jittered(p.Wait(n))
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return err
		}
		if sleep(ctx, d) != nil {
			return err
		}
	}
}

// timer waits d or until ctx ends.
func timer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
