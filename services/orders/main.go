// Command orders is the orders service: it checks the user (users), reserves
// stock (products) and charges (payments) by Dapr service invocation behind
// circuit breakers, keeps orders in its own state store and publishes every
// change on the orders topic through the Dapr outbox.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/daprshop/suite/lib/breaker"
	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/orders/internal/dapr"
	"github.com/daprshop/suite/services/orders/internal/httpapi"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// config is read once from the environment. The breaker settings mirror the
// circuit breakers of resiliency.yaml (paymentsCB, productsCB).
type config struct {
	Web             web.Config
	Dapr            sidecar.Config
	StateStore      string         `env:"STATE_STORE" default:"orders-store"`
	UsersApp        string         `env:"USERS_APP_ID" default:"users"`
	ProductsApp     string         `env:"PRODUCTS_APP_ID" default:"products"`
	PaymentsApp     string         `env:"PAYMENTS_APP_ID" default:"payments"`
	InvokeTimeout   time.Duration  `env:"INVOKE_TIMEOUT" default:"5s"`
	PaymentsBreaker breaker.Config `prefix:"PAYMENTS_"`
	ProductsBreaker breaker.Config `prefix:"PRODUCTS_"`
}

func main() { web.Main("orders", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("orders")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()
	invoker := cfg.Dapr.HTTP(cfg.InvokeTimeout, m)

	gauge := breaker.Gauge()
	m.Registerer.MustRegister(gauge)
	stored := m.Counter("orders_events_total", "Order changes stored with their event, by event type (order.created, order.paid, order.confirmed, order.cancelled).", "type")
	for _, t := range []string{orders.EventCreated, orders.EventPaid, orders.EventConfirmed, orders.EventCancelled} {
		stored.WithLabelValues(t) // a series from the start: rates read 0, not "no data"
	}
	svc := &orders.Service{
		Store: &dapr.Store{Client: client, Outbox: invoker, Name: cfg.StateStore,
			Stored: func(t string) { stored.WithLabelValues(t).Inc() }},
		Users: &dapr.Users{Invoker: invoker, AppID: cfg.UsersApp},
		Inventory: &dapr.Inventory{Invoker: invoker, AppID: cfg.ProductsApp,
			Breaker: breaker.New(cfg.ProductsBreaker.Settings(cfg.ProductsApp), log, gauge)},
		Payments: &dapr.Payments{Invoker: invoker, AppID: cfg.PaymentsApp,
			Breaker: breaker.New(cfg.PaymentsBreaker.Settings(cfg.PaymentsApp), log, gauge)},
		Now: time.Now,
	}
	h := httpapi.Routes(svc, m, log, invoker.Healthy)
	return cfg.Web.Serve(ctx, log, h)
}
