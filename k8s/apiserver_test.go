package k8s

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A real Kubernetes API server (kube-apiserver on etcd, no nodes and no
// controllers) checks what the typed tests cannot: defaulting, validation,
// selectors, the Dapr CRDs' schemas, server-side apply. `make test` builds
// kube-apiserver and kubectl (tools/kube, tools/toolchain.sh kube) and
// passes KUBE_APISERVER, KUBECTL and ETCD; without them these tests skip
// (KUBE_REQUIRED=1 makes that a failure).

// cluster is one API server of the test run, reached with kubectl.
type cluster struct {
	dir, kubectl, kubeconfig string
	procs                    []*exec.Cmd
}

var (
	clusterOnce sync.Once
	theCluster  *cluster
	clusterErr  error
)

// apiServer starts the run's API server once and returns it, or skips t.
func apiServer(t *testing.T) *cluster {
	t.Helper()
	bins := map[string]string{"KUBE_APISERVER": os.Getenv("KUBE_APISERVER"), "KUBECTL": os.Getenv("KUBECTL"), "ETCD": os.Getenv("ETCD")}
	for name, path := range bins {
		if path == "" {
			if os.Getenv("KUBE_REQUIRED") != "" {
				t.Fatalf("%s is not set (KUBE_REQUIRED): make test sets KUBE_APISERVER, KUBECTL and ETCD", name)
			}
			t.Skipf("%s is not set: the tests against a real API server run in make test (tools/toolchain.sh kube)", name)
		}
	}
	clusterOnce.Do(func() {
		theCluster, clusterErr = startCluster(bins["ETCD"], bins["KUBE_APISERVER"], bins["KUBECTL"])
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return theCluster
}

// stopCluster ends the API server and etcd, if they were started.
func stopCluster() {
	if theCluster == nil {
		return
	}
	for i := len(theCluster.procs) - 1; i >= 0; i-- {
		p := theCluster.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(theCluster.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startCluster starts etcd and kube-apiserver on loopback ports of their
// own, a static admin token, a fresh service-account key and its own cert
// dir, and writes a kubeconfig for kubectl.
func startCluster(etcd, apiserver, kubectl string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "k8s-apiserver-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, kubectl: kubectl, kubeconfig: filepath.Join(dir, "kubeconfig")}
	fail := func(err error) (*cluster, error) {
		theCluster = c
		stopCluster()
		theCluster = nil
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return fail(err)
		}
	}
	client, peer, secure := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1]), ports[2]
	if err := c.start(etcd, "etcd", "--name", "test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test="+peer,
		"--log-level", "warn"); err != nil {
		return fail(err)
	}
	if err := waitFor(30*time.Second, func() error {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("etcd /health: %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return fail(fmt.Errorf("etcd did not come up: %w\n%s", err, c.log("etcd")))
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fail(err)
	}
	token := randomHex(16)
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(token + ",admin,admin,system:masters\n"),
		"kubeconfig": []byte(fmt.Sprintf(kubeconfig, secure, token)),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fail(err)
		}
	}
	if err := c.start(apiserver, "kube-apiserver", "--etcd-servers", client,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(secure),
		"--cert-dir", filepath.Join(dir, "certs"), "--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", "10.96.0.0/16", "--enable-priority-and-fairness=false"); err != nil {
		return fail(err)
	}
	if err := waitFor(90*time.Second, func() error {
		if c.procs[len(c.procs)-1].ProcessState != nil {
			return errors.New("kube-apiserver exited")
		}
		out, errOut, err := c.kube("get", "--raw", "/readyz")
		if err != nil || strings.TrimSpace(out) != "ok" {
			return fmt.Errorf("readyz: %v %s %s", err, out, errOut)
		}
		return nil
	}); err != nil {
		return fail(fmt.Errorf("kube-apiserver did not come up: %w\n%s", err, c.log("kube-apiserver")))
	}
	return c, nil
}

// kubeconfig reaches the test's API server as its admin (the server's
// certificate is self-signed, made at start).
const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:%d
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`

// start runs a server of the cluster, its output in dir/<name>.log.
func (c *cluster) start(bin, name string, args ...string) error {
	out, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	go func() { _, _ = cmd.Process.Wait() }()
	return nil
}

// log is the last lines a server printed.
func (c *cluster) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// kube runs kubectl against the cluster.
func (c *cluster) kube(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(c.kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// waitFor retries check until it succeeds or within passes.
func waitFor(within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
