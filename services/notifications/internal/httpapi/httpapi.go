// Package httpapi is the notifications HTTP API and its event endpoints.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/daprshop/suite/lib/events"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

// Notifier is what the API needs from the domain.
type Notifier interface {
	Handle(ctx context.Context, e events.Event) error
	List(ctx context.Context, userID string) ([]notifications.Notification, error)
}

// List is the reply to a list request.
type List struct {
	Notifications []notifications.Notification `json:"notifications"`
}

// Routes returns the service's handler with every route registered. The event
// routes are where the declarative subscriptions deliver. /notifications
// lists the notifications of the user in the owner header
// (web.OwnerHeader), which the gateway sets from the caller's token; without
// a valid one it answers 400.
func Routes(svc Notifier, m *metrics.Metrics, log *slog.Logger, ready func(context.Context) error) http.Handler {
	r := web.Router(log, m, ready)
	r.HandleFunc("/notifications", func(w http.ResponseWriter, r *http.Request) {
		owner, err := web.Owner(r)
		if err != nil {
			web.RespondError(w, r, log, err)
			return
		}
		ns, err := svc.List(r.Context(), owner)
		if err != nil {
			web.RespondError(w, r, log, err)
			return
		}
		web.Respond(w, http.StatusOK, List{Notifications: ns})
	}).Methods(http.MethodGet)
	r.HandleFunc("/events/orders", events.Handler(log, svc.Handle)).Methods(http.MethodPost)
	r.HandleFunc("/events/payments", events.Handler(log, svc.Handle)).Methods(http.MethodPost)
	r.HandleFunc("/events/shipments", events.Handler(log, svc.Handle)).Methods(http.MethodPost)
	return r
}
