// Command orders is the orders service: it checks the user (users), reserves
// stock (products) and charges (payments) by Dapr service invocation behind
// circuit breakers and with retries, keeps orders in its own state store and
// publishes every change on the orders topic through the Dapr outbox.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/daprshop/suite/lib/breaker"
	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/retry"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/orders/internal/dapr"
	"github.com/daprshop/suite/services/orders/internal/httpapi"
	"github.com/daprshop/suite/services/orders/internal/orders"
)

// config is read once from the environment. The breakers and retries of the
// calls to payments and products live here, not in resiliency.yaml: Dapr
// 1.14 would count every 4xx as a failure (docs/resilience.md, whose table
// of defaults TestDefaultsAreDocumented checks against these).
type config struct {
	Web             web.Config
	Dapr            sidecar.Config
	StateStore      string         `env:"STATE_STORE" default:"orders-store"`
	ProductsApp     string         `env:"PRODUCTS_APP_ID" default:"products"`
	PaymentsApp     string         `env:"PAYMENTS_APP_ID" default:"payments"`
	InvokeTimeout   time.Duration  `env:"INVOKE_TIMEOUT" default:"5s"`
	PaymentsBreaker breaker.Config `prefix:"PAYMENTS_"`
	ProductsBreaker breaker.Config `prefix:"PRODUCTS_"`
	PaymentsRetry   retry.Config   `prefix:"PAYMENTS_"`
	ProductsRetry   retry.Config   `prefix:"PRODUCTS_"`
	// The lease of an order (orders.Service.Leases): how long it lasts
	// unless renewed (a holder that died blocks its order that long), and
	// how long a request waits for an order another request holds.
	LeaseTTL  time.Duration `env:"LEASE_TTL" default:"30s"`
	LeaseWait time.Duration `env:"LEASE_WAIT" default:"4s"`
}

func main() { web.Main("orders", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// A step under a lease ends a quarter of the lease before its end and
	// starts with at least half of it left: a call with its retries
	// (INVOKE_TIMEOUT) must fit in the quarter between.
	if cfg.LeaseTTL < 4*cfg.InvokeTimeout {
		return fmt.Errorf("config: LEASE_TTL must be at least 4 x INVOKE_TIMEOUT (%s)", 4*cfg.InvokeTimeout)
	}
	if cfg.LeaseWait <= 0 {
		return fmt.Errorf("config: LEASE_WAIT must be positive")
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
		// A call and its retries take at most INVOKE_TIMEOUT together, as
		// when Dapr retried within the client's timeout.
		Inventory: &dapr.Inventory{Invoker: invoker, AppID: cfg.ProductsApp, Guard: breaker.Guard{
			Breaker: breaker.New(cfg.ProductsBreaker.Settings(cfg.ProductsApp), log, gauge),
			Retry:   cfg.ProductsRetry.Policy(cfg.InvokeTimeout)}},
		Payments: &dapr.Payments{Invoker: invoker, AppID: cfg.PaymentsApp, Guard: breaker.Guard{
			Breaker: breaker.New(cfg.PaymentsBreaker.Settings(cfg.PaymentsApp), log, gauge),
			Retry:   cfg.PaymentsRetry.Policy(cfg.InvokeTimeout)}},
		Now: time.Now,
		Leases: &lease.Manager{
			Store: &sidecar.LeaseStore{Client: client, Store: cfg.StateStore, Prefix: "lease:", Now: time.Now},
			TTL:   cfg.LeaseTTL, Now: time.Now,
			Wait: retry.Policy{Retries: math.MaxInt32, Initial: 20 * time.Millisecond, Max: 250 * time.Millisecond,
				Jitter: retry.DefaultJitter, Total: cfg.LeaseWait},
			// order.created only checks that the placing finished the
			// order (no client waits on it): it looks less often.
			AwaitWait: retry.Policy{Retries: math.MaxInt32, Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond,
				Jitter: retry.DefaultJitter, Total: cfg.LeaseWait},
		},
	}
	h := httpapi.Routes(svc, m, log, invoker.Healthy)
	return cfg.Web.Serve(ctx, log, h)
}
