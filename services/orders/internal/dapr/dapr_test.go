package dapr_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/breaker"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/orders/internal/dapr"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// sidecarStub stands in for orders' daprd: it answers the invocations of
// one app with the scripted replies in order (the last one repeats) and
// counts them.
type sidecarStub struct {
	mu      sync.Mutex
	replies []reply
	calls   int
}

type reply struct {
	status int
	body   string
}

func (s *sidecarStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rep := s.replies[min(s.calls, len(s.replies)-1)]
	s.calls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

func (s *sidecarStub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// setup returns the invoker on a stub sidecar answering replies, and a
// guard as main builds it (2 retries, here without waiting).
func setup(t *testing.T, replies ...reply) (*sidecar.HTTP, *sidecarStub, breaker.Guard) {
	t.Helper()
	stub := &sidecarStub{replies: replies}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	var cfg retry.Config
	cfg.MaxRetries, cfg.InitialInterval, cfg.MaxInterval = 2, 500*time.Millisecond, time.Second
	p := cfg.Policy(5 * time.Second)
	p.Sleep = func(context.Context, time.Duration) error { return nil }
	g := breaker.Guard{
		Breaker: breaker.New(breaker.Settings{Name: "dep", MaxRequests: 1, Timeout: time.Hour, ConsecutiveFailures: 5}, slog.New(slog.DiscardHandler), nil),
		Retry:   p,
	}
	return sidecar.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", 5*time.Second), stub, g
}

func errorBody(code apierr.Code) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": string(code), "message": "no"}})
	return string(b)
}

var charge = orders.Charge{OrderID: "ord_1", UserID: "usr_1", Amount: 100, Currency: "EUR", IdempotencyKey: "ord_1"}

// TestClientErrorsAreNotRetriedNorCounted: whatever 4xx payments or
// products answer reaches the domain after one call, and any number of them
// leaves the breaker closed.
func TestClientErrorsAreNotRetriedNorCounted(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   apierr.Code
	}{
		{400, apierr.Invalid}, {404, apierr.NotFound}, {409, apierr.Conflict}, {403, apierr.Forbidden},
		{429, apierr.TooManyRequests}, {422, apierr.Invalid}, {402, apierr.Invalid},
	} {
		inv, stub, g := setup(t, reply{tc.status, errorBody(tc.code)})
		p := &dapr.Payments{Invoker: inv, Guard: g, AppID: "payments"}
		i := &dapr.Inventory{Invoker: inv, Guard: g, AppID: "products"}
		for range 10 {
			if _, err := p.Charge(context.Background(), charge); apierr.CodeOf(err) != tc.code {
				t.Errorf("%d: charge err %v, want %s", tc.status, err, tc.code)
			}
			if _, err := i.Reserve(context.Background(), "ord_1", "prd_1", 1); apierr.CodeOf(err) != tc.code {
				t.Errorf("%d: reserve err %v, want %s", tc.status, err, tc.code)
			}
		}
		if stub.count() != 20 || g.Breaker.State() != "closed" {
			t.Errorf("%d: %d calls for 20 requests, breaker %s: client errors must be sent once and not counted", tc.status, stub.count(), g.Breaker.State())
		}
	}
}

// TestFailuresAreRetried: a charge that meets two 5xx is sent a third time
// (with its idempotency key) and succeeds.
func TestFailuresAreRetried(t *testing.T) {
	inv, stub, g := setup(t, reply{500, `{"errorCode":"ERR_DIRECT_INVOKE","message":"connection refused"}`},
		reply{503, errorBody(apierr.Unavailable)}, reply{200, `{"id":"ch_1","status":"succeeded"}`})
	p := &dapr.Payments{Invoker: inv, Guard: g, AppID: "payments"}
	rc, err := p.Charge(context.Background(), charge)
	if err != nil || rc.ID != "ch_1" || stub.count() != 3 {
		t.Fatalf("receipt %+v, err %v, %d calls: want success at the third call", rc, err, stub.count())
	}
}

// TestRefundOfNothingIsDone: a refund payments does not know is not an
// error, and is asked once.
func TestRefundOfNothingIsDone(t *testing.T) {
	inv, stub, g := setup(t, reply{404, errorBody(apierr.NotFound)})
	p := &dapr.Payments{Invoker: inv, Guard: g, AppID: "payments"}
	if err := p.Refund(context.Background(), "ord_1"); err != nil || stub.count() != 1 {
		t.Fatalf("err %v, %d calls", err, stub.count())
	}
}

// TestARefusedReservationIsAConflict: products refuses with 2xx (out of
// stock), which is neither retried nor counted.
func TestARefusedReservationIsAConflict(t *testing.T) {
	inv, stub, g := setup(t, reply{200, `{"status":"rejected","reason":"out of stock"}`})
	i := &dapr.Inventory{Invoker: inv, Guard: g, AppID: "products"}
	for range 10 {
		if _, err := i.Reserve(context.Background(), "ord_1", "prd_1", 1); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("err %v, want conflict", err)
		}
	}
	if stub.count() != 10 || g.Breaker.State() != "closed" {
		t.Fatalf("%d calls, breaker %s", stub.count(), g.Breaker.State())
	}
}
