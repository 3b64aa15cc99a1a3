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
	"math"
	"os"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/retry"
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
	if cfg.ClaimTimeout < 4*time.Second {
		return errors.New("config: CLAIM_TIMEOUT must be at least 4s")
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("payments")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()

	sc := cfg.Dapr.HTTP(5*time.Second, m)
	// The simulated provider's settings and answers are shared by every
	// replica, in the state store, as one provider's would be.
	prov := provider.NewSimulated(&dapr.ProviderMemory{Client: client, Name: cfg.StateStore},
		cfg.FailureRate, cfg.Latency, uint64(time.Now().UnixNano()))
	svc := &payments.Service{
		Store:        &dapr.Store{Client: client, Outbox: sc, Name: cfg.StateStore},
		Provider:     prov,
		Keys:         dapr.Keys{Secret: &sidecar.Secret{Client: client, Store: cfg.SecretStore, Name: cfg.ProviderKeyName}},
		Now:          time.Now,
		ClaimTimeout: cfg.ClaimTimeout,
		// A refund's lease lasts as long as a charge's claim, longer than
		// any provider call; a second refund waits for it briefly, within
		// its caller's timeout.
		Leases: &lease.Manager{
			Store: &sidecar.LeaseStore{Client: client, Store: cfg.StateStore, Prefix: "lease:", Now: time.Now},
			TTL:   cfg.ClaimTimeout, Now: time.Now,
			Wait: retry.Policy{Retries: math.MaxInt32, Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond,
				Jitter: retry.DefaultJitter, Total: 2 * time.Second},
		},
	}
	h := httpapi.Routes(svc, prov, m, log, sc.Healthy)
	return cfg.Web.Serve(ctx, log, h)
}
