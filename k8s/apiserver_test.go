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
	procs                    []*server
	crds                     sync.Once // Dapr's CRDs installed (live_test.go)
	crdsErr                  error
}

// server is a process of the cluster; done is closed when it has exited.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	clustersMu sync.Mutex
	clusters   = map[string]*cluster{}
)

// apiServer returns the API server named name, started on first use (each
// test that applies the suite into namespace daprshop gets a server of its
// own: without controllers a namespace is never deleted), or skips t.
func apiServer(t *testing.T, name string) *cluster {
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
	clustersMu.Lock()
	defer clustersMu.Unlock()
	if c, ok := clusters[name]; ok {
		return c
	}
	c, err := startCluster(bins["ETCD"], bins["KUBE_APISERVER"], bins["KUBECTL"])
	if err != nil {
		t.Fatal(err)
	}
	clusters[name] = c
	return c
}

// stopClusters ends every API server and etcd started.
func stopClusters() {
	clustersMu.Lock()
	defer clustersMu.Unlock()
	for _, c := range clusters {
		c.stop()
	}
}

// stop ends the cluster's servers, the API server first, and removes its
// directory.
func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	_ = os.RemoveAll(c.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopClusters()
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
		c.stop()
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
		select {
		case <-c.procs[len(c.procs)-1].done:
			return fmt.Errorf("%w: kube-apiserver exited", errGaveUp)
		default:
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
	p := &server{cmd: cmd, done: make(chan struct{})}
	c.procs = append(c.procs, p)
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
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

// errGaveUp in a check's error ends waitFor at once.
var errGaveUp = errors.New("no use waiting")

// waitFor retries check until it succeeds or within passes.
func waitFor(within time.Duration, check func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil || errors.Is(err, errGaveUp) || time.Now().After(deadline) {
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
