package users

import (
	"sync"
	"time"
)

// Limiter counts events per key in fixed windows: at most Max per Window.
// It keeps its counts in memory (per replica), which bounds guessing
// passwords without a shared store on the login path.
type Limiter struct {
	Max    int
	Window time.Duration
	Now    func() time.Time

	mu     sync.Mutex
	counts map[string]*window
}

type window struct {
	start time.Time
	n     int
}

// Blocked reports whether key used up its window, and for how long.
func (l *Limiter) Blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(key)
	if w == nil || w.n < l.Max {
		return false, 0
	}
	return true, w.start.Add(l.Window).Sub(l.Now())
}

// Add counts one event for key.
func (l *Limiter) Add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(key)
	if w == nil {
		if l.counts == nil {
			l.counts = map[string]*window{}
		}
		if len(l.counts) > 10_000 {
			l.sweep()
		}
		w = &window{start: l.Now()}
		l.counts[key] = w
	}
	w.n++
}

// Reset forgets key.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.counts, key)
}

// current returns key's window unless it has ended. Callers hold mu.
func (l *Limiter) current(key string) *window {
	w := l.counts[key]
	if w == nil || l.Now().Sub(w.start) >= l.Window {
		delete(l.counts, key)
		return nil
	}
	return w
}

// sweep drops ended windows, so many distinct keys cannot grow the map
// without bound. Callers hold mu.
func (l *Limiter) sweep() {
	for k, w := range l.counts {
		if l.Now().Sub(w.start) >= l.Window {
			delete(l.counts, k)
		}
	}
}
