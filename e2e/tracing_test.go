package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTracing: an order placed with a client's W3C trace context is one
// trace in Jaeger (the run's own, make observe's binary and configuration):
// the gateway's span of the request, every invocation, the state operations
// and the outbox's publishing of each service on the way, and the delivery
// of its events to every subscription of every topic, each span a child of
// another span of the trace (the root a child of the client's), and the
// services' log lines about it carry its trace ID.
func TestTracing(t *testing.T) {
	admin := adminToken(t)
	_, tok := signUp(t)
	p := newProduct(t, admin, 400, 3)
	traceID, clientSpan := randomHex(16), randomHex(8)
	body := fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}]}`, p.ID)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/orders", env.run.App("gateway").AppPort), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("order: %d", resp.StatusCode)
	}

	// Every subscription of the run is one delivery the trace must show
	// (the order's events reach each one; dead-letter topics carry none).
	type delivery struct{ app, topic string }
	deliveries := map[delivery]bool{}
	for _, s := range subscriptionRoutes(t) {
		if !strings.HasSuffix(s.topic, "-deadletter") {
			deliveries[delivery{s.app, s.topic}] = true
		}
	}
	// Invocation: gateway -> orders -> products, payments (orders does not
	// ask users: the gateway's token proves the owner); shipping -> users
	// (the name on the label).
	calls := [][2]string{{"gateway", "orders"}, {"orders", "products"}, {"orders", "payments"}, {"shipping", "users"}}
	// State: every service that keeps the order's consequences. (Dapr's
	// Zipkin exporter lower-cases its span names: CallLocal reaches Jaeger
	// as calllocal.)
	stateful := []string{"orders", "products", "payments", "notifications", "shipping"}

	var spans []span
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range spans {
				t.Logf("%s %s <- %s %q %v", s.Service, s.ID, s.ParentID, s.Name, s.Tags)
			}
		}
	})
	eventually(t, 60*time.Second, func() string {
		if spans, err = env.spans.trace(traceID); err != nil {
			return err.Error()
		}
		byID := map[string]span{}
		for _, s := range spans {
			byID[s.ID] = s
		}
		var missing []string
		edge := false
		for _, s := range spans {
			if s.Service == "gateway" && s.Name == "POST /api/orders" && s.ParentID == clientSpan {
				edge = true
			}
		}
		if !edge {
			missing = append(missing, "the gateway's span of POST /api/orders, a child of the client's")
		}
		for _, c := range calls {
			found := false
			for _, s := range spans {
				if strings.HasPrefix(strings.ToLower(s.Name), "calllocal/"+c[1]+"/") && s.Service == c[1] && byID[s.ParentID].Service == c[0] {
					found = true
				}
			}
			if !found {
				missing = append(missing, fmt.Sprintf("%s invoking %s", c[0], c[1]))
			}
		}
		for _, app := range stateful {
			found := false
			for _, s := range spans {
				if s.Service == app && strings.Contains(strings.ToLower(s.Name), "state") {
					found = true
				}
			}
			if !found {
				missing = append(missing, app+"'s state operations")
			}
		}
		for d := range deliveries {
			found := false
			for _, s := range spans {
				if s.Service == d.app && strings.EqualFold(s.Name, "pubsub/"+d.topic) {
					found = true
				}
			}
			if !found {
				missing = append(missing, fmt.Sprintf("the delivery of %s to %s", d.topic, d.app))
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return fmt.Sprintf("trace %s (%d spans) has no %s", traceID, len(spans), strings.Join(missing, "; "))
		}
		return ""
	})
	// Linked: no span hangs from a parent the trace does not have (the
	// client's span is the one parent outside it).
	ids := map[string]bool{clientSpan: true}
	for _, s := range spans {
		ids[s.ID] = true
	}
	for _, s := range spans {
		if !ids[s.ParentID] {
			t.Errorf("span %s %q of %s has parent %q, which is not in the trace", s.ID, s.Name, s.Service, s.ParentID)
		}
	}

	// Found the way a dashboard's trace link or table looks for it: by a
	// service and a least duration (the slowest span of the order's, in
	// every service but the probe's).
	slowest := map[string]time.Duration{}
	for _, s := range spans {
		slowest[s.Service] = max(slowest[s.Service], s.Duration)
	}
	for service, d := range slowest {
		if service == "e2e-probe" {
			continue
		}
		ids, err := env.spans.search(service, d)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(ids, traceID) {
			t.Errorf("Jaeger's search for %s's traces of at least %v does not find trace %s (found %d)", service, d, traceID, len(ids))
		}
	}

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
