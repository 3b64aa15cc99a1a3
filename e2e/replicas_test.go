package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The replica tests run in the fault pass, which starts two instances of
// every service (replicasOf): one instance is killed or restarted while the
// other serves. Clients reach the gateway's instances in turn, as through a
// load balancer in front of them (balanced).

// needReplicas skips a test that needs two instances of every service.
func needReplicas(t *testing.T) {
	t.Helper()
	if n := len(env.run.Instances("orders")); n < 2 {
		t.Skipf("runs with two replicas of every service or more (this pass: %d; E2E_REPLICAS)", n)
	}
}

// next is the gateway instance balanced tries first.
var next atomic.Int64

// balanced sends try to the gateway's instances in turn, as a load
// balancer in front of them would: it skips an instance whose /readyz
// failed at the last look (ready; nil: none skipped), and goes on to the
// next one when an instance refuses the connection (nothing was sent).
func balanced(ready func(port int) bool, try func(port int) outcome) outcome {
	gws := env.run.Instances("gateway")
	first := int(next.Add(1))
	var o outcome
	for pass := range 2 { // the second pass takes every instance, ready or not
		for i := range gws {
			port := gws[(first+i)%len(gws)].AppPort
			if pass == 0 && ready != nil && !ready(port) {
				continue
			}
			if o = try(port); !o.refused {
				return o
			}
		}
	}
	return o
}

// watchReadiness looks at every gateway instance's /readyz every 100 ms
// until ctx is done, as a Kubernetes Service does through its probes, and
// returns what it saw last.
func watchReadiness(ctx context.Context) func(port int) bool {
	var notReady sync.Map // port -> struct{}
	go func() {
		c := &http.Client{Timeout: 500 * time.Millisecond}
		for ctx.Err() == nil {
			for _, gw := range env.run.Instances("gateway") {
				resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", gw.AppPort))
				if err == nil {
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == http.StatusOK {
					notReady.Delete(gw.AppPort)
				} else {
					notReady.Store(gw.AppPort, struct{}{})
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func(port int) bool {
		_, not := notReady.Load(port)
		return !not
	}
}

// tryGet is one GET of path on the gateway at port with token, as an outcome.
func tryGet(port int, token, path string) outcome {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return try(req)
}

// try sends req and tells what came back: the status, or no answer.
func try(req *http.Request) outcome {
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return outcome{took: time.Since(start), refused: isRefused(err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return outcome{status: resp.StatusCode, took: time.Since(start)}
}

// isRefused reports whether err is a refused connection.
func isRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), syscall.ECONNREFUSED.Error())
}

// TestFaultReplicaKilledMidStream: during a stream of orders, one instance
// after another is killed (kill -9 of its app or its daprd, as an OOM kill
// or a node failure would) and the runner brings it back. Clients may get
// 503 for the calls in hand when it died, but no order, charge, stock unit
// or notification is lost or made twice.
func TestFaultReplicaKilledMidStream(t *testing.T) {
	needReplicas(t)
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 300, 1000)
	ctx, stop := context.WithCancel(context.Background())
	results := stream(ctx, 100*time.Millisecond, func() outcome {
		return balanced(nil, func(port int) outcome { return tryOrderAt(port, tok, p.ID) })
	})
	victims := []struct{ app, source string }{
		{"orders", "app"}, {"payments", "daprd"}, {"products", "app"}, {"orders", "daprd"},
		{"notifications", "app"}, {"payments", "app"}, {"products", "daprd"}, {"shipping", "app"},
		{"gateway", "app"}, {"shipping", "daprd"},
	}
	time.Sleep(2 * time.Second)
	for _, v := range victims {
		n := len(env.run.Instances(v.app)) // the last instance
		crashes := len(env.run.Crashes())
		pid := env.run.PID(v.app, n, v.source)
		if pid == 0 {
			t.Fatalf("%s %d %s is not running", v.app, n, v.source)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		eventually(t, 60*time.Second, func() string {
			cs := env.run.Crashes()
			if len(cs) <= crashes || cs[crashes].Healthy.IsZero() {
				return fmt.Sprintf("%s %d %s is not back yet", v.app, n, v.source)
			}
			return ""
		})
		time.Sleep(time.Second)
	}
	stop()
	outs := results()
	final, took := settled(t, tok, 120*time.Second)
	l := checkNoneTwice(t, tok, outs, final, p)
	counts := tally(outs)
	report(t, map[string]any{
		"orders_sent": len(outs), "answers": counts, "kills": len(victims), "orders_stored": len(final), "paid": l.paid,
		"lost": l.lost, "charged_twice": l.chargedTwice, "orders_made_twice": l.madeTwice, "notifications_twice": l.notifiedTwice,
		"all_final_after_s": took.Round(100 * time.Millisecond).Seconds(),
	})
}

// TestFaultRollingRestart: every instance of every service is restarted
// gracefully, one at a time, as a rolling update does (runner.Roll), under a
// steady stream of orders, catalog reads, logins and notification reads.
// Not one request fails, and nothing is lost or made twice.
func TestFaultRollingRestart(t *testing.T) {
	needReplicas(t)
	admin := adminToken(t)
	// Orders from three customers, each on a product of its own: a
	// customer's order list holds its newest 500 (orders' index), and a
	// roll that takes two minutes on a loaded machine makes more than that
	// at one stream's pace.
	type buyer struct {
		tok    string
		p      product
		orders func() []outcome
	}
	buyers := make([]buyer, 3)
	for i := range buyers {
		_, buyers[i].tok = signUp(t)
		buyers[i].p = newProduct(t, admin, 400, 1000)
	}
	// The reads as other customers, whose notifications stay few; logins
	// take turns among them (one login per account at a time).
	var readers []user
	for range 4 {
		u, _ := signUp(t)
		readers = append(readers, u)
	}
	_, readerTok := signUp(t)
	ctx, stop := context.WithCancel(context.Background())
	ready := watchReadiness(ctx)
	for i := range buyers {
		b := &buyers[i]
		b.orders = stream(ctx, 300*time.Millisecond, func() outcome {
			return balanced(ready, func(port int) outcome { return tryOrderAt(port, b.tok, b.p.ID) })
		})
	}
	var turn atomic.Int64
	reads := stream(ctx, 100*time.Millisecond, func() outcome {
		n := turn.Add(1)
		return balanced(ready, func(port int) outcome {
			switch n % 3 {
			case 0:
				return tryGet(port, "", "/api/products/"+buyers[0].p.ID)
			case 1:
				return tryGet(port, readerTok, "/api/notifications")
			default:
				return tryLogin(port, readers[n/3%int64(len(readers))].Email)
			}
		})
	})
	time.Sleep(2 * time.Second)
	start := time.Now()
	if err := env.run.Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	rolled := time.Since(start)
	time.Sleep(2 * time.Second)
	stop()
	got := reads()
	var outs []outcome
	var l twice
	var took time.Duration
	for _, b := range buyers {
		bo := b.orders()
		outs = append(outs, bo...)
		final, settledIn := settled(t, b.tok, 120*time.Second)
		took = max(took, settledIn)
		bl := checkNoneTwice(t, b.tok, bo, final, b.p)
		l.paid, l.lost, l.chargedTwice = l.paid+bl.paid, l.lost+bl.lost, l.chargedTwice+bl.chargedTwice
		l.madeTwice, l.notifiedTwice = l.madeTwice+bl.madeTwice, l.notifiedTwice+bl.notifiedTwice
	}
	for _, o := range append(append([]outcome(nil), outs...), got...) {
		if o.status != 200 && o.status != 201 {
			t.Errorf("a request failed during the rolling restart: %d after %s (0: no answer)", o.status, o.took.Round(time.Millisecond))
		}
	}
	var slowest time.Duration
	for _, o := range append(outs, got...) {
		slowest = max(slowest, o.took)
	}
	report(t, map[string]any{
		"instances_rolled": len(env.run.AllInstances()) - len(env.run.Instances("e2e-probe")), "roll_s": rolled.Round(100 * time.Millisecond).Seconds(),
		"orders_sent": len(outs), "order_answers": tally(outs), "reads_sent": len(got), "read_answers": tally(got),
		"slowest_request_s": slowest.Round(10 * time.Millisecond).Seconds(), "paid": l.paid, "lost": l.lost,
		"charged_twice": l.chargedTwice, "orders_made_twice": l.madeTwice, "notifications_twice": l.notifiedTwice,
		"all_final_after_s": took.Round(100 * time.Millisecond).Seconds(),
	})
}

// tryLogin logs email in (the signUp password) through the gateway at port.
func tryLogin(port int, email string) outcome {
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/login", port), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return try(req)
}

// twice is what checkNoneTwice found, beyond checkNothingLost's.
type twice struct {
	loss
	madeTwice, notifiedTwice int
}

// checkNoneTwice is checkNothingLost for a fault where a client may get no
// answer (its gateway instance died with its request in hand), and checks
// what a retry inside the suite could duplicate: no more orders stored than
// the requests that got no order ID could explain, and no event of an order
// notified twice, while each paid order's notification arrives and each
// confirmed order is shipped and delivered (a notification of each step).
func checkNoneTwice(t *testing.T, tok string, outs []outcome, final []order, p product) twice {
	t.Helper()
	var answered []outcome
	seen, unanswered := map[string]bool{}, 0
	for _, o := range outs {
		if o.status == 0 {
			unanswered++
			continue
		}
		answered = append(answered, o)
		if o.orderID != "" {
			seen[o.orderID] = true
		} else if o.status != 201 {
			unanswered++ // a 503 without an order ID may still have stored one
		}
	}
	l := twice{loss: checkNothingLost(t, answered, final, p)}
	if extra := len(final) - len(seen); extra > unanswered {
		l.madeTwice = extra - unanswered
		t.Errorf("%d orders stored that no request explains: %d stored, %d IDs answered, %d requests without one",
			l.madeTwice, len(final), len(seen), unanswered)
	}
	// Every notification of the user is kept (the suite's MAX_PER_USER is
	// above what a test makes).
	per := map[[2]string]int{}
	// 90 s: a confirmation whose delivery died with a shipping instance
	// (its app or its sidecar killed) and outlived the delivery retries is
	// delivered again only once Redis hands it to another consumer
	// (processingTimeout, 30 s), and its steps follow.
	eventually(t, 90*time.Second, func() string {
		var list struct{ Notifications []notification }
		status, reply := gateway(t, tok).call(t, "GET", "/api/notifications", nil)
		if status != 200 {
			return fmt.Sprintf("notifications: %d %.200s", status, reply)
		}
		_ = json.Unmarshal(reply, &list)
		clear(per)
		for _, n := range list.Notifications {
			per[[2]string{n.OrderID, n.EventType}]++
		}
		for _, o := range final {
			if (o.Status == "paid" || o.Status == "confirmed") && per[[2]string{o.ID, "order.paid"}] == 0 {
				return fmt.Sprintf("no order.paid notification yet for %s", o.ID)
			}
			for _, step := range []string{"shipment.created", "shipment.shipped", "shipment.delivered"} {
				if o.Status == "confirmed" && per[[2]string{o.ID, step}] == 0 {
					return fmt.Sprintf("no %s notification yet for %s", step, o.ID)
				}
			}
		}
		return ""
	})
	for k, n := range per {
		if n > 1 {
			l.notifiedTwice++
			t.Errorf("order %s notified %d times of %s", k[0], n, k[1])
		}
	}
	return l
}
