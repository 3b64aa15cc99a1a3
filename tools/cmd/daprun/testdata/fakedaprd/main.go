// Command fakedaprd stands in for daprd in the runner's unit tests: it accepts
// the flags the runner passes, checks that --enable-mtls comes with the
// environment daprd needs for it and that the last --config sets the SQLite
// name resolver (printing that file's path), and answers /v1.0/healthz with
// 204 once the app's port accepts connections, as daprd does. With
// FAKEDAPRD_NO_RESOLVER set it logs what a daprd built without that resolver
// logs.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("fakedaprd", flag.ExitOnError)
	httpPort := fs.Int("dapr-http-port", 3500, "")
	appPort := fs.Int("app-port", 0, "")
	for _, name := range []string{"app-id", "app-protocol", "app-channel-address", "dapr-listen-addresses", "dapr-grpc-port",
		"dapr-internal-grpc-port", "dapr-internal-grpc-listen-address", "metrics-port", "metrics-listen-address",
		"log-level", "resources-path", "dapr-graceful-shutdown-seconds",
		"sentry-address", "control-plane-trust-domain", "control-plane-namespace"} {
		fs.String(name, "", "")
	}
	mtls := fs.Bool("enable-mtls", false, "")
	var configs []string
	fs.Func("config", "", func(v string) error { configs = append(configs, v); return nil })
	_ = fs.Parse(os.Args[1:])
	// The run's name resolution comes last, on top of the app's Configuration.
	if len(configs) == 0 {
		fmt.Println("fakedaprd: no --config")
		os.Exit(1)
	}
	names := configs[len(configs)-1]
	if b, err := os.ReadFile(names); err != nil || !strings.Contains(string(b), "component: sqlite") || !strings.Contains(string(b), "connectionString:") {
		fmt.Printf("fakedaprd: the last --config %s sets no SQLite name resolution (%v)\n", names, err)
		os.Exit(1)
	}
	fmt.Println("fakedaprd name resolution", names)
	if os.Getenv("FAKEDAPRD_NO_RESOLVER") != "" {
		fmt.Println(`time="2026-11-28T23:45:20Z" level=error msg="[CREATE_COMPONENT_FAILURE]: initialization error occurred for nr (sqlite/v1): couldn't find name resolver sqlite/v1" scope=dapr.runtime`)
	}
	// What daprd needs for its certificate from Sentry.
	if *mtls {
		if os.Getenv("DAPR_TRUST_ANCHORS") == "" {
			fmt.Println("fakedaprd: --enable-mtls without DAPR_TRUST_ANCHORS")
			os.Exit(1)
		}
		if b, err := os.ReadFile(os.Getenv("DAPR_SENTRY_TOKEN_FILE")); err != nil || len(b) == 0 {
			fmt.Println("fakedaprd: --enable-mtls without a token in DAPR_SENTRY_TOKEN_FILE:", err)
			os.Exit(1)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.0/healthz", func(w http.ResponseWriter, _ *http.Request) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", *appPort), 200*time.Millisecond)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		c.Close()
		w.WriteHeader(http.StatusNoContent)
	})
	// Invocation always reaches "the app": the runner checks it once everything
	// is up, with the token it gave this sidecar, as daprd demands.
	mux.HandleFunc("/v1.0/invoke/", func(w http.ResponseWriter, r *http.Request) {
		if tok := os.Getenv("DAPR_API_TOKEN"); tok == "" || r.Header.Get("dapr-api-token") != tok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", *httpPort), Handler: mux}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Println("fakedaprd listening on", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Println("fakedaprd:", err)
		os.Exit(1)
	}
	fmt.Println("fakedaprd stopped")
}
