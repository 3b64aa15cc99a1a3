package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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
		_, _ = w.Write([]byte("reply"))
	}))
	defer srv.Close()
	ok := Measure(context.Background(), "ok", 100, 500*time.Millisecond, Get(srv.URL+"/ok", nil))
	if ok.Sent != 50 || ok.Done != 50 || ok.Errors != 0 || ok.Dropped != 0 || ok.P50 <= 0 || ok.P99 < ok.P50 {
		t.Fatalf("ok: %+v", ok)
	}
	// Reply gets every successful reply's body, once per request.
	var mu sync.Mutex
	seen := map[int]string{}
	start := time.Now()
	req := Get(srv.URL+"/ok", nil)
	req.Reply = func(i int, body []byte, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if at.Before(start) {
			t.Errorf("reply %d at %v, before the start", i, at)
		}
		seen[i] = string(body)
	}
	if r := Measure(context.Background(), "reply", 100, 200*time.Millisecond, req); r.Done != 20 || len(seen) != 20 || seen[19] != "reply" {
		t.Fatalf("replies %v for %+v", seen, r)
	}
	bad := Measure(context.Background(), "bad", 100, 200*time.Millisecond, Get(srv.URL+"/bad", nil))
	if bad.Sent != 20 || bad.Errors != 20 || bad.Done != 0 || bad.Throughput != 0 || bad.Failures["503"] != 20 || len(bad.Failures) != 1 {
		t.Fatalf("bad: %+v", bad)
	}
	table := Table([]Result{ok, bad}, &ok)
	if !strings.Contains(table, "| ok | 100 | 50 | 0 | 0 |") || !strings.Contains(table, "| 1.0 | 1.0 |") {
		t.Fatalf("table:\n%s", table)
	}
}

// TestPerOp: the CPU between two snapshots divided by the operations, in ms.
func TestPerOp(t *testing.T) {
	d, r := PerOp(CPUSnapshot{Daprd: 10, Redis: 2}, CPUSnapshot{Daprd: 12.5, Redis: 2.5}, 1000)
	if d != 2.5 || r != 0.5 {
		t.Fatalf("per op: daprd %v ms, redis %v ms", d, r)
	}
	if d, r := PerOp(CPUSnapshot{}, CPUSnapshot{Daprd: 1, Redis: 1}, 0); d != 0 || r != 0 {
		t.Fatalf("no operations: %v %v", d, r)
	}
}

func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:0.750000\r\nused_cpu_sys_children:9.000000\r\nused_cpu_user_children:9.000000\r\n"
	if v, err := parseRedisCPU(info); err != nil || v != 2 {
		t.Fatalf("%v %v", v, err)
	}
	if _, err := parseRedisCPU("# CPU\r\nused_cpu_sys:1\r\n"); err == nil {
		t.Fatal("half an INFO cpu passed")
	}
	if _, err := parseRedisCPU("used_cpu_sys:x\r\nused_cpu_user:1\r\n"); err == nil {
		t.Fatal("a bad number passed")
	}
}

// fakeRedis serves one connection on loopback with serve (a fake Redis
// speaking RESP) and returns its address.
func fakeRedis(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return l.Addr().String()
}

// TestRedisCPU reads INFO cpu from a fake server speaking RESP.
func TestRedisCPU(t *testing.T) {
	addr := fakeRedis(t, func(c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		if !strings.Contains(string(buf[:n]), "INFO") {
			_, _ = c.Write([]byte("-ERR want INFO\r\n"))
			return
		}
		body := "# CPU\r\nused_cpu_sys:0.5\r\nused_cpu_user:0.25\r\n"
		fmt.Fprintf(c, "$%d\r\n%s\r\n", len(body), body)
	})
	if v, err := RedisCPU(context.Background(), addr); err != nil || v != 0.75 {
		t.Fatalf("%v %v", v, err)
	}
}

// TestWaitDelivered stops when every event arrived, or when the count stood
// still for the quiet time.
func TestWaitDelivered(t *testing.T) {
	var n atomic.Int64
	n.Store(5)
	go func() {
		for range 10 {
			time.Sleep(5 * time.Millisecond)
			n.Add(1)
		}
	}()
	if got := waitDelivered(context.Background(), &n, 5, 10, 5*time.Second); got != 10 {
		t.Fatalf("delivered %d, want 10", got)
	}
	t0 := time.Now()
	if got := waitDelivered(context.Background(), &n, 5, 20, 100*time.Millisecond); got != 10 || time.Since(t0) > 2*time.Second {
		t.Fatalf("delivered %d after %s", got, time.Since(t0))
	}
}

// TestOpsTable: each kind's CPU per operation and its ratio to the two-hop
// invocation, which comes first.
func TestOpsTable(t *testing.T) {
	two := Result{Name: "two", Rate: 200, Done: 2000, P50: 1.5, CPU: 2}
	costs := []OpCost{
		{Kind: "state get", Counted: "bench-ops-pub daprd", Ops: 2000, DaprdMS: 0.5, RedisMS: 0.05, Result: Result{Rate: 200, P50: 0.8}},
		{Kind: "outbox event", Counted: "both daprds", Ops: 490, DaprdMS: 5, Result: Result{Rate: 50, Errors: 1, P50: 3}, Note: "490 of 500 delivered"},
		{Kind: "publish", Counted: "both daprds", Note: "no metrics"},
	}
	table := OpsTable(two, costs)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), table)
	}
	for i, want := range []string{
		"| invocation, two hops (no-op) | both daprds | 2000 | 200 | 0 | 1.50 | 2.000 | 1.00 | - |",
		"| state get | bench-ops-pub daprd | 2000 | 200 | 0 | 0.80 | 0.500 | 0.25 | 0.050 |",
		"| outbox event (490 of 500 delivered) | both daprds | 490 | 50 | 1 | 3.00 | 5.000 | 2.50 | - |",
		"| publish (no metrics) | both daprds | 0 | 0 | 0 | 0.00 | - |  | - |",
	} {
		if lines[i+2] != want {
			t.Errorf("row %d:\n got %s\nwant %s", i, lines[i+2], want)
		}
	}
	// Without the invocation's CPU there is no ratio.
	if !strings.Contains(OpsTable(Result{}, costs[:1]), "| 0.500 |  | 0.050 |") {
		t.Errorf("ratio without a floor:\n%s", OpsTable(Result{}, costs[:1]))
	}
	if md := OpsMarkdown(two, costs); !strings.HasPrefix(md, "### daprd CPU per operation") || !strings.HasSuffix(md, table) {
		t.Errorf("markdown:\n%s", md)
	}
}
