package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is a Zipkin-compatible span collector in the test process: every
// sidecar of the run sends its spans here (runner.Options.Zipkin).
type collector struct {
	srv  *http.Server
	addr string
	mu   sync.Mutex
	got  []span
}

// span is the part of a Zipkin v2 span the tests read.
type span struct {
	TraceID       string                       `json:"traceId"`
	ID            string                       `json:"id"`
	ParentID      string                       `json:"parentId"`
	Name          string                       `json:"name"`
	Kind          string                       `json:"kind"`
	LocalEndpoint struct{ ServiceName string } `json:"localEndpoint"`
	Tags          map[string]string            `json:"tags"`
}

func newCollector() (*collector, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &collector{addr: l.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/spans", func(w http.ResponseWriter, r *http.Request) {
		var spans []span
		if err := json.NewDecoder(r.Body).Decode(&spans); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.got = append(c.got, spans...)
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(l) }()
	return c, nil
}

func (c *collector) url() string { return "http://" + c.addr + "/api/v2/spans" }

func (c *collector) close() { _ = c.srv.Close() }

// trace returns the spans of one trace.
func (c *collector) trace(id string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.got {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

// TestTracing: an order placed with a client's W3C trace context is one
// trace across every sidecar it crosses, by invocation and by pub/sub, and
// the services' log lines about it carry its trace ID.
func TestTracing(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 400, 3)
	traceID := randomHex(16)
	body := fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}]}`, p.ID)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/orders", env.run.App("gateway").AppPort), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("traceparent", "00-"+traceID+"-"+randomHex(8)+"-01")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("order: %d", resp.StatusCode)
	}

	// Invocation: gateway -> orders -> products, payments (orders does not
	// ask users: the gateway's token proves the owner). Pub/sub: the order's
	// events reach notifications and shipping (TypeScript) within the same
	// trace.
	want := []string{"gateway", "orders", "products", "payments", "notifications", "shipping"}
	eventually(t, 30*time.Second, func() string {
		seen := map[string]bool{}
		for _, s := range env.spans.trace(traceID) {
			seen[s.LocalEndpoint.ServiceName] = true
		}
		var missing []string
		for _, app := range want {
			if !seen[app] {
				missing = append(missing, app)
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("trace %s has no spans from %v (has %v)", traceID, missing, keys(seen))
		}
		return ""
	})

	// Logs: orders, payments and shipping logged this order with its trace ID.
	eventually(t, 10*time.Second, func() string {
		apps := map[string]bool{}
		f, err := os.Open(env.logPath)
		if err != nil {
			return err.Error()
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, `"trace_id":"`+traceID+`"`) {
				// The console's prefix names the instance: "orders", "orders-2".
				apps[replicaSuffix.ReplaceAllString(strings.TrimSpace(strings.SplitN(line, " ", 2)[0]), "")] = true
			}
		}
		for _, app := range []string{"orders", "payments", "shipping"} {
			if !apps[app] {
				return fmt.Sprintf("no log line of %s carries trace %s (found in %v)", app, traceID, keys(apps))
			}
		}
		return ""
	})
}

// replicaSuffix is the instance number the console adds to an app ID.
var replicaSuffix = regexp.MustCompile(`-[0-9]+$`)

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
