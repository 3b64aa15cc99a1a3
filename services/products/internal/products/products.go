// Package products is the catalog and inventory domain. Stock is reserved per
// order with read-modify-write cycles guarded by the product's ETag, retried
// when another writer got there first, so concurrent orders never oversell.
package products

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/id"
	"github.com/daprshop/suite/lib/optimistic"
)

// Product is a catalog entry; Stock is what can still be reserved.
type Product struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Price       int64     `json:"price"`
	Currency    string    `json:"currency"`
	Stock       int       `json:"stock"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Record is a product as stored, with the stock held for each order.
type Record struct {
	Product
	Reservations map[string]int `json:"reservations,omitempty"`
}

// NewProduct is a request to add a product.
type NewProduct struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       int64  `json:"price"`
	Currency    string `json:"currency"`
	Stock       int    `json:"stock"`
}

// Limits of the catalog.
const (
	MaxPrice    = 10_000_000
	MaxStock    = 1_000_000
	MaxQuantity = 1000
)

var (
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Validate reports every invalid field of p at once.
func (p NewProduct) Validate() error {
	var fields apierr.FieldErrors
	if n := utf8.RuneCountInString(strings.TrimSpace(p.Name)); n < 1 || n > 200 {
		fields.Add("name", "must be 1 to 200 characters")
	}
	if utf8.RuneCountInString(p.Description) > 2000 {
		fields.Add("description", "must be at most 2000 characters")
	}
	if p.Price < 1 || p.Price > MaxPrice {
		fields.Add("price", fmt.Sprintf("must be between 1 and %d minor units", MaxPrice))
	}
	if !currencyPattern.MatchString(p.Currency) {
		fields.Add("currency", "must be an ISO 4217 code such as EUR")
	}
	if p.Stock < 0 || p.Stock > MaxStock {
		fields.Add("stock", fmt.Sprintf("must be between 0 and %d", MaxStock))
	}
	return fields.Err("product")
}

// Reservation statuses. A refusal for lack of stock is an answer, not an
// error: Dapr 1.14 resiliency counts every non-2xx reply as a failure of the
// callee, and an empty shelf says nothing about the health of products.
const (
	Reserved = "reserved"
	Rejected = "rejected"
)

// Reservation is the answer to a reservation request.
type Reservation struct {
	Status    string `json:"status"`
	ProductID string `json:"product_id"`
	OrderID   string `json:"order_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	Currency  string `json:"currency"`
	StockLeft int    `json:"stock_left"`
	Reason    string `json:"reason,omitempty"`
}

// Store keeps products. Create inserts (apierr Conflict if the ID exists);
// Update writes only over the ETag Get returned (apierr Conflict otherwise).
type Store interface {
	Get(ctx context.Context, id string) (Record, string, error)
	Create(ctx context.Context, r Record) error
	Update(ctx context.Context, r Record, etag string) error
	AddToCatalog(ctx context.Context, id string) error
	// RemoveFromCatalog takes id out of the catalog (none there: no error).
	RemoveFromCatalog(ctx context.Context, id string) error
	// Delete removes a product that never made it into the catalog.
	Delete(ctx context.Context, id string) error
	// Catalog returns up to limit products, newest first, skipping offset,
	// and how many the catalog holds.
	Catalog(ctx context.Context, offset, limit int) (rs []Record, total int, err error)
}

// Page limits of the catalog list: a list never reads the whole catalog.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Page is one page of the catalog, newest first. NextOffset is where the
// next page starts (0: this is the last one).
type Page struct {
	Products   []Product `json:"products"`
	Total      int       `json:"total"`
	NextOffset int       `json:"next_offset,omitempty"`
}

// Service runs the catalog.
type Service struct {
	Store Store
	// MaxAttempts bounds the attempts of a write that keeps losing races
	// to other writers of the product (0: optimistic.Policy's).
	MaxAttempts int
	Now         func() time.Time
}

// Create adds a product to the catalog.
func (s *Service) Create(ctx context.Context, p NewProduct) (Product, error) {
	if err := p.Validate(); err != nil {
		return Product{}, err
	}
	now := s.Now().UTC()
	r := Record{Product: Product{ID: id.Product.New(), Name: strings.TrimSpace(p.Name), Description: p.Description,
		Price: p.Price, Currency: p.Currency, Stock: p.Stock, CreatedAt: now, UpdatedAt: now}}
	if err := s.Store.Create(ctx, r); err != nil {
		return Product{}, err
	}
	if err := s.Store.AddToCatalog(ctx, r.ID); err != nil {
		// Unlisted, nobody could find it and a retry would make another:
		// take it back, so the failed create leaves nothing behind. The
		// catalog write may have happened with only its answer lost: undo
		// it first, then the product.
		if derr := errors.Join(s.Store.RemoveFromCatalog(ctx, r.ID), s.Store.Delete(ctx, r.ID)); derr != nil {
			return Product{}, errors.Join(err, derr)
		}
		return Product{}, err
	}
	return r.Product, nil
}

// List returns a page of the catalog, newest first.
func (s *Service) List(ctx context.Context, offset, limit int) (Page, error) {
	var fields apierr.FieldErrors
	if offset < 0 {
		fields.Add("offset", "must not be negative")
	}
	if limit < 1 || limit > MaxPageSize {
		fields.Add("limit", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	}
	if err := fields.Err("page"); err != nil {
		return Page{}, err
	}
	rs, total, err := s.Store.Catalog(ctx, offset, limit)
	if err != nil {
		return Page{}, err
	}
	p := Page{Products: make([]Product, len(rs)), Total: total}
	for i, r := range rs {
		p.Products[i] = r.Product
	}
	if offset+len(rs) < total {
		p.NextOffset = offset + len(rs)
	}
	return p, nil
}

// Get returns one product.
func (s *Service) Get(ctx context.Context, productID string) (Product, error) {
	if !id.Product.Valid(productID) {
		return Product{}, errNoSuchProduct
	}
	r, _, err := s.Store.Get(ctx, productID)
	return r.Product, err
}

// SetStock sets the stock that can still be reserved.
func (s *Service) SetStock(ctx context.Context, id string, stock int) (Product, error) {
	if stock < 0 || stock > MaxStock {
		return Product{}, apierr.Invalidf("stock", "must be between 0 and %d", MaxStock)
	}
	r, err := s.modify(ctx, id, func(r *Record) error {
		r.Stock = stock
		return nil
	})
	return r.Product, err
}

// Reserve takes quantity units for orderID, once per order: a repeated
// request returns the first answer (created=false). Too little stock is a
// Rejected reservation, not an error.
func (s *Service) Reserve(ctx context.Context, productID, orderID string, quantity int) (res Reservation, created bool, err error) {
	var fields apierr.FieldErrors
	if !id.Order.Valid(orderID) {
		fields.Add("order_id", "must be an order ID (ord_...)")
	}
	if quantity < 1 || quantity > MaxQuantity {
		fields.Add("quantity", fmt.Sprintf("must be between 1 and %d", MaxQuantity))
	}
	if err := fields.Err("reservation"); err != nil {
		return Reservation{}, false, err
	}
	errShort := errors.New("short")
	r, err := s.modify(ctx, productID, func(r *Record) error {
		if r.Reservations[orderID] > 0 {
			return optimistic.ErrUnchanged
		}
		if r.Stock < quantity {
			return errShort
		}
		r.Stock -= quantity
		if r.Reservations == nil {
			r.Reservations = map[string]int{}
		}
		r.Reservations[orderID] = quantity
		created = true
		return nil
	})
	res = Reservation{Status: Reserved, ProductID: productID, OrderID: orderID, Quantity: r.Reservations[orderID],
		UnitPrice: r.Price, Currency: r.Currency, StockLeft: r.Stock}
	switch {
	case errors.Is(err, errShort):
		res.Status, res.Quantity, res.Reason = Rejected, quantity, fmt.Sprintf("insufficient stock: %d left", r.Stock)
		return res, false, nil
	case err != nil:
		return Reservation{}, false, err
	}
	return res, created, nil
}

// Release gives back the stock held for orderID; nothing held is no error.
func (s *Service) Release(ctx context.Context, id, orderID string) error {
	_, err := s.modify(ctx, id, func(r *Record) error {
		q := r.Reservations[orderID]
		if q == 0 {
			return optimistic.ErrUnchanged
		}
		r.Stock += q
		delete(r.Reservations, orderID)
		return nil
	})
	return err
}

// Settle forgets the reservation of a confirmed order: its stock stays taken.
func (s *Service) Settle(ctx context.Context, id, orderID string) error {
	_, err := s.modify(ctx, id, func(r *Record) error {
		if _, ok := r.Reservations[orderID]; !ok {
			return optimistic.ErrUnchanged
		}
		delete(r.Reservations, orderID)
		return nil
	})
	return err
}

// modify applies change to product id and writes it back over the ETag it
// read: one optimistic.Update cycle, retried when another writer won.
// change returning an error other than optimistic.ErrUnchanged aborts with
// that error (and the record as read).
func (s *Service) modify(ctx context.Context, productID string, change func(*Record) error) (Record, error) {
	if !id.Product.Valid(productID) {
		return Record{}, errNoSuchProduct
	}
	policy := optimistic.Policy()
	if s.MaxAttempts > 0 {
		policy.Retries = s.MaxAttempts - 1
	}
	return optimistic.Update(ctx, policy, "product "+productID,
		func(ctx context.Context) (Record, string, error) { return s.Store.Get(ctx, productID) },
		func(r *Record) error {
			if err := change(r); err != nil {
				return err
			}
			r.UpdatedAt = s.Now().UTC()
			return nil
		},
		s.Store.Update)
}

// errNoSuchProduct answers a malformed product ID, without echoing it.
var errNoSuchProduct = apierr.Errorf(apierr.NotFound, "no such product")
