package lease

import (
	"context"
	"fmt"
	"sync"

	"github.com/daprshop/suite/lib/apierr"
)

// MemStore is a Store in this process's memory, with integer versions: for
// one process, and for tests of several replicas sharing one. Ops counts
// the calls made to it. The zero value is ready to use.
type MemStore struct {
	mu   sync.Mutex
	recs map[string]Record
	vers map[string]int
	next int
	Ops  int
}

var _ Store = (*MemStore)(nil)

// Get implements Store.
func (s *MemStore) Get(_ context.Context, key string) (Record, string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Ops++
	r, ok := s.recs[key]
	if !ok {
		return Record{}, "", false, nil
	}
	return r, fmt.Sprint(s.vers[key]), true, nil
}

// Put implements Store.
func (s *MemStore) Put(_ context.Context, key string, r Record, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Ops++
	_, exists := s.recs[key]
	if (version == "" && exists) || (version != "" && (!exists || version != fmt.Sprint(s.vers[key]))) {
		return apierr.Errorf(apierr.Conflict, "lease %s changed", key)
	}
	if s.recs == nil {
		s.recs, s.vers = map[string]Record{}, map[string]int{}
	}
	s.next++
	s.recs[key], s.vers[key] = r, s.next
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, key, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Ops++
	if _, ok := s.recs[key]; !ok {
		return nil
	}
	if version != fmt.Sprint(s.vers[key]) {
		return apierr.Errorf(apierr.Conflict, "lease %s changed", key)
	}
	delete(s.recs, key)
	delete(s.vers, key)
	return nil
}
