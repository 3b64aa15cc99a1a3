// Command users is the users service: sign-up with bcrypt-hashed passwords,
// login that issues JWT bearer tokens signed with a key from the Dapr secret
// store, and profiles, all in its own Dapr state store.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/lib/lease"
	"github.com/daprshop/suite/lib/metrics"
	"github.com/daprshop/suite/lib/sidecar"
	"github.com/daprshop/suite/lib/web"
	"github.com/daprshop/suite/services/users/internal/dapr"
	"github.com/daprshop/suite/services/users/internal/httpapi"
	"github.com/daprshop/suite/services/users/internal/users"
)

// config is read once from the environment.
type config struct {
	Web                 web.Config
	Dapr                sidecar.Config
	StateStore          string        `env:"STATE_STORE" default:"users-store"`
	SecretStore         string        `env:"SECRET_STORE" default:"secrets"`
	JWTKeySecret        string        `env:"JWT_KEY_SECRET" default:"jwt-signing-key"`
	TokenTTL            time.Duration `env:"TOKEN_TTL" default:"1h"`
	BcryptCost          int           `env:"BCRYPT_COST" default:"10"`
	AdminEmail          string        `env:"ADMIN_EMAIL" default:"admin@daprshop.local"`
	AdminPasswordSecret string        `env:"ADMIN_PASSWORD_SECRET" default:"admin-password"`
	Login               loginConfig
}

// loginConfig is users.LoginPolicy from the environment (see users.Limits
// for what the defaults bound). LOGIN_FAILURES_PER_ACCOUNT keeps its name
// but no longer locks: it is the burst of failures from unfamiliar addresses
// after which an account's logins from them are slowed, not refused.
type loginConfig struct {
	AttemptsPerAddress int           `env:"LOGIN_ATTEMPTS_PER_ADDRESS" default:"30"`
	FailuresPerSource  int           `env:"LOGIN_FAILURES_PER_SOURCE" default:"5"`
	SourceWait         time.Duration `env:"LOGIN_SOURCE_WAIT" default:"1m"`
	SourceWaitMax      time.Duration `env:"LOGIN_SOURCE_WAIT_MAX" default:"1h"`
	SourceMemory       time.Duration `env:"LOGIN_SOURCE_MEMORY" default:"24h"`
	FailuresPerAccount int           `env:"LOGIN_FAILURES_PER_ACCOUNT" default:"20"`
	AccountInterval    time.Duration `env:"LOGIN_ACCOUNT_INTERVAL" default:"30s"`
	FamiliarFor        time.Duration `env:"LOGIN_FAMILIAR_FOR" default:"720h"`
}

func (c loginConfig) policy() users.LoginPolicy { return users.LoginPolicy(c) }

func main() { web.Main("users", run) }

func run(ctx context.Context, log *slog.Logger) error {
	var cfg config
	if err := conf.Parse(&cfg, os.LookupEnv); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > 14 {
		return fmt.Errorf("config: BCRYPT_COST must be between %d and 14", bcrypt.MinCost)
	}
	if err := cfg.Login.policy().Validate(); err != nil {
		return fmt.Errorf("config: LOGIN_*: %w", err)
	}
	if cfg.TokenTTL < time.Minute {
		return fmt.Errorf("config: TOKEN_TTL must be at least 1m")
	}
	log.Info("starting", "config", conf.String(&cfg))

	m := metrics.New("users")
	client, err := cfg.Dapr.Dial(m)
	if err != nil {
		return err
	}
	defer client.Close()
	key := &sidecar.Secret{Client: client, Store: cfg.SecretStore, Name: cfg.JWTKeySecret}
	// The login limits live in the users store, shared by every replica:
	// each entry with a TTL to its expiry, the logins of one account one
	// at a time under a short lease.
	limitStore := func(prefix string) users.LimitStore {
		return &dapr.LimitStore{Client: client, Name: cfg.StateStore, Prefix: prefix, Now: time.Now}
	}
	svc := &users.Service{
		Store:      &dapr.Store{Client: client, Name: cfg.StateStore},
		Keys:       keyFunc(key.Bytes),
		BcryptCost: cfg.BcryptCost,
		TokenTTL:   cfg.TokenTTL,
		Now:        time.Now,
		Limits: &users.Limits{Policy: cfg.Login.policy(), Now: time.Now,
			Addresses: limitStore("limit:address:"), Failures: limitStore("limit:failure:"), Familiar: limitStore("limit:familiar:"),
			Leases: &lease.Manager{
				Store: &sidecar.LeaseStore{Client: client, Store: cfg.StateStore, Prefix: "lease:", Now: time.Now},
				TTL:   users.LeaseTTL, Now: time.Now, Wait: users.LeaseWait(),
			}},
	}
	adminPassword := &sidecar.Secret{Client: client, Store: cfg.SecretStore, Name: cfg.AdminPasswordSecret}
	go bootstrapAdmin(ctx, log, svc, cfg.AdminEmail, adminPassword)

	h := httpapi.Routes(svc, m, log, cfg.Dapr.HTTP(5*time.Second, m).Healthy)
	return cfg.Web.Serve(ctx, log, h)
}

// bootstrapAdmin makes sure the admin account exists when the secret store
// holds an admin password; it retries while the sidecar is not ready.
func bootstrapAdmin(ctx context.Context, log *slog.Logger, svc *users.Service, email string, password *sidecar.Secret) {
	for attempt := 1; ; attempt++ {
		pw, err := password.Value(ctx)
		if err == nil {
			var changed bool
			if changed, err = svc.EnsureAdmin(ctx, email, pw); err == nil {
				log.Info("admin account ready", "email", email, "changed", changed)
				return
			}
		}
		if attempt == 30 {
			log.Warn("no admin account: giving up", "email", email, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// keyFunc adapts a function to users.Keys.
type keyFunc func(context.Context) ([]byte, error)

func (f keyFunc) SigningKey(ctx context.Context) ([]byte, error) { return f(ctx) }
