package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p50, p90, p99 := Percentile(ds, 50), Percentile(ds, 90), Percentile(ds, 99); p50 != 50 || p90 != 90 || p99 != 99 {
		t.Fatalf("p50 %v p90 %v p99 %v", p50, p90, p99)
	}
	if Percentile(nil, 50) != 0 || Percentile(ds[:1], 99) != 1 {
		t.Fatal("edge cases")
	}
}

// TestMeasureCountsWhatHappened: the generator sends rate×duration requests
// and tells successes from errors (a count, not a timing).
func TestMeasureCountsWhatHappened(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ok := Measure(context.Background(), "ok", 100, 500*time.Millisecond, Get(srv.URL+"/ok", nil))
	if ok.Sent != 50 || ok.Errors != 0 || ok.Dropped != 0 || ok.P50 <= 0 || ok.P99 < ok.P50 {
		t.Fatalf("ok: %+v", ok)
	}
	bad := Measure(context.Background(), "bad", 100, 200*time.Millisecond, Get(srv.URL+"/bad", nil))
	if bad.Sent != 20 || bad.Errors != 20 || bad.Throughput != 0 {
		t.Fatalf("bad: %+v", bad)
	}
	table := Table([]Result{ok, bad}, &ok)
	if !strings.Contains(table, "| ok | 100 | 50 | 0 | 0 |") || !strings.Contains(table, "| 1.0 | 1.0 |") {
		t.Fatalf("table:\n%s", table)
	}
}
