/**
 * The HTTP side on a real listener: the app token, the owner check, the
 * error model for bad input, unknown routes and methods, the subscription
 * endpoint's replies, readiness, metrics (names, labels, service label), the
 * trace context into logs and events, and the graceful shutdown with drain.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { Gate } from "../src/gate";
import { routes, serve } from "../src/http";
import { Order, User } from "../src/id";
import { Logger } from "../src/log";
import { MemoryStore, MemoryUsers } from "../src/memory";
import { Metrics } from "../src/metrics";
import { parseSteps, Shipping } from "../src/shipping";
import { Clock } from "./clock";
import { orderEvent } from "./orders";

const token = "app-token";
const owner = User.example(1);
const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("http", () => {
  const store = new MemoryStore();
  const clock = new Clock();
  const lines: string[] = [];
  const log = new Logger((l) => void lines.push(l)).with({ service: "shipping" });
  const metrics = new Metrics("shipping");
  const svc = new Shipping({ store, steps: parseSteps("shipped=1s"), labelKey: async () => "k", recipients: new MemoryUsers(), now: clock.now, leaseTtlMs: 12_000, leaseWaitMs: 500, log });
  let ready: () => Promise<void> = async () => {};
  let draining = false;
  let server: Server;
  let base: string;

  before(async () => {
    server = createServer(routes({ svc, metrics, log, ready: () => ready(), appApiToken: token, draining: () => draining }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  async function call(method: string, path: string, o: { headers?: Record<string, string>; body?: string; token?: boolean } = {}) {
    const headers: Record<string, string> = { ...(o.token === false ? {} : { "dapr-api-token": token }), ...o.headers };
    const res = await fetch(base + path, { method, headers, body: o.body });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  const deliver = (e: unknown, headers: Record<string, string> = {}) =>
    call("POST", "/events/orders", { body: typeof e === "string" ? e : JSON.stringify(e), headers: { "Content-Type": "application/cloudevents+json", ...headers } });

  it("takes deliveries: SUCCESS, DROP for poison, RETRY when the store is down; invocations are refused", async () => {
    assert.deepEqual((await deliver(orderEvent("order.confirmed", 1), { traceparent: tp })).json, { status: "SUCCESS" });
    assert.deepEqual((await deliver(orderEvent("order.confirmed", 1))).json, { status: "SUCCESS" });
    assert.deepEqual((await deliver("{not json")).json, { status: "DROP" });
    assert.deepEqual((await deliver("[]")).json, { status: "DROP" });
    assert.deepEqual((await deliver({ id: 5, data: {} })).json, { status: "DROP" });
    assert.deepEqual((await deliver({ id: "e", data: { type: "order.confirmed" } })).json, { status: "DROP" });
    assert.deepEqual((await deliver("x".repeat((1 << 20) + 10))).json, { status: "DROP" });
    store.down = true;
    assert.deepEqual((await deliver(orderEvent("order.confirmed", 2))).json, { status: "RETRY" });
    store.down = false;
    const invoked = await deliver(orderEvent("order.confirmed", 3), { "dapr-caller-app-id": "gateway" });
    assert.equal(invoked.status, 403);
    assert.equal(invoked.json.error.code, "forbidden");
    assert.equal(store.published.length, 1);
    assert.equal(store.published[0]!.traceparent, tp, "the delivery's trace context reaches the outbox");
    assert.ok(lines.some((l) => JSON.parse(l).msg === "event not processed" && JSON.parse(l).status === "DROP"));
  });

  it("answers the owner's shipment and no one else's", async () => {
    const ok = await call("GET", `/shipments/${Order.example(1)}`, { headers: { "X-User-ID": owner } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("content-type"), "application/json");
    assert.deepEqual(Object.keys(ok.json).sort(), ["created_at", "history", "id", "items", "order_id", "recipient", "status", "tracking_number", "updated_at", "user_id"]);
    assert.equal(ok.json.status, "label_created");
    const other = await call("GET", `/shipments/${Order.example(1)}`, { headers: { "X-User-ID": User.example(2) } });
    assert.equal(other.status, 404);
    assert.deepEqual(other.json, { error: { code: "not_found", message: `no shipment for order ${Order.example(1)}` } });
    const badId = await call("GET", "/shipments/ord_nope", { headers: { "X-User-ID": owner } });
    assert.equal(badId.status, 400);
    assert.deepEqual(badId.json.error.fields.map((f: { field: string }) => f.field), ["order_id"]);
    for (const h of [{}, { "X-User-ID": "usr_1" }] as Record<string, string>[]) {
      const r = await call("GET", `/shipments/${Order.example(1)}`, { headers: h });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, "invalid");
      assert.deepEqual(r.json.error.fields.map((f: { field: string }) => f.field), ["X-User-ID"]);
    }
    const twice = await fetch(`${base}/shipments/${Order.example(1)}`, {
      headers: [["dapr-api-token", token], ["X-User-ID", owner], ["X-User-ID", owner]],
    });
    assert.equal(twice.status, 400, "a repeated owner header is refused");
  });

  it("refuses callers without the app token (401) but on the probes and /metrics", async () => {
    for (const [m, p] of [["GET", `/shipments/${Order.example(1)}`], ["POST", "/events/orders"], ["GET", "/nope"]] as const) {
      const r = await call(m, p, { token: false, headers: { "X-User-ID": owner } });
      assert.equal(r.status, 401, `${m} ${p}`);
      assert.deepEqual(r.json, { error: { code: "unauthenticated", message: "requests must come through the Dapr sidecar" } });
    }
    assert.equal((await call("GET", "/shipments/x", { headers: { "dapr-api-token": "wrong" }, token: false })).status, 401);
    for (const p of ["/healthz", "/readyz", "/metrics"]) assert.equal((await call("GET", p, { token: false })).status, 200, p);
  });

  it("answers unknown routes 404 and known ones with the wrong method 405, in the error model", async () => {
    for (const p of ["/nope", "/shipments", `/shipments/${Order.example(1)}/`, "//healthz", "/healthz/"]) {
      const r = await call("GET", p);
      assert.equal(r.status, 404, p);
      assert.deepEqual(r.json, { error: { code: "not_found", message: "no such route" } });
    }
    const r = await call("POST", `/shipments/${Order.example(1)}`);
    assert.equal(r.status, 405);
    assert.equal(r.headers.get("allow"), "GET");
    assert.deepEqual(r.json, { error: { code: "method_not_allowed", message: "method not allowed" } });
    assert.equal((await call("GET", "/events/orders")).headers.get("allow"), "POST");
    assert.equal((await call("DELETE", "/healthz")).status, 405);
  });

  it("is ready only while the check passes, and not while draining", async () => {
    assert.deepEqual((await call("GET", "/readyz")).json, { status: "ready" });
    ready = async () => {
      throw new Error("sidecar down");
    };
    const r = await call("GET", "/readyz");
    assert.equal(r.status, 503);
    assert.deepEqual(r.json, { status: "not ready" });
    ready = async () => {};
    draining = true;
    assert.deepEqual((await call("GET", "/readyz")).json, { status: "shutting down" });
    draining = false;
    assert.deepEqual((await call("GET", "/healthz")).json, { status: "ok" });
  });

  it("serves the Go services' metrics, with service=shipping on every series", async () => {
    metrics.observeCall("state_get", "shipping-store", "ok", 0.001);
    metrics.breakerState.set({ name: "shipping-store" }, 0);
    metrics.counter("shipping_events_total", "test", ["type"]).inc({ type: "shipment.created" });
    const r = await call("GET", "/metrics");
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
    for (const name of [
      'http_requests_total{route="/shipments/{order_id}",method="GET",code="200",service="shipping"}',
      'http_requests_total{route="unmatched",method="GET",code="404",service="shipping"}',
      'http_request_duration_seconds_bucket{le="0.0005",service="shipping",route="/events/orders",method="POST"}',
      'sidecar_calls_total{op="state_get",target="shipping-store",outcome="ok",service="shipping"}',
      'sidecar_call_duration_seconds_bucket{le="5",service="shipping",op="state_get",target="shipping-store"}',
      'circuit_breaker_state{name="shipping-store",service="shipping"}',
      'process_cpu_seconds_total{service="shipping"}',
      'process_resident_memory_bytes{service="shipping"}',
      'shipping_events_total{type="shipment.created",service="shipping"}',
    ]) {
      assert.ok(r.text.includes(name), name);
    }
    for (const line of r.text.split("\n").filter((l) => l && !l.startsWith("#"))) {
      assert.match(line, /service="shipping"/, line);
    }
  });

  it("logs as slog does, with the trace ID of a request that carries one", async () => {
    lines.length = 0;
    await call("GET", "/shipments/ord_nope", { headers: { traceparent: tp } });
    await deliver({ id: "e", data: {} }, { traceparent: tp });
    const line = JSON.parse(lines.find((l) => l.includes("event not processed"))!);
    assert.deepEqual(Object.keys(line).slice(0, 4), ["time", "level", "msg", "service"]);
    assert.equal(line.level, "WARN");
    assert.equal(line.service, "shipping");
    assert.equal(line.trace_id, "0af7651916cd43dd8448eb211c80319c");
  });
});

describe("graceful shutdown", () => {
  it("fails readiness during the drain, still serves, then finishes in-flight requests before returning", async () => {
    const ac = new AbortController();
    let draining = false;
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const handler = routes({
      svc: { handle: async () => slow, get: async () => Promise.reject(new Error("unused")) },
      metrics: new Metrics("shipping"),
      log: new Logger(() => {}),
      ready: async () => {},
      appApiToken: "",
      draining: () => draining,
    });
    let port = 0;
    let closed = false;
    const done = serve(handler, {
      host: "127.0.0.1",
      port: 0,
      drainMs: 300,
      graceMs: 5000,
      log: new Logger(() => {}),
      stop: ac.signal,
      onDrain: () => (draining = true),
      onClose: async () => void (closed = true),
      listening: (p) => (port = p),
    });
    while (port === 0) await new Promise((r) => setTimeout(r, 10));
    const url = `http://127.0.0.1:${port}`;
    const inflight = fetch(url + "/events/orders", { method: "POST", body: JSON.stringify(orderEvent("order.confirmed", 1)) });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await fetch(url + "/readyz")).status, 503, "not ready while draining");
    assert.equal((await fetch(url + "/healthz")).status, 200, "still serving while draining");
    await new Promise((r) => setTimeout(r, 400));
    await assert.rejects(fetch(url + "/healthz"), "no longer accepting");
    release();
    assert.deepEqual(await (await inflight).json(), { status: "SUCCESS" });
    await done;
    assert.ok(closed, "the ticker was stopped");
  });
});

describe("http with a gate", () => {
  it("answers RETRY to a delivery the gate turns away, and SUCCESS to the one it holds", async () => {
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    let handled = 0;
    const svc = {
      handle: async () => {
        handled++;
        await held;
      },
      get: async () => {
        throw new Error("not called");
      },
    };
    const log = new Logger(() => {}).with({ service: "shipping" });
    const server = createServer(
      routes({ svc, metrics: new Metrics("shipping"), log, ready: async () => {}, appApiToken: "", draining: () => false, events: new Gate(1, 0) }),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const a = server.address();
    const url = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/events/orders`;
    const post = (n: number) => fetch(url, { method: "POST", body: JSON.stringify(orderEvent("order.confirmed", n)) });
    try {
      const first = post(1);
      while (handled === 0) await new Promise((r) => setTimeout(r, 5));
      const second = await post(2);
      assert.deepEqual(await second.json(), { status: "RETRY" });
      assert.equal(handled, 1, "the turned-away delivery never reached the domain");
      release();
      assert.deepEqual(await (await first).json(), { status: "SUCCESS" });
    } finally {
      release();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
