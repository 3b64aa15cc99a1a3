package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Sample is one line of a Prometheus text exposition: a metric's name, its
// labels and its value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples are the samples of one scrape.
type Samples []Sample

// Scrape reads a Prometheus endpoint (text format).
func Scrape(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return ParseMetrics(string(b))
}

// ParseMetrics parses the Prometheus text format. Comments and blank lines
// are skipped; a line it cannot read is an error, so that a change of format
// cannot pass for zero.
func ParseMetrics(text string) (Samples, error) {
	var out Samples
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", n+1, err, line)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, errors.New("no value")
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if line == "" {
				return s, errors.New("unterminated labels")
			}
			if line[0] == '}' {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return s, errors.New("bad label")
			}
			name := line[:eq]
			line = line[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(line); j++ {
				c := line[j]
				if c == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(line[j])
					}
					continue
				}
				if c == '"' {
					line, closed = line[j+1:], true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return s, errors.New("unterminated label value")
			}
			s.Labels[name] = v.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// Sum adds the values of every sample named name whose labels include all
// of match: the total of a counter across its label sets.
func (ss Samples) Sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range ss {
		if s.Name == name && hasLabels(s.Labels, match) {
			total += s.Value
		}
	}
	return total
}

// Has says whether any sample is named name.
func (ss Samples) Has(name string) bool {
	return slices.ContainsFunc(ss, func(s Sample) bool { return s.Name == name })
}

// By sums the samples named name whose labels include match, by the value
// of label (a sample without it counts under "").
func (ss Samples) By(name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		if s.Name == name && hasLabels(s.Labels, match) {
			out[s.Labels[label]] += s.Value
		}
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// The metrics of daprd 1.14.0 that count a sidecar's operations, as a
// running daprd exposes them (defined in
// github.com/dapr/dapr@v1.14.0/pkg/diagnostics). Every one is a counter;
// Ops sums it across its label sets. Operations the sidecar does on its
// own are not in them: the outbox's publish to its internal topic, its
// handling of that topic (a state read, the publish to the real topic, a
// state delete) and the state stores' and brokers' own calls.
const (
	// MetricInvokeSent counts service invocations this sidecar sent to
	// another app's sidecar (labels dst_app_id, type); MetricInvokeRecv
	// those it received from one (src_app_id) for its app.
	MetricInvokeSent = "dapr_runtime_service_invocation_req_sent_total"
	MetricInvokeRecv = "dapr_runtime_service_invocation_req_recv_total"
	// MetricState counts calls of the state API (labels component,
	// operation: get, bulk_get, set, delete, bulk_delete, transaction,
	// query; success: "true" or "false", e.g. an ETag that no longer
	// matched).
	MetricState = "dapr_component_state_count"
	// MetricPublish counts events the app published through the pub/sub
	// API (labels topic, success); MetricBulkPublish the events of bulk
	// publishes.
	MetricPublish     = "dapr_component_pubsub_egress_count"
	MetricBulkPublish = "dapr_component_pubsub_egress_bulk_event_count"
	// MetricDelivered counts deliveries of events to the app (labels topic,
	// process_status: success, retry, drop); MetricBulkDelivered the events
	// of bulk deliveries.
	MetricDelivered     = "dapr_component_pubsub_ingress_count"
	MetricBulkDelivered = "dapr_component_pubsub_ingress_bulk_event_count"
	// MetricSecret counts calls of the secrets API (labels operation,
	// success).
	MetricSecret = "dapr_component_secret_count"
	// MetricGRPCCalls counts the app's calls of the sidecar's gRPC API
	// (label grpc_server_method) and MetricHTTPCalls those of its HTTP API
	// (method, status; no path: the suite's configurations turn
	// increasedCardinality off): every call the app made to its sidecar.
	MetricGRPCCalls = "dapr_grpc_io_server_completed_rpcs"
	MetricHTTPCalls = "dapr_http_server_request_count"
	// MetricAppCalls counts the sidecar's HTTP calls to its app:
	// deliveries of events and invocations received (health probes are
	// counted apart).
	MetricAppCalls = "dapr_http_client_completed_count"
	// MetricCPU is a process's CPU time, seconds.
	MetricCPU = "process_cpu_seconds_total"
)

// OpKinds are the kinds of sidecar operation Ops counts, in report order.
// "state failed" is the part of the state calls that failed (counted in
// their kinds too); "API calls" are all the app's calls of its sidecar,
// "calls to app" all the sidecar's calls of its app.
var OpKinds = []string{
	"invoke sent", "invoke received",
	"state get", "state bulk get", "state set", "state delete", "state transaction", "state other", "state failed",
	"publish", "delivered", "delivery retried", "secret",
	"API calls", "calls to app",
}

// stateKinds maps the operation label of MetricState to a kind.
var stateKinds = map[string]string{
	"get": "state get", "bulk_get": "state bulk get", "set": "state set", "delete": "state delete",
	"bulk_delete": "state delete", "transaction": "state transaction",
}

// Ops counts a sidecar's operations by kind (OpKinds) from one scrape of
// its metrics port. Deliveries that succeeded or were dropped count as
// delivered; those the app asked to retry (or that failed) as retried.
func Ops(ss Samples) map[string]float64 {
	out := map[string]float64{
		"invoke sent":     ss.Sum(MetricInvokeSent, nil),
		"invoke received": ss.Sum(MetricInvokeRecv, nil),
		"state failed":    ss.Sum(MetricState, map[string]string{"success": "false"}),
		"publish":         ss.Sum(MetricPublish, nil) + ss.Sum(MetricBulkPublish, nil),
		"secret":          ss.Sum(MetricSecret, nil),
		"API calls":       ss.Sum(MetricGRPCCalls, nil) + ss.Sum(MetricHTTPCalls, nil),
		"calls to app":    ss.Sum(MetricAppCalls, nil),
	}
	for op, v := range ss.By(MetricState, "operation", nil) {
		kind, ok := stateKinds[op]
		if !ok {
			kind = "state other"
		}
		out[kind] += v
	}
	for status, v := range ss.By(MetricDelivered, "process_status", nil) {
		if status == "success" || status == "drop" {
			out["delivered"] += v
		} else {
			out["delivery retried"] += v
		}
	}
	out["delivered"] += ss.Sum(MetricBulkDelivered, nil)
	return out
}

// Deliveries counts the events a sidecar delivered to its app, by topic
// (successes and drops: what left the topic; retries are not counted).
func Deliveries(ss Samples) map[string]float64 {
	out := map[string]float64{}
	for _, status := range []string{"success", "drop"} {
		for topic, v := range ss.By(MetricDelivered, "topic", map[string]string{"process_status": status}) {
			out[topic] += v
		}
	}
	return out
}

// Diff returns after minus before, key by key (a key missing before counts
// from zero), without the keys that did not change.
func Diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
