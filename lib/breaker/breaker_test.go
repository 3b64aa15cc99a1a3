package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/breaker"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/lib/sidecar"
)

func TestBreakerTripsOnUpstreamFailuresOnly(t *testing.T) {
	var logs bytes.Buffer
	gauge := breaker.Gauge()
	b := breaker.New(breaker.Settings{Name: "payments", MaxRequests: 1, Timeout: 50 * time.Millisecond, ConsecutiveFailures: 2},
		slog.New(slog.NewJSONHandler(&logs, nil)), gauge)

	declined := apierr.Invalidf("amount", "too large")
	for i := 0; i < 5; i++ {
		if err := b.Do(func() error { return declined }); err != declined {
			t.Fatalf("client error not passed through: %v", err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("client errors tripped the breaker: %s", b.State())
	}

	down := apierr.Errorf(apierr.Unavailable, "connection refused")
	calls := 0
	for i := 0; i < 3; i++ {
		_ = b.Do(func() error { calls++; return down })
	}
	if b.State() != "open" || calls != 3 {
		t.Fatalf("state %s after %d failures, want open after 3", b.State(), calls)
	}
	if got := testutil.ToFloat64(gauge.WithLabelValues("payments")); got != 2 {
		t.Fatalf("gauge = %v, want 2 (open)", got)
	}

	err := b.Do(func() error { calls++; return nil })
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Unavailable || e.RetryAfter != 50*time.Millisecond || calls != 3 {
		t.Fatalf("open breaker: err %v, calls %d", err, calls)
	}

	time.Sleep(60 * time.Millisecond)
	if err := b.Do(func() error { return nil }); err != nil {
		t.Fatalf("half-open probe: %v", err)
	}
	if b.State() != "closed" {
		t.Fatalf("state %s after successful probe", b.State())
	}
	if !strings.Contains(logs.String(), `"to":"open"`) || !strings.Contains(logs.String(), `"to":"closed"`) {
		t.Fatalf("state changes not logged: %s", logs.String())
	}
}

func TestIsFailure(t *testing.T) {
	cases := map[string]struct {
		err  error
		want bool
	}{
		"nil":         {nil, false},
		"cancelled":   {fmt.Errorf("call: %w", context.Canceled), false},
		"unavailable": {apierr.Errorf(apierr.Unavailable, "x"), true},
		"plain":       {fmt.Errorf("dial tcp: refused"), true},
		"not found":   {apierr.Errorf(apierr.NotFound, "x"), false},
		"invalid":     {apierr.Invalidf("amount", "x"), false},
		"conflict":    {apierr.Errorf(apierr.Conflict, "x"), false},
		"open":        {breaker.New(breaker.Settings{Name: "x"}, slog.New(slog.DiscardHandler), nil).Do(func() error { return nil }), false},
	}
	for name, tc := range cases {
		if got := breaker.IsFailure(tc.err); got != tc.want {
			t.Errorf("%s: IsFailure = %v, want %v", name, got, tc.want)
		}
	}
}

// guard returns a guard whose breaker trips after more than failures
// consecutive failures (and stays open for an hour), with 2 retries that do
// not wait, and the waits it was asked for.
func guard(failures uint32) (breaker.Guard, *[]time.Duration) {
	var waits []time.Duration
	return breaker.Guard{
		Breaker: breaker.New(breaker.Settings{Name: "dep", MaxRequests: 1, Timeout: time.Hour, ConsecutiveFailures: failures},
			slog.New(slog.DiscardHandler), nil),
		Retry: retry.Policy{Retries: 2, Initial: 500 * time.Millisecond, Max: time.Second,
			Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }},
	}, &waits
}

// clientErrors are what a dependency answers when the request itself is
// wrong: every client code of the error model, as the sidecar client reads
// the dependency's own answer (its status and body) and as made in code.
// (A 4xx that is not the dependency's own answer, such as daprd refusing a
// call, is not a client error: sidecar.ReplyError makes it Unavailable.)
func clientErrors() map[string]error {
	out := map[string]error{}
	for _, c := range apierr.Codes() {
		s := apierr.Status(c)
		if s/100 != 4 {
			continue
		}
		body := fmt.Sprintf(`{"error":{"code":%q,"message":"x"}}`, c)
		out[fmt.Sprintf("%d %s reply", s, c)] = sidecar.ReplyError("dep", s, []byte(body))
		out[string(c)] = fmt.Errorf("wrapped: %w", apierr.Errorf(c, "declined, or whatever the reason"))
	}
	out["cancelled by the caller"] = context.Canceled
	return out
}

// TestClientErrorsNeverTripNorRetry: any number of client errors (4xx:
// invalid, not found, conflict, a declined charge...) leaves the breaker
// closed, and each call is made once.
func TestClientErrorsNeverTripNorRetry(t *testing.T) {
	g, waits := guard(2)
	for name, cerr := range clientErrors() {
		for range 10 {
			calls := 0
			err := g.Do(context.Background(), func(context.Context) error { calls++; return cerr })
			if calls != 1 || !errors.Is(err, cerr) {
				t.Fatalf("%s: %d calls, err %v: a client error must be returned at once, as it is", name, calls, err)
			}
		}
		if g.Breaker.State() != "closed" {
			t.Fatalf("%s: breaker %s after client errors", name, g.Breaker.State())
		}
	}
	if len(*waits) != 0 {
		t.Fatalf("waited %v before retrying client errors", *waits)
	}
}

// failures are what says the dependency itself is unwell: 5xx as the
// sidecar client reads them, transport failures, unexpected errors.
func failures() map[string]error {
	out := map[string]error{
		"unavailable": apierr.Unavailablef(errors.New("connection refused"), "dep unavailable"),
		"internal":    apierr.Errorf(apierr.Internal, "x"),
		"plain":       errors.New("decoding reply: unexpected EOF"),
		"timeout":     apierr.Unavailablef(context.DeadlineExceeded, "dep unavailable"),
	}
	for _, s := range []int{500, 501, 502, 503, 504, 599} {
		out[fmt.Sprint(s)] = sidecar.ReplyError("dep", s, []byte(`{"errorCode":"ERR_DIRECT_INVOKE","message":"x"}`))
	}
	return out
}

// TestFailuresAreRetriedAndTrip: a failure is tried again (2 retries), each
// attempt counts, and once the breaker is open calls fail fast, untried and
// not retried.
func TestFailuresAreRetriedAndTrip(t *testing.T) {
	for name, ferr := range failures() {
		t.Run(name, func(t *testing.T) {
			g, waits := guard(5)
			calls := 0
			fail := func(context.Context) error { calls++; return ferr }
			if err := g.Do(context.Background(), fail); !errors.Is(err, ferr) || calls != 3 {
				t.Fatalf("%d calls, err %v: want 3 attempts and the failure", calls, err)
			}
			if want := []time.Duration{500 * time.Millisecond, time.Second}; fmt.Sprint(*waits) != fmt.Sprint(want) {
				t.Fatalf("waits %v, want %v", *waits, want)
			}
			if g.Breaker.State() != "closed" {
				t.Fatalf("open after 3 failures, trips after more than 5")
			}
			_ = g.Do(context.Background(), fail) // failures 4 to 6: trips
			if g.Breaker.State() != "open" || calls != 6 {
				t.Fatalf("state %s after %d failures", g.Breaker.State(), calls)
			}
			*waits = nil
			err := g.Do(context.Background(), fail)
			var e *apierr.Error
			if calls != 6 || len(*waits) != 0 || !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &e) || e.Code != apierr.Unavailable || e.RetryAfter != time.Hour {
				t.Fatalf("open: %d calls, waits %v, err %v: want a fast Unavailable with Retry-After", calls, *waits, err)
			}
		})
	}
}

// TestAClientErrorBetweenFailuresIsAnAnswer: the dependency that answers a
// client error is up; its consecutive failures start again from zero, as
// after a success.
func TestAClientErrorBetweenFailuresIsAnAnswer(t *testing.T) {
	b := breaker.New(breaker.Settings{Name: "dep", MaxRequests: 1, Timeout: time.Hour, ConsecutiveFailures: 2}, slog.New(slog.DiscardHandler), nil)
	down := apierr.Errorf(apierr.Unavailable, "x")
	for range 20 {
		_ = b.Do(func() error { return down })
		_ = b.Do(func() error { return down })
		_ = b.Do(func() error { return apierr.Errorf(apierr.NotFound, "x") })
	}
	if b.State() != "closed" {
		t.Fatalf("state %s", b.State())
	}
}
