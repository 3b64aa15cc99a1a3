package users

import (
	"context"
	"sync"
	"time"
)

// LimitStore keeps the login limits' entries by key. Limits reads and writes
// an account's entries with the account's lock held and an address's with
// the address's, so an implementation needs no read-modify-write of its own
// within one replica. MemStore keeps them in this replica's memory; a store
// shared by several replicas (Dapr state, with the expiry as a TTL and ETags
// in place of the in-process locks) can take its place later.
type LimitStore interface {
	// Get returns key's entry; an expired entry is absent.
	Get(ctx context.Context, key string) (Entry, bool, error)
	// Put writes key's entry; the store may forget it after e.Expires.
	Put(ctx context.Context, key string, e Entry) error
	Delete(ctx context.Context, key string) error
}

// Entry is one key's state in a LimitStore.
type Entry struct {
	// N is how many events still count against the key: a source's failures
	// on an account, or the level of a bucket.
	N int
	// At is when the key may try again (a source on an account) or when its
	// bucket is full again.
	At time.Time
	// Expires is when the entry holds nothing worth keeping.
	Expires time.Time
}

// DefaultMaxKeys is MemStore's default bound: far more entries than honest
// traffic keeps alive, and about 22 MB when full (keys are 17-byte digests,
// whatever the email or address).
const DefaultMaxKeys = 100_000

// evictSample is how many entries a full MemStore looks at to choose one to
// drop, as Redis approximates LRU: enough that the entry dropped is almost
// never one of the few that restrict an attacker.
const evictSample = 8

// MemStore is a LimitStore in memory holding at most MaxKeys entries. A new
// key always gets an entry: when full, the store drops an expired entry or,
// among a sample, the one that restricts least (fewest events counting,
// then the soonest to expire). So a spray of made-up emails or addresses
// neither grows it nor, as the old limiter did, goes uncounted; to push out
// a locked source an attacker must fill the store with entries at least as
// restrictive, failures it cannot make cheaply.
type MemStore struct {
	MaxKeys int // 0: DefaultMaxKeys
	Now     func() time.Time

	mu sync.Mutex
	m  map[string]Entry
}

var _ LimitStore = (*MemStore)(nil)

// Get implements LimitStore.
func (s *MemStore) Get(_ context.Context, key string) (Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if ok && !s.Now().Before(e.Expires) {
		delete(s.m, key)
		return Entry{}, false, nil
	}
	return e, ok, nil
}

// Put implements LimitStore.
func (s *MemStore) Put(_ context.Context, key string, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Entry{}
	}
	if _, ok := s.m[key]; !ok && len(s.m) >= s.max() {
		s.evict()
	}
	s.m[key] = e
	return nil
}

// Delete implements LimitStore.
func (s *MemStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Len is how many entries the store holds.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *MemStore) max() int {
	if s.MaxKeys > 0 {
		return s.MaxKeys
	}
	return DefaultMaxKeys
}

// evict drops the expired entries of a sample of the map (Go's map order is
// random) or, if none is, the sample's least restrictive. Callers hold mu.
func (s *MemStore) evict() {
	now := s.Now()
	var (
		victim string
		least  Entry
		seen   int
		freed  bool
	)
	for k, e := range s.m {
		if !now.Before(e.Expires) {
			delete(s.m, k)
			freed = true
		} else if victim == "" || e.N < least.N || e.N == least.N && e.Expires.Before(least.Expires) {
			victim, least = k, e
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if !freed {
		delete(s.m, victim)
	}
}
