// Command products is the products service: the catalog and its inventory,
// with stock reserved per order under ETag-guarded writes in its own Dapr
// state store, and released or settled when the orders topic says so.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/products/internal/dapr"
	"github.com/daprshop/suite/services/products/internal/httpapi"
	"github.com/daprshop/suite/services/products/internal/products"
)

// config is read once from the environment.
type config struct {
	Web                web.Config
	Dapr               sidecar.Config
	StateStore         string `env:"STATE_STORE" default:"products-store"`
	MaxReserveAttempts int    `env:"MAX_RESERVE_ATTEMPTS" default:"50"`
}

func main() { web.Main("products", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.MaxReserveAttempts < 1 {
		return fmt.Errorf("config: MAX_RESERVE_ATTEMPTS must be at least 1")
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("products")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()
	svc := &products.Service{Store: &dapr.Store{Client: client, Name: cfg.StateStore}, MaxAttempts: cfg.MaxReserveAttempts, Now: time.Now}
	h := httpapi.Routes(svc, m, log, cfg.Dapr.HTTP(5*time.Second, m).Healthy)
	return cfg.Web.Serve(ctx, log, h)
}
