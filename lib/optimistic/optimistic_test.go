package optimistic_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/optimistic"
	"github.com/daprshop/suite/lib/retry"
)

// cell is a versioned integer: a write over a stale version is a Conflict.
// Before each write it runs meddle, once per call, so that a test can make
// another writer win at that moment.
type cell struct {
	mu      sync.Mutex
	n, ver  int
	reads   int
	writes  int
	meddles []func(c *cell)
}

func (c *cell) read(context.Context) (int, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.n, fmt.Sprint(c.ver), nil
}

func (c *cell) write(_ context.Context, n int, version string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.meddles) > 0 {
		m := c.meddles[0]
		c.meddles = c.meddles[1:]
		m(c)
	}
	if version != fmt.Sprint(c.ver) {
		return apierr.Errorf(apierr.Conflict, "version %s is stale", version)
	}
	c.n, c.ver, c.writes = n, c.ver+1, c.writes+1
	return nil
}

// otherWriter is a meddle: someone else writes first.
func otherWriter(c *cell) { c.n, c.ver = c.n+100, c.ver+1 }

func incr(n *int) error { *n++; return nil }

// noWait is the default policy with the waits recorded, not slept.
func noWait(waits *[]time.Duration) retry.Policy {
	p := optimistic.Policy()
	p.Sleep = func(_ context.Context, d time.Duration) error { *waits = append(*waits, d); return nil }
	return p
}

func TestUpdateWritesOverTheVersionItRead(t *testing.T) {
	c := &cell{n: 1}
	var waits []time.Duration
	got, err := optimistic.Update(context.Background(), noWait(&waits), "cell", c.read, incr, c.write)
	if err != nil || got != 2 || c.n != 2 || c.reads != 1 || c.writes != 1 || len(waits) != 0 {
		t.Fatalf("got %d err %v: cell %d after %d reads, %d writes, waits %v", got, err, c.n, c.reads, c.writes, waits)
	}
}

func TestUpdateStartsAgainFromTheReadAfterALostRace(t *testing.T) {
	c := &cell{n: 1, meddles: []func(*cell){otherWriter, otherWriter}}
	var waits []time.Duration
	got, err := optimistic.Update(context.Background(), noWait(&waits), "cell", c.read, incr, c.write)
	// The change is applied to what the winners wrote, not to the stale read.
	if err != nil || got != 202 || c.n != 202 || c.reads != 3 || c.writes != 1 {
		t.Fatalf("got %d err %v: cell %d after %d reads, %d writes", got, err, c.n, c.reads, c.writes)
	}
	if len(waits) != 2 || waits[0] > 2*time.Millisecond || waits[1] > 4*time.Millisecond {
		t.Fatalf("waits %v: want two, within 2 ms and 4 ms (full jitter)", waits)
	}
}

func TestUpdateGivesUpBusyAfterItsRetries(t *testing.T) {
	c := &cell{}
	for range 100 {
		c.meddles = append(c.meddles, otherWriter)
	}
	var waits []time.Duration
	p := noWait(&waits)
	p.Retries = 3
	_, err := optimistic.Update(context.Background(), p, "product prd_1", c.read, incr, c.write)
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Unavailable || e.RetryAfter <= 0 || !strings.Contains(e.Message, "product prd_1 is busy") {
		t.Fatalf("err = %v, want Unavailable naming the record, with Retry-After", err)
	}
	if c.reads != 4 || c.writes != 0 || len(waits) != 3 {
		t.Fatalf("%d reads, %d writes, %d waits: want 4, 0, 3", c.reads, c.writes, len(waits))
	}
}

func TestUpdateEndsAtOnceOnChangeAndReadErrors(t *testing.T) {
	refused := apierr.Errorf(apierr.Conflict, "order confirmed meanwhile") // the change's own Conflict
	cases := map[string]struct {
		read    func(context.Context) (int, string, error)
		change  func(*int) error
		wantErr error
		want    int
	}{
		"unchanged":    {nil, func(*int) error { return optimistic.ErrUnchanged }, nil, 7},
		"change error": {nil, func(n *int) error { return refused }, refused, 7},
		"read error":   {func(context.Context) (int, string, error) { return 0, "", refused }, incr, refused, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &cell{n: 7}
			read := c.read
			if tc.read != nil {
				read = tc.read
			}
			var waits []time.Duration
			got, err := optimistic.Update(context.Background(), noWait(&waits), "cell", read, tc.change, c.write)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) || got != tc.want || c.writes != 0 || len(waits) != 0 {
				t.Fatalf("got %d err %v, %d writes, waits %v", got, err, c.writes, waits)
			}
		})
	}
}

func TestUpdateKeepsAStoreFailure(t *testing.T) {
	c := &cell{}
	down := apierr.Unavailablef(errors.New("connection refused"), "store unavailable")
	var waits []time.Duration
	_, err := optimistic.Update(context.Background(), noWait(&waits), "cell", c.read, incr,
		func(context.Context, int, string) error { return down })
	if !errors.Is(err, down) || len(waits) != 0 {
		t.Fatalf("err %v waits %v: a failed write is not a lost race", err, waits)
	}
}

// Fifty writers at once, with the default policy and real waits: every
// increment lands once.
func TestUpdateUnderContention(t *testing.T) {
	c := &cell{}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := optimistic.Update(context.Background(), optimistic.Policy(), "cell", c.read, incr, c.write)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 50 || c.writes != 50 {
		t.Fatalf("cell %d after %d writes, want 50", c.n, c.writes)
	}
}
