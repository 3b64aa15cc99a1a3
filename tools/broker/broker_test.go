package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/daprshop/suite/tools/broker"
)

// TestProduceConsume proves the broker speaks Kafka, on loopback only: a
// record produced to a topic that does not exist yet is consumed back.
func TestProduceConsume(t *testing.T) {
	b, err := broker.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Port() == 0 {
		t.Fatalf("addr %s", b.Addr())
	}
	if host, _, _ := net.SplitHostPort(b.Addr()); !net.ParseIP(host).IsLoopback() {
		t.Fatalf("the broker listens beyond loopback: %s", b.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("orders"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal("nothing consumed:", err)
		}
		var got []string
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) > 0 {
			if got[0] != "hello" {
				t.Fatalf("consumed %q", got)
			}
			return
		}
	}
}
