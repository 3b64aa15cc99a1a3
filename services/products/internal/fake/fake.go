// Package fake holds an in-memory products.Store for the unit tests of the
// domain and the HTTP API; storetest checks that it keeps the contract the
// Dapr adapter keeps. Integration tests use the real sidecars instead.
package fake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/services/products/internal/products"
)

// Store is an in-memory products.Store with integer ETags.
type Store struct {
	mu      sync.Mutex
	records map[string]products.Record
	etags   map[string]int
	catalog []string
	// CatalogErr, when set, is what AddToCatalog answers; CatalogLost
	// makes it answer so after writing (the answer lost, not the write).
	CatalogErr  error
	CatalogLost bool
}

var _ products.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{records: map[string]products.Record{}, etags: map[string]int{}}
}

func clone(r products.Record) products.Record {
	c := r
	c.Reservations = maps.Clone(r.Reservations)
	return c
}

// Get implements products.Store.
func (s *Store) Get(_ context.Context, id string) (products.Record, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		return r, "", apierr.Errorf(apierr.NotFound, "product %q not found", id)
	}
	return clone(r), fmt.Sprint(s.etags[id]), nil
}

// Create implements products.Store.
func (s *Store) Create(_ context.Context, r products.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[r.ID]; ok {
		return apierr.Errorf(apierr.Conflict, "product %s exists", r.ID)
	}
	s.records[r.ID], s.etags[r.ID] = clone(r), 1
	return nil
}

// Update implements products.Store.
func (s *Store) Update(_ context.Context, r products.Record, etag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[r.ID]; !ok || etag != fmt.Sprint(s.etags[r.ID]) {
		return apierr.Errorf(apierr.Conflict, "changed meanwhile")
	}
	s.records[r.ID] = clone(r)
	s.etags[r.ID]++
	return nil
}

// AddToCatalog implements products.Store.
func (s *Store) AddToCatalog(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.CatalogErr != nil && !s.CatalogLost {
		return s.CatalogErr
	}
	if !slices.Contains(s.catalog, id) {
		s.catalog = append(s.catalog, id)
	}
	return s.CatalogErr
}

// RemoveFromCatalog implements products.Store.
func (s *Store) RemoveFromCatalog(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catalog = slices.DeleteFunc(s.catalog, func(c string) bool { return c == id })
	return nil
}

// Delete implements products.Store.
func (s *Store) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, id)
	delete(s.etags, id)
	return nil
}

// Catalog implements products.Store.
func (s *Store) Catalog(_ context.Context, offset, limit int) ([]products.Record, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []products.Record
	for i := len(s.catalog) - 1 - offset; i >= 0 && len(out) < limit; i-- {
		if r, ok := s.records[s.catalog[i]]; ok {
			out = append(out, clone(r))
		}
	}
	return out, len(s.catalog), nil
}

// Len returns how many products are stored and how many listed.
func (s *Store) Len() (stored, listed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records), len(s.catalog)
}
