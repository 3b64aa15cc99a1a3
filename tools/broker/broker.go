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
		kfake.AllowAutoTopicCreation(),
		// One partition per topic keeps a topic's events in order.
		kfake.DefaultNumPartitions(1),
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
