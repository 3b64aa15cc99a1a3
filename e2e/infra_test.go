package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daprshop/suite/tools/broker"
	"github.com/daprshop/suite/tools/runner"
)

// infra is what a profile needs besides the services: its secrets (the only
// place infrastructure addresses are named) and, for kafka-postgres, a Kafka
// broker and a database of this run's own.
type infra struct {
	secrets map[string]string
	close   func()
	redis   *redisServer // the fault pass's own Redis
}

func (in *infra) redisAddr() string {
	if in.redis == nil {
		return ""
	}
	return in.redis.addr
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
			"shipping-label-key":    randomHex(32),
		},
		close: func() {},
	}
	switch profile {
	case "redis":
		// Streams and consumer groups left by other runs (make run, load
		// tests) would make this run drain their backlog first.
		if err := flushRedisDB("127.0.0.1:6379", redisDB); err != nil {
			return nil, fmt.Errorf("Redis at 127.0.0.1:6379: %w", err)
		}
		return in, nil
	case faultsPass, cliPass:
		r, err := startRedis(dir)
		if err != nil {
			return nil, err
		}
		in.redis, in.close = r, r.stop
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

// redisDB is the database of the machine's Redis the redis profile's tests
// use, emptied when they start: nothing else of the suite uses it.
const redisDB = 11

// flushRedisDB empties database db of the Redis at addr (RESP over TCP).
func flushRedisDB(addr string, db int) error {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	d := strconv.Itoa(db)
	if _, err := fmt.Fprintf(conn, "*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n*1\r\n$7\r\nFLUSHDB\r\n", len(d), d); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for range 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("SELECT %d / FLUSHDB: %s", db, strings.TrimSpace(line))
		}
	}
	return nil
}

// redisServer is a redis-server of the fault tests' own, which they may
// stop and start. It keeps an append-only file, as a production Redis would,
// so a restart loses nothing that was acknowledged.
type redisServer struct {
	addr, dir string
	port      int
	cmd       *exec.Cmd
}

func startRedis(dir string) (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("the fault tests need redis-server on PATH (Debian/Ubuntu: apt-get install redis-server); E2E_FAULTS=0 skips them")
	}
	port, err := runner.FreePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), dir: filepath.Join(dir, "redis"), port: port}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	return r, r.start()
}

// start starts the server and waits until it answers PING.
func (r *redisServer) start() error {
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--logfile", filepath.Join(r.dir, "redis.log"))
	r.cmd.SysProcAttr = runner.ChildAttr()
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for runner.PingRedis(r.addr, time.Second) != nil {
		if time.Now().After(deadline) {
			r.stop()
			return fmt.Errorf("redis-server on %s did not answer within 15s (see %s/redis.log)", r.addr, r.dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// stop kills the server, as a crash would, and waits for it.
func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
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
