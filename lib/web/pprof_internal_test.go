package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestProfilerOnlyWhenAsked: PPROF_ADDR starts the profiler on its own
// listener, and it stops with the service.
func TestProfilerOnlyWhenAsked(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	Config{PprofAddr: addr}.servePprof(ctx, slog.New(slog.DiscardHandler))
	var resp *http.Response
	for range 50 {
		if resp, err = http.Get("http://" + addr + "/debug/pprof/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("profiler: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	for range 50 {
		if _, err = http.Get("http://" + addr + "/debug/pprof/"); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the profiler outlived its service")
}
