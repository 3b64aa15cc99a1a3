package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests drive the suite as a client would, through the gateway, and
// look behind it through the sidecars. They are not parallel: some change the
// payment provider's behaviour for everyone (see TestZContracts too).

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

type product struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Price    int64  `json:"price"`
	Currency string `json:"currency"`
	Stock    int    `json:"stock"`
}

type orderItem struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

type order struct {
	ID           string      `json:"id"`
	UserID       string      `json:"user_id"`
	Items        []orderItem `json:"items"`
	Total        int64       `json:"total"`
	Currency     string      `json:"currency"`
	Status       string      `json:"status"`
	PaymentID    string      `json:"payment_id"`
	CancelReason string      `json:"cancel_reason"`
}

type notification struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	EventType string `json:"event_type"`
	OrderID   string `json:"order_id"`
	Message   string `json:"message"`
}

const password = "correct horse battery"

// signUp creates a customer and returns it with a token.
func signUp(t *testing.T) (user, string) {
	t.Helper()
	email := "e2e-" + randomHex(6) + "@example.com"
	var u user
	gateway(t, "").mustCall(t, "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "E2E Customer"}, 201, &u)
	return u, login(t, email, password)
}

func login(t *testing.T, email, pw string) string {
	t.Helper()
	var l struct {
		Token     string `json:"token"`
		TokenType string `json:"token_type"`
	}
	gateway(t, "").mustCall(t, "POST", "/api/login", map[string]string{"email": email, "password": pw}, 200, &l)
	if l.Token == "" || l.TokenType != "Bearer" {
		t.Fatalf("login reply %+v", l)
	}
	return l.Token
}

// adminToken logs in as the admin users bootstraps from the secret store.
func adminToken(t *testing.T) string {
	t.Helper()
	var tok string
	eventually(t, 30*time.Second, func() string {
		status, reply := gateway(t, "").call(t, "POST", "/api/login",
			map[string]string{"email": adminEmail, "password": env.secrets["admin-password"]})
		if status != 200 {
			return fmt.Sprintf("admin login: %d %s", status, reply)
		}
		var l struct{ Token string }
		_ = json.Unmarshal(reply, &l)
		tok = l.Token
		return ""
	})
	return tok
}

func newProduct(t *testing.T, admin string, price int64, stock int) product {
	t.Helper()
	var p product
	gateway(t, admin).mustCall(t, "POST", "/api/products",
		map[string]any{"name": "E2E widget " + randomHex(3), "price": price, "currency": "EUR", "stock": stock}, 201, &p)
	return p
}

func stockOf(t *testing.T, id string) int {
	t.Helper()
	var p product
	gateway(t, "").mustCall(t, "GET", "/api/products/"+id, nil, 200, &p)
	return p.Stock
}

func placeOrder(t *testing.T, tok string, items ...orderItem) (int, order, []byte) {
	t.Helper()
	var lines []map[string]any
	for _, it := range items {
		lines = append(lines, map[string]any{"product_id": it.ProductID, "quantity": it.Quantity})
	}
	status, reply := gateway(t, tok).call(t, "POST", "/api/orders", map[string]any{"items": lines})
	var o order
	_ = json.Unmarshal(reply, &o)
	return status, o, reply
}

func expectError(t *testing.T, c client, method, path string, body any, status int, code string, fields ...string) {
	t.Helper()
	got, reply := c.call(t, method, path, body)
	gotCode, gotFields := errorCode(reply)
	if got != status || gotCode != code {
		t.Fatalf("%s %s: %d %s, want %d %s", method, path, got, reply, status, code)
	}
	for _, f := range fields {
		if !slices.Contains(gotFields, f) {
			t.Fatalf("%s %s: fields %v lack %s (%s)", method, path, gotFields, f, reply)
		}
	}
}

func TestSignUpAndLogin(t *testing.T) {
	pub := gateway(t, "")
	email := "e2e-" + randomHex(6) + "@example.com"
	var u user
	pub.mustCall(t, "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Ada"}, 201, &u)
	if !strings.HasPrefix(u.ID, "usr_") || u.Role != "customer" || u.Email != email {
		t.Fatalf("user %+v", u)
	}
	expectError(t, pub, "POST", "/api/users", map[string]string{"email": email, "password": password, "name": "Ada"}, 409, "conflict")
	expectError(t, pub, "POST", "/api/users", map[string]string{"email": "not-an-email", "password": "short", "name": ""}, 400, "invalid", "email", "password", "name")
	expectError(t, pub, "POST", "/api/users", `{"email":"a@b.co","password":"long enough pw","name":"x","role":"admin"}`, 400, "invalid", "role")
	expectError(t, pub, "POST", "/api/login", map[string]string{"email": email, "password": "wrong password"}, 401, "unauthenticated")
	expectError(t, pub, "POST", "/api/login", map[string]string{"email": "nobody-" + randomHex(4) + "@example.com", "password": password}, 401, "unauthenticated")

	tok := login(t, email, password)
	var me user
	gateway(t, tok).mustCall(t, "GET", "/api/me", nil, 200, &me)
	if me != u {
		t.Fatalf("me = %+v, want %+v", me, u)
	}
	expectError(t, pub, "GET", "/api/me", nil, 401, "unauthenticated")
	expectError(t, gateway(t, tok+"x"), "GET", "/api/me", nil, 401, "unauthenticated")
}

func TestCatalog(t *testing.T) {
	admin := adminToken(t)
	_, customer := signUp(t)
	p := newProduct(t, admin, 999, 7)
	if !strings.HasPrefix(p.ID, "prd_") || p.Stock != 7 || p.Price != 999 {
		t.Fatalf("product %+v", p)
	}
	body := map[string]any{"name": "x", "price": 1, "currency": "EUR", "stock": 1}
	expectError(t, gateway(t, customer), "POST", "/api/products", body, 403, "forbidden")
	expectError(t, gateway(t, ""), "POST", "/api/products", body, 401, "unauthenticated")
	expectError(t, gateway(t, admin), "POST", "/api/products", map[string]any{"name": "x", "price": -1, "currency": "EUR", "stock": 1}, 400, "invalid", "price")

	var list struct{ Products []product }
	gateway(t, "").mustCall(t, "GET", "/api/products", nil, 200, &list)
	if !slices.ContainsFunc(list.Products, func(q product) bool { return q.ID == p.ID }) {
		t.Fatalf("catalog lacks %s", p.ID)
	}
	expectError(t, gateway(t, ""), "GET", "/api/products/prd_doesnotexist", nil, 404, "not_found")
	gateway(t, admin).mustCall(t, "PUT", "/api/products/"+p.ID+"/stock", map[string]int{"stock": 12}, 200, nil)
	if s := stockOf(t, p.ID); s != 12 {
		t.Fatalf("stock after restock %d", s)
	}
	expectError(t, gateway(t, customer), "PUT", "/api/products/"+p.ID+"/stock", map[string]int{"stock": 1}, 403, "forbidden")
}

// TestPaidOrderEndToEnd follows one order through every building block.
func TestPaidOrderEndToEnd(t *testing.T) {
	admin := adminToken(t)
	u, tok := signUp(t)
	p := newProduct(t, admin, 1250, 5)

	status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 2})
	if status != 201 || o.Status != "paid" || o.Total != 2500 || o.Currency != "EUR" || o.UserID != u.ID || o.PaymentID == "" {
		t.Fatalf("order: %d %s", status, reply)
	}
	if s := stockOf(t, p.ID); s != 3 {
		t.Fatalf("stock %d, want 3", s)
	}

	t.Run("payment event confirms the order", func(t *testing.T) {
		eventually(t, 20*time.Second, func() string {
			var cur order
			gateway(t, tok).mustCall(t, "GET", "/api/orders/"+o.ID, nil, 200, &cur)
			if cur.Status != "confirmed" {
				return "order status " + cur.Status
			}
			return ""
		})
		expectError(t, gateway(t, tok), "POST", "/api/orders/"+o.ID+"/cancel", nil, 409, "conflict")
	})

	t.Run("events on both topics, typed", func(t *testing.T) {
		eventually(t, 20*time.Second, func() string {
			var types []string
			for _, ev := range env.probe.events("orders", o.ID) {
				types = append(types, ev.Type)
			}
			slices.Sort(types) // the outbox does not keep the order of events
			if !slices.Equal(types, []string{"order.confirmed", "order.created", "order.paid"}) {
				return fmt.Sprintf("orders events %v", types)
			}
			if pe := env.probe.events("payments", o.ID); len(pe) != 1 || pe[0].Type != "payment.succeeded" {
				return fmt.Sprintf("payments events %+v", pe)
			}
			return ""
		})
	})

	t.Run("state read back through orders' sidecar", func(t *testing.T) {
		status, body := sidecarGet(t, "orders", "/v1.0/state/orders-store/order:"+o.ID)
		var stored order
		if status != 200 || json.Unmarshal(body, &stored) != nil || stored.ID != o.ID || stored.Total != 2500 {
			t.Fatalf("stored %d %s", status, body)
		}
	})

	t.Run("charged with the key from the secret store", func(t *testing.T) {
		var ch struct {
			Amount         int64  `json:"amount"`
			Status         string `json:"status"`
			KeyFingerprint string `json:"key_fingerprint"`
		}
		invoke(t, "payments").mustCall(t, "GET", "/charges/"+o.PaymentID, nil, 200, &ch)
		sum := sha256.Sum256([]byte(env.secrets["payments-provider-key"]))
		if ch.KeyFingerprint != hex.EncodeToString(sum[:6]) || ch.Amount != 2500 || ch.Status != "succeeded" {
			t.Fatalf("charge %+v", ch)
		}
	})

	t.Run("listed for its owner only", func(t *testing.T) {
		var l struct{ Orders []order }
		gateway(t, tok).mustCall(t, "GET", "/api/orders", nil, 200, &l)
		if len(l.Orders) != 1 || l.Orders[0].ID != o.ID {
			t.Fatalf("orders %+v", l.Orders)
		}
		_, other := signUp(t)
		expectError(t, gateway(t, other), "GET", "/api/orders/"+o.ID, nil, 404, "not_found")
		expectError(t, gateway(t, other), "POST", "/api/orders/"+o.ID+"/cancel", nil, 404, "not_found")
	})

	t.Run("one notification per event", func(t *testing.T) {
		eventually(t, 20*time.Second, func() string {
			var l struct{ Notifications []notification }
			gateway(t, tok).mustCall(t, "GET", "/api/notifications", nil, 200, &l)
			var types []string
			for _, n := range l.Notifications {
				if n.OrderID == o.ID {
					types = append(types, n.EventType)
				}
			}
			slices.Sort(types)
			// The order's events, and shipping's steps once it is confirmed.
			if !slices.Equal(types, []string{"order.confirmed", "order.created", "order.paid", "payment.succeeded",
				"shipment.created", "shipment.delivered", "shipment.shipped"}) {
				return fmt.Sprintf("notifications %v", types)
			}
			return ""
		})
	})
}

// cancelPaidOrder places an order of quantity of a fresh product and
// cancels it at once, again until a cancel lands while the order is paid:
// payments' event confirms it tens of milliseconds after its 201 (the
// outbox no longer waits a second), and a confirmed order can no longer be
// cancelled. A cancel that loses that race must be the 409 of a confirmed
// order that keeps its stock. It returns the order as placed, as
// cancelled, and its product.
func cancelPaidOrder(t *testing.T, admin, tok string, price int64, stock, quantity int) (placed, cancelled order, p product) {
	t.Helper()
	for range 20 {
		p = newProduct(t, admin, price, stock)
		status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: quantity})
		if status != 201 || o.Status != "paid" {
			t.Fatalf("order: %d %s", status, reply)
		}
		code, body := gateway(t, tok).call(t, "POST", "/api/orders/"+o.ID+"/cancel", nil)
		if code == 200 {
			if err := json.Unmarshal(body, &cancelled); err != nil {
				t.Fatal(err)
			}
			return o, cancelled, p
		}
		var cur order
		gateway(t, tok).mustCall(t, "GET", "/api/orders/"+o.ID, nil, 200, &cur)
		if c, _ := errorCode(body); code != 409 || c != "conflict" || cur.Status != "confirmed" || stockOf(t, p.ID) != stock-quantity {
			t.Fatalf("a cancel that lost to the confirmation: %d %s, order %s, stock %d: want 409 conflict, confirmed, %d",
				code, body, cur.Status, stockOf(t, p.ID), stock-quantity)
		}
	}
	t.Fatal("20 orders in a row were confirmed before their cancel landed")
	return
}

// TestCancelPaidOrderRefundsAndReleases cancels an order right after it was
// paid, before its confirmation (cancelPaidOrder): the money goes back, the
// stock comes back, and the events say so.
func TestCancelPaidOrderRefundsAndReleases(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	paymentsBefore := delivered(t, "orders", "payments")
	o, c, p := cancelPaidOrder(t, admin, tok, 700, 3, 2)
	if c.Status != "cancelled" || c.CancelReason != "cancelled by customer" {
		t.Fatalf("cancelled order %+v", c)
	}
	if s := stockOf(t, p.ID); s != 3 {
		t.Fatalf("stock %d, want 3 (released)", s)
	}
	var ch struct{ Status string }
	invoke(t, "payments").mustCall(t, "GET", "/charges/"+o.PaymentID, nil, 200, &ch)
	if ch.Status != "refunded" {
		t.Fatalf("charge %s, want refunded", ch.Status)
	}
	eventually(t, 20*time.Second, func() string {
		var types []string
		for _, ev := range env.probe.events("payments", o.ID) {
			types = append(types, ev.Type)
		}
		slices.Sort(types)
		if !slices.Equal(types, []string{"payment.refunded", "payment.succeeded"}) {
			return fmt.Sprintf("payments events %v", types)
		}
		return ""
	})
	// A late settlement does not revive it: orders has been handed both
	// payment events before the order is read again.
	eventually(t, 20*time.Second, func() string {
		if n := delivered(t, "orders", "payments") - paymentsBefore; n < 2 {
			return fmt.Sprintf("orders was handed %.0f payment events since the order, want 2", n)
		}
		return ""
	})
	var cur order
	gateway(t, tok).mustCall(t, "GET", "/api/orders/"+o.ID, nil, 200, &cur)
	if cur.Status != "cancelled" {
		t.Fatalf("order %s after the payment event", cur.Status)
	}
}

// declinePayments has payments' simulated provider decline that share of
// charges (every replica's: the setting is stored) until the test ends. The
// reset is registered first, so that a setting stored but answered with an
// error is undone too.
func declinePayments(t *testing.T, rate float64) {
	t.Helper()
	pay := invoke(t, "payments")
	t.Cleanup(func() { pay.mustCall(t, "PUT", "/provider", map[string]any{"failure_rate": 0}, 200, nil) })
	pay.mustCall(t, "PUT", "/provider", map[string]any{"failure_rate": rate}, 200, nil)
}

func TestPaymentFailureCancelsAndReleasesStock(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 300, 4)
	declinePayments(t, 1)

	status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 3})
	if status != 201 || o.Status != "cancelled" || o.CancelReason != "payment declined" {
		t.Fatalf("order: %d %s", status, reply)
	}
	if s := stockOf(t, p.ID); s != 4 {
		t.Fatalf("stock %d, want 4 (released)", s)
	}
	eventually(t, 20*time.Second, func() string {
		var types []string
		for _, ev := range env.probe.events("orders", o.ID) {
			types = append(types, ev.Type)
		}
		pe := env.probe.events("payments", o.ID)
		slices.Sort(types) // the outbox does not keep the order of events
		if !slices.Equal(types, []string{"order.cancelled", "order.created"}) || len(pe) != 1 || pe[0].Type != "payment.declined" {
			return fmt.Sprintf("orders events %v, payments events %d", types, len(pe))
		}
		return ""
	})
}

func TestOrderErrors(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 100, 1)
	c := gateway(t, tok)
	expectError(t, gateway(t, ""), "POST", "/api/orders", map[string]any{"items": []any{}}, 401, "unauthenticated")
	expectError(t, c, "POST", "/api/orders", map[string]any{"items": []any{}}, 400, "invalid", "items")
	expectError(t, c, "POST", "/api/orders", `{"items":[{"product_id":"`+p.ID+`","quantity":0}]}`, 400, "invalid", "items[0].quantity")
	expectError(t, c, "POST", "/api/orders", `{"items":[{"product_id":"prd_nosuchthing","quantity":1}]}`, 400, "invalid", "items[0].product_id")
	expectError(t, c, "POST", "/api/orders", `{"items":[{"product_id":"`+p.ID+`","quantity":1}],"user_id":"usr_someoneelse"}`, 400, "invalid", "user_id")
	expectError(t, c, "POST", "/api/orders", `{"items":`, 400, "invalid")
	expectError(t, c, "GET", "/api/orders/ord_000000000000000000000000", nil, 404, "not_found")

	status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 2})
	if status != 201 || o.Status != "cancelled" || !strings.HasPrefix(o.CancelReason, "out of stock") {
		t.Fatalf("order beyond stock: %d %s", status, reply)
	}
	if s := stockOf(t, p.ID); s != 1 {
		t.Fatalf("stock %d", s)
	}
}

// TestNotificationsOncePerEvent publishes the same event twice (same
// CloudEvent id): notifications records it once.
func TestNotificationsOncePerEvent(t *testing.T) {
	u, tok := signUp(t)
	orderID := "ord_" + randomHex(12)
	eventID := "e2e-dup-" + randomHex(6)
	data := map[string]any{"type": "order.paid", "order_id": orderID, "user_id": u.ID, "status": "paid",
		"items": []any{}, "total": 4200, "currency": "EUR", "at": time.Now().UTC().Format(time.RFC3339Nano)}
	before := delivered(t, "notifications", "orders")
	for range 2 {
		publish(t, "orders", eventID, data)
	}
	// Both copies handed to notifications before counting what it recorded.
	eventually(t, 20*time.Second, func() string {
		if n := delivered(t, "notifications", "orders") - before; n < 2 {
			return fmt.Sprintf("notifications was handed %.0f of the 2 copies", n)
		}
		return ""
	})
	eventually(t, 20*time.Second, func() string {
		var l struct{ Notifications []notification }
		gateway(t, tok).mustCall(t, "GET", "/api/notifications", nil, 200, &l)
		n := 0
		for _, x := range l.Notifications {
			if x.OrderID == orderID {
				n++
				if x.ID != eventID {
					return "notification id " + x.ID
				}
			}
		}
		if n != 1 {
			return fmt.Sprintf("%d notifications for one event published twice", n)
		}
		return ""
	})
}

// TestPoisonEventGoesToDeadLetter: an event notifications can never process
// lands on the orders dead-letter topic and does not block the topic.
func TestPoisonEventGoesToDeadLetter(t *testing.T) {
	eventID := poisonPrefix + randomHex(6)
	publish(t, "orders", eventID, map[string]any{"type": "order.paid", "status": "paid"})
	// A good event published right after it is processed: the topic moves on.
	u, tok := signUp(t)
	orderID := "ord_" + randomHex(12)
	goodID := "e2e-after-poison-" + randomHex(6)
	publish(t, "orders", goodID, map[string]any{"type": "order.paid", "order_id": orderID, "user_id": u.ID, "status": "paid",
		"items": []any{}, "total": 100, "currency": "EUR", "at": time.Now().UTC().Format(time.RFC3339Nano)})
	eventually(t, 30*time.Second, func() string {
		for _, ev := range env.probe.all() {
			if ev.Topic == "orders-deadletter" && ev.ID == eventID {
				return ""
			}
		}
		return "poison event not on orders-deadletter"
	})
	eventually(t, 30*time.Second, func() string {
		var l struct{ Notifications []notification }
		gateway(t, tok).mustCall(t, "GET", "/api/notifications", nil, 200, &l)
		for _, x := range l.Notifications {
			if x.ID == goodID {
				return ""
			}
		}
		return "the event after the poison one was not processed"
	})
}

// publish sends data to topic through the probe's sidecar with a fixed
// CloudEvent id and the type named in data.
func publish(t *testing.T, topic, id string, data map[string]any) {
	t.Helper()
	p := env.run.App("e2e-probe")
	b, _ := json.Marshal(data)
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/publish/events/%s?metadata.cloudevent.id=%s&metadata.cloudevent.type=%v",
		p.DaprHTTPPort, topic, id, data["type"])
	if status, reply := rawCall(t, "POST", url, string(b), p.APIToken); status != http.StatusNoContent {
		t.Fatalf("publish: %d %s", status, reply)
	}
}

// TestConcurrentOrdersNeverOversell: 50 parallel orders for a product with 10
// in stock give exactly 10 paid orders and stock 0.
func TestConcurrentOrdersNeverOversell(t *testing.T) {
	admin := adminToken(t)
	p := newProduct(t, admin, 100, 10)
	tokens := make([]string, 5)
	for i := range tokens {
		_, tokens[i] = signUp(t)
	}
	var (
		mu       sync.Mutex
		statuses = map[string]int{}
		wg       sync.WaitGroup
	)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, o, reply := placeOrder(t, tokens[i%len(tokens)], orderItem{ProductID: p.ID, Quantity: 1})
			key := o.Status
			if status != 201 {
				key = fmt.Sprintf("HTTP %d %s", status, reply)
			}
			mu.Lock()
			statuses[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses["paid"]+statuses["confirmed"] != 10 || statuses["cancelled"] != 40 {
		t.Fatalf("outcomes %v, want 10 paid and 40 cancelled", statuses)
	}
	if s := stockOf(t, p.ID); s != 0 {
		t.Fatalf("stock %d, want 0", s)
	}
}

// TestConcurrentOrdersWithFlakyPayments: the same race while the provider
// declines half the charges. Declined orders give their stock back, so more
// than 10 may be tried, but never more than 10 are paid and the stock left is
// exactly what the paid orders did not take.
func TestConcurrentOrdersWithFlakyPayments(t *testing.T) {
	admin := adminToken(t)
	p := newProduct(t, admin, 100, 10)
	declinePayments(t, 0.5)
	_, tok := signUp(t)
	var (
		mu   sync.Mutex
		outs []outcome
		wg   sync.WaitGroup
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := tryOrder(tok, p.ID)
			mu.Lock()
			outs = append(outs, o)
			mu.Unlock()
		}()
	}
	wg.Wait()
	final, _ := settled(t, tok, 60*time.Second)
	l := checkNothingLost(t, outs, final, p)
	paid := l.paid
	declined := 0
	for _, o := range final {
		if o.CancelReason == "payment declined" {
			declined++
		}
	}
	if paid > 10 || paid == 0 || declined == 0 || len(final) != 50 {
		t.Fatalf("%d orders: %d paid, %d declined; answers %v", len(final), paid, declined, tally(outs))
	}
	report(t, map[string]any{"orders_sent": 50, "answers": tally(outs), "paid": paid, "declined": declined,
		"out_of_stock": len(final) - paid - declined, "stock_left": stockOf(t, p.ID), "charged_twice": l.chargedTwice})
}

// TestLoginLimits: 5 wrong passwords from one address make that address
// wait for that account (429 with Retry-After, the right password too,
// refused unchecked); the same email in other cases or spacing is the same
// account; a password longer than the 72 bytes bcrypt reads is a 400, not a
// match on its first 72. The owner logging in from another address meanwhile
// is TestHostileLoginOwnerGetsInDuringAttack's.
func TestLoginLimits(t *testing.T) {
	pub := gateway(t, "")
	email := "e2e-" + randomHex(6) + "@example.com"
	long := strings.Repeat("correct horse battery staple ", 3)[:72]
	pub.mustCall(t, "POST", "/api/users", map[string]string{"email": email, "password": long, "name": "Limited"}, 201, nil)
	expectError(t, pub, "POST", "/api/users", map[string]string{"email": " " + strings.ToUpper(email) + " ", "password": password, "name": "Twin"}, 409, "conflict")
	expectError(t, pub, "POST", "/api/login", map[string]string{"email": email, "password": long + "whatever follows"}, 400, "invalid", "password")
	login(t, " "+strings.ToUpper(email), long)
	for range 5 {
		expectError(t, pub, "POST", "/api/login", map[string]string{"email": email, "password": "wrong password"}, 401, "unauthenticated")
	}
	status, wait, reply := loginFromAddr(t, "127.0.0.1", email, long)
	if status != 429 || wait < 1 || wait > 60 {
		t.Fatalf("the right password after 5 failures from one address: %d, Retry-After %d, %s", status, wait, reply)
	}
	if code, _ := errorCode(reply); code != "too_many_requests" {
		t.Fatalf("429 body %s", reply)
	}
}

// delivered is how many events of topic app's sidecars have handed to app, with
// any outcome (dapr_component_pubsub_ingress_count on its metrics port), or
// those whose series also have every label of has (`process_status="retry"`):
// the proof that an event was processed, before asserting what it did not do.
func delivered(t *testing.T, app, topic string, has ...string) float64 {
	t.Helper()
	total := 0.0
	for _, a := range env.run.Instances(app) {
		vs, err := samples(a.MetricsPort, "dapr_component_pubsub_ingress_count", append([]string{`app_id="` + app + `"`, `topic="` + topic + `"`}, has...)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			total += v
		}
	}
	return total
}

// samples reads the values of the series of metric name on the /metrics of
// 127.0.0.1:port whose labels contain every one of has.
func samples(port int, name string, has ...string) ([]float64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || slices.ContainsFunc(has, func(h string) bool { return !strings.Contains(line, h) }) {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v); err == nil {
			out = append(out, v)
		}
	}
	return out, sc.Err()
}
