package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/daprshop/suite/tools/runner"
)

// jaegerPath finds Jaeger.
func jaegerPath() string { return toolPath("JAEGER", "jaeger") }

// collector is a real Jaeger (make observe's binary and configuration) on
// free loopback ports: every sidecar of the run, and the gateway's edge,
// send their spans to its Zipkin receiver, and the tests read traces back
// from its query API, as a user's browser would.
type collector struct {
	cmd        *exec.Cmd
	zipkinPort int
	queryPort  int
	done       chan struct{}
}

// newCollector starts Jaeger writing its log in dir, its environment
// carrying marker (a process left behind fails the pass).
func newCollector(dir, marker string) (*collector, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	root, _ := filepath.Abs("..")
	log, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		return nil, err
	}
	c := &collector{zipkinPort: ports[0], queryPort: ports[1], done: make(chan struct{})}
	// At a lower priority than the suite (nice 10): under the load tests
	// the collector's ingestion took the cores the services were measured
	// on (shipment reads timed out); its lag only delays a trace's arrival,
	// which the tests wait for. On a cluster it has CPU of its own.
	c.cmd = exec.Command("nice", "-n", "10", jaegerPath(), "--config", filepath.Join(root, "observability", "jaeger", "config.yaml"))
	c.cmd.Dir = root
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.Env = append(os.Environ(), marker,
		"JAEGER_ZIPKIN_PORT="+strconv.Itoa(ports[0]), "JAEGER_QUERY_PORT="+strconv.Itoa(ports[1]),
		"JAEGER_QUERY_GRPC_PORT="+strconv.Itoa(ports[2]), "JAEGER_HEALTH_PORT="+strconv.Itoa(ports[3]),
		"JAEGER_OTLP_GRPC_PORT="+strconv.Itoa(ports[4]), "JAEGER_OTLP_HTTP_PORT="+strconv.Itoa(ports[5]))
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	go func() { _ = c.cmd.Wait(); log.Close(); close(c.done) }()
	health := fmt.Sprintf("http://127.0.0.1:%d/status", ports[3])
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-c.done:
			b, _ := os.ReadFile(filepath.Join(dir, "jaeger.log"))
			return nil, fmt.Errorf("jaeger exited: %s", b)
		default:
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
	}
	c.close()
	return nil, errors.New("jaeger not healthy within 30s (see jaeger.log)")
}

// freePorts returns n distinct ports free on loopback now (the runner's
// choice of port, each once).
func freePorts(n int) ([]int, error) {
	var ports []int
	used := map[int]bool{}
	for len(ports) < n {
		p, err := runner.FreePort()
		if err != nil {
			return nil, err
		}
		if !used[p] {
			used[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// url is where the run sends its spans.
func (c *collector) url() string {
	return fmt.Sprintf("http://127.0.0.1:%d/api/v2/spans", c.zipkinPort)
}

// ui is Jaeger's query API and UI.
func (c *collector) ui() string { return fmt.Sprintf("http://127.0.0.1:%d", c.queryPort) }

func (c *collector) close() {
	if c == nil {
		return // a pass without one
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// span is one span of a trace as Jaeger's query API returns it, with its
// process's service name and its tags as strings.
type span struct {
	TraceID, ID, ParentID, Name, Service, Kind string
	Tags                                       map[string]string
	Start                                      time.Time
	Duration                                   time.Duration
}

// trace returns the spans Jaeger holds of one trace (none: not yet).
func (c *collector) trace(id string) ([]span, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.ui()+"/api/traces/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/traces/%s: %s", id, resp.Status)
	}
	var body struct {
		Data []struct {
			Spans []struct {
				TraceID, SpanID, OperationName, ProcessID string
				References                                []struct{ RefType, SpanID string }
				Tags                                      []struct {
					Key   string
					Value any
				}
				StartTime, Duration int64 // microseconds
			}
			Processes map[string]struct{ ServiceName string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var out []span
	for _, t := range body.Data {
		for _, s := range t.Spans {
			sp := span{TraceID: s.TraceID, ID: s.SpanID, Name: s.OperationName, Service: t.Processes[s.ProcessID].ServiceName,
				Tags: map[string]string{}, Start: time.UnixMicro(s.StartTime), Duration: time.Duration(s.Duration) * time.Microsecond}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					sp.ParentID = r.SpanID
				}
			}
			for _, tag := range s.Tags {
				sp.Tags[tag.Key] = fmt.Sprint(tag.Value)
			}
			sp.Kind = sp.Tags["span.kind"]
			out = append(out, sp)
		}
	}
	return out, nil
}

// search returns the IDs of the traces Jaeger finds with a span of service
// at least minDuration long in the last hour: the search the dashboards'
// trace links and tables make.
func (c *collector) search(service string, minDuration time.Duration) ([]string, error) {
	q := fmt.Sprintf("%s/api/traces?service=%s&minDuration=%s&lookback=1h&limit=1000", c.ui(), service, minDuration)
	resp, err := http.Get(q)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", q, resp.Status)
	}
	var body struct {
		Data []struct {
			TraceID string `json:"traceID"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range body.Data {
		ids = append(ids, t.TraceID)
	}
	return ids, nil
}
