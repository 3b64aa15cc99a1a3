// Command fakesentry stands in for Dapr's sentry in daprun's unit tests: it
// accepts the flags the runner passes, checks that the issuer credentials
// are there, and answers /healthz on its healthz port, as sentry does.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	fs := flag.NewFlagSet("fakesentry", flag.ExitOnError)
	creds := fs.String("issuer-credentials", "", "")
	healthzPort := fs.Int("healthz-port", 8080, "")
	healthzAddr := fs.String("healthz-listen-address", "", "")
	for _, name := range []string{"trust-domain", "config", "port", "listen-address", "metrics-port", "metrics-listen-address"} {
		fs.String(name, "", "")
	}
	_ = fs.Parse(os.Args[1:])
	for _, f := range []string{"ca.crt", "issuer.crt", "issuer.key"} {
		if _, err := os.Stat(filepath.Join(*creds, f)); err != nil {
			fmt.Println("fakesentry: no issuer credentials:", err)
			os.Exit(1)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: fmt.Sprintf("%s:%d", *healthzAddr, *healthzPort), Handler: mux}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Println("fakesentry healthz on", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Println("fakesentry:", err)
		os.Exit(1)
	}
}
