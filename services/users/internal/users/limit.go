package users

import (
	"net"
	"sync"
	"time"
)

// Limiter counts events per key in fixed windows: at most Max per Window.
// It keeps its counts in memory (per replica), which bounds guessing
// passwords without a shared store on the login path. It holds at most
// MaxKeys keys: when that many are inside their window, a new key goes
// through uncounted. A spray of made-up keys can so weaken the limit for a
// while (the other limit still holds), but can neither grow the limiter nor
// lock honest users out.
type Limiter struct {
	Max     int
	Window  time.Duration
	Now     func() time.Time
	MaxKeys int // 0: DefaultMaxKeys

	mu        sync.Mutex
	counts    map[string]*window
	lastSweep time.Time
}

// DefaultMaxKeys is MaxKeys' default: far more than the live keys of honest
// traffic within one window, and a few MB at most.
const DefaultMaxKeys = 100_000

type window struct {
	start time.Time
	n     int
}

// Take counts one event for key unless key has used up its window, in one
// step: of many concurrent calls at most Max get through. When refused it
// says how long until key may try again.
func (l *Limiter) Take(key string) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	w := l.current(key, now)
	if w == nil {
		if !l.room(now) {
			return true, 0 // full: uncounted (see Limiter)
		}
		w = &window{start: now}
		l.counts[key] = w
	}
	if w.n >= l.Max {
		return false, w.start.Add(l.Window).Sub(now)
	}
	w.n++
	return true, 0
}

// Blocked reports whether key used up its window, and for how long.
func (l *Limiter) Blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	w := l.current(key, now)
	if w == nil || w.n < l.Max {
		return false, 0
	}
	return true, w.start.Add(l.Window).Sub(now)
}

// Reset forgets key.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.counts, key)
}

// current returns key's window unless it has ended. Callers hold mu.
func (l *Limiter) current(key string, now time.Time) *window {
	w := l.counts[key]
	if w == nil || now.Sub(w.start) >= l.Window {
		delete(l.counts, key)
		return nil
	}
	return w
}

// room reports whether a new key fits, dropping ended windows first when
// full; it sweeps at most once per tenth of a window, so a full limiter
// costs each new key a map lookup, not a scan. Callers hold mu.
func (l *Limiter) room(now time.Time) bool {
	if l.counts == nil {
		l.counts = map[string]*window{}
	}
	limit := l.MaxKeys
	if limit <= 0 {
		limit = DefaultMaxKeys
	}
	if len(l.counts) < limit {
		return true
	}
	if now.Sub(l.lastSweep) >= l.Window/10 {
		l.lastSweep = now
		for k, w := range l.counts {
			if now.Sub(w.start) >= l.Window {
				delete(l.counts, k)
			}
		}
	}
	return len(l.counts) < limit
}

// AddressKey is the key a client address is limited by: the address itself
// for IPv4, its /64 network for IPv6, where one client commonly holds a
// whole /64 and could otherwise rotate through it.
func AddressKey(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
