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
	}
	for name, tc := range cases {
		if got := breaker.IsFailure(tc.err); got != tc.want {
			t.Errorf("%s: IsFailure = %v, want %v", name, got, tc.want)
		}
	}
}
