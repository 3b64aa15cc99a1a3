package broker_test

import (
	"context"
	"errors"
	"net"
	"os"
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
	produceConsume(t, b)
}

// TestHostileRequestsAreRefused: requests kfake would die of (an unknown
// type: a nil pointer in the process that runs it, daprun) or allocate for
// (a claimed length of up to 4 GiB) close their connection, and the broker
// goes on serving.
func TestHostileRequestsAreRefused(t *testing.T) {
	b, err := broker.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for name, req := range map[string][]byte{
		// length 10, api key 0x7fff, version 0, correlation 1, null client ID
		"unknown request type":      {0, 0, 0, 10, 0x7f, 0xff, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		"a version past the type's": {0, 0, 0, 10, 0, 0, 0x7f, 0xff, 0, 0, 0, 1, 0xff, 0xff},
		"4 GiB claimed":             {0xff, 0xff, 0xff, 0xff, 0, 0},
		"shorter than a header":     {0, 0, 0, 2, 0, 0},
	} {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: the connection stays open (read %d bytes, %v)", name, n, err)
		}
		c.Close()
	}
	produceConsume(t, b)
}

// produceConsume produces a record to a new topic and consumes it back.
func produceConsume(t *testing.T, b *broker.Broker) {
	t.Helper()
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
