package e2e

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daprshop/suite/tools/broker"
)

// infra is what a profile needs besides the services: its secrets (the only
// place infrastructure addresses are named) and, for kafka-postgres, a Kafka
// broker and a database of this run's own.
type infra struct {
	secrets map[string]string
	close   func()
}

// postgresAdmin is where the test creates and drops its databases.
func postgresAdmin() string {
	if s := os.Getenv("E2E_POSTGRES"); s != "" {
		return s
	}
	return "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable"
}

func startInfra(profile, dir string) (*infra, error) {
	in := &infra{
		secrets: map[string]string{
			"payments-provider-key": "sk_e2e_" + randomHex(12),
			"jwt-signing-key":       randomHex(32),
			"admin-password":        "admin-" + randomHex(8),
		},
		close: func() {},
	}
	switch profile {
	case "redis":
		return in, nil
	case "kafka-postgres":
	default:
		return nil, fmt.Errorf("unknown profile %q", profile)
	}
	b, err := broker.Start(0)
	if err != nil {
		return nil, err
	}
	db := "daprshop_e2e_" + randomHex(6)
	if err := postgres(fmt.Sprintf("CREATE DATABASE %s", db)); err != nil {
		b.Close()
		return nil, fmt.Errorf("PostgreSQL at %q: %w", postgresAdmin(), err)
	}
	in.secrets["kafka-brokers"] = b.Addr()
	cfg, err := pgx.ParseConfig(postgresAdmin())
	if err != nil {
		b.Close()
		return nil, err
	}
	in.secrets["postgres-connection-string"] = fmt.Sprintf("host=%s port=%d user=%s password='%s' dbname=%s sslmode=disable",
		cfg.Host, cfg.Port, cfg.User, cfg.Password, db)
	in.close = func() {
		b.Close()
		if err := postgres(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: dropping database %s: %v\n", db, err)
		}
	}
	return in, nil
}

// postgres runs one statement as the administrator.
func postgres(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgresAdmin())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}
