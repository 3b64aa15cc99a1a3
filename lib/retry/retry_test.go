package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/retry"
)

// fakeSleep records the waits asked for and returns at once, or with err.
type fakeSleep struct {
	waits []time.Duration
	err   error
}

func (f *fakeSleep) sleep(_ context.Context, d time.Duration) error {
	f.waits = append(f.waits, d)
	return f.err
}

var (
	errTransient = errors.New("transient")
	errClient    = errors.New("client error")
)

func transient(err error) bool { return errors.Is(err, errTransient) }

// failing returns the errors in order, then nil, counting the calls.
func failing(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestDoRetriesOnlyWhatRetryableAccepts(t *testing.T) {
	cases := map[string]struct {
		errs      []error
		wantCalls int
		wantErr   error
		wantWaits []time.Duration
	}{
		"success at once":       {nil, 1, nil, nil},
		"client error":          {[]error{errClient}, 1, errClient, nil},
		"transient then client": {[]error{errTransient, errClient}, 2, errClient, []time.Duration{500 * time.Millisecond}},
		"recovers":              {[]error{errTransient, errTransient}, 3, nil, []time.Duration{500 * time.Millisecond, time.Second}},
		"retries spent":         {[]error{errTransient, errTransient, errTransient, errTransient}, 3, errTransient, []time.Duration{500 * time.Millisecond, time.Second}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fakeSleep{}
			p := retry.Policy{Retries: 2, Initial: 500 * time.Millisecond, Max: time.Second, Sleep: f.sleep}
			calls := 0
			err := p.Do(context.Background(), transient, failing(&calls, tc.errs...))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if len(f.waits) != len(tc.wantWaits) {
				t.Fatalf("waits %v, want %v", f.waits, tc.wantWaits)
			}
			for i := range f.waits {
				if f.waits[i] != tc.wantWaits[i] {
					t.Errorf("waits %v, want %v", f.waits, tc.wantWaits)
				}
			}
		})
	}
}

func TestWaitDoublesUpToMax(t *testing.T) {
	p := retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := p.Wait(i + 1); got != w {
			t.Errorf("Wait(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := (retry.Policy{Initial: time.Second}).Wait(80); got <= 0 {
		t.Errorf("Wait(80) without Max = %s: overflowed", got)
	}
}

func TestJitterStaysWithinItsShare(t *testing.T) {
	f := &fakeSleep{}
	p := retry.Policy{Retries: 50, Initial: time.Second, Max: time.Second, Jitter: 0.2, Sleep: f.sleep}
	calls := 0
	_ = p.Do(context.Background(), transient, func(context.Context) error { calls++; return errTransient })
	if calls != 51 || len(f.waits) != 50 {
		t.Fatalf("%d calls, %d waits", calls, len(f.waits))
	}
	distinct := map[time.Duration]bool{}
	for _, w := range f.waits {
		if w < 800*time.Millisecond || w > time.Second {
			t.Errorf("wait %s outside [800ms, 1s]", w)
		}
		distinct[w] = true
	}
	if len(distinct) < 2 {
		t.Errorf("50 jittered waits, all %v", f.waits[0])
	}
}

func TestDoHonoursTheContext(t *testing.T) {
	t.Run("cancelled while waiting", func(t *testing.T) {
		f := &fakeSleep{err: context.Canceled}
		p := retry.Policy{Retries: 5, Initial: time.Millisecond, Sleep: f.sleep}
		calls := 0
		err := p.Do(context.Background(), transient, func(context.Context) error { calls++; return errTransient })
		if calls != 1 || !errors.Is(err, errTransient) {
			t.Fatalf("%d calls, err %v: a cancelled wait must end the retries with the last error", calls, err)
		}
	})
	t.Run("cancelled during the attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := &fakeSleep{}
		p := retry.Policy{Retries: 5, Initial: time.Millisecond, Sleep: f.sleep}
		calls := 0
		err := p.Do(ctx, transient, func(context.Context) error { calls++; cancel(); return errTransient })
		if calls != 1 || len(f.waits) != 0 || !errors.Is(err, errTransient) {
			t.Fatalf("%d calls, waits %v, err %v", calls, f.waits, err)
		}
	})
	t.Run("no wait past the deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := &fakeSleep{}
		p := retry.Policy{Retries: 5, Initial: time.Hour, Sleep: f.sleep}
		calls := 0
		_ = p.Do(ctx, transient, func(context.Context) error { calls++; return errTransient })
		if calls != 1 || len(f.waits) != 0 {
			t.Fatalf("%d calls, waits %v: a wait of an hour before a deadline in a minute", calls, f.waits)
		}
	})
	t.Run("total bounds the attempts", func(t *testing.T) {
		f := &fakeSleep{}
		p := retry.Policy{Retries: 5, Initial: time.Hour, Total: time.Minute, Sleep: f.sleep}
		var deadline time.Time
		var ok bool
		_ = p.Do(context.Background(), transient, func(ctx context.Context) error {
			deadline, ok = ctx.Deadline()
			return errTransient
		})
		if !ok || time.Until(deadline) > time.Minute || len(f.waits) != 0 {
			t.Fatalf("deadline %v (%v), waits %v: Total must bound the attempts", deadline, ok, f.waits)
		}
	})
}

// TestConfigDefaults: what orders retries by default is Dapr's invokeRetry
// of before (exponential from 500 ms, at most 1 s apart, 2 retries).
func TestConfigDefaults(t *testing.T) {
	var c retry.Config
	if err := conf.Parse(&c, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	p := c.Policy(5 * time.Second)
	if p.Retries != 2 || p.Wait(1) != 500*time.Millisecond || p.Wait(2) != time.Second || p.Wait(3) != time.Second ||
		p.Total != 5*time.Second || p.Jitter != retry.DefaultJitter {
		t.Fatalf("defaults: %+v", p)
	}
}
