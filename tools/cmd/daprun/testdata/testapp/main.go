// Command testapp is the app of the runner's unit tests. Its behaviour is set
// by environment: TESTAPP_CRASH_AFTER (exit 3 after a duration),
// TESTAPP_UNHEALTHY (health endpoint answers 503), TESTAPP_HEALTHY_PORT
// (healthy only when listening on that port: one instance of several),
// TESTAPP_FAIL_WHILE (exit 3 at start while that file exists),
// TESTAPP_STUBBORN (ignore SIGTERM) and TESTAPP_GRANDCHILD (start a child
// that ignores SIGTERM and lives on after this process exits). GET /whoami
// answers with the run's marker (DAPRUN_TEST_MARKER) and counts the calls;
// GET /count says how many it has answered; GET /port answers its port
// (which instance answered); GET /exit?code=N exits with status N, as a
// crash would.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("TESTAPP_ROLE") == "grandchild" {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("grandchild sleeping")
		time.Sleep(time.Hour)
		return
	}
	if os.Getenv("TESTAPP_STUBBORN") != "" {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	} else {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
		go func() { <-term; fmt.Println("testapp got SIGTERM"); os.Exit(0) }()
	}
	if os.Getenv("TESTAPP_GRANDCHILD") != "" {
		self, _ := os.Executable()
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "TESTAPP_ROLE=grandchild")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			fmt.Println("grandchild:", err)
			os.Exit(1)
		}
	}
	if f := os.Getenv("TESTAPP_FAIL_WHILE"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Println("testapp failing on purpose: " + f + " exists")
			os.Exit(3)
		}
	}
	if d, err := time.ParseDuration(os.Getenv("TESTAPP_CRASH_AFTER")); err == nil {
		go func() {
			time.Sleep(d)
			fmt.Println("testapp crashing on purpose")
			os.Exit(3)
		}()
	}
	if os.Getenv("APP_API_TOKEN") == "" || os.Getenv("DAPR_API_TOKEN") == "" {
		fmt.Println("testapp: the runner gave no tokens")
		os.Exit(4)
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if p := os.Getenv("TESTAPP_HEALTHY_PORT"); os.Getenv("TESTAPP_UNHEALTHY") != "" || (p != "" && p != os.Getenv("APP_PORT")) {
			fmt.Println("testapp health check failing on purpose")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var whoami atomic.Int64
	http.HandleFunc("GET /whoami", func(w http.ResponseWriter, _ *http.Request) {
		whoami.Add(1)
		fmt.Fprint(w, os.Getenv("DAPRUN_TEST_MARKER"))
	})
	http.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, whoami.Load())
	})
	http.HandleFunc("GET /port", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, os.Getenv("APP_PORT"))
	})
	http.HandleFunc("GET /exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "want ?code=N", http.StatusBadRequest)
			return
		}
		fmt.Println("testapp exiting on request with status", code)
		w.WriteHeader(http.StatusAccepted)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(50 * time.Millisecond) // the answer leaves first
			os.Exit(code)
		}()
	})
	addr := "127.0.0.1:" + os.Getenv("APP_PORT")
	fmt.Println("testapp listening on", addr, "dapr http port", os.Getenv("DAPR_HTTP_PORT"))
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
