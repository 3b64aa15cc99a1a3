package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// daprdScrape is an excerpt of a real scrape of orders' daprd 1.14.0 (the
// suite's redis profile, after ten orders), with a bulk delivery, a
// publish, a retried and a dropped delivery and a secret added.
const daprdScrape = `# HELP dapr_component_pubsub_ingress_count The number of incoming messages arriving from the pub/sub component.
# TYPE dapr_component_pubsub_ingress_count counter
dapr_component_pubsub_ingress_count{app_id="orders",component="events",namespace="",process_status="success",status="success",topic="orders"} 30
dapr_component_pubsub_ingress_count{app_id="orders",component="events",namespace="",process_status="success",status="success",topic="payments"} 10
dapr_component_pubsub_ingress_count{app_id="orders",component="events",namespace="",process_status="retry",status="success",topic="payments"} 2
dapr_component_pubsub_ingress_count{app_id="orders",component="events",namespace="",process_status="drop",status="success",topic="payments"} 1
dapr_component_pubsub_ingress_bulk_event_count{app_id="orders",component="events",namespace="",process_status="success",topic="orders"} 4
dapr_component_pubsub_ingress_latencies_bucket{app_id="orders",component="events",namespace="",process_status="success",status="success",topic="orders",le="1"} 3
dapr_component_pubsub_egress_count{app_id="orders",component="events",namespace="",success="true",topic="orders"} 5
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="delete",success="true"} 30
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="get",success="true"} 147
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="set",success="false"} 25
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="set",success="true"} 50
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="transaction",success="true"} 30
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="bulk_get",success="true"} 7
dapr_component_state_count{app_id="orders",component="orders-store",namespace="",operation="query",success="true"} 1
dapr_component_secret_count{app_id="orders",component="secrets",namespace="",operation="get",success="true"} 1
dapr_grpc_io_server_completed_rpcs{app_id="orders",grpc_server_method="/dapr.proto.runtime.v1.Dapr/GetState",grpc_server_status="OK"} 147
dapr_grpc_io_server_completed_rpcs{app_id="orders",grpc_server_method="/dapr.proto.runtime.v1.Dapr/SaveState",grpc_server_status="Internal"} 25
dapr_http_client_completed_count{app_id="orders",method="POST",path="",status="200"} 40
dapr_http_server_request_count{app_id="orders",method="POST",path="",status="201"} 20
dapr_runtime_service_invocation_req_recv_total{app_id="orders",src_app_id="gateway"} 11
dapr_runtime_service_invocation_req_sent_total{app_id="orders",dst_app_id="payments",type="unary"} 11
dapr_runtime_service_invocation_req_sent_total{app_id="orders",dst_app_id="products",type="unary"} 11
dapr_runtime_service_invocation_req_sent_total{app_id="orders",dst_app_id="users",type="unary"} 11
process_cpu_seconds_total 0.42
go_gc_duration_seconds{quantile="0.5"} 4.1e-05
`

func TestOpsCountsEveryKindAcrossLabels(t *testing.T) {
	ss, err := ParseMetrics(daprdScrape)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"invoke sent": 33, "invoke received": 11,
		"state get": 147, "state bulk get": 7, "state set": 75, "state delete": 30, "state transaction": 30, "state other": 1,
		"state failed": 25, "publish": 5, "delivered": 30 + 10 + 1 + 4, "delivery retried": 2, "secret": 1,
		"API calls": 147 + 25 + 20, "calls to app": 40,
	}
	got := Ops(ss)
	for _, k := range OpKinds {
		if got[k] != want[k] {
			t.Errorf("%s: %v, want %v", k, got[k], want[k])
		}
	}
	if len(got) != len(OpKinds) {
		t.Errorf("kinds %v, want exactly OpKinds", got)
	}
	if d := Deliveries(ss); d["orders"] != 30 || d["payments"] != 11 {
		t.Errorf("deliveries %v: want orders 30, payments 11 (successes and drops)", d)
	}
	if ss.Sum(MetricCPU, nil) != 0.42 || !ss.Has(MetricCPU) || ss.Has("nothing") {
		t.Error("process_cpu_seconds_total")
	}
}

func TestParseMetricsReadsLabelsAndRefusesGarbage(t *testing.T) {
	ss, err := ParseMetrics("m{a=\"x,\\\"y\\\"}\",b=\"\\\\n\"} +Inf 1700000000\nn 2\n\n# c\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].Labels["a"] != `x,"y"}` || ss[0].Labels["b"] != `\n` || ss[0].Value < 1e308 || ss[1].Value != 2 {
		t.Fatalf("%+v", ss)
	}
	for _, bad := range []string{"m{a=\"x} 1", "m{a} 1", "m 1x", "m"} {
		if _, err := ParseMetrics(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDiffKeepsWhatChanged(t *testing.T) {
	got := Diff(map[string]float64{"a": 1, "b": 2}, map[string]float64{"a": 4, "b": 2, "c": 1})
	if len(got) != 2 || got["a"] != 3 || got["c"] != 1 {
		t.Fatalf("%v", got)
	}
}

// TestRedisStreamsReadsEntriesAdded: against a fake Redis that answers
// XINFO STREAM as Redis 7 does, a missing stream as an error reply.
func TestRedisStreamsReadsEntriesAdded(t *testing.T) {
	addr := fakeRedis(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			var key string
			for i := 0; i < 7; i++ { // *3, $5, XINFO, $6, STREAM, $n, key
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				key = strings.TrimSpace(line)
			}
			switch key {
			case "orders":
				fmt.Fprint(c, "*6\r\n$6\r\nlength\r\n:3\r\n$13\r\nentries-added\r\n:120\r\n$11\r\nfirst-entry\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$-1\r\n")
			case "old":
				fmt.Fprint(c, "*2\r\n$6\r\nlength\r\n:7\r\n")
			default:
				fmt.Fprint(c, "-ERR no such key\r\n")
			}
		}
	})
	got, err := RedisStreams(context.Background(), addr, []string{"orders", "old", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if got["orders"] != 120 || got["old"] != 7 || got["missing"] != 0 || len(got) != 3 {
		t.Fatalf("%v", got)
	}
}

// TestKafkaTopicsReadsPartitionsAndRecords: the bench's broker creates a
// topic on first use with the default partitions, a seeded one with its
// own, and KafkaTopics counts their records.
func TestKafkaTopicsReadsPartitionsAndRecords(t *testing.T) {
	k, err := StartKafka(0, 3, map[string]int{"payments": 2})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint(i)), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := KafkaTopics(ctx, k.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0] != (Topic{Name: "orders", Partitions: 3, Records: 5}) || ts[1] != (Topic{Name: "payments", Partitions: 2}) {
		t.Fatalf("%+v: want orders (created on first use: 3 partitions, 5 records) and payments (seeded: 2)", ts)
	}
	if _, err := StartKafka(0, 0, nil); err == nil {
		t.Error("0 partitions: no error")
	}
}
