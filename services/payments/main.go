// Command payments is the payments service: it charges and refunds orders
// through a simulated payment provider whose API key comes from the Dapr
// secret store, keeps charges in its own Dapr state store and announces them
// on the payments topic through the Dapr outbox.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/payments/internal/dapr"
	"github.com/daprshop/suite/services/payments/internal/httpapi"
	"github.com/daprshop/suite/services/payments/internal/payments"
	"github.com/daprshop/suite/services/payments/internal/provider"
)

// config is read once from the environment.
type config struct {
	Web             web.Config
	Dapr            sidecar.Config
	StateStore      string        `env:"STATE_STORE" default:"payments-store"`
	SecretStore     string        `env:"SECRET_STORE" default:"secrets"`
	ProviderKeyName string        `env:"PROVIDER_KEY_SECRET" default:"payments-provider-key"`
	FailureRate     float64       `env:"PROVIDER_FAILURE_RATE" default:"0"`
	Latency         time.Duration `env:"PROVIDER_LATENCY" default:"0s"`
	// ClaimTimeout: how long a charge may stay processing before a retry
	// takes it over (its request died); above any provider call.
	ClaimTimeout time.Duration `env:"CLAIM_TIMEOUT" default:"20s"`
}

func main() { web.Main("payments", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.FailureRate < 0 || cfg.FailureRate > 1 {
		return errors.New("config: PROVIDER_FAILURE_RATE must be between 0 and 1")
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("payments")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()

	sc := cfg.Dapr.HTTP(5*time.Second, m)
	prov := provider.NewSimulated(cfg.FailureRate, cfg.Latency, uint64(time.Now().UnixNano()))
	svc := &payments.Service{
		Store:        &dapr.Store{Client: client, Outbox: sc, Name: cfg.StateStore},
		Provider:     prov,
		Keys:         dapr.Keys{Secret: &sidecar.Secret{Client: client, Store: cfg.SecretStore, Name: cfg.ProviderKeyName}},
		Now:          time.Now,
		ClaimTimeout: cfg.ClaimTimeout,
	}
	h := httpapi.Routes(svc, prov, m, log, sc.Healthy)
	return cfg.Web.Serve(ctx, log, h)
}
