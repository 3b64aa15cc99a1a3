// Command gateway is the suite's public HTTP API: it verifies bearer tokens
// issued by users (key from the Dapr secret store) and forwards every request
// to the owning service by Dapr service invocation.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/gateway/internal/httpapi"
)

// config is read once from the environment.
type config struct {
	Web              web.Config
	Dapr             sidecar.Config
	SecretStore      string        `env:"SECRET_STORE" default:"secrets"`
	JWTKeySecret     string        `env:"JWT_KEY_SECRET" default:"jwt-signing-key"`
	UsersApp         string        `env:"USERS_APP_ID" default:"users"`
	ProductsApp      string        `env:"PRODUCTS_APP_ID" default:"products"`
	OrdersApp        string        `env:"ORDERS_APP_ID" default:"orders"`
	NotificationsApp string        `env:"NOTIFICATIONS_APP_ID" default:"notifications"`
	InvokeTimeout    time.Duration `env:"INVOKE_TIMEOUT" default:"15s"`
	MaxBodyBytes     int64         `env:"MAX_BODY_BYTES" default:"65536"`
	// TrustedProxies lists, comma-separated, the networks (CIDR) of the
	// proxies in front of the gateway whose X-Forwarded-For names the client;
	// empty: clients connect directly.
	TrustedProxies string `env:"TRUSTED_PROXIES"`
}

// parsePrefixes reads a comma-separated list of networks (CIDR).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a network such as 10.0.0.0/8", f)
		}
		if p.Bits() == 0 {
			// Every address a proxy: a client could then name any address
			// in X-Forwarded-For and it would be believed.
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q trusts every address; name the proxies' networks", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func main() { web.Main("gateway", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.MaxBodyBytes < 1024 {
		return fmt.Errorf("config: MAX_BODY_BYTES must be at least 1024")
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("gateway")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()
	invoker := cfg.Dapr.HTTP(cfg.InvokeTimeout, m)
	key := &sidecar.Secret{Client: client, Store: cfg.SecretStore, Name: cfg.JWTKeySecret}
	h := httpapi.Routes(invoker, httpapi.KeyFunc(key.Bytes),
		httpapi.Options{
			Apps:           httpapi.Apps{Users: cfg.UsersApp, Products: cfg.ProductsApp, Orders: cfg.OrdersApp, Notifications: cfg.NotificationsApp},
			MaxBody:        cfg.MaxBodyBytes,
			Now:            time.Now,
			TrustedProxies: proxies,
		}, m, log, invoker.Healthy)
	return cfg.Web.ServePublic(ctx, log, h) // the public edge: clients call it directly
}
