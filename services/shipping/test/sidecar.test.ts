/**
 * The Dapr adapter's transport against a fake daprd: what every call to the
 * sidecar carries (the API token, the work's traceparent), its timeout, its
 * metrics, and the circuit breaker (the configuration's defaults) that opens
 * on failures of the sidecar but never on conflicts.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, describe, it } from "node:test";
import { codeOf } from "../src/apierr";
import { parseConfig } from "../src/config";
import { DaprStore, operation, Sidecar } from "../src/dapr";
import { discard } from "../src/log";
import { Metrics } from "../src/metrics";
import { withTrace } from "../src/tracecontext";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

/** fakeDaprd answers the sidecar's health and metadata, and the rest with answer. */
async function fakeDaprd(answer: (s: Seen) => { status: number; body?: string } | "hang"): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers };
      if (s.url.startsWith("/v1.0/healthz") || s.url.startsWith("/v1.0/metadata")) {
        res.writeHead(s.url.startsWith("/v1.0/metadata") ? 200 : 204, { "Content-Type": "application/json" });
        res.end(s.url.startsWith("/v1.0/metadata") ? "{}" : "");
        return;
      }
      seen.push(s);
      const a = answer(s);
      if (a === "hang") return;
      res.writeHead(a.status, { "Content-Type": "application/json" });
      res.end(a.body ?? "");
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  return { port: typeof a === "object" && a ? a.port : 0, seen };
}

function sidecar(port: number, metrics = new Metrics("shipping"), timeoutMs = 1000) {
  const s = new Sidecar({
    httpPort: port,
    apiToken: "sidecar-token",
    timeoutMs,
    log: discard,
    observer: metrics,
    breaker: parseConfig({}).breaker,
    gauge: metrics.breakerState,
  });
  return { s, store: new DaprStore(s, "shipping-store"), metrics };
}

describe("sidecar transport", () => {
  it("sends the API token and the work's traceparent on every call", async () => {
    const d = await fakeDaprd(() => ({ status: 200, body: "[]" }));
    const { s, store } = sidecar(d.port);
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await withTrace(tp, () => store.getShipment("shp_000000000000000000000001"));
    await store.getShipment("shp_000000000000000000000002");
    assert.equal(d.seen.length, 2);
    assert.equal(d.seen[0]!.method, "POST");
    assert.equal(d.seen[0]!.url, "/v1.0/state/shipping-store/bulk");
    assert.equal(d.seen[0]!.headers["dapr-api-token"], "sidecar-token");
    assert.equal(d.seen[0]!.headers.traceparent, tp);
    assert.equal(d.seen[1]!.headers["dapr-api-token"], "sidecar-token");
    assert.equal(d.seen[1]!.headers.traceparent, undefined);
    await s.stop();
  });

  it("gives up on a call that outlasts its timeout: unavailable", async () => {
    const d = await fakeDaprd(() => "hang");
    const { s, store, metrics } = sidecar(d.port, new Metrics("shipping"), 200);
    const start = Date.now();
    await assert.rejects(store.getShipment("shp_000000000000000000000001"), (err) => codeOf(err) === "unavailable");
    assert.ok(Date.now() - start < 1500);
    assert.match(await metrics.registry.metrics(), /sidecar_calls_total\{op="state_bulk_get",target="shipping-store",outcome="unavailable",service="shipping"\} 1/);
    await s.stop();
  });

  it("opens the breaker after more than 5 failures in a row, not for conflicts", async () => {
    let status = 409;
    const d = await fakeDaprd((s) => (s.url.includes("/bulk") ? { status: 200, body: '[{"key":"due:1","data":{"entries":{}},"etag":"2"}]' } : { status, body: '{"errorCode":"ERR_STATE_SAVE"}' }));
    const { s, store, metrics } = sidecar(d.port);
    for (let i = 0; i < 10; i++) await assert.rejects(store.putDue(1, {}, "1"), { code: "conflict" });
    assert.equal(s.breaker("shipping-store").state(), "closed");
    status = 500;
    for (let i = 0; i < 6; i++) await assert.rejects(store.putDue(1, {}, "1"), { code: "unavailable" });
    const calls = d.seen.length;
    await assert.rejects(store.putDue(1, {}, "1"), (err: Error & { code?: string }) => err.code === "unavailable" && /circuit open/.test(err.message));
    assert.equal(d.seen.length, calls, "an open breaker fails fast");
    assert.equal(s.breaker("shipping-store").state(), "open");
    assert.match(await metrics.registry.metrics(), /circuit_breaker_state\{name="shipping-store",service="shipping"\} 2/);
    await s.stop();
  });

  it("names operations as lib/sidecar does", () => {
    assert.deepEqual(operation("POST", "/state/s/bulk?x"), { op: "state_bulk_get", target: "s" });
    assert.deepEqual(operation("POST", "/state/s/transaction"), { op: "state_transaction", target: "s" });
    assert.deepEqual(operation("POST", "/state/s?"), { op: "state_save", target: "s" });
    assert.deepEqual(operation("DELETE", "/state/s/k?"), { op: "state_delete", target: "s" });
    assert.deepEqual(operation("GET", "/secrets/secrets/k"), { op: "secret", target: "secrets" });
    assert.equal(operation("GET", "/healthz/outbound").op, undefined);
  });
});
