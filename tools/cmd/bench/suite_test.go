package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSuite is a gateway, the metrics of two apps and their sidecars, and
// a Redis with one topic, whose figures follow from the orders placed: each
// order costs the gateway's sidecar one invocation and 2 ms of CPU, orders'
// sidecar one invocation received, two state transactions and 4 ms, each
// app 1 ms; it puts three records on the topic "orders", which reach
// orders' sidecar deliverAfter later; its order.confirmed notification is
// created notifyAfter after the order. Its second login is refused (429),
// the first read of one customer's notifications (503) and every 20th
// order (503).
type fakeSuite struct {
	mu                        sync.Mutex
	placed                    map[string]time.Time // order ID -> when the gateway answered 201
	owner                     map[string]string    // order ID -> token
	logins                    int
	posts                     int  // orders asked: every 20th is answered 503
	shed                      bool // a read of notifications was answered 503
	deliverAfter, notifyAfter time.Duration
}

func (f *fakeSuite) orders() (n, delivered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, at := range f.placed {
		n++
		if time.Since(at) >= f.deliverAfter {
			delivered++
		}
	}
	return n, delivered
}

func (f *fakeSuite) gateway(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case r.URL.Path == "/healthz" || r.Method == "GET" && (r.URL.Path == "/api/me" || r.URL.Path == "/api/orders" || strings.HasPrefix(r.URL.Path, "/api/products")):
		fmt.Fprint(w, `{}`)
	case r.Method == "POST" && r.URL.Path == "/api/users":
		w.WriteHeader(201)
	case r.Method == "POST" && r.URL.Path == "/api/login":
		f.logins++
		if f.logins == 2 { // users' limit of logins per address: waited out
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		fmt.Fprintf(w, `{"token":"tok%d"}`, f.logins)
	case r.Method == "POST" && r.URL.Path == "/api/products":
		w.WriteHeader(201)
		fmt.Fprint(w, `{"id":"prd_1"}`)
	case r.Method == "POST" && r.URL.Path == "/api/orders":
		if f.posts++; f.posts%20 == 0 {
			w.WriteHeader(503)
			return
		}
		id := fmt.Sprintf("ord_%d", len(f.placed))
		f.placed[id], f.owner[id] = time.Now(), tok
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"id":%q,"status":"paid"}`, id)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/orders/"):
		id := strings.TrimPrefix(r.URL.Path, "/api/orders/")
		status := "paid"
		if time.Since(f.placed[id]) > f.notifyAfter {
			status = "confirmed"
		}
		fmt.Fprintf(w, `{"id":%q,"status":%q}`, id, status)
	case r.Method == "GET" && r.URL.Path == "/api/notifications":
		if tok == "tok5" && !f.shed { // the gateway shedding load: asked again
			f.shed = true
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		type note struct {
			EventType string    `json:"event_type"`
			OrderID   string    `json:"order_id"`
			CreatedAt time.Time `json:"created_at"`
		}
		var list []note
		for id, at := range f.placed {
			if f.owner[id] == tok && time.Since(at) > f.notifyAfter {
				list = append(list, note{"order.paid", id, at}, note{"order.confirmed", id, at.Add(f.notifyAfter)})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"notifications": list})
	default:
		w.WriteHeader(404)
	}
}

// metrics serves what one process's metrics say at this moment.
func (f *fakeSuite) metrics(text func(n, delivered int) string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n, d := f.orders()
		fmt.Fprint(w, text(n, d))
	}))
}

// redis answers XINFO STREAM orders with three records per order.
func (f *fakeSuite) redis(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var key string
					for range 7 {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						key = strings.TrimSpace(line)
					}
					if key != "orders" {
						fmt.Fprint(c, "-ERR no such key\r\n")
						continue
					}
					n, _ := f.orders()
					fmt.Fprintf(c, "*2\r\n$13\r\nentries-added\r\n:%d\r\n", 3*n)
				}
			}()
		}
	}()
	return l.Addr().String()
}

func port(t *testing.T, s *httptest.Server) int {
	t.Helper()
	p, err := strconv.Atoi(s.URL[strings.LastIndex(s.URL, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMeasureSuiteReportsEveryFigure runs the suite's part of the bench
// against fakeSuite, whose true figures are known, and checks each figure
// of the report: sidecar operations and CPU per order, the CPU's multiple
// of the floor, events per subscriber and topic with their lag,
// placed-to-confirmed one order at a time and during the stream, and the
// topic's records at the broker.
func TestMeasureSuiteReportsEveryFigure(t *testing.T) {
	f := &fakeSuite{placed: map[string]time.Time{}, owner: map[string]string{}, deliverAfter: 300 * time.Millisecond, notifyAfter: 50 * time.Millisecond}
	gw := httptest.NewServer(http.HandlerFunc(f.gateway))
	defer gw.Close()
	app := func(n, _ int) string {
		return fmt.Sprintf("process_cpu_seconds_total %g\nprocess_resident_memory_bytes 2e7\n", 0.001*float64(n))
	}
	gwApp, ordersApp := f.metrics(app), f.metrics(app)
	gwCar := f.metrics(func(n, _ int) string {
		return fmt.Sprintf(`process_cpu_seconds_total %g
process_resident_memory_bytes 1e8
dapr_runtime_service_invocation_req_sent_total{app_id="gateway",dst_app_id="orders",type="unary"} %d
`, 0.002*float64(n), n)
	})
	ordersCar := f.metrics(func(n, d int) string {
		return fmt.Sprintf(`process_cpu_seconds_total %g
process_resident_memory_bytes 1e8
dapr_runtime_service_invocation_req_recv_total{app_id="orders",src_app_id="gateway"} %d
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="transaction",success="true"} %d
dapr_component_pubsub_ingress_count{app_id="orders",component="events",namespace="",process_status="success",status="success",topic="orders"} %d
`, 0.004*float64(n), n, 2*n, 3*d)
	})
	for _, s := range []*httptest.Server{gwApp, ordersApp, gwCar, ordersCar} {
		defer s.Close()
	}
	dir := t.TempDir()
	runFile := filepath.Join(dir, "dapr.yaml")
	if err := os.WriteFile(runFile, []byte(fmt.Sprintf(`version: 1
apps:
  - appID: gateway
    appDirPath: .
    appPort: %d
    metricsPort: %d
  - appID: orders
    appDirPath: .
    appPort: %d
    metricsPort: %d
`, port(t, gwApp), port(t, gwCar), port(t, ordersApp), port(t, ordersCar))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pubsub.yaml"), []byte(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: events
spec:
  type: pubsub.redis
  metadata:
    - name: publishingScopes
      value: "orders=orders"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(dir, "secrets.json")
	if err := os.WriteFile(secrets, []byte(`{"admin-password":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	o := options{gateway: gw.URL, runFile: runFile, secrets: secrets, adminEmail: "admin@x", out: dir,
		rate: 20, duration: 200 * time.Millisecond, profile: "redis", resources: dir, redis: f.redis(t),
		streamRate: 40, streamDuration: time.Second, customers: 4, confirmOrders: 3,
		sampleEvery: 50 * time.Millisecond, quiet: 300 * time.Millisecond, settleMax: 10 * time.Second}
	rep := &report{Profile: "redis", FloorCPU: 0.5, Cores: 2}
	if err := measureSuite(context.Background(), o, rep); err != nil {
		t.Fatal(err)
	}
	st := rep.Stream
	// 43 orders asked in all before the stream ends: the 20th and the
	// 40th, both the stream's, fail.
	if st == nil || st.Orders != 38 || st.Result.Failures["503"] != 2 || !st.Settled {
		t.Fatalf("stream %+v: want 38 orders, 2 failed (503), settled", st)
	}

	ops := map[string]map[string]float64{}
	for _, s := range st.Ops {
		ops[s.App] = s.PerOrder
	}
	for _, c := range []struct {
		app, kind string
		want      float64
	}{
		{"gateway", "invoke sent", 1}, {"orders", "invoke received", 1}, {"orders", "state transaction", 2}, {"orders", "delivered", 3},
	} {
		if got := ops[c.app][c.kind]; got != c.want {
			t.Errorf("%s's sidecar, %s per order: %v, want %v", c.app, c.kind, got, c.want)
		}
	}
	cpu := map[string]float64{}
	for _, c := range st.CPU {
		cpu[c.Name] = c.MS
	}
	for name, want := range map[string]float64{"gateway daprd": 2, "orders daprd": 4, "gateway": 1, "orders": 1} {
		if got := cpu[name]; got < want*0.99 || got > want*1.01 {
			t.Errorf("CPU per order of %s: %.3f ms, want %v", name, got, want)
		}
	}
	if len(st.Events) != 1 {
		t.Fatalf("events %+v: want orders' deliveries of orders", st.Events)
	}
	e := st.Events[0]
	if e.App != "orders" || e.Topic != "orders" || e.Delivered != 114 || e.Expected != 114 || e.ExpectedFrom != "broker" {
		t.Errorf("events %+v: want 114 delivered of 114 records at the broker", e)
	}
	if e.PerSecond < 40 || e.PerSecond > 130 {
		t.Errorf("events per second during the stream: %.1f, want about 3 × 40 × 0.7", e.PerSecond)
	}
	if e.Reached < 0.25 || e.Reached > 0.7 || e.LastDelivery < 0.25 || e.LastDelivery > 0.7 {
		t.Errorf("lag: reached %.2f s, last delivery %.2f s after the last 201; want about 0.3 s", e.Reached, e.LastDelivery)
	}
	if len(st.Topics) != 1 || st.Topics[0].Name != "orders" || st.Topics[0].Records != 114 || st.Topics[0].PerOrder != 3 {
		t.Errorf("topics %+v: want orders, 114 records, 3 per order", st.Topics)
	}
	for what, l := range map[string]*latency{"during the stream": st.Latency, "one at a time": rep.ConfirmedNotified} {
		if l == nil || l.Found != l.Orders || l.Orders == 0 || l.P50 < 40 || l.P50 > 70 || l.P99 < l.P50 {
			t.Errorf("placed to notified %s: %+v, want every order, p50 about 50 ms", what, l)
		}
	}
	if _, ok := machineCPU(); ok && (st.Busy == nil || st.Busy.Suite < 0.007 || st.Busy.Suite > 0.5 || st.Busy.Machine <= 0) {
		// The fake's processes "spend" 8 ms per order: 38 orders over
		// about 1.5 s.
		t.Errorf("busy %+v: want the suite's processes at about 0.2 cores", st.Busy)
	}
	if rep.Confirmed == nil || rep.Confirmed.N != 3 {
		t.Errorf("placed to confirmed: %+v", rep.Confirmed)
	}

	md := rep.markdown(o)
	for _, want := range []string{
		"profile **redis**",
		"38 orders placed (2 errors: 503 × 2, 0 dropped)",
		"| gateway daprd | 2.00 | 4.0 |", // CPU per order and its multiple of the floor (0.5 ms)
		"| **one order, every process** | 8.00 | 16.0 |",
		"One order costs 16.0 times the CPU of a two-hop no-op call",
		"| sidecar | invoke sent | invoke received | state transaction | delivered |",
		"| orders |  | 1.00 | 2.00 | 3.00 |",
		"| **all sidecars** | 1.00 | 1.00 | 2.00 | 3.00 |",
		"| orders | - | 114 | 3.00 |", // the topic at the broker
		"| orders | orders |",         // events of a subscriber
		"114 (broker)",
		"Target (no subscriber more than 2s behind): met",
		"order.confirmed reaching notifications (its created_at) | 38 |",
		"order.confirmed reaching notifications (its created_at) | 3 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if !regexp.MustCompile(`\| 0\.[2-6]\d s \| 0\.[2-6]\d s \|`).MatchString(md) {
		t.Errorf("report lacks the lag of about 0.3 s:\n%s", md)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"floor_cpu_ms_per_call":0.5`, `"sidecar_ops_per_order"`, `"reached_expected_s"`, `"placed_to_notified_ms"`, `"profile":"redis"`, `"process":"gateway daprd"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("bench.json lacks %s", want)
		}
	}
}

// TestEventFiguresSaySubscriberThatFellShort: a subscriber that stops
// short of the topic's records never reaches them, and the target is
// missed; without the broker the expected count is the most any
// subscriber got.
func TestEventFiguresSaySubscriberThatFellShort(t *testing.T) {
	last := time.Now()
	at := func(ms int) time.Time { return last.Add(time.Duration(ms) * time.Millisecond) }
	a, b := subscriberKey("notifications", "orders"), subscriberKey("products", "orders")
	series := []countsAt{
		{at: at(10), delivered: map[string]float64{a: 50, b: 40}, records: map[string]int64{"orders": 100}},
		{at: at(1000), delivered: map[string]float64{a: 100, b: 60}, records: map[string]int64{"orders": 100}},
		{at: at(3000), delivered: map[string]float64{a: 100, b: 90}, records: map[string]int64{"orders": 100}},
	}
	es := eventFigures(map[string]float64{}, series, map[string]int64{}, last, time.Second)
	if len(es) != 2 || es[0].Reached != 1 || es[0].LastDelivery != 1 || es[1].Reached != -1 || es[1].LastDelivery != 3 || es[1].Expected != 100 {
		t.Fatalf("%+v", es)
	}
	if md := eventTable(es, false, 3); !strings.Contains(md, "**missed**, products / orders never reached") || !strings.Contains(md, "had not settled") {
		t.Errorf("%s", md)
	}
	for i := range series {
		series[i].records = nil
	}
	es = eventFigures(map[string]float64{}, series, nil, last, time.Second)
	if es[1].Expected != 100 || es[1].ExpectedFrom != "subscribers" {
		t.Fatalf("%+v", es[1])
	}
	es = eventFigures(map[string]float64{}, series[:2], nil, last, time.Second)
	if md := eventTable(es, true, 1); !strings.Contains(md, "**missed**") {
		t.Errorf("%s", md)
	}
	if !brokerCounts(map[string]float64{}, map[string]float64{a: 1}, map[string]int64{"orders": 5}, map[string]int64{"orders": 6}) ||
		brokerCounts(map[string]float64{}, map[string]float64{a: 1}, map[string]int64{"orders": 5}, map[string]int64{"orders": 5}) {
		t.Error("brokerCounts: a topic that did not grow while its subscriber got events is not the suite's broker")
	}
}

// TestBehindLeavesOutTheProducersSchedule: events published seconds after
// the stream (a shipment's steps) and delivered at once are not behind,
// however late they reach the subscriber; a subscriber that takes 3 s to
// get what the broker held is, and misses the target.
func TestBehindLeavesOutTheProducersSchedule(t *testing.T) {
	last := time.Now()
	at := func(ms int) time.Time { return last.Add(time.Duration(ms) * time.Millisecond) }
	quick, slow := subscriberKey("notifications", "shipments"), subscriberKey("audit", "shipments")
	series := []countsAt{
		{at: at(20), delivered: map[string]float64{quick: 10, slow: 10}, records: map[string]int64{"shipments": 10}},
		{at: at(1500), delivered: map[string]float64{quick: 10, slow: 10}, records: map[string]int64{"shipments": 40}},
		{at: at(2000), delivered: map[string]float64{quick: 40, slow: 10}, records: map[string]int64{"shipments": 40}},
		{at: at(4000), delivered: map[string]float64{quick: 60, slow: 20}, records: map[string]int64{"shipments": 60}},
		{at: at(4500), delivered: map[string]float64{quick: 60, slow: 40}, records: map[string]int64{"shipments": 60}},
		{at: at(5000), delivered: map[string]float64{quick: 60, slow: 60}, records: map[string]int64{"shipments": 60}},
	}
	es := eventFigures(map[string]float64{}, series, map[string]int64{}, last, time.Second)
	if len(es) != 2 || es[0].App != "audit" || es[1].App != "notifications" {
		t.Fatalf("%+v", es)
	}
	if es[1].Reached != 4 || es[1].Behind != 0.5 {
		t.Errorf("notifications: reached %.2f s, behind %.2f s; want 4 and 0.5 (each record got within a read)", es[1].Reached, es[1].Behind)
	}
	if es[0].Behind != 3 { // the 40 there at 1.5 s, all got at 4.5 s
		t.Errorf("audit: behind %.2f s; want 3", es[0].Behind)
	}
	if md := eventTable(es, true, 5); !strings.Contains(md, "**missed**, worst audit / shipments at 3.00 s") {
		t.Errorf("%s", md)
	}
	if md := eventTable(es[1:], true, 5); !strings.Contains(md, "met, worst notifications / shipments at 0.50 s") {
		t.Errorf("%s", md)
	}
}

func TestTopicsOfReadsTheScopes(t *testing.T) {
	got := topicsOf(filepath.Join("..", "..", "..", "components", "kafka-postgres"))
	want := []string{"defaultordersordersoutbox", "defaultpaymentspaymentsoutbox", "defaultshippingshipmentsoutbox",
		"orders", "orders-deadletter", "payments", "payments-deadletter", "shipments", "shipments-deadletter"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%v, want %v", got, want)
	}
}
