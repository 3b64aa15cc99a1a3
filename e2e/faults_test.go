package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The fault tests run in a pass of their own (see runSuite): they kill and
// restart processes of the suite and its Redis. Each asserts what a client
// sees while the fault lasts and that, once it is over, no order is lost,
// none is charged twice and the stock adds up. They report their figures
// (docs/resilience.md) through report.

// outcome is what one order request got.
type outcome struct {
	status  int
	orderID string // from the created order, or the pending message of a 503
	state   string // the order's status in a 201
	retry   string // Retry-After of a 503
	took    time.Duration
	refused bool // no answer: the connection was refused, nothing was sent
}

var pendingID = regexp.MustCompile(`order (ord_[0-9a-f]+) is pending`)

// tryOrder places an order and never fails the test: during a fault any
// answer may come, and the test judges them all afterwards.
func tryOrder(tok, productID string) outcome {
	return tryOrderAt(env.run.App("gateway").AppPort, tok, productID)
}

// tryOrderAt is tryOrder through the gateway instance listening on port;
// refused is set when that instance refused the connection (nothing sent).
func tryOrderAt(port int, tok, productID string) outcome {
	body := fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}]}`, productID)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/orders", port), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return outcome{status: 0, took: time.Since(start), refused: errors.Is(err, syscall.ECONNREFUSED)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o := outcome{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), took: time.Since(start)}
	if resp.StatusCode == 201 {
		var ord order
		_ = json.Unmarshal(b, &ord)
		o.orderID, o.state = ord.ID, ord.Status
	} else if m := pendingID.FindSubmatch(b); m != nil {
		o.orderID = string(m[1])
	}
	return o
}

// orderStream places orders, a few at a time, until ctx is done, and returns
// what each got.
func orderStream(ctx context.Context, tok, productID string, every time.Duration) func() []outcome {
	return stream(ctx, every, func() outcome { return tryOrder(tok, productID) })
}

// stream calls try every period, a few at a time, until ctx is done, and
// returns what each call got.
func stream(ctx context.Context, every time.Duration, try func() outcome) func() []outcome {
	var (
		mu   sync.Mutex
		outs []outcome
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-tick.C:
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				o := try()
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			}()
		}
	}()
	return func() []outcome {
		<-done
		return outs
	}
}

// tally counts outcomes by status (0: no answer).
func tally(outs []outcome) map[int]int {
	m := map[int]int{}
	for _, o := range outs {
		m[o.status]++
	}
	return m
}

// settled waits until every order of the user is paid, confirmed or
// cancelled, and returns them with the time it took.
func settled(t *testing.T, tok string, within time.Duration) ([]order, time.Duration) {
	t.Helper()
	start := time.Now()
	var list struct{ Orders []order }
	eventually(t, within, func() string {
		status, reply := gateway(t, tok).call(t, "GET", "/api/orders", nil)
		if status != 200 {
			return fmt.Sprintf("list: %d %s", status, reply)
		}
		list.Orders = nil
		_ = json.Unmarshal(reply, &list)
		n := 0
		for _, o := range list.Orders {
			if o.Status == "pending" {
				n++
			}
		}
		if n > 0 {
			return fmt.Sprintf("%d of %d orders still pending", n, len(list.Orders))
		}
		return ""
	})
	return list.Orders, time.Since(start)
}

// loss is what checkNothingLost found.
type loss struct {
	paid, lost, chargedTwice int
}

// checkNothingLost asserts that every order a client was told about exists,
// that each paid order was charged exactly once and no other order was
// charged, and that the product's stock is what the paid orders left.
func checkNothingLost(t *testing.T, outs []outcome, final []order, p product) loss {
	t.Helper()
	var l loss
	byID := map[string]order{}
	for _, o := range final {
		byID[o.ID] = o
		if o.Status == "paid" || o.Status == "confirmed" {
			l.paid++
		}
	}
	for _, o := range outs {
		if o.orderID != "" {
			if _, ok := byID[o.orderID]; !ok {
				l.lost++
				t.Errorf("order %s (answered %d) is lost", o.orderID, o.status)
			}
		}
		if o.status >= 500 && o.status != 503 || o.status == 0 {
			t.Errorf("a client got %d: faults must answer 503", o.status)
		}
	}
	// 75 s: an event held by a sidecar that stopped (a payment's outbox
	// message, a replica killed or rolled) is redelivered to another after
	// the Redis pub/sub's processingTimeout (30 s), checked every 5 s; a
	// rolling restart may do that to events of several instances in turn.
	eventually(t, 75*time.Second, func() string {
		charges := map[string]map[string]bool{}
		refunded := map[string]bool{}
		for _, ev := range env.probe.all() {
			var d struct {
				Type     string `json:"type"`
				OrderID  string `json:"order_id"`
				ChargeID string `json:"charge_id"`
			}
			if ev.Topic != "payments" || json.Unmarshal(ev.Data, &d) != nil {
				continue
			}
			if _, ours := byID[d.OrderID]; !ours {
				continue
			}
			if d.Type == "payment.refunded" {
				refunded[d.OrderID] = true
			}
			if d.Type != "payment.succeeded" {
				continue
			}
			if charges[d.OrderID] == nil {
				charges[d.OrderID] = map[string]bool{}
			}
			// By event, not by charge ID: the charge ID derives from the
			// order (its idempotency key), so a second successful charge of
			// one order would share it. Each successful charge is its own
			// outbox transaction and event; a redelivery keeps the event ID.
			charges[d.OrderID][ev.ID] = true
		}
		l.chargedTwice = 0
		for _, o := range final {
			if len(charges[o.ID]) > 1 {
				l.chargedTwice++
			}
		}
		for _, o := range final {
			n := len(charges[o.ID])
			switch {
			case (o.Status == "paid" || o.Status == "confirmed") && n == 0:
				return fmt.Sprintf("no payment.succeeded event yet for paid order %s", o.ID)
			case o.Status == "cancelled" && n > 0:
				// An order whose charge succeeded must not end cancelled;
				// refunded or not tells which path cancelled it after.
				return fmt.Sprintf("cancelled order %s (%q) was charged (refunded: %v)", o.ID, o.CancelReason, refunded[o.ID])
			}
		}
		if s := stockOf(t, p.ID); s != p.Stock-l.paid {
			return fmt.Sprintf("stock %d, want %d - %d paid", s, p.Stock, l.paid)
		}
		return ""
	})
	if l.chargedTwice > 0 {
		t.Errorf("%d orders charged more than once", l.chargedTwice)
	}
	return l
}

// breakerState reads the state orders' breakers for dep show on /metrics,
// the most open of its instances' (0 closed, 1 half-open, 2 open; -1
// unknown): each replica has a breaker of its own.
func breakerState(dep string) float64 {
	state := -1.0
	for _, a := range env.run.Instances("orders") {
		if vs, err := samples(a.AppPort, "circuit_breaker_state", `"`+dep+`"`); err == nil && len(vs) > 0 {
			state = max(state, vs[0])
		}
	}
	return state
}

// killAll ends source ("app", "daprd") of every instance of app, as
// Run.Kill does: the fault is the whole service down, whatever its replicas.
func killAll(t *testing.T, app, source string) {
	t.Helper()
	for _, a := range env.run.Instances(app) {
		if err := env.run.KillInstance(app, a.Instance, source); err != nil {
			t.Fatal(err)
		}
	}
}

// restartAll brings back what killAll ended.
func restartAll(t *testing.T, app, source string) {
	t.Helper()
	for _, a := range env.run.Instances(app) {
		if err := env.run.RestartInstance(context.Background(), app, a.Instance, source); err != nil {
			t.Fatal(err)
		}
	}
}

// report logs a test's figures and appends them as one JSON line to
// $E2E_REPORT when it is set (the source of docs/resilience.md).
func report(t *testing.T, figures map[string]any) {
	t.Helper()
	figures["test"] = t.Name()
	b, _ := json.Marshal(figures)
	t.Logf("figures: %s", b)
	if path := os.Getenv("E2E_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer f.Close()
		_, _ = f.Write(append(b, '\n'))
	}
}

// TestFaultPaymentsKilled: payments dies, every instance of it, during a
// stream of orders. Orders opens its breaker and answers 503 with
// Retry-After at once, the rest of the suite keeps serving, and after
// payments returns every pending order reaches a final state, none charged
// twice.
func TestFaultPaymentsKilled(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 700, 1000)
	ctx, stop := context.WithCancel(context.Background())
	results := orderStream(ctx, tok, p.ID, 50*time.Millisecond)

	time.Sleep(2 * time.Second)
	killAll(t, "payments", "app")
	killedAt := time.Now()
	var sawOpen bool
	eventually(t, 20*time.Second, func() string {
		if breakerState("payments") == 2 {
			sawOpen = true
			return ""
		}
		return "orders' payments breaker is not open"
	})
	// While it is open the rest of the suite serves as usual.
	gateway(t, "").mustCall(t, "GET", "/api/products/"+p.ID, nil, 200, nil)
	time.Sleep(2 * time.Second)
	restartAll(t, "payments", "app")
	back := time.Now()
	time.Sleep(2 * time.Second)
	stop()
	outs := results()

	final, _ := settled(t, tok, 120*time.Second)
	recovered := time.Since(back)
	l := checkNothingLost(t, outs, final, p)
	counts := tally(outs)
	fast503, with, pending := 0, 0, 0
	for _, o := range outs {
		if o.status == 503 {
			if o.retry != "" {
				with++
			}
			if o.took < time.Second {
				fast503++
			}
			if o.orderID != "" {
				pending++ // checkNothingLost found each of them settled
			}
		}
	}
	if counts[503] == 0 || with != counts[503] {
		t.Errorf("503 answers %d, with Retry-After %d: a down dependency must give 503 and Retry-After", counts[503], with)
	}
	if pending == 0 {
		t.Errorf("no 503 named its pending order: clients cannot tell an order kept for later from one never stored")
	}
	report(t, map[string]any{
		"orders_sent": len(outs), "answers": counts, "answers_503_pending": pending, "orders_stored": len(final), "paid": l.paid,
		"cancelled": len(final) - l.paid, "lost": l.lost, "charged_twice": l.chargedTwice, "breaker_opened": sawOpen,
		"answers_503_under_1s": fast503, "payments_down_s": back.Sub(killedAt).Round(100 * time.Millisecond).Seconds(),
		"all_final_after_restart_s": recovered.Round(100 * time.Millisecond).Seconds(),
	})
}

// TestFaultRefundOutlastsPaymentsDown: a charge that settles for an order
// already cancelled is refunded by orders when its payment.succeeded
// arrives. Here the charge is made (straight to payments, under the order's
// key) for an order cancelled out of stock, while orders is down; payments
// goes down before orders comes back, so the refund cannot be made when the
// event arrives. The event must come back until it can, never go to
// payments-deadletter (a customer charged for a cancelled order for good:
// the delivery's retries run out in seconds), and the charge must end
// refunded once payments is back.
func TestFaultRefundOutlastsPaymentsDown(t *testing.T) {
	admin := adminToken(t)
	u, tok := signUp(t)
	p := newProduct(t, admin, 700, 0)
	status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1})
	if status != 201 || o.Status != "cancelled" {
		t.Fatalf("order for a product out of stock: %d %s", status, reply)
	}

	killAll(t, "orders", "app")
	var ch struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	invoke(t, "payments").mustCall(t, "POST", "/charges", map[string]any{"order_id": o.ID, "user_id": u.ID,
		"amount": 700, "currency": "EUR", "idempotency_key": o.ID}, 201, &ch)
	if ch.Status != "succeeded" {
		t.Fatalf("charge %+v", ch)
	}
	killAll(t, "payments", "app")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			restartAll(t, "payments", "app")
		}
	})
	before := delivered(t, "orders", "payments", `process_status="retry"`)
	restartAll(t, "orders", "app")
	eventually(t, 75*time.Second, func() string {
		if delivered(t, "orders", "payments", `process_status="retry"`) == before {
			return "orders has not been handed the charge's event (and refused it) yet"
		}
		return ""
	})
	var settled cloudEvent
	for _, ev := range env.probe.events("payments", o.ID) {
		if ev.Type == "payment.succeeded" {
			settled = ev
		}
	}
	if settled.ID == "" {
		t.Fatal("the probe saw no payment.succeeded for the charge")
	}
	// Past the delivery's retries (deliverRetry: 4 attempts, 23.5 s at
	// most): dead-lettered by now, if ever.
	time.Sleep(30 * time.Second)
	if deadLettered(settled.ID) {
		t.Fatalf("the charge of cancelled order %s went to payments-deadletter while payments was down: never refunded", o.ID)
	}
	restartAll(t, "payments", "app")
	restarted = true
	// Redis hands an unacknowledged event out again after processingTimeout
	// (30 s), checked every 5 s; orders' breaker half-opens after 10 s.
	eventually(t, 90*time.Second, func() string {
		if deadLettered(settled.ID) {
			t.Fatalf("the charge of cancelled order %s went to payments-deadletter: never refunded", o.ID)
		}
		// Raw: payments' sidecar answers 500 until its app is healthy again.
		pay := invoke(t, "payments")
		code, body := rawCall(t, "GET", pay.base+"/charges/"+ch.ID, "", pay.sidecar)
		if code != 200 || json.Unmarshal(body, &ch) != nil {
			return fmt.Sprintf("payments answered the charge's read with %d %s", code, body)
		}
		if ch.Status != "refunded" {
			return "the charge of the cancelled order is " + ch.Status
		}
		return ""
	})
}

// deadLettered reports whether the probe saw event id on payments-deadletter.
func deadLettered(id string) bool {
	for _, ev := range env.probe.all() {
		if ev.Topic == "payments-deadletter" && ev.ID == id {
			return true
		}
	}
	return false
}

// TestFaultOrdersSidecarKilled: orders' daprd dies (every instance's) and
// comes back during a stream of orders. Clients get 503 meanwhile; orders
// that were in flight are resumed and settle.
func TestFaultOrdersSidecarKilled(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 500, 1000)
	ctx, stop := context.WithCancel(context.Background())
	results := orderStream(ctx, tok, p.ID, 50*time.Millisecond)

	time.Sleep(2 * time.Second)
	killAll(t, "orders", "daprd")
	killedAt := time.Now()
	time.Sleep(3 * time.Second)
	restartAll(t, "orders", "daprd")
	back := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	outs := results()

	final, _ := settled(t, tok, 120*time.Second)
	recovered := time.Since(back)
	l := checkNothingLost(t, outs, final, p)
	counts := tally(outs)
	if counts[503] == 0 {
		t.Errorf("answers %v: no 503 while orders' sidecar was down", counts)
	}
	// After the restart new orders go through again.
	if o := tryOrder(tok, p.ID); o.status != 201 || o.state != "paid" {
		t.Errorf("order after the sidecar's restart: %+v", o)
	}
	report(t, map[string]any{
		"orders_sent": len(outs), "answers": counts, "orders_stored": len(final), "paid": l.paid,
		"cancelled": len(final) - l.paid, "lost": l.lost, "charged_twice": l.chargedTwice,
		"sidecar_down_s":            back.Sub(killedAt).Round(100 * time.Millisecond).Seconds(),
		"all_final_after_restart_s": recovered.Round(100 * time.Millisecond).Seconds(),
	})
}

// TestFaultRedisRestarted: the Redis that holds every store and the event
// bus goes down and comes back. Clients get 503 (never 500) meanwhile; then
// orders, events and notifications flow again with no manual step, and what
// was stored before is still there.
func TestFaultRedisRestarted(t *testing.T) {
	admin := adminToken(t)
	u, tok := signUp(t)
	p := newProduct(t, admin, 900, 1000)
	status, before, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1})
	if status != 201 || before.Status != "paid" {
		t.Fatalf("order before the restart: %d %s", status, reply)
	}

	env.redis.stop()
	down := time.Now()
	var during []outcome
	for range 5 {
		during = append(during, tryOrder(tok, p.ID))
	}
	for _, o := range during {
		if o.status != 503 {
			t.Errorf("order while Redis is down: %+v, want 503", o)
		}
	}
	if err := env.redis.start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()

	var after outcome
	eventually(t, 60*time.Second, func() string {
		after = tryOrder(tok, p.ID)
		if after.status != 201 || after.state != "paid" {
			return fmt.Sprintf("order after the restart: %+v", after)
		}
		return ""
	})
	firstOrder := time.Since(up)
	// The event bus works again: the new order's notification is recorded.
	eventually(t, 60*time.Second, func() string {
		status, reply := invoke(t, "notifications").as(u.ID).call(t, "GET", "/notifications", nil)
		if status == 200 && bytes.Contains(reply, []byte(after.orderID)) {
			return ""
		}
		return fmt.Sprintf("no notification for %s yet: %d %s", after.orderID, status, reply)
	})
	eventsBack := time.Since(up)
	var got order
	gateway(t, tok).mustCall(t, "GET", "/api/orders/"+before.ID, nil, 200, &got)
	if got.Status != "paid" && got.Status != "confirmed" {
		t.Fatalf("order from before the restart: %+v", got)
	}
	final, _ := settled(t, tok, 120*time.Second)
	l := checkNothingLost(t, append(during, after), final, p)
	report(t, map[string]any{
		"orders_while_down": len(during), "answers_while_down": tally(during), "redis_down_s": up.Sub(down).Round(100 * time.Millisecond).Seconds(),
		"first_paid_order_after_s":   firstOrder.Round(100 * time.Millisecond).Seconds(),
		"notifications_back_after_s": eventsBack.Round(100 * time.Millisecond).Seconds(),
		"orders_stored":              len(final), "paid": l.paid, "lost": l.lost, "charged_twice": l.chargedTwice,
	})
}
