package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/daprshop/suite/tools/bench"
)

// streamFigures is what the sustained stream of orders gave: the stream
// itself, and, from just before it started until its events settled, the
// CPU and the sidecar operations of each process per order, the events
// each subscriber got, the records of every topic at the broker, and
// placed-to-confirmed.
type streamFigures struct {
	Result bench.Result `json:"result"`
	Rate   int          `json:"rate"`
	Length string       `json:"duration"`
	// Orders is how many got their 201: the divisor of every per-order
	// figure.
	Orders int `json:"orders"`
	// Settled says every subscriber's count stopped growing (and reached
	// the topic's records, where the broker was read) SettledAfter seconds
	// after the last 201; false: still moving after -settle-max.
	Settled      bool           `json:"settled"`
	SettledAfter float64        `json:"settled_after_s"`
	CPU          []cpuFigure    `json:"cpu_ms_per_order"`
	Ops          []sidecarOps   `json:"sidecar_ops_per_order"`
	Events       []eventFigure  `json:"events"`
	Topics       []topicFigure  `json:"topics,omitempty"`
	Latency      *latency       `json:"placed_to_notified_ms,omitempty"`
	Memory       []memoryFigure `json:"memory_mb"`
	// Busy is how many cores the machine and the suite's processes kept
	// busy from the stream's start until its events settled (nil where
	// the machine's CPU cannot be read): the rest is the generator, the
	// brokers and stores, and whatever else ran on the machine.
	Busy *busy `json:"busy,omitempty"`
	// placed is when each order of the stream got its 201.
	placed map[string]time.Time
}

// sidecarOps is one sidecar's operations per order, by kind (bench.OpKinds).
type sidecarOps struct {
	App      string             `json:"app"`
	PerOrder map[string]float64 `json:"per_order"`
}

// eventFigure is one subscriber's deliveries of one topic.
type eventFigure struct {
	App   string `json:"app"`
	Topic string `json:"topic"`
	// DuringStream events were delivered while the stream ran, PerSecond
	// of them a second; Delivered until the events settled.
	DuringStream float64 `json:"delivered_during_stream"`
	PerSecond    float64 `json:"per_second"`
	Delivered    float64 `json:"delivered"`
	// Expected is what the subscriber should get: the topic's records at
	// the broker over the same window (ExpectedFrom "broker"), or, without
	// the broker, the most any subscriber of the topic got ("subscribers").
	Expected     float64 `json:"expected"`
	ExpectedFrom string  `json:"expected_from"`
	// LastDelivery is when its count last grew, Reached when it reached
	// Expected (-1: never), in seconds after the stream's last 201, at the
	// resolution of the reads (-sample-every): the first read that saw it.
	LastDelivery float64 `json:"last_delivery_s"`
	Reached      float64 `json:"reached_expected_s"`
	// Behind is the target's figure: the longest a record of the topic
	// waited for this subscriber, in seconds, from the first read that
	// found it at the broker (the stream's last 201 for those there when
	// the stream stopped) to the first read whose deliveries covered it
	// (-1: some never did). Unlike Reached it leaves out when a record was
	// published: a shipment's steps are published on their own schedule,
	// seconds after the stream. Without the broker it is Reached.
	Behind float64 `json:"behind_s"`
}

// topicFigure is one topic at the broker: its partitions (Kafka; 0 for a
// Redis stream) and its records over the stream's window.
type topicFigure struct {
	Name       string  `json:"name"`
	Partitions int     `json:"partitions,omitempty"`
	Records    int64   `json:"records"`
	PerOrder   float64 `json:"per_order"`
	// Declared is the partitions the Kubernetes deployment declares for
	// the topic (k8s/kafka/topics.yaml; 0: none, or not Kafka).
	Declared int `json:"k8s_partitions,omitempty"`
}

// maxLag is the target: no subscriber more than this behind the stream.
const maxLag = 2 * time.Second

// sidecar is one daprd of the suite: its app and metrics port.
type sidecar struct {
	app  string
	port int
}

// countsAt is the subscribers' deliveries (by subscriberKey) and the
// broker's records (by topic) at one moment.
type countsAt struct {
	at        time.Time
	delivered map[string]float64
	records   map[string]int64
}

// subscriberKey keys a subscriber's deliveries of a topic.
func subscriberKey(app, topic string) string { return app + "\x00" + topic }

// runStream places orders at o.streamRate for o.streamDuration, then reads
// the subscribers' sidecars every o.sampleEvery until the events settle.
func runStream(ctx context.Context, o options, s shop) (*streamFigures, error) {
	cars := sidecarsOf(o.runFile)
	if len(cars) == 0 {
		return nil, fmt.Errorf("no sidecar of %s answers on its metrics port", o.runFile)
	}
	topics := topicsOf(o.resources)
	before, err := scrapeAll(ctx, cars)
	if err != nil {
		return nil, err
	}
	recordsBefore := brokerRecords(ctx, o, topics)
	cpuBefore := cpuSeconds(o.runFile)
	machine0, machineOK := machineCPU()
	st := &streamFigures{Rate: o.streamRate, Length: o.streamDuration.String(), placed: map[string]time.Time{}}
	var (
		mu   sync.Mutex
		last time.Time
	)
	start := time.Now()
	st.Result = bench.Measure(ctx, fmt.Sprintf("suite: POST /api/orders, a sustained stream for %s", o.streamDuration), o.streamRate, o.streamDuration,
		s.order(func(_ int, body []byte, at time.Time) {
			var ord struct{ ID string }
			_ = json.Unmarshal(body, &ord)
			mu.Lock()
			defer mu.Unlock()
			if ord.ID != "" {
				st.placed[ord.ID] = at
			}
			if at.After(last) {
				last = at
			}
		}))
	st.Orders = st.Result.Done
	if st.Orders == 0 {
		return nil, fmt.Errorf("no order of the stream succeeded: %+v", st.Result)
	}
	end, err := scrapeAll(ctx, cars)
	if err != nil {
		return nil, err
	}
	series := []countsAt{{at: time.Now(), delivered: deliveries(end), records: brokerRecords(ctx, o, topics)}}
	streamed := series[0].at.Sub(start)

	// The subscribers: the sidecars that delivered events while the
	// stream ran; only they are read until the events settle.
	var subs []sidecar
	b0 := deliveries(before)
	for _, c := range cars {
		for k, v := range series[0].delivered {
			if strings.HasPrefix(k, c.app+"\x00") && v != b0[k] {
				subs = append(subs, c)
				break
			}
		}
	}
	say("stream: %d orders placed; reading %d subscribers' sidecars until their counts settle", st.Orders, len(subs))
	lastChange := series[0].at
	for {
		prev := series[len(series)-1]
		quiet := time.Since(lastChange)
		reached := allReached(b0, prev.delivered, recordsBefore, prev.records)
		if quiet >= o.quiet && reached {
			st.Settled = true
			break
		}
		// A subscriber that stopped short (an event lost, a topic it
		// does not read) leaves reached false: give up once nothing
		// moved for four quiet periods.
		if quiet >= 4*o.quiet || time.Since(series[0].at) >= o.settleMax || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.sampleEvery):
		}
		cur, err := scrapeAll(ctx, subs)
		if err != nil { // a sidecar restarting: the next read will tell
			say("stream: %v", err)
			continue
		}
		c := countsAt{at: time.Now(), delivered: maps.Clone(prev.delivered), records: brokerRecords(ctx, o, topics)}
		maps.Copy(c.delivered, deliveries(cur))
		if !maps.Equal(c.delivered, prev.delivered) || !maps.Equal(c.records, prev.records) {
			lastChange = c.at
		}
		series = append(series, c)
	}
	st.SettledAfter = lastChange.Sub(last).Seconds()
	if final := series[len(series)-1]; final.records != nil && !brokerCounts(b0, final.delivered, recordsBefore, final.records) {
		say("the broker's topics did not grow with the deliveries (another broker than the suite's?): expected counts from the subscribers")
		recordsBefore = nil
		for i := range series {
			series[i].records = nil
		}
	}
	after, err := scrapeAll(ctx, cars)
	if err != nil {
		return nil, err
	}
	cpuAfter := cpuSeconds(o.runFile)
	if machine1, ok := machineCPU(); ok && machineOK {
		b := busyOver(machine0, machine1, cpuBefore, cpuAfter, time.Since(start))
		st.Busy = &b
	}
	st.CPU = cpuPerOrder(cpuBefore, cpuAfter, float64(st.Orders))
	st.Memory = rss(o.runFile)
	st.Ops = opsPerOrder(cars, before, after, st.Orders)
	st.Events = eventFigures(b0, series, recordsBefore, last, streamed)
	st.Topics = topicFigures(recordsBefore, series[len(series)-1].records, kafkaPartitions(ctx, o), st.Orders)
	if o.kafka != "" && o.k8sTopics != "" {
		declared, err := manifestPartitions(o.k8sTopics)
		if err != nil {
			say("kafka: %v", err)
		}
		for i := range st.Topics {
			st.Topics[i].Declared = declaredFor(declared, st.Topics[i].Name)
		}
	}
	return st, nil
}

// sidecarsOf returns the sidecars of the run file.
func sidecarsOf(runFile string) []sidecar {
	var out []sidecar
	for _, a := range appsOf(runFile) {
		out = append(out, sidecar{a.ID, a.MetricsPort})
	}
	return out
}

// scrapeAll reads the metrics of every sidecar at once.
func scrapeAll(ctx context.Context, cars []sidecar) (map[string]bench.Samples, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = map[string]bench.Samples{}
		errs []error
	)
	for _, c := range cars {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss, err := bench.Scrape(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", c.port))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s's sidecar: %w", c.app, err))
				return
			}
			out[c.app] = ss
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// deliveries counts every sidecar's deliveries by subscriberKey.
func deliveries(scrapes map[string]bench.Samples) map[string]float64 {
	out := map[string]float64{}
	for app, ss := range scrapes {
		for topic, v := range bench.Deliveries(ss) {
			out[subscriberKey(app, topic)] = v
		}
	}
	return out
}

// allReached says whether every subscriber got, since before, at least the
// records its topic got at the broker (true where the broker is not read).
func allReached(before, now map[string]float64, recordsBefore, records map[string]int64) bool {
	if records == nil {
		return true
	}
	for k, v := range now {
		_, topic, _ := strings.Cut(k, "\x00")
		r, ok := records[topic]
		if ok && v-before[k] < float64(r-recordsBefore[topic]) {
			return false
		}
	}
	return true
}

// brokerCounts says whether the broker's records can be trusted: every
// topic a subscriber got events of grew at the broker too.
func brokerCounts(before, now map[string]float64, recordsBefore, records map[string]int64) bool {
	if records == nil {
		return false
	}
	for k, v := range now {
		_, topic, _ := strings.Cut(k, "\x00")
		if v > before[k] && records[topic] <= recordsBefore[topic] {
			return false
		}
	}
	return true
}

// eventFigures works out each subscriber's figures from its deliveries
// before the stream and the series read from the stream's end (series[0],
// streamed after its start) until it settled; last is the stream's last
// 201.
func eventFigures(before map[string]float64, series []countsAt, recordsBefore map[string]int64, last time.Time, streamed time.Duration) []eventFigure {
	final := series[len(series)-1]
	most := map[string]float64{} // the most any subscriber of a topic got
	for k, v := range final.delivered {
		_, topic, _ := strings.Cut(k, "\x00")
		most[topic] = max(most[topic], v-before[k])
	}
	after := func(t time.Time) float64 { return max(0, t.Sub(last).Seconds()) }
	var out []eventFigure
	for _, k := range slices.Sorted(maps.Keys(final.delivered)) {
		total := final.delivered[k] - before[k]
		if total == 0 {
			continue
		}
		app, topic, _ := strings.Cut(k, "\x00")
		e := eventFigure{App: app, Topic: topic, Delivered: total, DuringStream: series[0].delivered[k] - before[k],
			Expected: most[topic], ExpectedFrom: "subscribers", Reached: -1}
		if r, ok := final.records[topic]; ok {
			e.Expected, e.ExpectedFrom = float64(r-recordsBefore[topic]), "broker"
		}
		e.PerSecond = e.DuringStream / streamed.Seconds()
		lastAt := series[0].at
		for i, c := range series {
			if i > 0 && c.delivered[k] != series[i-1].delivered[k] {
				lastAt = c.at
			}
			if e.Reached < 0 && c.delivered[k]-before[k] >= e.Expected {
				e.Reached = after(c.at)
			}
		}
		e.LastDelivery = after(lastAt)
		e.Behind = e.Reached
		if e.ExpectedFrom == "broker" {
			e.Behind = behindBroker(series, k, topic, before[k], recordsBefore[topic], last)
		}
		out = append(out, e)
	}
	return out
}

// behindBroker is how long, at most, a record of topic waited at the broker
// for subscriber k (eventFigure.Behind): for every read at which the
// topic's records grew, the time until the first read whose deliveries
// (since delivered0) reached them (since records0). Both counts only grow,
// so one pass finds every such read.
func behindBroker(series []countsAt, k, topic string, delivered0 float64, records0 int64, last time.Time) float64 {
	worst, j, prev := 0.0, 0, int64(-1)
	for i, c := range series {
		r := c.records[topic] - records0
		if r == prev {
			continue
		}
		prev = r
		from := c.at
		if i == 0 {
			from = last
		}
		j = max(j, i)
		for j < len(series) && series[j].delivered[k]-delivered0 < float64(r) {
			j++
		}
		if j == len(series) {
			return -1
		}
		worst = max(worst, series[j].at.Sub(from).Seconds())
	}
	return worst
}

// opsPerOrder divides each sidecar's operations between before and after by
// the orders.
func opsPerOrder(cars []sidecar, before, after map[string]bench.Samples, orders int) []sidecarOps {
	var out []sidecarOps
	for _, c := range cars {
		d := bench.Diff(bench.Ops(before[c.app]), bench.Ops(after[c.app]))
		for k := range d {
			d[k] /= float64(orders)
		}
		out = append(out, sidecarOps{App: c.app, PerOrder: d})
	}
	return out
}

// topicFigures reports each topic's records over the window, heaviest
// first; partitions are Kafka's (nil for Redis).
func topicFigures(before, after map[string]int64, partitions map[string]int, orders int) []topicFigure {
	var out []topicFigure
	for name, n := range after {
		r := n - before[name]
		if r == 0 && partitions[name] == 0 {
			continue
		}
		out = append(out, topicFigure{Name: name, Partitions: partitions[name], Records: r, PerOrder: float64(r) / float64(orders)})
	}
	slices.SortFunc(out, func(a, b topicFigure) int {
		if a.Records != b.Records {
			return int(b.Records - a.Records)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// markdown renders the stream's figures; floorCPU is the CPU of a two-hop
// no-op call (0: not measured), chosen how its rate was chosen ("": given).
func (st *streamFigures) markdown(floorCPU float64, cores int, chosen string) string {
	var b strings.Builder
	r := st.Result
	fmt.Fprintf(&b, "\n### The order journey as a sustained stream: %d orders/s for %s\n%s\n", st.Rate, st.Length, chosen)
	fmt.Fprintf(&b, "%d orders placed (%d errors%s, %d dropped), %.1f/s; 201 after p50 %.1f ms, p90 %.1f ms, p99 %.1f ms. "+
		"Every figure per order below divides what happened from just before the stream until its events settled by these %d orders "+
		"(the work of the failed ones included).\n",
		st.Orders, r.Errors, failures(r.Failures), r.Dropped, r.Throughput, r.P50, r.P90, r.P99, st.Orders)
	if st.Latency != nil {
		b.WriteString("\nPlaced to confirmed during the stream (no polling: every customer's notifications read after it):\n\n")
		b.WriteString("| from the 201 to | orders | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
		b.WriteString(latencyRow("order.confirmed reaching notifications (its created_at)", st.Latency))
	}
	if st.Busy != nil {
		fmt.Fprintf(&b, "\nFrom the stream's start until its events settled the machine kept %.2f of its %d cores busy, the suite's processes %.2f; "+
			"the rest (%.2f) is the generator, the brokers and stores, and anything else that ran on the machine.\n",
			st.Busy.Machine, cores, st.Busy.Suite, st.Busy.Machine-st.Busy.Suite)
	}
	b.WriteString(cpuTable(st.CPU, floorCPU, cores))
	b.WriteString(opsTable(st.Ops))
	b.WriteString(topicTable(st.Topics))
	b.WriteString(eventTable(st.Events, st.Settled, st.SettledAfter))
	return b.String()
}

// failures lists the errors by kind: ": 503 × 3, timeout × 1".
func failures(f map[string]int) string {
	if len(f) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, fmt.Sprintf("%s × %d", k, f[k]))
	}
	return ": " + strings.Join(parts, ", ")
}

// cpuTable reports the CPU per order per process and its multiple of the
// floor.
func cpuTable(cpu []cpuFigure, floorCPU float64, cores int) string {
	if len(cpu) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nCPU per order (process_cpu_seconds_total before and after):\n\n| process | CPU ms per order |")
	if floorCPU > 0 {
		b.WriteString(" × a two-hop no-op call |\n|---|---|---|\n")
	} else {
		b.WriteString("\n|---|---|\n")
	}
	var total, cars float64
	row := func(name string, ms float64) {
		fmt.Fprintf(&b, "| %s | %.2f |", name, ms)
		if floorCPU > 0 {
			fmt.Fprintf(&b, " %.1f |", ms/floorCPU)
		}
		b.WriteString("\n")
	}
	for _, c := range cpu {
		total += c.MS
		if strings.HasSuffix(c.Name, " daprd") {
			cars += c.MS
		}
		row(c.Name, c.MS)
	}
	row("**all sidecars**", cars)
	row("**all services**", total-cars)
	row("**one order, every process**", total)
	fmt.Fprintf(&b, "\nAt this cost %d cores serve about %.0f orders/s (Redis or Kafka and PostgreSQL, and the generator, not counted; the cost is this stream's, whose share of what the suite spends idle, probes and pollers, is smaller at a higher rate, so the suite may serve more; the overload's orders done per second tell).", cores, 1000*float64(cores)/total)
	if floorCPU > 0 {
		fmt.Fprintf(&b, " One order costs %.1f times the CPU of a two-hop no-op call (%.3f ms, the floor's two sidecars); its sidecars alone %.1f times.", total/floorCPU, floorCPU, cars/floorCPU)
	}
	b.WriteString("\n")
	return b.String()
}

// opsTable reports each sidecar's operations per order, one column per
// kind that any sidecar did.
func opsTable(ops []sidecarOps) string {
	if len(ops) == 0 {
		return ""
	}
	all := map[string]float64{}
	for _, o := range ops {
		for k, v := range o.PerOrder {
			all[k] += v
		}
	}
	var kinds []string
	for _, k := range bench.OpKinds {
		if all[k] != 0 {
			kinds = append(kinds, k)
		}
	}
	var b strings.Builder
	b.WriteString("\nSidecar operations per order, from each daprd's metrics before and after (counters summed over their labels; " +
		"\"state failed\" are state calls that failed, e.g. on a stale ETag, also counted in their kind; " +
		"\"API calls\" every call of the app to its sidecar, gRPC and HTTP; \"calls to app\" the sidecar's calls of its app, " +
		"deliveries and invocations):\n\n| sidecar | " + strings.Join(kinds, " | ") + " |\n|---" + strings.Repeat("|---", len(kinds)) + "|\n")
	row := func(name string, m map[string]float64) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, k := range kinds {
			fmt.Fprintf(&b, " %s |", ratio(m[k]))
		}
		b.WriteString("\n")
	}
	for _, o := range ops {
		row(o.App, o.PerOrder)
	}
	row("**all sidecars**", all)
	b.WriteString("\nNot in daprd's metrics: the outbox's work. Each record of an outbox's internal topic (`<namespace><app><topic>outbox`, below) " +
		"is published by its sidecar within the state transaction, delivered back to it, then costs a state read (at least one), " +
		"the publish to the real topic and a state delete, none of them counted above.\n")
	return b.String()
}

// ratio prints a per-order count: blank for none.
func ratio(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v)
}

// topicTable reports the broker's records per topic and, where the
// Kubernetes deployment declares them, its partitions beside the broker's.
func topicTable(topics []topicFigure) string {
	if len(topics) == 0 {
		return ""
	}
	k8s := slices.ContainsFunc(topics, func(t topicFigure) bool { return t.Declared > 0 })
	var b strings.Builder
	b.WriteString("\nRecords per topic at the broker over the same window:\n\n| topic | partitions |")
	if k8s {
		b.WriteString(" k8s/kafka/topics.yaml |")
	}
	b.WriteString(" records | per order |\n|---|---|")
	if k8s {
		b.WriteString("---|")
	}
	b.WriteString("---|---|\n")
	var differ []string
	for _, t := range topics {
		parts := "-"
		if t.Partitions > 0 {
			parts = fmt.Sprint(t.Partitions)
		}
		fmt.Fprintf(&b, "| %s | %s |", t.Name, parts)
		if k8s {
			declared := "none"
			if t.Declared > 0 {
				declared = fmt.Sprint(t.Declared)
			}
			fmt.Fprintf(&b, " %s |", declared)
			if t.Declared != t.Partitions {
				differ = append(differ, fmt.Sprintf("%s (%s here, %s there)", t.Name, parts, declared))
			}
		}
		fmt.Fprintf(&b, " %d | %.2f |\n", t.Records, t.PerOrder)
	}
	switch {
	case k8s && len(differ) == 0:
		b.WriteString("\nEvery topic has the partitions the Kubernetes deployment declares; Dapr 1.14's Kafka consumer takes a partition's messages one at a time, so that is also each app's concurrency per topic.\n")
	case k8s:
		fmt.Fprintf(&b, "\n**Partitions differ from the Kubernetes deployment's**: %s.\n", strings.Join(differ, ", "))
	}
	return b.String()
}

// eventTable reports each subscriber's deliveries and lag.
func eventTable(events []eventFigure, settled bool, after float64) string {
	if len(events) == 0 {
		return "\nNo subscriber delivered an event during the stream.\n"
	}
	var b strings.Builder
	b.WriteString("\nEvents per subscriber and topic (dapr_component_pubsub_ingress_count, successes and drops, of the subscriber's sidecar), " +
		"and how far each trailed: seconds after the last 201 when its count last grew and when it reached the expected count " +
		"(the topic's records at the broker, else the most any subscriber of the topic got), and the longest a record waited at the broker " +
		"for it (from the read that found the record, or the last 201, to the read whose deliveries covered it: the target's figure, " +
		"which leaves out events published on their own schedule after the stream):\n\n")
	b.WriteString("| subscriber | topic | delivered during the stream | per s | delivered in all | expected | last delivery after | reached expected after | behind the broker at most |\n|---|---|---|---|---|---|---|---|---|\n")
	worst, worstName := -1.0, ""
	for _, e := range events {
		reached, behind, lag := "never", "never", math.Inf(1)
		if e.Reached >= 0 {
			reached = fmt.Sprintf("%.2f s", e.Reached)
		}
		if e.Behind >= 0 {
			behind, lag = fmt.Sprintf("%.2f s", e.Behind), e.Behind
		}
		if lag > worst {
			worst, worstName = lag, e.App+" / "+e.Topic
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.1f | %.0f | %.0f (%s) | %.2f s | %s | %s |\n",
			e.App, e.Topic, e.DuringStream, e.PerSecond, e.Delivered, e.Expected, e.ExpectedFrom, e.LastDelivery, reached, behind)
	}
	if settled {
		fmt.Fprintf(&b, "\nThe events settled %.2f s after the last 201.", after)
	} else {
		fmt.Fprintf(&b, "\nThe events had not settled when the bench stopped waiting (the last change %.2f s after the last 201).", after)
	}
	switch {
	case math.IsInf(worst, 1):
		fmt.Fprintf(&b, " Target (no subscriber more than %s behind): **missed**, %s never reached its expected count.\n", maxLag, worstName)
	case worst > maxLag.Seconds():
		fmt.Fprintf(&b, " Target (no subscriber more than %s behind): **missed**, worst %s at %.2f s.\n", maxLag, worstName, worst)
	default:
		fmt.Fprintf(&b, " Target (no subscriber more than %s behind): met, worst %s at %.2f s.\n", maxLag, worstName, worst)
	}
	return b.String()
}
