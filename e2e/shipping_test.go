package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// shippingSteps is the shipping pace of the integration runs (SHIPPING_STEPS):
// a confirmed order is delivered within a second.
const shippingSteps = "shipped=300ms,delivered=300ms"

// shipment is shipping's answer for an order (services/shipping/openapi.yaml).
type shipment struct {
	ID             string `json:"id"`
	OrderID        string `json:"order_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	TrackingNumber string `json:"tracking_number"`
	Recipient      string `json:"recipient"`
	History        []struct {
		Status string `json:"status"`
		At     string `json:"at"`
	} `json:"history"`
}

// shipmentID is the shipment of an order: the contract's derivation
// (lib/id's Derive: "shp_" and the first 24 hex digits of SHA-256 of the
// order ID), which shipping implements in TypeScript.
func shipmentID(orderID string) string {
	sum := sha256.Sum256([]byte(orderID))
	return "shp_" + hex.EncodeToString(sum[:12])
}

// trackingNumber is what shipping must print on the label of shipment id
// with the run's label key: only a service that read the key from the
// secret store gets it.
func trackingNumber(id string) string {
	m := hmac.New(sha256.New, []byte(env.secrets["shipping-label-key"]))
	m.Write([]byte(id))
	return "DS" + strings.ToUpper(hex.EncodeToString(m.Sum(nil))[:16])
}

// confirmedOrder places an order of a fresh product and waits until it is
// confirmed.
func confirmedOrder(t *testing.T, admin, tok string) order {
	t.Helper()
	p := newProduct(t, admin, 990, 5)
	status, o, reply := placeOrder(t, tok, orderItem{ProductID: p.ID, Quantity: 1})
	if status != 201 {
		t.Fatalf("order: %d %s", status, reply)
	}
	return confirmedUncancelled(t, tok, o.ID, "the order")
}

// probedTypes lists the types of the events of topic about orderID, sorted.
func probedTypes(topic, orderID string) []string {
	var types []string
	for _, ev := range env.probe.events(topic, orderID) {
		types = append(types, ev.Type)
	}
	slices.Sort(types)
	return types
}

// shipmentNotifications lists the shipment notifications of orderID, sorted.
func shipmentNotifications(t *testing.T, tok, orderID string) []string {
	var l struct{ Notifications []notification }
	gateway(t, tok).mustCall(t, "GET", "/api/notifications", nil, 200, &l)
	var types []string
	for _, n := range l.Notifications {
		if n.OrderID == orderID && strings.HasPrefix(n.EventType, "shipment.") {
			types = append(types, n.EventType)
		}
	}
	slices.Sort(types)
	return types
}

// TestShipmentOfAConfirmedOrder: a confirmed order is shipped once and
// moved on to delivered, each step an event on the shipments topic (checked
// against its schema by TestZContracts) and a notification; the shipment is
// its owner's alone.
func TestShipmentOfAConfirmedOrder(t *testing.T) {
	admin := adminToken(t)
	u, tok := signUp(t)
	o := confirmedOrder(t, admin, tok)
	var s shipment
	eventually(t, 20*time.Second, func() string {
		status, reply := gateway(t, tok).call(t, "GET", "/api/orders/"+o.ID+"/shipment", nil)
		if status != 200 || json.Unmarshal(reply, &s) != nil {
			return fmt.Sprintf("shipment: %d %.300s", status, reply)
		}
		if s.Status != "delivered" {
			return "shipment status " + s.Status
		}
		return ""
	})
	id := shipmentID(o.ID)
	if s.ID != id || s.OrderID != o.ID || s.UserID != u.ID || s.TrackingNumber != trackingNumber(id) {
		t.Fatalf("shipment %+v, want id %s, tracking number %s (the secret store's key)", s, id, trackingNumber(id))
	}
	// shipping asked users (service invocation through the TypeScript SDK)
	// for the name on the label.
	if s.Recipient != u.Name {
		t.Fatalf("recipient %q, want the account's name %q", s.Recipient, u.Name)
	}
	var steps []string
	for _, h := range s.History {
		steps = append(steps, h.Status)
	}
	if !slices.Equal(steps, []string{"label_created", "shipped", "delivered"}) {
		t.Fatalf("history %v", steps)
	}

	t.Run("one event per step", func(t *testing.T) {
		eventually(t, 20*time.Second, func() string {
			if got := probedTypes("shipments", o.ID); !slices.Equal(got, []string{"shipment.created", "shipment.delivered", "shipment.shipped"}) {
				return fmt.Sprintf("shipments events %v", got)
			}
			return ""
		})
	})
	t.Run("one notification per step", func(t *testing.T) {
		eventually(t, 20*time.Second, func() string {
			if got := shipmentNotifications(t, tok, o.ID); !slices.Equal(got, []string{"shipment.created", "shipment.delivered", "shipment.shipped"}) {
				return fmt.Sprintf("notifications %v", got)
			}
			return ""
		})
	})
	t.Run("its owner's alone", func(t *testing.T) {
		_, other := signUp(t)
		expectError(t, gateway(t, other), "GET", "/api/orders/"+o.ID+"/shipment", nil, 404, "not_found")
		expectError(t, gateway(t, ""), "GET", "/api/orders/"+o.ID+"/shipment", nil, 401, "unauthenticated")
		expectError(t, gateway(t, tok), "GET", "/api/orders/ord_nope/shipment", nil, 404, "not_found")
		expectError(t, invoke(t, "shipping"), "GET", "/shipments/"+o.ID, nil, 400, "invalid", "X-User-ID")
		invoke(t, "shipping").as(u.ID).mustCall(t, "GET", "/shipments/"+o.ID, nil, 200, nil)
	})
}

// TestShipmentOnceWhateverTheDeliveries: order.confirmed delivered again
// (the same event under a new CloudEvent ID, as a publisher's retry would)
// ships nothing twice.
func TestShipmentOnceWhateverTheDeliveries(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	o := confirmedOrder(t, admin, tok)
	var confirmed map[string]any
	eventually(t, 20*time.Second, func() string {
		for _, ev := range env.probe.events("orders", o.ID) {
			if ev.Type == "order.confirmed" {
				_ = json.Unmarshal(ev.Data, &confirmed)
				return ""
			}
		}
		return "no order.confirmed seen"
	})
	before := delivered(t, "shipping", "orders")
	for i := range 3 {
		publish(t, "orders", fmt.Sprintf("e2e-again-%d-%s", i, randomHex(4)), confirmed)
	}
	eventually(t, 20*time.Second, func() string {
		if n := delivered(t, "shipping", "orders") - before; n < 3 {
			return fmt.Sprintf("shipping was handed %.0f of the 3 copies", n)
		}
		if got := shipmentNotifications(t, tok, o.ID); !slices.Equal(got, []string{"shipment.created", "shipment.delivered", "shipment.shipped"}) {
			return fmt.Sprintf("notifications %v", got)
		}
		return ""
	})
	if got := probedTypes("shipments", o.ID); !slices.Equal(got, []string{"shipment.created", "shipment.delivered", "shipment.shipped"}) {
		t.Fatalf("shipments events %v after 3 more deliveries", got)
	}
}

// TestNoShipmentForACancelledOrder: an order cancelled before it was
// confirmed is never shipped, and its customer hears nothing of shipping.
func TestNoShipmentForACancelledOrder(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	_, cancelled, _ := cancelPaidOrder(t, admin, tok, 500, 5, 1)
	if cancelled.Status != "cancelled" {
		t.Skipf("every cancel lost the race with the confirmation: %+v", cancelled)
	}
	eventually(t, 20*time.Second, func() string {
		if got := probedTypes("orders", cancelled.ID); !slices.Contains(got, "order.cancelled") {
			return fmt.Sprintf("orders events %v", got)
		}
		return ""
	})
	// By now a shipment would have been made and delivered (shippingSteps).
	time.Sleep(2 * time.Second)
	expectError(t, gateway(t, tok), "GET", "/api/orders/"+cancelled.ID+"/shipment", nil, 404, "not_found")
	if got := probedTypes("shipments", cancelled.ID); len(got) != 0 {
		t.Fatalf("shipments events %v for an order never confirmed", got)
	}
	if got := shipmentNotifications(t, tok, cancelled.ID); len(got) != 0 {
		t.Fatalf("notifications %v for an order never confirmed", got)
	}
}
