// Package notifications turns order, payment and shipment events into one message per
// event for the user concerned, however often an event is delivered: the
// CloudEvent ID is the notification's ID, and a notification is written once.
package notifications

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/id"
)

// Notification is one message to a user.
type Notification struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	EventType string    `json:"event_type"`
	OrderID   string    `json:"order_id"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

// eventData is the part of orders, payments and shipments events a message
// needs.
type eventData struct {
	Type           string `json:"type"`
	OrderID        string `json:"order_id"`
	UserID         string `json:"user_id"`
	Total          int64  `json:"total"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Reason         string `json:"reason"`
	TrackingNumber string `json:"tracking_number"`
}

// EventTypes are the event types notifications records, sorted.
func EventTypes() []string { return slices.Sorted(maps.Keys(messages)) }

// messages says what each event type tells the user.
var messages = map[string]func(d eventData) string{
	"order.created": func(d eventData) string { return fmt.Sprintf("We received order %s.", d.OrderID) },
	"order.paid": func(d eventData) string {
		return fmt.Sprintf("Order %s was paid: %s.", d.OrderID, money(d.Total, d.Currency))
	},
	"order.confirmed": func(d eventData) string { return fmt.Sprintf("Order %s is confirmed.", d.OrderID) },
	"order.cancelled": func(d eventData) string {
		return fmt.Sprintf("Order %s was cancelled: %s.", d.OrderID, orDefault(d.Reason, "no reason given"))
	},
	"payment.succeeded": func(d eventData) string {
		return fmt.Sprintf("Payment of %s for order %s succeeded.", money(d.Amount, d.Currency), d.OrderID)
	},
	"payment.declined": func(d eventData) string {
		return fmt.Sprintf("Payment of %s for order %s was declined.", money(d.Amount, d.Currency), d.OrderID)
	},
	"payment.refunded": func(d eventData) string {
		return fmt.Sprintf("Payment of %s for order %s was refunded.", money(d.Amount, d.Currency), d.OrderID)
	},
	"shipment.created": func(d eventData) string {
		return fmt.Sprintf("Order %s is being packed: tracking number %s.", d.OrderID, d.TrackingNumber)
	},
	"shipment.shipped": func(d eventData) string {
		return fmt.Sprintf("Order %s has shipped: tracking number %s.", d.OrderID, d.TrackingNumber)
	},
	"shipment.delivered": func(d eventData) string { return fmt.Sprintf("Order %s was delivered.", d.OrderID) },
	"shipment.cancelled": func(d eventData) string {
		return fmt.Sprintf("The shipment of order %s was cancelled: %s.", d.OrderID, orDefault(d.Reason, "no reason given"))
	},
}

func money(minor int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, currency)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Store keeps notifications. Add inserts n unless one with its ID exists
// (then created is false) and makes sure n is in its user's list.
type Store interface {
	Add(ctx context.Context, n Notification) (created bool, err error)
	ListByUser(ctx context.Context, userID string) ([]Notification, error)
}

// Counter counts recorded and duplicate events by type.
type Counter interface {
	Recorded(eventType string)
	Duplicate(eventType string)
}

// Service records and lists notifications.
type Service struct {
	Store   Store
	Counter Counter
	Now     func() time.Time
}

// Handle records the notification for event e. Events it can never turn
// into a notification are dropped (to the dead-letter topic).
func (s *Service) Handle(ctx context.Context, e events.Event) error {
	var d eventData
	if err := e.Decode(&d); err != nil {
		return err
	}
	msg, ok := messages[d.Type]
	switch {
	case !ok:
		return events.Drop(fmt.Errorf("unknown event type %q", d.Type))
	case d.UserID == "" || d.OrderID == "":
		return events.Drop(errors.New("event without user_id or order_id"))
	case e.ID == "":
		return events.Drop(errors.New("event without id"))
	}
	n := Notification{ID: e.ID, UserID: d.UserID, EventType: d.Type, OrderID: d.OrderID, Message: msg(d), CreatedAt: s.Now().UTC()}
	created, err := s.Store.Add(ctx, n)
	if err != nil {
		return err
	}
	if created {
		s.Counter.Recorded(d.Type)
	} else {
		s.Counter.Duplicate(d.Type)
	}
	return nil
}

// List returns a user's notifications, newest first.
func (s *Service) List(ctx context.Context, userID string) ([]Notification, error) {
	if !id.User.Valid(userID) {
		return nil, apierr.Invalidf("user_id", "must be a user ID (usr_...)")
	}
	return s.Store.ListByUser(ctx, userID)
}
