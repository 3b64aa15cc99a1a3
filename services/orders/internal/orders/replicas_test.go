package orders_test

// Two replicas of orders (two Service values) share one store, one lease
// store, products and payments. Each test stops one replica at a chosen
// step (a fake dependency that blocks) and runs the other against it, so
// the interleaving is forced, not left to chance; every test runs on the
// in-memory fake store and on the Dapr adapter over sidecartest, whose
// transactions behave as state.redis's do (an ETag failure still publishes
// the event). Then check holds every order to the invariants of money and
// stock.

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/lease/leasetest"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/orders/internal/dapr"
	"github.com/daprshop/suite/services/orders/internal/fake"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

const (
	prodA = "prd_00000000000000000000000a"
	prodB = "prd_00000000000000000000000b"
	owner = "usr_000000000000000000000001"
)

// replicas is two orders replicas, a and b, and what they share.
type replicas struct {
	a, b   *orders.Service
	store  orders.Store
	events func(orderID string) []string
	inv    *fake.Inventory
	pay    *fake.Payments
	clock  *leasetest.Clock
	leases lease.Store
	// waiting[r], when set, runs when replica r is about to wait for a
	// lease another holds; it returns when r may look again.
	mu      sync.Mutex
	waiting map[*orders.Service]func()
}

// flavours are the stores the replicas share: the fake, and the Dapr
// adapter on sidecartest with Redis' transactions.
var flavours = []string{"fake", "dapr"}

func newReplicas(t *testing.T, flavour string) *replicas {
	t.Helper()
	r := &replicas{
		inv:     fake.NewInventory(500, map[string]int{prodA: 10, prodB: 1}),
		pay:     &fake.Payments{Status: "succeeded"},
		clock:   leasetest.NewClock(),
		waiting: map[*orders.Service]func(){},
	}
	switch flavour {
	case "fake":
		st := fake.NewStore()
		r.store, r.events, r.leases = st, st.EventTypes, &lease.MemStore{}
	case "dapr":
		st := &sidecartest.State{Now: r.clock.Now, RedisTransactions: true}
		r.store = &dapr.Store{Client: st, Outbox: st, Name: "orders-store"}
		r.leases = &sidecar.LeaseStore{Client: st, Store: "orders-store", Prefix: "lease:", Now: r.clock.Now}
		r.events = func(id string) []string {
			var out []string
			for _, p := range st.Published() {
				var e orders.Event
				if err := json.Unmarshal(p.Data, &e); err != nil {
					t.Fatal(err)
				}
				if e.OrderID == id {
					out = append(out, e.Type)
				}
			}
			return out
		}
	}
	r.a, r.b = r.replica(), r.replica()
	return r
}

// replica is one orders replica on the shared world. While another holds
// an order it looks again up to 20 times, at once (no real waits), unless
// the test says otherwise (waitFor).
func (r *replicas) replica() *orders.Service {
	svc := &orders.Service{Store: r.store, Inventory: r.inv, Payments: r.pay, Now: r.clock.Now}
	svc.Leases = &lease.Manager{Store: r.leases, TTL: 30 * time.Second, Now: r.clock.Now,
		Wait: retry.Policy{Retries: 20, Sleep: func(context.Context, time.Duration) error {
			r.mu.Lock()
			w := r.waiting[svc]
			r.mu.Unlock()
			if w != nil {
				w()
			}
			return nil
		}}}
	return svc
}

// whenWaiting runs fn once, the first time svc waits for a lease.
func (r *replicas) whenWaiting(svc *orders.Service, fn func()) {
	var once sync.Once
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting[svc] = func() { once.Do(fn) }
}

// gate stops the first caller of stop until open is called.
type gate struct {
	once, opening sync.Once
	reached       chan string // the order (key) it stopped at
	opened        chan struct{}
}

func newGate() *gate { return &gate{reached: make(chan string, 1), opened: make(chan struct{})} }

func (g *gate) stop(key string) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		g.reached <- key
		<-g.opened
	}
}

func (g *gate) open() { g.opening.Do(func() { close(g.opened) }) }

// stopAt stops the first call of op ("reserve", "release", "charge",
// "refund") at g.
func (r *replicas) stopAt(op string, g *gate) {
	hook := func(o, key string) {
		if o == op {
			g.stop(key)
		}
	}
	r.inv.Before, r.pay.Before = hook, hook
}

var lines = orders.PlaceRequest{UserID: owner, Items: []orders.LineRequest{{ProductID: prodA, Quantity: 2}, {ProductID: prodB, Quantity: 1}}}

// background runs fn on another goroutine: one replica's request.
func background(fn func() (orders.Order, error)) *bg {
	b := &bg{done: make(chan result, 1)}
	go func() {
		o, err := fn()
		b.done <- result{o, err}
	}()
	return b
}

// bg is a request running in the background; wait returns its result.
type bg struct {
	done chan result
	once sync.Once
	res  result
}

func (b *bg) wait() result {
	b.once.Do(func() { b.res = <-b.done })
	return b.res
}

type result struct {
	o   orders.Order
	err error
}

// place places lines on svc in the background.
func place(svc *orders.Service) *bg {
	return background(func() (orders.Order, error) { return svc.Place(context.Background(), lines) })
}

// paidOrder places lines on replica a and returns the paid order.
func (r *replicas) paidOrder(t *testing.T) orders.Order {
	t.Helper()
	o, err := r.a.Place(context.Background(), lines)
	if err != nil || o.Status != orders.Paid {
		t.Fatalf("placing: %+v %v", o, err)
	}
	return o
}

// check holds order id to the invariants, whatever the interleaving: an
// order is settled (paid, confirmed or cancelled); a paid or confirmed
// order has its money and its stock, a cancelled one neither; every event
// is announced once, in an order the state machine allows, and the last
// one says the order's status.
func (r *replicas) check(t *testing.T, id string) orders.Order {
	t.Helper()
	o, _, err := r.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	money := r.pay.Money(id)
	held := []int{r.inv.HeldFor(prodA, id), r.inv.HeldFor(prodB, id)}
	switch o.Status {
	case orders.Paid, orders.Confirmed:
		if money != "succeeded" || held[0] != 2 || held[1] != 1 {
			t.Errorf("%s order: money %q, stock held %v: want succeeded, [2 1]", o.Status, money, held)
		}
	case orders.Cancelled:
		if money == "succeeded" || held[0] != 0 || held[1] != 0 {
			t.Errorf("cancelled order: money %q, stock held %v: want none kept", money, held)
		}
	default:
		t.Errorf("order left %s", o.Status)
	}
	if stock := []int{r.inv.StockOf(prodA) + held[0], r.inv.StockOf(prodB) + held[1]}; stock[0] != 10 || stock[1] != 1 {
		t.Errorf("stock plus held %v: want the initial [10 1]", stock)
	}
	evs := r.events(id)
	want := map[orders.Status][][]string{
		orders.Paid:      {{orders.EventCreated, orders.EventPaid}},
		orders.Confirmed: {{orders.EventCreated, orders.EventConfirmed}, {orders.EventCreated, orders.EventPaid, orders.EventConfirmed}},
		orders.Cancelled: {{orders.EventCreated, orders.EventCancelled}, {orders.EventCreated, orders.EventPaid, orders.EventCancelled}},
	}[o.Status]
	if !slices.ContainsFunc(want, func(w []string) bool { return slices.Equal(w, evs) }) {
		t.Errorf("events %v for a %s order: want one of %v", evs, o.Status, want)
	}
	return o
}

// The order.created event reaches replica b while replica a, placing the
// order, waits for the charge: b does not reserve or charge the order a
// second time. It answers 503 (the event comes again), or, when a finishes
// while b waits, finds the order paid.
func TestResumeOnAnotherReplicaWhilePlacing(t *testing.T) {
	for _, flavour := range flavours {
		for _, bWaits := range []bool{false, true} {
			t.Run(flavour+map[bool]string{false: "/b gives up", true: "/b waits"}[bWaits], func(t *testing.T) {
				r := newReplicas(t, flavour)
				g := newGate()
				r.stopAt("charge", g)
				placed := place(r.a)
				id := <-g.reached
				if bWaits {
					r.whenWaiting(r.b, func() { g.open(); placed.wait() })
				}
				got, err := r.b.Resume(context.Background(), id)
				g.open()
				res := placed.wait()
				if !bWaits && apierr.CodeOf(err) != apierr.Unavailable {
					t.Errorf("b while a places: %+v %v, want 503", got, err)
				}
				if bWaits && (err != nil || got.Status != orders.Paid) {
					t.Errorf("b after a: %+v %v, want the paid order", got, err)
				}
				if res.err != nil || res.o.Status != orders.Paid {
					t.Fatalf("a placed %+v %v", res.o, res.err)
				}
				if n := r.pay.ChargeCalls(id); n != 1 {
					t.Errorf("%d charges asked, want 1", n)
				}
				r.check(t, id)
			})
		}
	}
}

// A customer cancels on replica b while replica a, placing the order,
// waits for the charge: the cancel waits for a and then refunds what a
// charged; it never cancels an order whose charge lands after its refund.
func TestCancelOnAnotherReplicaWhilePlacing(t *testing.T) {
	for _, flavour := range flavours {
		t.Run(flavour, func(t *testing.T) {
			r := newReplicas(t, flavour)
			g := newGate()
			r.stopAt("charge", g)
			placed := place(r.a)
			id := <-g.reached
			r.whenWaiting(r.b, func() { g.open(); placed.wait() })
			c, err := r.b.Cancel(context.Background(), id, owner)
			g.open()
			placed.wait()
			if err != nil || c.Status != orders.Cancelled {
				t.Errorf("cancel: %+v %v", c, err)
			}
			if o := r.check(t, id); r.pay.Money(id) != "refunded" {
				t.Fatalf("%s order, money %q: the charge must be refunded", o.Status, r.pay.Money(id))
			}
		})
	}
}

// A payment settles on replica b while replica a cancels the order and has
// refunded it (it is releasing the stock): b never confirms it.
func TestPaymentSettledOnAnotherReplicaWhileCancelling(t *testing.T) {
	for _, flavour := range flavours {
		for _, bWaits := range []bool{false, true} {
			t.Run(flavour+map[bool]string{false: "/b gives up", true: "/b waits"}[bWaits], func(t *testing.T) {
				r := newReplicas(t, flavour)
				o := r.paidOrder(t)
				g := newGate()
				r.stopAt("release", g)
				cancelled := background(func() (orders.Order, error) { return r.a.Cancel(context.Background(), o.ID, owner) })
				<-g.reached
				if bWaits {
					r.whenWaiting(r.b, func() { g.open(); cancelled.wait() })
				}
				err := r.b.PaymentSettled(context.Background(), o.ID, o.PaymentID)
				g.open()
				cancelled.wait()
				if !bWaits {
					if err == nil {
						t.Error("b settled while a cancelled: want an error (the event comes again)")
					}
					err = r.b.PaymentSettled(context.Background(), o.ID, o.PaymentID) // the redelivery
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := r.check(t, o.ID); got.Status != orders.Cancelled {
					t.Fatalf("order %s: a cancel that refunded must win", got.Status)
				}
			})
		}
	}
}

// A cancel that refunded but could not release the stock (products down)
// answers 503, and the cancellation stands: the payment event, arriving on
// another replica, finishes it instead of confirming an order whose money
// went back.
func TestAnInterruptedCancelIsFinishedNotConfirmed(t *testing.T) {
	for _, flavour := range flavours {
		t.Run(flavour, func(t *testing.T) {
			r := newReplicas(t, flavour)
			o := r.paidOrder(t)
			r.inv.Down = apierr.Errorf(apierr.Unavailable, "products down")
			_, err := r.a.Cancel(context.Background(), o.ID, owner)
			if apierr.CodeOf(err) != apierr.Unavailable {
				t.Fatalf("cancel with products down: %v, want 503", err)
			}
			r.inv.Down = nil
			if err := r.b.PaymentSettled(context.Background(), o.ID, o.PaymentID); err != nil {
				t.Fatal(err)
			}
			if got := r.check(t, o.ID); got.Status != orders.Cancelled {
				t.Fatalf("order %s after the payment event: want the cancellation finished", got.Status)
			}
			// And on the customer's retry, too: nothing more is given back.
			if c, err := r.b.Cancel(context.Background(), o.ID, owner); err != nil || c.Status != orders.Cancelled || len(r.pay.Refunds) != 2 {
				t.Fatalf("retry: %+v %v, refunds %v", c, err, r.pay.Refunds)
			}
		})
	}
}

// Two cancels of one order at once, on two replicas: one refund, one
// order.cancelled event.
func TestTwoCancelsAtOnce(t *testing.T) {
	for _, flavour := range flavours {
		t.Run(flavour, func(t *testing.T) {
			r := newReplicas(t, flavour)
			o := r.paidOrder(t)
			g := newGate()
			r.stopAt("refund", g)
			first := background(func() (orders.Order, error) { return r.a.Cancel(context.Background(), o.ID, owner) })
			<-g.reached
			r.whenWaiting(r.b, func() { g.open(); first.wait() })
			c, err := r.b.Cancel(context.Background(), o.ID, owner)
			g.open()
			if res := first.wait(); res.err != nil || res.o.Status != orders.Cancelled {
				t.Errorf("first cancel: %+v %v", res.o, res.err)
			}
			if err != nil || c.Status != orders.Cancelled {
				t.Errorf("second cancel: %+v %v", c, err)
			}
			if len(r.pay.Refunds) != 1 {
				t.Errorf("refunds asked %v, want 1", r.pay.Refunds)
			}
			r.check(t, o.ID)
		})
	}
}

// A replica that died holding an order's lease blocks it until the lease
// expires, not forever: then the order.created redelivery finishes it.
func TestADeadHolderBlocksOnlyUntilItsLeaseEnds(t *testing.T) {
	for _, flavour := range flavours {
		t.Run(flavour, func(t *testing.T) {
			r := newReplicas(t, flavour)
			r.pay.Err = apierr.Errorf(apierr.Unavailable, "payments down")
			o, err := r.a.Place(context.Background(), lines)
			if apierr.CodeOf(err) != apierr.Unavailable || o.Status != orders.Pending {
				t.Fatalf("placing with payments down: %+v %v", o, err)
			}
			r.pay.Err = nil
			dead := &lease.Manager{Store: r.leases, TTL: 30 * time.Second, Now: r.clock.Now}
			if _, err := dead.Acquire(context.Background(), "order:"+o.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := r.b.Resume(context.Background(), o.ID); apierr.CodeOf(err) != apierr.Unavailable {
				t.Fatalf("resume while the dead replica's lease lasts: %v, want 503", err)
			}
			r.clock.Add(31 * time.Second)
			got, err := r.b.Resume(context.Background(), o.ID)
			if err != nil || got.Status != orders.Paid {
				t.Fatalf("resume after the lease ended: %+v %v", got, err)
			}
			r.check(t, o.ID)
		})
	}
}

// A replica that stalls in a step past its lease (a frozen process) loses
// the order to another, which finishes it; the stalled one, back, stops at
// its next step and answers the order as it is.
func TestAStalledHolderStopsAtItsNextStep(t *testing.T) {
	for _, flavour := range flavours {
		t.Run(flavour, func(t *testing.T) {
			r := newReplicas(t, flavour)
			g := newGate()
			r.stopAt("charge", g)
			placed := place(r.a)
			id := <-g.reached
			r.clock.Add(31 * time.Second)
			got, err := r.b.Resume(context.Background(), id)
			if err != nil || got.Status != orders.Paid {
				t.Fatalf("b took over: %+v %v", got, err)
			}
			g.open()
			res := placed.wait()
			if res.err != nil || res.o.Status != orders.Paid {
				t.Fatalf("a, back: %+v %v: want the order as b left it", res.o, res.err)
			}
			r.check(t, id)
		})
	}
}

// Replica a, placing, finds stock short and cancels; the order.created
// redelivery on b waits for it and takes nothing back out.
func TestAnAbandonedOrderIsNotReserved(t *testing.T) {
	for _, flavour := range flavours {
		t.Run(flavour, func(t *testing.T) {
			r := newReplicas(t, flavour)
			r.inv.Stock[prodB] = 0
			g := newGate()
			r.stopAt("release", g)
			placed := place(r.a)
			id := <-g.reached
			r.whenWaiting(r.b, func() { g.open(); placed.wait() })
			got, err := r.b.Resume(context.Background(), id)
			g.open()
			placed.wait()
			if err != nil || got.Status != orders.Cancelled {
				t.Fatalf("resume: %+v %v", got, err)
			}
			r.inv.Stock[prodB] = 1 // as check counts it
			if o := r.check(t, id); o.CancelReason != "out of stock: "+prodB {
				t.Fatalf("reason %q", o.CancelReason)
			}
		})
	}
}

func TestLeaseErrorsAreAnswers(t *testing.T) {
	r := newReplicas(t, "fake")
	o := r.paidOrder(t)
	other := &lease.Manager{Store: r.leases, TTL: 30 * time.Second, Now: r.clock.Now}
	if _, err := other.Acquire(context.Background(), "order:"+o.ID); err != nil {
		t.Fatal(err)
	}
	var e *apierr.Error
	if _, err := r.b.Cancel(context.Background(), o.ID, owner); !errors.As(err, &e) || e.Code != apierr.Unavailable || e.RetryAfter <= 0 {
		t.Fatalf("cancel of an order another holds: %v, want 503 with Retry-After", err)
	}
}

// TestPlaceCostInStateOperations measures the state operations of an
// order's life on the Dapr adapter (an outbox transaction counts as one):
// placing it (its lease taken with an insert and given back with a read and
// a delete, the order with its event, the user's list read and written, the
// paid order read and written with its event), its order.created arriving
// after Place settled it (a read), its payment event confirming it (lease,
// read and write with the event).
func TestPlaceCostInStateOperations(t *testing.T) {
	c := leasetest.NewClock()
	st := &sidecartest.State{Now: c.Now}
	svc := &orders.Service{Store: &dapr.Store{Client: st, Outbox: st, Name: "orders-store"},
		Inventory: fake.NewInventory(500, map[string]int{prodA: 10, prodB: 1}),
		Payments:  &fake.Payments{Status: "succeeded"}, Now: c.Now,
		Leases: fake.Leases(&sidecar.LeaseStore{Client: st, Store: "orders-store", Prefix: "lease:", Now: c.Now}, c.Now)}
	count := func() int {
		ops := st.Ops()
		return ops["get"] + ops["save"] + ops["delete"] + ops["transaction"]
	}
	count()
	o, err := svc.Place(context.Background(), lines)
	if err != nil || o.Status != orders.Paid {
		t.Fatalf("%+v %v", o, err)
	}
	for _, step := range []struct {
		name string
		most int
		fn   func() error
	}{
		{"placing an order", 8, func() error { return nil }},
		{"its order.created after Place settled it", 1, func() error { _, err := svc.Resume(context.Background(), o.ID); return err }},
		{"its payment event", 5, func() error { return svc.PaymentSettled(context.Background(), o.ID, "ch_"+o.ID) }},
	} {
		if err := step.fn(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		n := count()
		t.Logf("%s: %d state operations", step.name, n)
		if n > step.most {
			t.Errorf("%s: %d state operations, at most %d", step.name, n, step.most)
		}
	}
}
