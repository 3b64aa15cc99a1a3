// Package broker runs an in-process Kafka protocol broker on loopback
// (github.com/twmb/franz-go/pkg/kfake) for local runs and tests of the
// kafka-postgres profile, where no Kafka is installed. Topics are created on
// first use. Its data lives in memory and ends with it.
package broker

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running in-process Kafka broker.
type Broker struct {
	cluster *kfake.Cluster
}

// Start listens on 127.0.0.1:port (0: a free port).
func Start(port int) (*Broker, error) {
	c, err := kfake.NewCluster(
		kfake.Ports(port),
		kfake.ListenFn(guardedListen), // see guard.go
		kfake.AllowAutoTopicCreation(),
		// Several partitions per topic, as a production topic would have:
		// Dapr 1.14's outbox waits 1 s before it handles each message of its
		// internal topic, and a consumer takes a partition's messages one at
		// a time, so with one partition every event would trail the one
		// before by a second. The suite's consumers accept events out of order.
		kfake.DefaultNumPartitions(8),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the Kafka broker on port %d: %w", port, err)
	}
	return &Broker{cluster: c}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Port is the broker's port.
func (b *Broker) Port() int {
	_, p, _ := net.SplitHostPort(b.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// Close stops the broker.
func (b *Broker) Close() { b.cluster.Close() }
