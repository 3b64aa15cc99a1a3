// Package keylock serialises work on one key (an order, a charge) within a
// process, without one mutex per key living forever.
package keylock

import "sync"

// Map hands out one mutex per key and forgets it once nobody holds or waits
// for it. The zero value is ready to use.
type Map struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int // holders and waiters
}

// Lock locks key and returns its unlock function.
func (k *Map) Lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// held reports how many keys have a mutex now (for tests).
func (k *Map) held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}
