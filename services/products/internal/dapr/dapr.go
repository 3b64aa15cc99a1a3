// Package dapr holds the products adapter over the Dapr sidecar: one key per
// product in the service's own state store, every write after the first
// guarded by the ETag read before it, and a catalog key listing product IDs.
package dapr

import (
	"context"
	"encoding/json"
	"slices"

	daprc "github.com/dapr/go-sdk/client"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/services/products/internal/products"
)

// StateClient is the part of the Dapr client the store uses.
type StateClient interface {
	sidecar.StateGetter
	sidecar.BulkGetter
	SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...daprc.StateOption) error
	SaveStateWithETag(ctx context.Context, store, key string, data []byte, etag string, meta map[string]string, so ...daprc.StateOption) error
	DeleteState(ctx context.Context, store, key string, meta map[string]string) error
}

// Store keeps products in a Dapr state store.
type Store struct {
	Client StateClient
	Name   string // state store component name
}

var _ products.Store = (*Store)(nil)

// firstWrite makes a write conditional: without an ETag it inserts, with one
// it overwrites only that version.
var firstWrite = daprc.WithConcurrency(daprc.StateConcurrencyFirstWrite)

const catalogKey = "catalog"

func productKey(id string) string { return "product:" + id }

// Get implements products.Store.
func (s *Store) Get(ctx context.Context, id string) (products.Record, string, error) {
	var r products.Record
	etag, found, err := sidecar.GetJSON(ctx, s.Client, s.Name, productKey(id), &r)
	if err != nil {
		return products.Record{}, "", err
	}
	if !found {
		return products.Record{}, "", apierr.Errorf(apierr.NotFound, "product %q not found", id)
	}
	return r, etag, nil
}

// Create implements products.Store.
func (s *Store) Create(ctx context.Context, r products.Record) error {
	inserted, err := sidecar.InsertJSON(ctx, s.Client, s.Name, productKey(r.ID), r)
	if err == nil && !inserted {
		return apierr.Errorf(apierr.Conflict, "product %s exists", r.ID)
	}
	return err
}

// Delete implements products.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.Client.DeleteState(ctx, s.Name, productKey(id), nil); err != nil {
		return apierr.Unavailablef(err, "product store unavailable")
	}
	return nil
}

// Update implements products.Store.
func (s *Store) Update(ctx context.Context, r products.Record, etag string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return saveErr(s.Client.SaveStateWithETag(ctx, s.Name, productKey(r.ID), b, etag, sidecar.JSONMeta(), firstWrite))
}

func saveErr(err error) error {
	switch {
	case err == nil:
		return nil
	case sidecar.IsETagMismatch(err):
		return apierr.Errorf(apierr.Conflict, "changed meanwhile")
	default:
		return apierr.Unavailablef(err, "product store unavailable")
	}
}

type catalog struct {
	IDs []string `json:"ids"`
}

// AddToCatalog implements products.Store.
func (s *Store) AddToCatalog(ctx context.Context, id string) error {
	return sidecar.ModifyJSON(ctx, s.Client, s.Name, catalogKey, func(c *catalog) bool {
		if slices.Contains(c.IDs, id) {
			return false
		}
		c.IDs = append(c.IDs, id)
		return true
	})
}

// RemoveFromCatalog implements products.Store.
func (s *Store) RemoveFromCatalog(ctx context.Context, id string) error {
	return sidecar.ModifyJSON(ctx, s.Client, s.Name, catalogKey, func(c *catalog) bool {
		i := slices.Index(c.IDs, id)
		if i < 0 {
			return false
		}
		c.IDs = slices.Delete(c.IDs, i, i+1)
		return true
	})
}

// Catalog implements products.Store.
func (s *Store) Catalog(ctx context.Context, offset, limit int) ([]products.Record, int, error) {
	var c catalog
	if _, _, err := sidecar.GetJSON(ctx, s.Client, s.Name, catalogKey, &c); err != nil {
		return nil, 0, err
	}
	// The index is in creation order; a page reads only its own products.
	var keys []string
	for i := len(c.IDs) - 1 - offset; i >= 0 && len(keys) < limit; i-- {
		keys = append(keys, productKey(c.IDs[i]))
	}
	rs, err := sidecar.GetBulkJSON[products.Record](ctx, s.Client, s.Name, keys)
	return rs, len(c.IDs), err
}
