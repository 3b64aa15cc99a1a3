package payments_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/services/payments/internal/fake"
	"github.com/daprshop/suite/services/payments/internal/payments"
)

// fakeProvider counts charges and answers with err.
type fakeProvider struct {
	calls   atomic.Int32
	refunds atomic.Int32
	err     error
	delay   time.Duration
}

func (p *fakeProvider) Charge(context.Context, string, string, int64, string) (string, error) {
	p.calls.Add(1)
	time.Sleep(p.delay)
	return "ref_1", p.err
}

func (p *fakeProvider) Refund(_ context.Context, _, idempotencyKey, _ string) error {
	if idempotencyKey != payments.RefundKey(payments.ChargeID(req.IdempotencyKey)) {
		return errors.New("refund key " + idempotencyKey + " is not derived from the charge")
	}
	p.refunds.Add(1)
	time.Sleep(p.delay)
	return nil
}

type fakeKeys struct{ key string }

func (k fakeKeys) ProviderKey(context.Context) (string, error) { return k.key, nil }

func newService(p *fakeProvider) *payments.Service {
	now := func() time.Time { return time.Unix(1700000000, 0) }
	return &payments.Service{
		Store: fake.NewStore(), Provider: p, Keys: fakeKeys{"sk_test"},
		Now: now, Leases: fake.Leases(&lease.MemStore{}, now),
	}
}

var req = payments.ChargeRequest{OrderID: "ord_1", UserID: "usr_1", Amount: 1250, Currency: "EUR", IdempotencyKey: "ord_1"}

func TestChargeOncePerKey(t *testing.T) {
	p := &fakeProvider{}
	svc := newService(p)
	c, created, err := svc.Charge(context.Background(), req)
	if err != nil || !created || c.Status != payments.Succeeded || c.KeyFingerprint != payments.Fingerprint("sk_test") {
		t.Fatalf("first charge: %+v created=%v err=%v", c, created, err)
	}
	again, created, err := svc.Charge(context.Background(), req)
	if err != nil || created || again.ID != c.ID || p.calls.Load() != 1 {
		t.Fatalf("replay: %+v created=%v err=%v provider calls=%d", again, created, err, p.calls.Load())
	}
}

func TestEventsAnnounceOutcomes(t *testing.T) {
	svc := newService(&fakeProvider{})
	c, _, _ := svc.Charge(context.Background(), req)
	declining := newService(&fakeProvider{err: payments.ErrDeclined})
	_, _, _ = declining.Charge(context.Background(), req)
	if got := svc.Store.(*fake.Store).EventTypes(); !slices.Equal(got, []string{payments.EventSucceeded}) {
		t.Fatalf("events %v", got)
	}
	if got := declining.Store.(*fake.Store).EventTypes(); !slices.Equal(got, []string{payments.EventDeclined}) {
		t.Fatalf("declined events %v", got)
	}
	ev := svc.Store.(*fake.Store).Events[0]
	if ev.ChargeID != c.ID || ev.OrderID != "ord_1" || ev.UserID != "usr_1" || ev.Amount != 1250 {
		t.Fatalf("event %+v", ev)
	}
}

func TestRefundOnce(t *testing.T) {
	p := &fakeProvider{}
	svc := newService(p)
	if _, err := svc.Refund(context.Background(), "ord_1"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("refund before charge: %v", err)
	}
	_, _, _ = svc.Charge(context.Background(), req)
	for range 2 {
		c, err := svc.Refund(context.Background(), "ord_1")
		if err != nil || c.Status != payments.Refunded {
			t.Fatalf("refund %+v %v", c, err)
		}
	}
	if p.refunds.Load() != 1 {
		t.Fatalf("provider refunded %d times", p.refunds.Load())
	}
	if got := svc.Store.(*fake.Store).EventTypes(); !slices.Equal(got, []string{payments.EventSucceeded, payments.EventRefunded}) {
		t.Fatalf("events %v", got)
	}
	if _, err := svc.Refund(context.Background(), "bad key!"); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("bad key: %v", err)
	}
}

func TestConcurrentSameKeyChargesOnce(t *testing.T) {
	p := &fakeProvider{delay: 10 * time.Millisecond}
	svc := newService(p)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = svc.Charge(context.Background(), req) }()
	}
	wg.Wait()
	if p.calls.Load() != 1 {
		t.Fatalf("provider charged %d times", p.calls.Load())
	}
}

func TestKeyReuseForOtherChargeConflicts(t *testing.T) {
	svc := newService(&fakeProvider{})
	if _, _, err := svc.Charge(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	other := req
	other.Amount = 99
	if _, _, err := svc.Charge(context.Background(), other); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("err = %v, want conflict", err)
	}
}

func TestDeclinedIsStoredAndReplayed(t *testing.T) {
	p := &fakeProvider{err: payments.ErrDeclined}
	svc := newService(p)
	c, _, err := svc.Charge(context.Background(), req)
	if err != nil || c.Status != payments.Declined {
		t.Fatalf("charge %+v err %v", c, err)
	}
	again, _, err := svc.Charge(context.Background(), req)
	if err != nil || again.Status != payments.Declined || p.calls.Load() != 1 {
		t.Fatalf("replay %+v err %v calls %d", again, err, p.calls.Load())
	}
}

// TestProviderOutageLetsRetryCharge: a charge the provider did not answer
// gives its claim up, and a retry charges at once.
func TestProviderOutageLetsRetryCharge(t *testing.T) {
	p := &fakeProvider{err: errors.New("timeout")}
	svc := newService(p)
	if _, _, err := svc.Charge(context.Background(), req); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
	p.err = nil
	c, created, err := svc.Charge(context.Background(), req)
	if err != nil || !created || c.Status != payments.Succeeded {
		t.Fatalf("retry: %+v %v %v", c, created, err)
	}
}

func TestValidateNamesEveryField(t *testing.T) {
	err := payments.ChargeRequest{Amount: -1, Currency: "euro"}.Validate()
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Invalid {
		t.Fatalf("err = %v", err)
	}
	got := map[string]bool{}
	for _, f := range e.Fields {
		got[f.Field] = true
	}
	for _, f := range []string{"order_id", "user_id", "amount", "currency", "idempotency_key"} {
		if !got[f] {
			t.Errorf("field %s not reported: %+v", f, e.Fields)
		}
	}
}

// withDeadClaim returns a service over store whose clock reads *now, after
// storing a claim of req left processing at *now by a request that died
// (payments killed between claiming the key and recording the outcome).
func withDeadClaim(t *testing.T, p *fakeProvider, store payments.Store, now *time.Time) *payments.Service {
	t.Helper()
	clock := func() time.Time { return *now }
	dead := payments.Charge{ID: payments.ChargeID(req.IdempotencyKey), OrderID: req.OrderID, UserID: req.UserID, Amount: req.Amount,
		Currency: req.Currency, IdempotencyKey: req.IdempotencyKey, Status: payments.Processing, CreatedAt: *now, UpdatedAt: *now}
	if _, err := store.Create(context.Background(), dead); err != nil {
		t.Fatal(err)
	}
	return &payments.Service{Store: store, Provider: p, Keys: fakeKeys{"sk_test"}, Now: clock, Leases: fake.Leases(&lease.MemStore{}, clock)}
}

// TestStaleClaimIsTakenOver: a charge left processing by a request that died
// (payments killed after claiming the key) blocks retries only until
// ClaimTimeout; then a retry charges, through the provider's idempotency.
func TestStaleClaimIsTakenOver(t *testing.T) {
	p := &fakeProvider{}
	now := time.Unix(1700000000, 0)
	svc := withDeadClaim(t, p, fake.NewStore(), &now)
	if _, _, err := svc.Charge(context.Background(), req); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("fresh claim: %v, want conflict (in progress)", err)
	}
	now = now.Add(payments.DefaultClaimTimeout + time.Second)
	c, created, err := svc.Charge(context.Background(), req)
	if err != nil || !created || c.Status != payments.Succeeded || p.calls.Load() != 1 {
		t.Fatalf("after the timeout: %+v created=%v err=%v provider calls %d", c, created, err, p.calls.Load())
	}
	other := req
	other.Amount++
	now = now.Add(time.Hour)
	if _, _, err := svc.Charge(context.Background(), other); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("a different charge under the key: %v", err)
	}
}

// TestRefundOfAnUnknownOutcomeAsksTheProvider: a refund of a charge whose
// claim was given up (the provider did not answer; it may have taken the
// money) asks the provider again under the charge's key before it refunds:
// unavailable while the provider is, then charged-and-refunded, with both
// events. A refund that said "nothing charged" kept the money of a charge
// the provider took but did not answer in time.
func TestRefundOfAnUnknownOutcomeAsksTheProvider(t *testing.T) {
	p := &fakeProvider{err: errors.New("timeout")}
	svc := newService(p)
	store := svc.Store.(*fake.Store)
	if _, _, err := svc.Charge(context.Background(), req); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("charge: %v, want unavailable", err)
	}
	if _, err := svc.Refund(context.Background(), req.IdempotencyKey); apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("refund with the provider still down: %v, want unavailable", err)
	}
	p.err = nil
	c, err := svc.Refund(context.Background(), req.IdempotencyKey)
	if err != nil || c.Status != payments.Refunded || p.calls.Load() != 3 || p.refunds.Load() != 1 {
		t.Fatalf("refund: %+v %v, provider charges %d refunds %d: want refunded after one more charge", c, err, p.calls.Load(), p.refunds.Load())
	}
	if evs := store.EventTypes(); !slices.Equal(evs, []string{payments.EventSucceeded, payments.EventRefunded}) {
		t.Fatalf("events %v", evs)
	}
	if _, err := svc.Refund(context.Background(), "ord_never_charged"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("refund of a key never charged: %v, want not found", err)
	}

	// A claim left by a request that died (payments killed): in progress
	// until ClaimTimeout, then settled and refunded the same way.
	p = &fakeProvider{}
	now := time.Unix(1700000000, 0)
	svc = withDeadClaim(t, p, fake.NewStore(), &now)
	if _, err := svc.Refund(context.Background(), req.IdempotencyKey); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("refund of a fresh claim: %v, want conflict (in progress)", err)
	}
	now = now.Add(payments.DefaultClaimTimeout + time.Second)
	if c, err := svc.Refund(context.Background(), req.IdempotencyKey); err != nil || c.Status != payments.Refunded || p.calls.Load() != 1 || p.refunds.Load() != 1 {
		t.Fatalf("refund of a dead request's claim: %+v %v, provider charges %d refunds %d", c, err, p.calls.Load(), p.refunds.Load())
	}
}

// readTogether is a store whose first n reads with their ETag all wait
// until n have read: n requests then hold the same version.
type readTogether struct {
	*fake.Store
	wg sync.WaitGroup
}

func (s *readTogether) GetWithETag(ctx context.Context, id string) (payments.Charge, string, error) {
	c, etag, err := s.Store.GetWithETag(ctx, id)
	s.wg.Done()
	s.wg.Wait()
	return c, etag, err
}

// TestStaleClaimTakenOverOnce: two requests that read the same stale claim
// both try to take it over; one does and charges, the other is told the
// charge is in progress: the provider is asked once, and one outcome is
// announced (a claim deleted and created again, as takeovers once did, let
// a stale ETag match the newer claim on Redis, whose versions restart).
func TestStaleClaimTakenOverOnce(t *testing.T) {
	p := &fakeProvider{}
	now := time.Unix(1700000000, 0)
	store := &readTogether{Store: fake.NewStore()}
	svc := withDeadClaim(t, p, store.Store, &now)
	svc.Store = store
	store.wg.Add(2)
	now = now.Add(payments.DefaultClaimTimeout + time.Second)
	var (
		wg      sync.WaitGroup
		created atomic.Int32
		busy    atomic.Int32
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, isNew, err := svc.Charge(context.Background(), req)
			switch {
			case err == nil && isNew:
				created.Add(1)
			case apierr.CodeOf(err) == apierr.Conflict:
				busy.Add(1)
			default:
				t.Errorf("charge: new=%v err=%v", isNew, err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 || busy.Load() != 1 || p.calls.Load() != 1 || !slices.Equal(store.EventTypes(), []string{payments.EventSucceeded}) {
		t.Fatalf("created %d, in progress %d, provider calls %d, events %v: want 1, 1, 1, one succeeded",
			created.Load(), busy.Load(), p.calls.Load(), store.EventTypes())
	}
}

func TestConcurrentRefundsRefundOnce(t *testing.T) {
	p := &fakeProvider{delay: 20 * time.Millisecond}
	svc := newService(p)
	if _, _, err := svc.Charge(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := svc.Refund(context.Background(), req.IdempotencyKey); err != nil || c.Status != payments.Refunded {
				t.Errorf("refund: %+v %v", c, err)
			}
		}()
	}
	wg.Wait()
	if n := p.refunds.Load(); n != 1 {
		t.Fatalf("the provider was asked %d times to refund one charge", n)
	}
	if got := svc.Store.(*fake.Store).EventTypes(); !slices.Equal(got, []string{payments.EventSucceeded, payments.EventRefunded}) {
		t.Fatalf("events %v", got)
	}
}

// ctxProvider takes the money unless the context is done when it answers,
// as a provider reached over the network would fail a cancelled request.
type ctxProvider struct {
	calls atomic.Int32
	delay time.Duration
}

func (p *ctxProvider) Charge(ctx context.Context, _, _ string, _ int64, _ string) (string, error) {
	p.calls.Add(1)
	time.Sleep(p.delay)
	return "ref_1", ctx.Err()
}

func (p *ctxProvider) Refund(ctx context.Context, _, _, _ string) error { return ctx.Err() }

// A caller that goes away mid-charge (a client disconnected, daprd's
// invocation timeout) does not leave the key claimed: the charge is seen
// through and the caller's retry gets its outcome at once.
func TestChargeOutlivesItsCaller(t *testing.T) {
	p := &ctxProvider{delay: 50 * time.Millisecond}
	now := func() time.Time { return time.Unix(1700000000, 0) }
	svc := &payments.Service{Store: fake.NewStore(), Provider: p, Keys: fakeKeys{"sk_test"}, Now: now, Leases: fake.Leases(&lease.MemStore{}, now)}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	c, created, err := svc.Charge(ctx, req)
	if err != nil || !created || c.Status != payments.Succeeded {
		t.Fatalf("charge whose caller went away: %+v created=%v err=%v", c, created, err)
	}
	again, created, err := svc.Charge(context.Background(), req)
	if err != nil || created || again.Status != payments.Succeeded || p.calls.Load() != 1 {
		t.Fatalf("retry: %+v created=%v err=%v provider calls=%d", again, created, err, p.calls.Load())
	}
}
