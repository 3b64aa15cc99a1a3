package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMemoryTablePairsFiguresByProcess(t *testing.T) {
	got := memoryTable(
		[]memoryFigure{{"orders", 21.04}},
		[]memoryFigure{{"orders", 40.26}, {"orders daprd", 130}},
		50, 200)
	for _, want := range []string{
		"after the stream at 50/s | after the run (the journey at 200/s last)",
		"| orders | 21.0 MB | 40.3 MB |",
		"| orders daprd | - | 130.0 MB |", // no figure below saturation: said, not invented
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

// TestPlacedToConfirmedTimesEachOrder: against a gateway whose orders turn
// confirmed on their third read, every order is timed from its 201 across
// the reads; an order that stays paid past the deadline and a cancelled one
// are errors, not figures.
func TestPlacedToConfirmedTimesEachOrder(t *testing.T) {
	var mu sync.Mutex
	reads := map[string]int{}
	final := "confirmed"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/orders":
			id := fmt.Sprintf("ord_%d", len(reads))
			reads[id] = 0
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"id":%q,"status":"paid"}`, id)
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/orders/"):
			id := strings.TrimPrefix(r.URL.Path, "/api/orders/")
			reads[id]++
			status := "paid"
			if reads[id] >= 3 {
				status = final
			}
			fmt.Fprintf(w, `{"id":%q,"status":%q}`, id, status)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	s := shop{gateway: srv.URL, tokens: []string{"t"}, ids: []string{"prd_1"}}
	f, placed, err := placedToConfirmed(context.Background(), s, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(placed) != 5 {
		t.Errorf("placed %v: want the 201's time of each of the 5 orders", placed)
	}
	if f.N != 5 || len(f.Ms) != 5 || f.P50 < 3*float64(pollEvery.Milliseconds()) || f.Max < f.P50 {
		t.Errorf("figures %+v: want 5 orders, each at least 3 polls (%s) long", f, 3*pollEvery)
	}
	if !strings.Contains(confirmTable(f, nil), "5 orders one after another") {
		t.Errorf("table:\n%s", confirmTable(f, nil))
	}
	mu.Lock()
	final = "cancelled"
	mu.Unlock()
	if _, _, err := placedToConfirmed(context.Background(), s, 1); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("a cancelled order: err %v", err)
	}
}

func TestMachineCPUReadsProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	secs, ok := parseProcStat("cpu  1000 10 300 5000 40 0 90 100 70 0\ncpu0 1 2 3 4 5 6 7 8\n")
	if !ok || secs != 15 {
		t.Fatalf("%v %v: want 15 s (user, nice, system, irq, softirq, steal; no idle, iowait or guest)", secs, ok)
	}
	if _, ok := parseProcStat("intr 1 2\n"); ok {
		t.Error("a file without the cpu line")
	}
	b := busyOver(10, 25, map[string]float64{"a": 1, "b": 2}, map[string]float64{"a": 6, "b": 2}, 10*time.Second)
	if b.Machine != 1.5 || b.Suite != 0.5 {
		t.Errorf("%+v: want 1.5 cores, 0.5 of them the suite's", b)
	}
}

// TestKafkaPartitionsFollowTheManifest: the bench's broker and its report
// take the partitions of the Kubernetes deployment's KafkaTopics, the
// outboxes' internal topics by their local name (namespace "default").
func TestKafkaPartitionsFollowTheManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topics.yaml")
	if err := os.WriteFile(path, []byte(`# comment
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata: {name: orders}
spec: {partitions: 8, replicas: 1}
---
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata: {name: payments-topic}
spec: {topicName: payments, partitions: 8}
---
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata: {name: daprshopordersordersoutbox}
spec: {partitions: 4}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	declared, err := manifestPartitions(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(declared) != 3 || declared["payments"] != 8 || kafkaDefault(declared) != 8 {
		t.Fatalf("%v (default %d): want 3 topics, payments by its topicName, 8 the most common", declared, kafkaDefault(declared))
	}
	if declaredFor(declared, "defaultordersordersoutbox") != 4 || declaredFor(declared, "orders") != 8 || declaredFor(declared, "other") != 0 {
		t.Error("declaredFor")
	}
	md := topicTable([]topicFigure{{Name: "orders", Partitions: 8, Declared: 8, Records: 30, PerOrder: 3}, {Name: "defaultordersordersoutbox", Partitions: 8, Declared: 4}})
	for _, want := range []string{"| topic | partitions | k8s/kafka/topics.yaml | records | per order |", "| orders | 8 | 8 | 30 | 3.00 |",
		"**Partitions differ from the Kubernetes deployment's**: defaultordersordersoutbox (8 here, 4 there)"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if md := topicTable([]topicFigure{{Name: "orders", Partitions: 8, Declared: 8}}); !strings.Contains(md, "Every topic has the partitions the Kubernetes deployment declares") {
		t.Errorf("%s", md)
	}
	if _, err := manifestPartitions(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Error("a missing manifest: no error")
	}
	// The deployment's own manifest, where the checkout has it.
	if real, err := manifestPartitions(filepath.Join("..", "..", "..", "k8s", "kafka", "topics.yaml")); err == nil {
		for _, topic := range topicsOf(filepath.Join("..", "..", "..", "components", "kafka-postgres")) {
			if declaredFor(real, topic) == 0 {
				t.Errorf("k8s/kafka/topics.yaml declares no partitions for %s (local name)", topic)
			}
		}
	}
}
