package runner

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// crashTestRun is a run with one slot and no process, whose restarts wait
// so long that none happens during a test.
func crashTestRun(rs Restarts) (*Run, *slot, *bytes.Buffer) {
	out := &bytes.Buffer{}
	r := &Run{opts: Options{Restarts: rs.withDefaults(), StopGrace: time.Second}, console: newConsole(out, false, nil),
		stopping: make(chan struct{}), gaveUp: make(chan struct{})}
	s := &slot{name: "orders-2 app", app: "orders", instance: 2, source: "app"}
	r.slots = []*slot{s}
	return r, s, out
}

// TestBackoffDoublesCapsAndResets: the wait before a restart doubles with
// every exit up to MaxBackoff, and starts over at Backoff after a process
// stayed up StableAfter.
func TestBackoffDoublesCapsAndResets(t *testing.T) {
	r, s, out := crashTestRun(Restarts{Backoff: time.Hour, MaxBackoff: 4 * time.Hour, StableAfter: time.Minute, Limit: 100})
	lines := newTail(3)
	lines.add("panic: on purpose")
	for _, up := range []time.Duration{0, time.Second, 59 * time.Second, 0, 2 * time.Minute, 0} {
		r.mu.Lock()
		r.crashedLocked(s, "exit status 2", up, lines)
		r.mu.Unlock()
	}
	r.mu.Lock()
	s.cancelRestart()
	r.mu.Unlock()
	var waits []string
	for _, m := range regexp.MustCompile(`restarting it in (\S+) \(exit (\d+);`).FindAllStringSubmatch(out.String(), -1) {
		waits = append(waits, m[1]+"#"+m[2])
	}
	want := "1h0m0s#1 2h0m0s#2 4h0m0s#3 4h0m0s#4 1h0m0s#5 2h0m0s#6"
	if got := strings.Join(waits, " "); got != want {
		t.Fatalf("waits %s, want %s\n%s", got, want, out)
	}
	if !strings.Contains(out.String(), "orders-2 app exited (exit status 2) after 2m0s up;") || !strings.Contains(out.String(), "|   panic: on purpose") {
		t.Errorf("the message lacks what exited, how, or its last lines:\n%s", out)
	}
	if c := r.Crashes(); len(c) != 6 || c[0].Process != "orders-2 app" || c[0].Instance != 2 || c[0].Status != "exit status 2" {
		t.Errorf("crashes: %+v", c)
	}
	select {
	case <-r.gaveUp:
		t.Fatal("gave up under the limit")
	default:
	}
}

// TestGiveUpCountsExitsWithinTheWindow: exits older than the window do not
// count; the Limit-th within it ends the run with an error naming the
// process, its status and its last lines.
func TestGiveUpCountsExitsWithinTheWindow(t *testing.T) {
	r, s, out := crashTestRun(Restarts{Backoff: time.Hour, Limit: 3, Window: 5 * time.Minute})
	lines := newTail(3)
	lines.add("cannot connect to the store")
	s.exits = []time.Time{time.Now().Add(-6 * time.Minute), time.Now().Add(-6 * time.Minute)}
	for i := range 3 {
		select {
		case <-r.gaveUp:
			t.Fatalf("gave up after %d exits within the window\n%s", i, out)
		default:
		}
		r.mu.Lock()
		r.crashedLocked(s, "exit status 1", 0, lines)
		r.mu.Unlock()
	}
	select {
	case <-r.gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatalf("did not give up after 3 exits within the window\n%s", out)
	}
	err := r.Wait(t.Context())
	if err == nil {
		t.Fatal("Wait: no error after giving up")
	}
	for _, want := range []string{"orders-2 app exited unexpectedly (exit status 1), 3 times within 5m0s: giving up on it", "cannot connect to the store"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Wait's error lacks %q: %v", want, err)
		}
	}
	if !strings.Contains(out.String(), "3 times within 5m0s: giving up on it; stopping everything") {
		t.Errorf("the console does not say it gave up:\n%s", out)
	}
}

func TestOrdinal(t *testing.T) {
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 22: "22nd", 103: "103rd", 111: "111th"} {
		if got := ordinal(n); got != want {
			t.Errorf("ordinal(%d) = %s, want %s", n, got, want)
		}
	}
}

// TestNewInternalPortIsNoneOfTheRuns: while an instance is stopped for a
// roll its own ports are free, and a daprd given one of them as its new
// internal port cannot listen; the new port is none of the run's.
func TestNewInternalPortIsNoneOfTheRuns(t *testing.T) {
	r := &Run{
		instances: []*AppRun{{App: App{ID: "orders", AppPort: 8081, DaprHTTPPort: 3501, DaprGRPCPort: 3511, DaprInternalGRPCPort: 4001, MetricsPort: 9191}}},
		Authority: &Authority{Port: 5001, HealthzPort: 5002, MetricsPort: 5003},
	}
	offers := []int{9191, 4001, 5002, 8081, 23456}
	saved := freePort
	t.Cleanup(func() { freePort = saved })
	freePort = func() (int, error) {
		p := offers[0]
		offers = offers[1:]
		return p, nil
	}
	if got, err := r.unusedPort(); err != nil || got != 23456 {
		t.Errorf("unusedPort = %d, %v; want 23456, the first offer that is none of the run's ports", got, err)
	}
}
