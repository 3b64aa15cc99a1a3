// Command notifications is the notifications service: it consumes the orders
// and payments topics (declarative subscriptions with dead-letter topics) and
// records one notification per event in its own Dapr state store.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/notifications/internal/dapr"
	"github.com/daprshop/suite/services/notifications/internal/httpapi"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

// config is read once from the environment.
type config struct {
	Web        web.Config
	Dapr       sidecar.Config
	StateStore string `env:"STATE_STORE" default:"notifications-store"`
	MaxPerUser int    `env:"MAX_PER_USER" default:"200"`
}

func main() { web.Main("notifications", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.MaxPerUser < 1 {
		return fmt.Errorf("config: MAX_PER_USER must be at least 1")
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("notifications")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()
	counter := newCounter(m.Registerer)
	svc := &notifications.Service{
		Store:   &dapr.Store{Client: client, Name: cfg.StateStore, MaxPerUser: cfg.MaxPerUser},
		Counter: counter,
		Now:     time.Now,
	}
	h := httpapi.Routes(svc, m, log, cfg.Dapr.HTTP(5*time.Second, m).Healthy)
	return cfg.Web.Serve(ctx, log, h)
}

// counter counts events in Prometheus.
type counter struct {
	recorded, duplicates *prometheus.CounterVec
}

func newCounter(reg prometheus.Registerer) *counter {
	c := &counter{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifications_recorded_total", Help: "Notifications recorded, by event type.",
		}, []string{"event_type"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifications_duplicates_total", Help: "Events delivered again and not recorded twice, by event type.",
		}, []string{"event_type"}),
	}
	reg.MustRegister(c.recorded, c.duplicates)
	// A series per type from the start: rates read 0, not "no data".
	for _, t := range notifications.EventTypes() {
		c.recorded.WithLabelValues(t)
		c.duplicates.WithLabelValues(t)
	}
	return c
}

func (c *counter) Recorded(t string)  { c.recorded.WithLabelValues(t).Inc() }
func (c *counter) Duplicate(t string) { c.duplicates.WithLabelValues(t).Inc() }
