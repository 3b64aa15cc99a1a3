package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka is an in-process Kafka protocol broker on loopback for the bench's
// kafka-postgres runs, whose topics get the partitions of the Kubernetes
// deployment's (k8s/kafka/topics.yaml), whatever the runner's own broker
// (tools/broker) gives them.
type Kafka struct {
	cluster *kfake.Cluster
}

// StartKafka listens on 127.0.0.1:port and creates every topic on first use
// with partitions partitions, as a broker with auto.create.topics.enable
// and num.partitions does; the topics named in seed are created at once,
// with the partitions given there.
func StartKafka(port, partitions int, seed map[string]int) (*Kafka, error) {
	if partitions < 1 {
		return nil, fmt.Errorf("partitions %d: at least 1", partitions)
	}
	opts := []kfake.Opt{kfake.Ports(port), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions)}
	for topic, n := range seed {
		if n < 1 {
			return nil, fmt.Errorf("topic %s: %d partitions", topic, n)
		}
		opts = append(opts, kfake.SeedTopics(int32(n), topic))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting a Kafka broker on port %d: %w", port, err)
	}
	return &Kafka{cluster: c}, nil
}

// Addr is the broker's host:port.
func (k *Kafka) Addr() string { return k.cluster.ListenAddrs()[0] }

// Close stops the broker.
func (k *Kafka) Close() { k.cluster.Close() }

// Topic is one Kafka topic as the bench reports it.
type Topic struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	// Records is the sum of the partitions' end offsets: every record the
	// topic has had.
	Records int64 `json:"records"`
}

// KafkaTopics reads every topic of the broker at addr (internal ones
// aside): its partitions and records.
func KafkaTopics(ctx context.Context, addr string) ([]Topic, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kafka metadata at %s: %w", addr, err)
	}
	offsets := kmsg.NewPtrListOffsetsRequest()
	var out []Topic
	for _, t := range meta.Topics {
		if t.Topic == nil || strings.HasPrefix(*t.Topic, "__") {
			continue
		}
		out = append(out, Topic{Name: *t.Topic, Partitions: len(t.Partitions)})
		ot := kmsg.NewListOffsetsRequestTopic()
		ot.Topic = *t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewListOffsetsRequestTopicPartition()
			op.Partition = p.Partition
			op.Timestamp = -1 // the end
			ot.Partitions = append(ot.Partitions, op)
		}
		offsets.Topics = append(offsets.Topics, ot)
	}
	shards := cl.RequestSharded(ctx, offsets)
	records := map[string]int64{}
	for _, sh := range shards {
		if sh.Err != nil {
			return nil, fmt.Errorf("kafka offsets at %s: %w", addr, sh.Err)
		}
		for _, t := range sh.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					records[t.Topic] += p.Offset
				}
			}
		}
	}
	for i := range out {
		out[i].Records = records[out[i].Name]
	}
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
