package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/daprshop/suite/tools/bench"
	"github.com/daprshop/suite/tools/runner"
)

// runKafka is "bench kafka": a broker on loopback until SIGINT or SIGTERM,
// whose topics get the partitions the Kubernetes deployment declares
// (-manifest, Strimzi KafkaTopics), or -partitions for every topic.
func runKafka(args []string) error {
	fs := flag.NewFlagSet("bench kafka", flag.ContinueOnError)
	port := fs.Int("port", 9092, "the loopback port")
	partitions := fs.Int("partitions", 0, "partitions of every topic (0: those -manifest declares)")
	manifest := fs.String("manifest", "../k8s/kafka/topics.yaml", "the Kubernetes deployment's KafkaTopics")
	resources := fs.String("resources", "../components/kafka-postgres", "the profile's components: the topics its pub/sub names are created at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, seed, from := *partitions, map[string]int{}, "-partitions"
	if n == 0 {
		declared, err := manifestPartitions(*manifest)
		if err != nil {
			return fmt.Errorf("%w (or give -partitions)", err)
		}
		n, from = kafkaDefault(declared), *manifest
		// The local names of the deployment's topics (the outboxes'
		// carry the namespace "default" here).
		for _, t := range topicsOf(*resources) {
			if d := declaredFor(declared, t); d > 0 {
				seed[t] = d
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	k, err := bench.StartKafka(*port, n, seed)
	if err != nil {
		return err
	}
	defer k.Close()
	fmt.Printf("bench kafka: broker at %s, %d partition(s) per topic (%s)\n", k.Addr(), n, from)
	<-ctx.Done()
	return nil
}

// manifestPartitions reads the partitions of every Strimzi KafkaTopic in a
// manifest, by topic name (spec.topicName, else metadata.name).
func manifestPartitions(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var kt struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				TopicName  string `yaml:"topicName"`
				Partitions int    `yaml:"partitions"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&kt); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if kt.Kind != "KafkaTopic" {
			continue
		}
		name := kt.Spec.TopicName
		if name == "" {
			name = kt.Metadata.Name
		}
		if kt.Spec.Partitions < 1 {
			return nil, fmt.Errorf("%s: KafkaTopic %s declares no partitions", path, name)
		}
		out[name] = kt.Spec.Partitions
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no KafkaTopic", path)
	}
	return out, nil
}

// kafkaDefault is the partitions of a topic the manifest does not name
// (the outboxes' internal topics locally carry the namespace "default"
// instead of the cluster's): the count most of its topics have, the
// largest of equals.
func kafkaDefault(declared map[string]int) int {
	count := map[int]int{}
	for _, n := range declared {
		count[n]++
	}
	best := 0
	for n, c := range count {
		if c > count[best] || c == count[best] && n > best {
			best = n
		}
	}
	return best
}

// declaredFor returns the partitions the manifest declares for a local
// topic: its own name, or for an outbox's internal topic
// (<namespace><app><topic>outbox, namespace "default" locally) the one of
// the cluster's namespace; 0 if none.
func declaredFor(declared map[string]int, topic string) int {
	if n, ok := declared[topic]; ok {
		return n
	}
	if rest, ok := strings.CutPrefix(topic, "default"); ok && strings.HasSuffix(topic, "outbox") {
		for name, n := range declared {
			if strings.HasSuffix(name, rest) {
				return n
			}
		}
	}
	return 0
}

// topicsOf returns the topics the pub/sub component in dir names in its
// publishing and subscription scopes (every topic of the suite, the
// outboxes' internal ones included), sorted; nil if none.
func topicsOf(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	seen := map[string]bool{}
	for _, f := range files {
		comps, err := runner.ReadComponents(f)
		if err != nil {
			continue // not the components of a profile
		}
		for _, c := range comps {
			if !strings.HasPrefix(c.Spec.Type, "pubsub.") {
				continue
			}
			for _, m := range c.Spec.Metadata {
				if m.Name != "publishingScopes" && m.Name != "subscriptionScopes" {
					continue
				}
				for _, scope := range strings.Split(m.Value, ";") {
					_, topics, _ := strings.Cut(scope, "=")
					for _, t := range strings.Split(topics, ",") {
						if t = strings.TrimSpace(t); t != "" {
							seen[t] = true
						}
					}
				}
			}
		}
	}
	var out []string
	for t := range seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// brokerRecords reads every topic's records at the pub/sub's broker (-kafka
// or -redis); nil when neither is set or it does not answer.
func brokerRecords(ctx context.Context, o options, topics []string) map[string]int64 {
	switch {
	case o.kafka != "":
		ts, err := bench.KafkaTopics(ctx, o.kafka)
		if err != nil {
			say("kafka: %v", err)
			return nil
		}
		out := map[string]int64{}
		for _, t := range ts {
			out[t.Name] = t.Records
		}
		return out
	case o.redis != "" && len(topics) > 0:
		out, err := bench.RedisStreams(ctx, o.redis, topics)
		if err != nil {
			say("redis: %v", err)
			return nil
		}
		return out
	}
	return nil
}

// kafkaPartitions reads every topic's partitions at -kafka (nil without).
func kafkaPartitions(ctx context.Context, o options) map[string]int {
	if o.kafka == "" {
		return nil
	}
	ts, err := bench.KafkaTopics(ctx, o.kafka)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, t := range ts {
		out[t.Name] = t.Partitions
	}
	return out
}
