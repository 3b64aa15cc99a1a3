package tools_test

// Tests of `make observe`'s Jaeger: its configuration listens on loopback
// only, on ports the environment sets; the built .bin/jaeger receives a
// Zipkin span and answers it back; make run finds the Jaeger of make observe
// by its PID, never by a port alone; make observe stops both of its programs.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const jaegerConfig = "../observability/jaeger/config.yaml"

// TestMain doubles as a fake Jaeger: run as FAKE_JAEGER=listen, the test
// binary listens on a free loopback port, prints it and waits for its stdin
// to close.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_JAEGER") == "listen" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// endpointRE is the one shape of a listener's address: loopback, the port
// from the environment with its default.
var endpointRE = regexp.MustCompile(`^127\.0\.0\.1:\$\{env:(JAEGER_[A-Z_]+_PORT):-([0-9]+)\}$`)

// TestJaegerConfigListensOnLoopbackOnly: every address in the configuration
// is 127.0.0.1 with a port the environment sets (each its own variable and
// default), and every receiver and extension it runs names its addresses:
// one left out listens where the component's default says (localhost or
// every interface, on a fixed port).
func TestJaegerConfigListensOnLoopbackOnly(t *testing.T) {
	raw, err := os.ReadFile(jaegerConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}

	ports := map[string]string{} // variable: default
	defaults := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
		key := path[strings.LastIndex(path, ".")+1:]
		if key != "endpoint" && key != "host" {
			return
		}
		s, _ := v.(string)
		m := endpointRE.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("%s is %q: want 127.0.0.1:${env:JAEGER_<NAME>_PORT:-<default>}", path, s)
			return
		}
		if other, ok := defaults[m[2]]; ok {
			t.Errorf("%s: default port %s is %s's too", path, m[2], other)
		}
		if _, ok := ports[m[1]]; ok {
			t.Errorf("%s: %s names another listener too", path, m[1])
		}
		ports[m[1]], defaults[m[2]] = m[2], m[1]
	}
	walk("", cfg)

	// The ports the Makefile, the banner and the README name.
	for name, want := range map[string]string{
		"JAEGER_ZIPKIN_PORT": "9411", "JAEGER_QUERY_PORT": "16686", "JAEGER_QUERY_GRPC_PORT": "16685",
		"JAEGER_OTLP_GRPC_PORT": "4317", "JAEGER_OTLP_HTTP_PORT": "4318", "JAEGER_HEALTH_PORT": "13133",
	} {
		if ports[name] != want {
			t.Errorf("%s defaults to %q, want %s", name, ports[name], want)
		}
	}

	section := func(v any, keys ...string) map[string]any {
		for _, k := range keys {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		m, _ := v.(map[string]any)
		return m
	}
	// hasEndpoint: m names its address, or m is nil (a protocol or section
	// written empty runs with its default address).
	hasEndpoint := func(what string, m map[string]any) {
		if _, ok := m["endpoint"]; !ok {
			t.Errorf("%s has no endpoint: it would listen on its default address", what)
		}
	}
	svc := section(cfg, "service")
	for _, name := range svc["extensions"].([]any) {
		name := name.(string)
		ext := section(cfg, "extensions", name)
		switch {
		case name == "jaeger_storage":
		case name == "jaeger_query":
			hasEndpoint(name+".http", section(ext, "http"))
			hasEndpoint(name+".grpc", section(ext, "grpc"))
		case name == "healthcheckv2":
			hasEndpoint(name+".http", section(ext, "http"))
			if _, ok := ext["grpc"]; ok {
				hasEndpoint(name+".grpc", section(ext, "grpc"))
			}
		default:
			t.Errorf("extension %s: not one make observe needs (remote_sampling, expvar, zpages, pprof listen on ports of their own)", name)
		}
	}
	for _, p := range section(svc, "pipelines") {
		for _, name := range p.(map[string]any)["receivers"].([]any) {
			name := name.(string)
			rcv := section(cfg, "receivers", name)
			protocols, ok := rcv["protocols"].(map[string]any)
			if !ok {
				hasEndpoint("receiver "+name, rcv)
				continue
			}
			for proto := range protocols {
				hasEndpoint("receiver "+name+"."+proto, section(protocols, proto))
			}
		}
	}
	// Jaeger's own metrics: off, or on a reader checked above.
	if m := section(svc, "telemetry", "metrics"); m["level"] != "none" && m["readers"] == nil {
		t.Errorf("service.telemetry.metrics: level %v without readers listens on the collector's default (:8888)", m["level"])
	}
}

// freePorts returns n distinct free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestJaegerReceivesZipkinSpans runs the built .bin/jaeger with the suite's
// configuration on free ports: a span posted as daprd posts it (Zipkin v2
// JSON) is found by its trace ID and its service, the trace viewer is served,
// and every socket of the process is on loopback. It needs .bin/jaeger (make
// tools); JAEGER_REQUIRED=1 makes its absence a failure.
func TestJaegerReceivesZipkinSpans(t *testing.T) {
	bin, err := filepath.Abs("../.bin/jaeger")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("JAEGER_REQUIRED") != "" {
			t.Fatalf("%s: %v (make tools builds it)", bin, err)
		}
		t.Skipf("%s is not built (make tools)", bin)
	}
	p := freePorts(t, 6)
	zipkin, query, health := p[0], p[1], p[5]
	cmd := exec.Command(bin, "--config", "observability/jaeger/config.yaml")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("JAEGER_ZIPKIN_PORT=%d", zipkin), fmt.Sprintf("JAEGER_QUERY_PORT=%d", query),
		fmt.Sprintf("JAEGER_QUERY_GRPC_PORT=%d", p[2]), fmt.Sprintf("JAEGER_OTLP_GRPC_PORT=%d", p[3]),
		fmt.Sprintf("JAEGER_OTLP_HTTP_PORT=%d", p[4]), fmt.Sprintf("JAEGER_HEALTH_PORT=%d", health))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once jaeger has exited (waitErr says how): closed,
	// not sent on, so that both the wait for its health check and the
	// cleanup see it (a value taken by the first left the second waiting
	// forever: a jaeger that exited early hung CI instead of failing it).
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("jaeger's output:\n%s", logs.String())
		}
	})

	// Ready when its health check says so.
	client := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		r, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/status", health))
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("jaeger exited: %v", waitErr)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger's health check did not answer 200 within 30 s (last: %v)", err)
		}
	}

	traceID := fmt.Sprintf("%016x%016x", time.Now().UnixNano(), os.Getpid())
	span := fmt.Sprintf(`[{"traceId":%q,"id":"00f067aa0ba902b7","name":"calllocal/orders/orders",`+
		`"kind":"SERVER","timestamp":%d,"duration":1500,"localEndpoint":{"serviceName":"orders"},`+
		`"tags":{"dapr.api":"/v1.0/invoke/orders/method/orders"}}]`, traceID, time.Now().UnixMicro())
	r, err := client.Post(fmt.Sprintf("http://127.0.0.1:%d/api/v2/spans", zipkin), "application/json", strings.NewReader(span))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v2/spans: %s", r.Status)
	}

	// The span reaches the store after the batch processor's flush.
	var got struct {
		Data []struct {
			TraceID string
			Spans   []struct{ OperationName string }
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if getJSON(t, client, fmt.Sprintf("http://127.0.0.1:%d/api/traces/%s", query, traceID), &got) == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s not found within 20 s", traceID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got.Data) != 1 || got.Data[0].TraceID != traceID || len(got.Data[0].Spans) != 1 ||
		got.Data[0].Spans[0].OperationName != "calllocal/orders/orders" {
		t.Fatalf("trace %s: %+v", traceID, got)
	}
	var services struct{ Data []string }
	if code := getJSON(t, client, fmt.Sprintf("http://127.0.0.1:%d/api/services", query), &services); code != http.StatusOK ||
		strings.Join(services.Data, ",") != "orders" {
		t.Fatalf("/api/services: %d %v, want [orders] (and not Jaeger's own)", code, services.Data)
	}
	r, err = client.Get(fmt.Sprintf("http://127.0.0.1:%d/trace/%s", query, traceID))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Contains(page, []byte("<title>daprshop traces</title>")) || !bytes.Contains(page, []byte(`"gitVersion":"v1.76.0"`)) {
		t.Fatalf("/trace/<id> is not the trace viewer with Jaeger's version:\n%s", page)
	}

	if _, err := exec.LookPath("ss"); err != nil {
		t.Log("no ss: the listening sockets are not checked")
		return
	}
	out, err := exec.Command("ss", "-Hltunp").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid := "pid=" + strconv.Itoa(cmd.Process.Pid) + ","
	var listening []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, pid) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("ss line %q", line)
		}
		listening = append(listening, f[4])
		if !strings.HasPrefix(f[4], "127.0.0.1:") {
			t.Errorf("jaeger listens on %s: %s", f[4], line)
		}
	}
	if len(listening) != 6 {
		t.Errorf("jaeger listens on %v, want the 6 ports of the configuration %v", listening, p)
	}
}

func getJSON(t *testing.T, c *http.Client, url string, v any) int {
	t.Helper()
	r, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode == http.StatusOK {
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return r.StatusCode
}

// startFakeJaeger starts this test binary under the name jaeger (a symlink:
// ps shows the name it was started by) listening on a free port; it stops
// with the test.
func startFakeJaeger(t *testing.T) (pid, port int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "jaeger")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link)
	cmd.Env = append(os.Environ(), "FAKE_JAEGER=listen")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if port, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("fake jaeger: %q: %v", line, err)
	}
	return cmd.Process.Pid, port
}

// zipkinURL runs `toolchain.sh zipkin-url` with make observe's record
// holding state (none when empty) and returns its stdout and stderr.
func zipkinURL(t *testing.T, state string) (string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "jaeger")
	if state != "" {
		if err := os.WriteFile(file, []byte(state+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "toolchain.sh", "zipkin-url")
	cmd.Env = append(os.Environ(), "JAEGER_STATE="+file)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("zipkin-url: %v\n%s", err, errOut.String())
	}
	return strings.TrimSpace(out.String()), errOut.String()
}

// TestMakeRunSendsSpansOnlyToTheJaegerOfMakeObserve: make run exports to
// the Zipkin port of the process make observe recorded, if that process
// runs, is named jaeger and listens there; a port that answers is not
// enough (any local user could listen on 9411 and read every span).
func TestMakeRunSendsSpansOnlyToTheJaegerOfMakeObserve(t *testing.T) {
	if _, err := exec.LookPath("ps"); err != nil {
		t.Skip("no ps")
	}
	pid, port := startFakeJaeger(t)
	other, err := net.Listen("tcp", "127.0.0.1:0") // a listener of another program (this one)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherPort := other.Addr().(*net.TCPAddr).Port

	want := fmt.Sprintf("http://127.0.0.1:%d/api/v2/spans", port)
	if out, errOut := zipkinURL(t, fmt.Sprintf("%d %d 16686", pid, port)); out != want || !strings.Contains(errOut, "spans: to the Jaeger of make observe") {
		t.Errorf("make observe's Jaeger runs: %q, want %s\n%s", out, want, errOut)
	}
	for name, state := range map[string]string{
		"no record":                             "",
		"a garbled record":                      "x y z",
		"its port answered by another":          fmt.Sprintf("%d %d 16686", pid, otherPort),
		"a process not named jaeger":            fmt.Sprintf("%d %d 16686", os.Getpid(), otherPort),
		"a process that is gone (a stale file)": fmt.Sprintf("%d %d 16686", 1<<22+7, port),
	} {
		if out, errOut := zipkinURL(t, state); out != "" || !strings.Contains(errOut, "for traces: make observe first, then make run") {
			t.Errorf("%s: %q, want nothing and how to get traces\n%s", name, out, errOut)
		}
	}
}

// TestMakeObserveStopsBoth runs `make observe` on a copy of the Makefile
// and the scripts with fake prometheus and jaeger that ignore SIGINT (as a
// background job of a script does unless it catches it): Ctrl-C (SIGINT to
// the process group) stops both and removes the record; when one exits by
// itself the other is stopped too.
func TestMakeObserveStopsBoth(t *testing.T) {
	for _, tool := range []string{"make", "ps"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	for _, tc := range []struct {
		name      string
		jaegerRun string // the fake jaeger's body after recording its PID
		interrupt bool
		wantOut   string
	}{
		{name: "Ctrl-C", jaegerRun: "exec sleep 300", interrupt: true},
		{name: "Jaeger exits", jaegerRun: "sleep 1; echo address already in use >&2; exit 1", wantOut: "Jaeger stopped: stopping Prometheus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			copyFile(t, "../Makefile", filepath.Join(root, "Makefile"))
			copyFile(t, "toolchain.sh", filepath.Join(root, "tools", "toolchain.sh"))
			copyFile(t, jaegerConfig, filepath.Join(root, "observability", "jaeger", "config.yaml"))
			fakes, bin := filepath.Join(root, "fakes"), filepath.Join(root, ".bin")
			for _, d := range []string{fakes, bin} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			fakeFile(t, filepath.Join(fakes, "promtool"), "#!/bin/sh\n")
			fakeFile(t, filepath.Join(fakes, "prometheus"), "#!/bin/sh\n[ \"$1\" = --version ] && { echo prometheus, version 0; exit 0; }\n"+
				"echo $$ > "+root+"/prometheus.pid\nexec sleep 300\n")
			fakeFile(t, filepath.Join(bin, "jaeger"), "#!/bin/sh\n[ \"$1\" = version ] && { echo '{\"gitVersion\":\"v1.76.0\"}'; exit 0; }\n"+
				"echo $$ > "+root+"/jaeger.pid\n"+tc.jaegerRun+"\n")

			cmd := exec.Command("make", "--no-print-directory", "observe")
			cmd.Dir = root
			// Not the settings of a make this test may run under (make test-unit).
			for _, kv := range os.Environ() {
				name, _, _ := strings.Cut(kv, "=")
				switch {
				case name == "MAKEFLAGS", name == "MFLAGS", name == "MAKELEVEL", name == "BIN", strings.HasPrefix(name, "JAEGER_"):
				default:
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "PATH="+fakes+":"+os.Getenv("PATH"))
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			pids := func() []int {
				var ps []int
				for _, name := range []string{"prometheus.pid", "jaeger.pid"} {
					b, _ := os.ReadFile(filepath.Join(root, name))
					if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
						ps = append(ps, p)
					}
				}
				return ps
			}
			for deadline := time.Now().Add(60 * time.Second); len(pids()) < 2; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					t.Fatalf("the fakes did not start:\n%s", out.String())
				}
			}
			if tc.interrupt {
				// After the record is written: the test of the record's removal.
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					if _, err := os.Stat(filepath.Join(root, ".run", "jaeger")); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no .run/jaeger:\n%s", out.String())
					}
				}
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			}
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("make observe exited 0")
				}
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatalf("make observe did not stop:\n%s", out.String())
			}
			for _, p := range pids() {
				if syscall.Kill(p, 0) == nil {
					_ = syscall.Kill(p, syscall.SIGKILL)
					t.Errorf("PID %d outlived make observe:\n%s", p, out.String())
				}
			}
			if _, err := os.Stat(filepath.Join(root, ".run", "jaeger")); err == nil {
				t.Errorf(".run/jaeger is left behind")
			}
			if !strings.Contains(out.String(), "http://127.0.0.1:16686") || !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output:\n%s\nwant the UI's address and %q", out.String(), tc.wantOut)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
