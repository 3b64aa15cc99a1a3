// Package events is the consumer side of the suite's pub/sub: it decodes the
// CloudEvent envelope Dapr delivers and answers with the status Dapr
// understands, SUCCESS, RETRY or DROP (a dropped event goes to the route's
// dead-letter topic). It takes deliveries only, never service invocations.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/daprshop/suite/lib/apierr"
	"github.com/daprshop/suite/lib/web"
)

// Event is a delivered CloudEvent.
type Event struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Topic           string          `json:"topic"`
	PubSubName      string          `json:"pubsubname"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// Decode unmarshals the event's data into v; a failure means a poison event.
func (e Event) Decode(v any) error {
	if d := bytes.TrimSpace(e.Data); len(d) == 0 || bytes.Equal(d, []byte("null")) {
		return Drop(errors.New("the event carries no data"))
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return Drop(err)
	}
	return nil
}

// errDrop marks an event that no retry can help.
var errDrop = errors.New("event dropped")

// Drop wraps err to say the event can never be processed: it is sent to the
// dead-letter topic instead of being retried.
func Drop(err error) error { return errors.Join(errDrop, err) }

// IsDrop reports whether err asks for the event to be dropped. A client error
// from a service the handler called (invalid, not found...) is a drop too: the
// same event would get the same answer again.
func IsDrop(err error) bool {
	if errors.Is(err, errDrop) {
		return true
	}
	switch apierr.CodeOf(err) {
	case apierr.Invalid, apierr.NotFound, apierr.Forbidden:
		return true
	}
	return false
}

// Status is a subscriber's reply to Dapr.
type Status string

// The replies Dapr understands.
const (
	Success Status = "SUCCESS"
	Retry   Status = "RETRY"
	DropIt  Status = "DROP"
)

// Invoked reports whether r came by service invocation from another app
// rather than as a pub/sub delivery from the app's own sidecar: daprd adds
// dapr-caller-app-id and dapr-callee-app-id to every invocation from another
// sidecar (Dapr 1.14 pkg/messaging/direct_messaging.go,
// addCallerAndCalleeAppIDHeaderToMetadata, made request headers by the HTTP
// app channel) and never to a delivery. A caller cannot remove them: daprd
// sets its own over whatever the caller sent.
func Invoked(r *http.Request) bool {
	for _, h := range []string{"Dapr-Caller-App-Id", "Dapr-Callee-App-Id"} {
		if _, ok := r.Header[h]; ok {
			return true
		}
	}
	return false
}

// Handler adapts fn into a subscription endpoint: nil means SUCCESS, a drop
// error (or an undecodable or oversized envelope) DROP, anything else (a
// body that could not be read to its end, too) RETRY.
//
// Only pub/sub deliveries reach fn. A service invocation of the route
// (Invoked) is refused with 403 in the error model: invocation skips the
// pub/sub scopes, so anyone able to invoke the app could otherwise forge
// events (a payment.succeeded that confirms an unpaid order). A Kafka record
// that carries one of those headers as a header of its own is refused too,
// retried as any non-2xx delivery, and then dead-lettered.
func Handler(log *slog.Logger, fn func(ctx context.Context, e Event) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if Invoked(r) {
			log.WarnContext(r.Context(), "subscription route invoked by an app, refused",
				"caller", r.Header.Values("Dapr-Caller-App-Id"), "path", r.URL.Path)
			web.RespondError(w, r, log, apierr.Errorf(apierr.Forbidden, "this route takes pub/sub deliveries only"))
			return
		}
		var (
			e      Event
			tooBig *http.MaxBytesError
			status = Success
		)
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		switch {
		case err != nil && !errors.As(err, &tooBig):
			// The connection, not the event: it may go through next time.
			log.WarnContext(r.Context(), "event not read", "err", err)
			status = Retry
		case err == nil && json.Unmarshal(b, &e) == nil:
			if err = fn(r.Context(), e); err != nil {
				status = Retry
				if IsDrop(err) {
					status = DropIt
				}
				log.WarnContext(r.Context(), "event not processed", "event_id", e.ID, "topic", e.Topic, "type", e.Type, "status", status, "err", err)
			}
		default:
			log.WarnContext(r.Context(), "undecodable event dropped", "err", err, "bytes", len(b))
			status = DropIt
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]Status{"status": status})
	}
}
