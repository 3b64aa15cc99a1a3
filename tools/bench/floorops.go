package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/daprshop/suite/tools/runner"
)

// OpsFloor is the floor of each kind of operation an order is made of: a no-op
// app (bench-ops-pub) whose daprd saves and reads state, commits state
// transactions with the outbox and publishes, and a no-op subscriber app
// (bench-ops-sub) behind a daprd of its own that counts the events it gets,
// on a private redis-server (state store and Redis streams pub/sub, the
// redis profile's component types) that StartOps starts and Stop stops.
type OpsFloor struct {
	run     *runner.Run
	servers []*http.Server
	dir     string
	redis   *runner.Redis
	// Events the subscriber got, by topic.
	published, outboxed atomic.Int64
}

// The operations floor's app IDs, components and topics: distinct from the
// suite's and the invocation floor's, so that all can run at once.
const (
	opsPub        = "bench-ops-pub"
	opsSub        = "bench-ops-sub"
	opsStore      = "bench-store"
	opsOutbox     = "bench-outbox-store"
	opsPubsub     = "bench-events"
	opsTopic      = "bench-topic"
	opsOutboxTopo = "bench-outbox-topic"
)

// opsComponents are the floor's components: a plain Redis state store and
// one with the outbox (as components/redis/statestore-orders.yaml), both
// the publisher's only, and a Redis streams pub/sub (as
// components/redis/pubsub.yaml: 100 workers).
const opsComponents = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ` + opsStore + `
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: {{redis}}
    - name: keyPrefix
      value: appid
scopes:
  - ` + opsPub + `
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ` + opsOutbox + `
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: {{redis}}
    - name: keyPrefix
      value: appid
    - name: outboxPublishPubsub
      value: ` + opsPubsub + `
    - name: outboxPublishTopic
      value: ` + opsOutboxTopo + `
scopes:
  - ` + opsPub + `
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ` + opsPubsub + `
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - name: redisHost
      value: {{redis}}
    - name: concurrency
      value: "100"
    - name: queueDepth
      value: "400"
`

// OpsRedisServer is the redis-server the operations floor starts, looked up
// in PATH.
const OpsRedisServer = "redis-server"

// StartOps starts the operations floor: a private redis-server
// (redisServer, on a free loopback port, no persistence), Sentry and the
// two daprds with their no-op apps, output going to out.
func StartOps(ctx context.Context, daprd, sentry, redisServer string, out io.Writer) (*OpsFloor, error) {
	dir, err := os.MkdirTemp("", "bench-ops-")
	if err != nil {
		return nil, err
	}
	o := &OpsFloor{dir: dir}
	if o.redis, err = startRedis(redisServer); err != nil {
		o.Stop()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "components.yaml"), []byte(strings.ReplaceAll(opsComponents, "{{redis}}", o.redis.Addr)), 0o600); err != nil {
		o.Stop()
		return nil, err
	}
	r, servers, err := noopSidecars(ctx, dir, []string{opsPub, opsSub}, func(id string, mux *http.ServeMux) {
		if id != opsSub {
			return
		}
		mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode([]map[string]string{
				{"pubsubname": opsPubsub, "topic": opsTopic, "route": "/events/published"},
				{"pubsubname": opsPubsub, "topic": opsOutboxTopo, "route": "/events/outboxed"},
			})
		})
		for route, n := range map[string]*atomic.Int64{"/events/published": &o.published, "/events/outboxed": &o.outboxed} {
			mux.HandleFunc("POST "+route, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				n.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
			})
		}
	}, daprd, sentry, out)
	o.servers = servers
	if err != nil {
		o.Stop()
		return nil, fmt.Errorf("starting the operations floor's sidecars: %w", err)
	}
	o.run = r
	return o, nil
}

// startRedis starts the private redis-server (runner.StartRedis, as make
// run's -private-redis) on a free loopback port.
func startRedis(redisServer string) (*runner.Redis, error) {
	path, err := exec.LookPath(redisServer)
	if err != nil {
		return nil, fmt.Errorf("no redis-server for the operations floor: %w", err)
	}
	port, err := runner.FreePort()
	if err != nil {
		return nil, err
	}
	return runner.StartRedis(path, port)
}

// Stop stops the sidecars, the apps and redis-server, and removes the files.
func (o *OpsFloor) Stop() {
	if o.run != nil {
		o.run.Stop()
	}
	for _, s := range o.servers {
		_ = s.Close()
	}
	if o.redis != nil {
		o.redis.Stop()
	}
	_ = os.RemoveAll(o.dir)
}

// OpCost is the CPU one kind of operation costs, per operation completed.
type OpCost struct {
	Kind string `json:"kind"`
	// Counted names the processes whose CPU DaprdMS is.
	Counted string `json:"counted"`
	// Ops is the operations completed: successful requests, or events
	// delivered to the subscriber where the kind ends in a delivery.
	Ops     int     `json:"ops"`
	DaprdMS float64 `json:"daprd_cpu_ms_per_op"`
	// RedisMS is redis-server's CPU per operation (used_cpu_user+sys), 0
	// where not read.
	RedisMS float64 `json:"redis_cpu_ms_per_op,omitempty"`
	Result  Result  `json:"result"`
	Note    string  `json:"note,omitempty"`
}

// CPUSnapshot is the CPU seconds of the processes an operation is counted
// on: the daprds' (summed) and redis-server's.
type CPUSnapshot struct {
	Daprd, Redis float64
}

// PerOp divides the CPU spent between before and after by ops, in ms per
// operation: zeros for no operation.
func PerOp(before, after CPUSnapshot, ops int) (daprdMS, redisMS float64) {
	if ops <= 0 {
		return 0, 0
	}
	return (after.Daprd - before.Daprd) * 1000 / float64(ops), (after.Redis - before.Redis) * 1000 / float64(ops)
}

// orderJSON is a state value or event of about 300 bytes, the size of an
// order's.
func orderJSON(i int) string {
	return fmt.Sprintf(`{"id":"order-%08d","customer":"customer-0042","status":"placed","currency":"EUR","total":4200,`+
		`"items":[{"product":"product-0001","name":"Bench widget","qty":2,"price":1000},{"product":"product-0002","name":"Bench gadget","qty":1,"price":2200}],`+
		`"created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z","version":1}`, i)
}

// opsKeys is how many keys the state operations cycle through.
const opsKeys = 1000

// MaxOutboxRate bounds the outbox's rate below what its relay forwards
// without a backlog: a release daprd 1.14 holds each message of its internal
// topic for a second (a pub/sub with 100 workers forwards at most 100 a
// second); the suite's build (tools/dapr/daprd.patch) looks for the marker at
// once, and the same bound keeps the two comparable.
const MaxOutboxRate = 50

// Measure measures each kind of operation at rate for d, one after
// another: state save, state get (the publisher's daprd, and redis-server),
// publish and delivery (both daprds, until every event is delivered), and a
// state transaction with the outbox until its event is delivered (both
// daprds; at most MaxOutboxRate).
func (o *OpsFloor) Measure(ctx context.Context, rate int, d time.Duration) []OpCost {
	pub := o.run.App(opsPub)
	api := fmt.Sprintf("http://127.0.0.1:%d/v1.0", pub.DaprHTTPPort)
	post := func(url string, want int, body func(i int) string) Request {
		return Request{Want: want, Make: func(i int) (*http.Request, error) {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body(i)))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Dapr-Api-Token", pub.APIToken)
			}
			return req, err
		}}
	}
	save := post(api+"/state/"+opsStore, http.StatusNoContent, func(i int) string {
		return fmt.Sprintf(`[{"key":"order-%d","value":%s}]`, i%opsKeys, orderJSON(i))
	})
	keys := opsKeys // the keys the saves wrote: the gets read only those
	get := Request{Want: http.StatusOK, Make: func(i int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/state/%s/order-%d", api, opsStore, i%keys), nil)
		if err == nil {
			req.Header.Set("Dapr-Api-Token", pub.APIToken)
		}
		return req, err
	}}
	publish := post(api+"/publish/"+opsPubsub+"/"+opsTopic, http.StatusNoContent, orderJSON)
	tx := post(api+"/state/"+opsOutbox+"/transaction", http.StatusNoContent, func(i int) string {
		return fmt.Sprintf(`{"operations":[{"operation":"upsert","request":{"key":"order-%d","value":%s}}]}`, i, orderJSON(i))
	})

	var out []OpCost
	out = append(out, o.measure(ctx, "state save", save, nil, rate, d, false))
	// A get of a missing key answers 204 (an error here): read only
	// the keys the saves wrote.
	keys = max(1, min(opsKeys, out[0].Result.Done))
	out = append(out, o.measure(ctx, "state get", get, nil, rate, d, false))
	out = append(out, o.measure(ctx, "publish + delivery", publish, &o.published, rate, d, true))
	out = append(out, o.measure(ctx, "outbox event (tx + internal topic + relay + delivery)", tx, &o.outboxed, min(rate, MaxOutboxRate), d, true))
	return out
}

// measure measures one kind: r at rate for d, then, for a kind that ends
// in a delivery, the wait until delivered has counted every success (or
// nothing changed for 10 s), with the CPU before and after. both: count
// both daprds, else the publisher's.
func (o *OpsFloor) measure(ctx context.Context, kind string, r Request, delivered *atomic.Int64, rate int, d time.Duration, both bool) OpCost {
	ids := []string{opsPub}
	counted := opsPub + " daprd"
	if both {
		ids = append(ids, opsSub)
		counted = "both daprds"
	}
	c := OpCost{Kind: kind, Counted: counted}
	var start int64
	if delivered != nil {
		start = delivered.Load()
	}
	before, errBefore := o.cpu(ctx, ids)
	c.Result = Measure(ctx, "ops floor: "+kind, rate, d, r)
	c.Ops = c.Result.Done
	if delivered != nil {
		c.Ops = int(waitDelivered(ctx, delivered, start, int64(c.Result.Done), 10*time.Second))
		if c.Ops < c.Result.Done {
			c.Note = fmt.Sprintf("%d of %d delivered", c.Ops, c.Result.Done)
		}
	}
	after, errAfter := o.cpu(ctx, ids)
	if err := errors.Join(errBefore, errAfter); err != nil {
		c.Note = strings.TrimPrefix(c.Note+"; "+err.Error(), "; ")
		return c
	}
	c.DaprdMS, c.RedisMS = PerOp(before, after, c.Ops)
	c.Result.CPU = c.DaprdMS
	return c
}

// waitDelivered waits until n has counted want since start, or it did not
// move for quiet, and returns the count since start.
func waitDelivered(ctx context.Context, n *atomic.Int64, start, want int64, quiet time.Duration) int64 {
	last, moved := n.Load(), time.Now()
	for n.Load()-start < want && time.Since(moved) < quiet && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if v := n.Load(); v != last {
			last, moved = v, time.Now()
		}
	}
	return n.Load() - start
}

// cpu reads the CPU seconds of the given apps' daprds and of redis-server.
func (o *OpsFloor) cpu(ctx context.Context, ids []string) (CPUSnapshot, error) {
	var (
		s   CPUSnapshot
		err error
	)
	if s.Daprd, err = daprdCPU(ctx, o.run, ids); err != nil {
		return s, err
	}
	s.Redis, err = RedisCPU(ctx, o.redis.Addr)
	return s, err
}

// RedisCPU reads the CPU seconds a Redis server has spent (INFO cpu:
// used_cpu_user + used_cpu_sys).
func RedisCPU(ctx context.Context, addr string) (float64, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(c, "*2\r\n$4\r\nINFO\r\n$3\r\ncpu\r\n"); err != nil {
		return 0, err
	}
	v, err := readRESP(bufio.NewReader(c))
	if err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	info, _ := v.(string)
	return parseRedisCPU(info)
}

// parseRedisCPU adds used_cpu_user and used_cpu_sys of an INFO reply.
func parseRedisCPU(info string) (float64, error) {
	total, found := 0.0, 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || k != "used_cpu_user" && k != "used_cpu_sys" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s: %w", k, err)
		}
		total += f
		found++
	}
	if found != 2 {
		return 0, errors.New("INFO cpu: no used_cpu_user and used_cpu_sys")
	}
	return total, nil
}

// OpsTable renders the CPU per operation of each kind, the two-hop
// invocation (twoHops, its CPU per call) first, each with its ratio to it.
func OpsTable(twoHops Result, costs []OpCost) string {
	var b strings.Builder
	b.WriteString("| operation | daprds counted | ops | rate/s | errors | p50 ms | daprd CPU ms/op | × invocation | redis-server CPU ms/op |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	ratio := func(ms float64) string {
		if twoHops.CPU <= 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", ms/twoHops.CPU)
	}
	cpu := func(ms float64) string {
		if ms <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", ms)
	}
	fmt.Fprintf(&b, "| invocation, two hops (no-op) | both daprds | %d | %d | %d | %.2f | %s | %s | - |\n",
		twoHops.Done, twoHops.Rate, twoHops.Errors, twoHops.P50, cpu(twoHops.CPU), ratio(twoHops.CPU))
	for _, c := range costs {
		kind := c.Kind
		if c.Note != "" {
			kind += " (" + c.Note + ")"
		}
		r := ""
		if c.DaprdMS > 0 {
			r = ratio(c.DaprdMS)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.2f | %s | %s | %s |\n",
			kind, c.Counted, c.Ops, c.Result.Rate, c.Result.Errors, c.Result.P50, cpu(c.DaprdMS), r, cpu(c.RedisMS))
	}
	return b.String()
}

// OpsMarkdown is the section of the report on the floor of each kind of
// operation: what was measured, and OpsTable.
func OpsMarkdown(twoHops Result, costs []OpCost) string {
	return "### daprd CPU per operation (the floor of each kind)\n\n" +
		"Each kind measured on its own, one after another, by no-op apps through their daprds (mTLS via Sentry) on a private redis-server " +
		"(state.redis, pubsub.redis with 100 workers, a JSON value of about 300 bytes): the daprds' process_cpu_seconds_total before and after, " +
		"divided by the operations completed (for publish and the outbox: the events the no-op subscriber got, after waiting for the last). " +
		"The outbox event is a one-upsert state transaction on a store with outboxPublishPubsub/outboxPublishTopic: the transaction, the internal topic, " +
		"the relay's read of the marker and publish to the real topic, and the delivery. p50 is the API call's. " +
		"redis-server's CPU is apart (INFO cpu).\n\n" + OpsTable(twoHops, costs)
}
