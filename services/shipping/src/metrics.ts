/**
 * Prometheus metrics with the names, labels and buckets of the Go services
 * (lib/metrics, lib/breaker), so that one dashboard and one set of alerts
 * covers shipping too: RED metrics per route template (bounded cardinality),
 * the outcome and latency of every call to the Dapr sidecar, the circuit
 * breaker state, the process's CPU and memory, and shipping's business
 * counters. Every series carries service="shipping".
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** buckets suit calls from half a millisecond (a sidecar hop) to seconds (a timeout), as in Go. */
export const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Metrics is a service's registry and the metrics every service records. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "method" | "code">;
  readonly duration: Histogram<"route" | "method">;
  readonly calls: Counter<"op" | "target" | "outcome">;
  readonly callDuration: Histogram<"op" | "target">;
  /** breakerState is circuit_breaker_state: 0 closed, 1 half-open, 2 open, per dependency. */
  readonly breakerState: Gauge<"name">;

  constructor(service: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ service });
    // process_cpu_seconds_total, process_resident_memory_bytes and the
    // runtime's own (nodejs_*, as Go's collector gives go_*).
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: "http_requests_total",
      help: "HTTP requests served, by route template, method and status code.",
      labelNames: ["route", "method", "code"],
      registers,
    });
    this.duration = new Histogram({
      name: "http_request_duration_seconds",
      help: "Time to serve HTTP requests, by route template and method.",
      labelNames: ["route", "method"],
      buckets,
      registers,
    });
    this.calls = new Counter({
      name: "sidecar_calls_total",
      help: "Calls to the Dapr sidecar, by operation (invoke, state_get, state_save, state_transaction, secret...), target (app ID or component) and outcome (ok, client_error, server_error, unavailable).",
      labelNames: ["op", "target", "outcome"],
      registers,
    });
    this.callDuration = new Histogram({
      name: "sidecar_call_duration_seconds",
      help: "Time of calls to the Dapr sidecar, by operation and target.",
      labelNames: ["op", "target"],
      buckets,
      registers,
    });
    this.breakerState = new Gauge({
      name: "circuit_breaker_state",
      help: "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.",
      labelNames: ["name"],
      registers,
    });
  }

  /** observeCall records one call to the sidecar (what Go's sidecar.Observer does). */
  observeCall(op: string, target: string, outcome: string, seconds: number): void {
    this.calls.inc({ op, target, outcome });
    this.callDuration.observe({ op, target }, seconds);
  }

  /** observeRequest records one served request under its route template. */
  observeRequest(route: string, method: string, code: number, seconds: number): void {
    const m = methodLabel(method);
    this.requests.inc({ route, method: m, code: String(code) });
    this.duration.observe({ route, method: m }, seconds);
  }

  /** counter registers a business counter of the service's own with the given labels. */
  counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /**
   * observeGate reports what a gate holds when scraped: shipping_events_in_hand,
   * shipping_events_waiting and shipping_events_refused_total (deliveries
   * answered RETRY after waiting for a turn), so that a backlog shows on the
   * dashboards before daprd's delivery timeouts do.
   */
  observeGate(g: { inHand: number; waiting: number; refused: number }): void {
    const registers = [this.registry];
    new Gauge({ name: "shipping_events_in_hand", help: "Order events shipping is handling now (at most EVENTS_CONCURRENCY).", registers, collect() { this.set(g.inHand); } });
    new Gauge({ name: "shipping_events_waiting", help: "Order events waiting for a turn (at most EVENTS_WAIT each).", registers, collect() { this.set(g.waiting); } });
    new Counter({ name: "shipping_events_refused_total", help: "Order events answered RETRY after waiting EVENTS_WAIT for a turn.", registers, collect() { this.reset(); this.inc(g.refused); } });
  }

  /** text renders the registry in the Prometheus exposition format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

const httpMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"]);

/**
 * methodLabel is the method as a label value: one of HTTP's own, or "other".
 * The method is the client's to choose; as a label each new one would be a
 * new series, so a stranger could grow the registry without bound.
 */
export function methodLabel(m: string): string {
  return httpMethods.has(m) ? m : "other";
}
