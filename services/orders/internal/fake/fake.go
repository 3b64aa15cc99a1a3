// Package fake holds in-memory stand-ins for the orders service's
// dependencies, for unit tests of the domain and the HTTP API. Integration
// tests use the real sidecars instead.
package fake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// Store keeps orders in memory with integer ETags and records every event.
type Store struct {
	mu     sync.Mutex
	orders map[string]orders.Order
	etags  map[string]int
	listed map[string][]string // user ID -> order IDs, as Index made them
	Events []orders.Event
	// FailPut, when set, is returned by the next Put instead of storing.
	FailPut error
	// FailIndex, when set, is returned by the next Index instead of listing.
	FailIndex error
}

var _ orders.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{orders: map[string]orders.Order{}, etags: map[string]int{}, listed: map[string][]string{}}
}

// Get implements orders.Store.
func (s *Store) Get(_ context.Context, id string) (orders.Order, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return orders.Order{}, "", apierr.Errorf(apierr.NotFound, "order %s not found", id)
	}
	return o, fmt.Sprint(s.etags[id]), nil
}

// Put implements orders.Store.
func (s *Store) Put(_ context.Context, o orders.Order, etag string, ev *orders.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.FailPut; err != nil {
		s.FailPut = nil
		return err
	}
	cur, exists := s.etags[o.ID]
	if (etag == "" && exists) || (etag != "" && etag != fmt.Sprint(cur)) {
		return apierr.Errorf(apierr.Conflict, "etag mismatch")
	}
	s.orders[o.ID] = o
	s.etags[o.ID] = cur + 1
	if ev != nil {
		s.Events = append(s.Events, *ev)
	}
	return nil
}

// Index implements orders.Store.
func (s *Store) Index(_ context.Context, userID, orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.FailIndex; err != nil {
		s.FailIndex = nil
		return err
	}
	if !slices.Contains(s.listed[userID], orderID) {
		s.listed[userID] = append(s.listed[userID], orderID)
	}
	return nil
}

// ListByUser implements orders.Store: the orders Index listed, newest
// first.
func (s *Store) ListByUser(_ context.Context, userID string) ([]orders.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []orders.Order{}
	ids := s.listed[userID]
	for i := len(ids) - 1; i >= 0; i-- {
		out = append(out, s.orders[ids[i]])
	}
	return out, nil
}

// EventTypes returns the types of the events stored for order id, in order.
func (s *Store) EventTypes(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.Events {
		if e.OrderID == id {
			out = append(out, e.Type)
		}
	}
	return out
}

// Inventory holds stock and reservations per product.
type Inventory struct {
	mu       sync.Mutex
	Stock    map[string]int
	Prices   map[string]int64
	Currency map[string]string
	Held     map[string]map[string]int // product -> order -> quantity
	// Down, when set, fails every call.
	Down error
	// Before, when set, runs before each call ("reserve", "release"),
	// outside the inventory's lock: a test stops a caller there.
	Before func(op, orderID string)
}

var _ orders.Inventory = (*Inventory)(nil)

// NewInventory returns an inventory with the given products (id -> stock),
// all priced price EUR.
func NewInventory(price int64, stock map[string]int) *Inventory {
	inv := &Inventory{Stock: stock, Prices: map[string]int64{}, Currency: map[string]string{}, Held: map[string]map[string]int{}}
	for id := range stock {
		inv.Prices[id], inv.Currency[id] = price, "EUR"
	}
	return inv
}

// Reserve implements orders.Inventory.
func (i *Inventory) Reserve(_ context.Context, orderID, productID string, q int) (orders.Reservation, error) {
	if i.Before != nil {
		i.Before("reserve", orderID)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.Down != nil {
		return orders.Reservation{}, i.Down
	}
	stock, ok := i.Stock[productID]
	if !ok {
		return orders.Reservation{}, apierr.Errorf(apierr.NotFound, "product %s not found", productID)
	}
	r := orders.Reservation{ProductID: productID, Quantity: q, UnitPrice: i.Prices[productID], Currency: i.Currency[productID]}
	if i.Held[productID][orderID] > 0 {
		return r, nil
	}
	if stock < q {
		return orders.Reservation{}, apierr.Errorf(apierr.Conflict, "insufficient stock")
	}
	i.Stock[productID] = stock - q
	if i.Held[productID] == nil {
		i.Held[productID] = map[string]int{}
	}
	i.Held[productID][orderID] = q
	return r, nil
}

// Release implements orders.Inventory.
func (i *Inventory) Release(_ context.Context, orderID, productID string) error {
	if i.Before != nil {
		i.Before("release", orderID)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.Down != nil {
		return i.Down
	}
	if q := i.Held[productID][orderID]; q > 0 {
		i.Stock[productID] += q
		delete(i.Held[productID], orderID)
	}
	return nil
}

// HeldFor returns what product holds for order.
func (i *Inventory) HeldFor(productID, orderID string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.Held[productID][orderID]
}

// StockOf returns product's stock.
func (i *Inventory) StockOf(productID string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.Stock[productID]
}

// Payments answers charges with Status (and Err), as payments does: once per
// idempotency key (a repeated charge answers the first receipt, a refunded
// one its refunded receipt), a refund once per charge (of nothing: no
// error). It records every call in Charges and Refunds.
type Payments struct {
	mu      sync.Mutex
	Status  string
	Err     error
	Charges []orders.Charge
	Refunds []string
	// Before, when set, runs before each call ("charge", "refund"),
	// outside the lock: a test stops a caller there.
	Before func(op, key string)
	money  map[string]string // key -> succeeded, declined, refunded
}

var _ orders.Payments = (*Payments)(nil)

// Charge implements orders.Payments.
func (p *Payments) Charge(_ context.Context, c orders.Charge) (orders.Receipt, error) {
	if p.Before != nil {
		p.Before("charge", c.IdempotencyKey)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Charges = append(p.Charges, c)
	if st, ok := p.money[c.IdempotencyKey]; ok {
		return orders.Receipt{ID: "ch_" + c.IdempotencyKey, Status: st}, nil
	}
	if p.Err != nil {
		return orders.Receipt{}, p.Err
	}
	if p.money == nil {
		p.money = map[string]string{}
	}
	p.money[c.IdempotencyKey] = p.Status
	return orders.Receipt{ID: "ch_" + c.IdempotencyKey, Status: p.Status}, nil
}

// Refund implements orders.Payments.
func (p *Payments) Refund(_ context.Context, key string) error {
	if p.Before != nil {
		p.Before("refund", key)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Err != nil {
		return p.Err
	}
	p.Refunds = append(p.Refunds, key)
	if p.money[key] == "succeeded" {
		p.money[key] = "refunded"
	}
	return nil
}

// Money returns what became of the charge of key: "" (none), succeeded,
// declined or refunded.
func (p *Payments) Money(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.money[key]
}

// ChargeCalls returns how many charges were asked for key.
func (p *Payments) ChargeCalls(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.Charges {
		if c.IdempotencyKey == key {
			n++
		}
	}
	return n
}

// Leases returns a lease manager on store (replicas that share orders
// share it; lease.MemStore) with the clock now, as main makes them.
func Leases(store lease.Store, now func() time.Time) *lease.Manager {
	return &lease.Manager{Store: store, TTL: 30 * time.Second, Now: now,
		Wait: retry.Policy{Retries: 200, Initial: time.Millisecond, Max: 10 * time.Millisecond, Jitter: 1}}
}
