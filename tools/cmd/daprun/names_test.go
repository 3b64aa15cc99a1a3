package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/runner"
	"github.com/daprshop/suite/tools/runner/runnertest"
)

// TestRunsNeverCross starts two runs of the same two app IDs at once (IDs
// of this test's own, so no other run on the machine has them) and has each
// run's alpha invoke beta many times while the other run does the same:
// every call reaches its own run's beta and none the other's, and no process
// of either run holds an mDNS socket (UDP 5353). Once with each run's
// Sentry, where a call that crossed would fail its TLS handshake, and once
// without, where it would be answered by the other run. The apps'
// Configuration (secret scopes, metrics, tracing) still applies under the
// run's name resolution.
func TestRunsNeverCross(t *testing.T) {
	daprd, sentry := realDapr(t)
	for _, mode := range []struct {
		name   string
		sentry string
	}{{"with each run's Sentry", sentry}, {"without Sentry", ""}} {
		t.Run(mode.name, func(t *testing.T) {
			suffix := randomHex(4)
			alphaID, betaID := "alpha-"+suffix, "beta-"+suffix
			// The first run has a span collector of its own
			// (Options.Zipkin), the second none.
			runs := []*twinRun{
				startTwin(t, daprd, mode.sentry, alphaID, betaID, true),
				startTwin(t, daprd, mode.sentry, alphaID, betaID, false),
			}

			const calls = 200
			answers := make([]map[string]int, len(runs))
			var wg sync.WaitGroup
			for i, tr := range runs {
				wg.Go(func() { answers[i] = tr.invokeBeta(t, calls) })
			}
			wg.Wait()
			for i, tr := range runs {
				other := runs[1-i].marker
				if answers[i][tr.marker] != calls {
					t.Errorf("run %d: %d of %d calls answered by its own beta, %d by the other run's; all answers: %v",
						i, answers[i][tr.marker], calls, answers[i][other], answers[i])
				}
				if n := tr.betaCalls(t); n != calls {
					t.Errorf("run %d: its beta answered %d calls, its alpha made %d", i, n, calls)
				}
			}

			for i, tr := range runs {
				udp, err := runnertest.UDP(tr.marker)
				if err != nil {
					t.Fatal(err)
				}
				mdns := map[int]string{} // pid -> its command and sockets
				for _, s := range udp {
					if s.Addr.Port() == 5353 {
						mdns[s.PID] += " " + s.Addr.String()
					}
				}
				for pid, sockets := range mdns {
					t.Errorf("run %d: pid %d holds mDNS sockets:%s", i, pid, sockets)
				}
			}

			t.Run("the app's Configuration still applies", func(t *testing.T) {
				runs[0].configApplies(t)
			})
			t.Run("spans go to the run's collector or nowhere", func(t *testing.T) {
				// By the time the first run's collector has spans, the
				// second run's sidecars have sent theirs, had they any
				// exporter: the one the apps' Configuration names is
				// replaced, in both runs.
				for i, tr := range runs {
					if n := tr.named.Load(); n != 0 {
						t.Errorf("run %d: %d spans went to the collector the apps' Configuration names", i, n)
					}
				}
			})
		})
	}
}

// twinRun is one of the two runs of TestRunsNeverCross.
type twinRun struct {
	run    *runner.Run
	marker string // the value of the run's marker: what its testapps answer /whoami with
	alpha  *runner.AppRun
	beta   *runner.AppRun
	spans  *atomic.Int64 // spans the run's sidecars sent to its collector (Options.Zipkin)
	named  *atomic.Int64 // spans sent to the collector the apps' Configuration names
}

// startTwin starts alpha and beta with real sidecars (and Sentry unless
// sentry is ""), both under a Configuration with secret scopes, metrics
// without path labels and tracing to a collector, which any local user
// could have started; with collector the run has a collector of its own
// (Options.Zipkin).
func startTwin(t *testing.T, daprd, sentry, alphaID, betaID string, collector bool) *twinRun {
	t.Helper()
	dir := suite(t, nil)
	editRunFile(t, dir, "appID: alpha\n", "appID: "+alphaID+"\n")
	editRunFile(t, dir, "appID: beta\n", "appID: "+betaID+"\n")
	editRunFile(t, dir, "  resourcesPaths: [./res]\n", "  resourcesPaths: [./res]\n  configFilePath: ./config.yaml\n")

	spans, named := &atomic.Int64{}, &atomic.Int64{}
	runCollector, namedCollector := spanCollector(t, spans), spanCollector(t, named)
	secrets := filepath.Join(dir, "secrets.json")
	for name, text := range map[string]string{
		secrets: `{"open": "o", "closed": "c"}`,
		filepath.Join(dir, "res", "secrets.yaml"): fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: secrets
spec:
  type: secretstores.local.file
  version: v1
  metadata:
    - name: secretsFile
      value: %q
`, secrets),
		filepath.Join(dir, "config.yaml"): fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: twin
spec:
  tracing:
    samplingRate: "1"
    zipkin:
      endpointAddress: %s
  metric:
    enabled: true
    http:
      increasedCardinality: false
  secrets:
    scopes:
      - storeName: secrets
        defaultAccess: deny
        allowedSecrets: ["open"]
`, namedCollector),
	} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	f, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	marker := runnertest.NewMarker()
	out := &syncBuffer{}
	opts := runner.Options{Daprd: daprd, Sentry: sentry, Out: out,
		Env: []string{marker}, StopGrace: 5 * time.Second, ReadyTimeout: 90 * time.Second}
	if collector {
		opts.Zipkin = runCollector
	}
	r, err := runner.Start(t.Context(), f, opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("the output of run %s:\n%s", marker, out)
		}
		if left := runnertest.Tagged(marker); len(left) > 0 {
			t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	_, value, _ := strings.Cut(marker, "=")
	return &twinRun{run: r, marker: value, alpha: r.App(alphaID), beta: r.App(betaID), spans: spans, named: named}
}

// spanCollector is a Zipkin collector counting the spans it gets into n; it
// returns its /api/v2/spans URL.
func spanCollector(t *testing.T, n *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got []json.RawMessage
		if json.NewDecoder(r.Body).Decode(&got) == nil {
			n.Add(int64(len(got)))
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/v2/spans"
}

// invokeBeta calls beta's GET /whoami through alpha's sidecar n times, four
// at a time, and counts the answers: a run's marker for a 200, else the
// status and the body.
func (tr *twinRun) invokeBeta(t *testing.T, n int) map[string]int {
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/invoke/%s/method/whoami", tr.alpha.DaprHTTPPort, tr.beta.ID)
	client := &http.Client{Timeout: 10 * time.Second}
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				answer := call(client, url, tr.alpha.APIToken)
				mu.Lock()
				answers[answer]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return answers
}

// call GETs url with a sidecar token and returns the body of a 200, or the
// status and the body of anything else.
func call(client *http.Client, url, token string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("dapr-api-token", token)
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d: %.200s", resp.StatusCode, b)
	}
	return string(b)
}

// betaCalls asks beta itself, not through a sidecar, how many /whoami calls
// it has answered.
func (tr *twinRun) betaCalls(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/count", tr.beta.AppPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n int
	if _, err := fmt.Fscan(resp.Body, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// configApplies checks what the app's Configuration sets, which the run's
// name resolution Configuration is read on top of: the secret scopes, the
// metrics without path labels, and the spans going to the run's collector
// (Options.Zipkin, which replaces the Configuration's).
func (tr *twinRun) configApplies(t *testing.T) {
	client := &http.Client{Timeout: 10 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d/v1.0/secrets/secrets/", tr.alpha.DaprHTTPPort)
	if got := strings.TrimSpace(call(client, base+"open", tr.alpha.APIToken)); got != `{"open":"o"}` {
		t.Errorf("an allowed secret: %s", got)
	}
	if got := call(client, base+"closed", tr.alpha.APIToken); !strings.HasPrefix(got, "status 403") {
		t.Errorf("a secret outside the scopes: %s, want status 403", got)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", tr.alpha.MetricsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	series := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "dapr_http_server_request_count{") {
			series++
			// With increasedCardinality (1.14's default) the label holds the request's path.
			if strings.Contains(line, `path="/`) {
				t.Errorf("a series with a path (increasedCardinality is off): %s", line)
			}
		}
	}
	if series == 0 {
		t.Error("no dapr_http_server_request_count series: nothing to judge the metrics settings by")
	}

	deadline := time.Now().Add(30 * time.Second)
	for tr.spans.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no span reached the run's collector within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
