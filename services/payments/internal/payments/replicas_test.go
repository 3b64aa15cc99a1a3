package payments_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/payments/internal/dapr"
	"github.com/daprshop/suite/services/payments/internal/fake"
	"github.com/daprshop/suite/services/payments/internal/payments"
)

// gatedProvider charges at once and stops the first refund until opened;
// later refunds pass.
type gatedProvider struct {
	refunds atomic.Int32
	reached chan struct{}
	opened  chan struct{}
}

func (p *gatedProvider) Charge(context.Context, string, string, int64, string) (string, error) {
	return "ref_1", nil
}

func (p *gatedProvider) Refund(context.Context, string, string, string) error {
	if p.refunds.Add(1) == 1 {
		close(p.reached)
		<-p.opened
	}
	return nil
}

// Two replicas of payments refund one charge at once: replica a is in the
// provider's refund when b's request comes. b does not refund again, and
// the refund is announced once. b either waits for a and answers the
// refunded charge, or answers 409 (in progress) when a takes too long. On
// the Dapr adapter, whose transactions behave as state.redis's, a second
// writer losing its ETag race would still publish a second event.
func TestRefundsOnTwoReplicas(t *testing.T) {
	for _, flavour := range []string{"fake", "dapr"} {
		for _, bWaits := range []bool{false, true} {
			t.Run(flavour+map[bool]string{false: "/b gives up", true: "/b waits"}[bWaits], func(t *testing.T) {
				now := func() time.Time { return time.Unix(1700000000, 0) }
				var (
					store  payments.Store
					leases lease.Store
					events func() []string
				)
				switch flavour {
				case "fake":
					st := fake.NewStore()
					store, leases, events = st, &lease.MemStore{}, st.EventTypes
				case "dapr":
					st := &sidecartest.State{RedisTransactions: true, Now: now}
					store = &dapr.Store{Client: st, Outbox: st, Name: "payments-store"}
					leases = &sidecar.LeaseStore{Client: st, Store: "payments-store", Prefix: "lease:", Now: now}
					events = func() []string {
						var out []string
						for _, p := range st.Published() {
							var e payments.Event
							_ = json.Unmarshal(p.Data, &e)
							out = append(out, e.Type)
						}
						return out
					}
				}
				p := &gatedProvider{reached: make(chan struct{}), opened: make(chan struct{})}
				first := make(chan error, 1)
				replica := func(onWait func()) *payments.Service {
					return &payments.Service{Store: store, Provider: p, Keys: fakeKeys{"sk_test"}, Now: now,
						Leases: &lease.Manager{Store: leases, TTL: payments.DefaultClaimTimeout, Now: now,
							Wait: retry.Policy{Retries: 20, Sleep: func(context.Context, time.Duration) error { onWait(); return nil }}}}
				}
				a := replica(func() {})
				var once sync.Once
				b := replica(func() {
					if bWaits {
						once.Do(func() { close(p.opened); <-first })
					}
				})
				if _, _, err := a.Charge(context.Background(), req); err != nil {
					t.Fatal(err)
				}
				go func() {
					_, err := a.Refund(context.Background(), req.IdempotencyKey)
					first <- err
				}()
				<-p.reached
				c, err := b.Refund(context.Background(), req.IdempotencyKey)
				once.Do(func() { close(p.opened); <-first })
				if !bWaits && apierr.CodeOf(err) != apierr.Conflict {
					t.Errorf("b while a refunds: %+v %v, want 409 (in progress)", c, err)
				}
				if bWaits && (err != nil || c.Status != payments.Refunded) {
					t.Errorf("b after a: %+v %v, want the refunded charge", c, err)
				}
				if n := p.refunds.Load(); n != 1 {
					t.Errorf("the provider was asked %d times to refund one charge", n)
				}
				if got := events(); !slices.Equal(got, []string{payments.EventSucceeded, payments.EventRefunded}) {
					t.Errorf("events %v", got)
				}
			})
		}
	}
}
