package users

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/daprshop/suite/lib/apierr"
)

// LimitStore keeps the login limits' entries by key, with versions (ETags):
// Limits changes an entry over the version it read (optimistic.Update), so
// replicas sharing a store count every attempt once. The Dapr adapter
// (dapr.LimitStore, the users state store, each entry with a TTL) is what
// the service runs on; MemStore keeps them in one process's memory, for
// tests. limittest's contract holds both to the same behaviour.
type LimitStore interface {
	// Get returns key's entry and its version. An expired entry is not
	// found; its version is returned while the store still holds it, so
	// that a Put over that version replaces it.
	Get(ctx context.Context, key string) (e Entry, version string, found bool, err error)
	// Put writes key's entry over version, or where the store holds nothing
	// for key when version is "": an apierr Conflict otherwise. The store
	// may forget the entry after e.Expires.
	Put(ctx context.Context, key string, e Entry, version string) error
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
// then the least recently written). So a spray of made-up emails or addresses
// neither grows it nor, as the old limiter did, goes uncounted; to push out
// a locked source an attacker must fill the store with entries at least as
// restrictive, failures it cannot make cheaply.
type MemStore struct {
	MaxKeys int // 0: DefaultMaxKeys
	Now     func() time.Time

	mu   sync.Mutex
	m    map[string]Entry
	vers map[string]int
	next int
}

var _ LimitStore = (*MemStore)(nil)

// Get implements LimitStore.
func (s *MemStore) Get(_ context.Context, key string) (Entry, string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if ok && !s.Now().Before(e.Expires) {
		s.drop(key)
		return Entry{}, "", false, nil
	}
	if !ok {
		return Entry{}, "", false, nil
	}
	return e, strconv.Itoa(s.vers[key]), true, nil
}

// Put implements LimitStore.
func (s *MemStore) Put(_ context.Context, key string, e Entry, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m, s.vers = map[string]Entry{}, map[string]int{}
	}
	cur, ok := s.m[key]
	if ok && !s.Now().Before(cur.Expires) {
		s.drop(key)
		ok = false
	}
	if (version == "" && ok) || (version != "" && (!ok || version != strconv.Itoa(s.vers[key]))) {
		return apierr.Errorf(apierr.Conflict, "limit entry changed meanwhile")
	}
	if !ok && len(s.m) >= s.max() {
		s.evict()
	}
	s.next++
	s.m[key], s.vers[key] = e, s.next
	return nil
}

// Delete implements LimitStore.
func (s *MemStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(key)
	return nil
}

// drop forgets key; the caller holds mu.
func (s *MemStore) drop(key string) {
	delete(s.m, key)
	delete(s.vers, key)
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
// random) or, if none is, the sample's least restrictive (fewest events, then
// the least recently written). Callers hold mu.
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
			s.drop(k)
			freed = true
		} else if victim == "" || e.N < least.N || e.N == least.N && s.vers[k] < s.vers[victim] {
			// On a tie, the entry written longest ago, not the soonest to
			// expire: entries of different kinds last differently, and an
			// account's, which a spray must not push out, expires soonest.
			victim, least = k, e
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if !freed {
		s.drop(victim)
	}
}
