// Package daprdtest starts real daprd processes for tests: on loopback, with
// app IDs and API tokens of their own (so they never meet the suite's fixed
// app IDs over mDNS), killed when the test ends. Tests that use it skip when
// the repository's .bin/daprd (or $DAPRD) is missing.
package daprdtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Path returns the daprd to start: $DAPRD, or .bin/daprd at the repository
// root (repoRoot, relative to the test's directory). It skips the test when
// there is none.
func Path(t *testing.T, repoRoot string) string {
	t.Helper()
	p := os.Getenv("DAPRD")
	if p == "" {
		p, _ = filepath.Abs(filepath.Join(repoRoot, ".bin", "daprd"))
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no daprd at %s (make tools builds it)", p)
	}
	return p
}

// ID returns prefix with a random suffix: an app ID no other run uses.
func ID(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Sidecar is a started daprd.
type Sidecar struct {
	ID, Token          string
	HTTPPort, GRPCPort int
}

// Start starts daprd bin for appID (appPort 0: no app) with the resources
// of the directory resources, every listener on loopback, and waits until
// it is healthy. It is killed when the test ends; its output is logged if
// the test failed.
func Start(t *testing.T, bin, appID string, appPort int, resources string) *Sidecar {
	t.Helper()
	s := &Sidecar{ID: appID, Token: ID("tok"), HTTPPort: freePort(t), GRPCPort: freePort(t)}
	args := []string{"--app-id", appID, "--dapr-listen-addresses", "127.0.0.1",
		"--dapr-http-port", strconv.Itoa(s.HTTPPort), "--dapr-grpc-port", strconv.Itoa(s.GRPCPort),
		"--dapr-internal-grpc-port", strconv.Itoa(freePort(t)), "--dapr-internal-grpc-listen-address", "127.0.0.1",
		"--metrics-port", strconv.Itoa(freePort(t)), "--metrics-listen-address", "127.0.0.1",
		"--resources-path", resources, "--log-level", "warn"}
	if appPort != 0 {
		args = append(args, "--app-port", strconv.Itoa(appPort), "--app-channel-address", "127.0.0.1")
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	// DAPR_HOST_IP: mDNS announces loopback, not the host's address.
	cmd.Env = append(os.Environ(), "DAPR_API_TOKEN="+s.Token, "DAPR_HOST_IP=127.0.0.1")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daprd %s:\n%s", appID, out.String())
		}
	})
	if !Eventually(30*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", s.HTTPPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode/100 == 2
	}) {
		t.Fatalf("daprd %s not healthy", appID)
	}
	return s
}

// Eventually polls cond until it holds or d has passed.
func Eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// Call sends body (JSON, may be empty) with method to path on s's HTTP API,
// with its API token and the extra headers, and returns the reply.
func (s *Sidecar) Call(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.HTTPPort, path), bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("dapr-api-token", s.Token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
