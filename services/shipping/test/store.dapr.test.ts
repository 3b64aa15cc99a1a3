/**
 * The store contract on the Dapr adapter (src/dapr.ts) through a real daprd
 * 1.14 with Redis, and what only the real sidecar can show: the outbox
 * publishes exactly one CloudEvent per transaction with type = data.type and
 * JSON data, a refused first-write is a conflict, the label key is read from
 * the secret store, the API token is sent and required, and the calls are
 * measured. Skipped when daprd or redis-server is missing, unless
 * SHIPPING_INTEGRATION=1.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { parseConfig } from "../src/config";
import { DaprStore, LabelKey, Sidecar } from "../src/dapr";
import { discard } from "../src/log";
import { Metrics } from "../src/metrics";
import { eventOf, trackingNumber } from "../src/shipping";
import { withTrace } from "../src/tracecontext";
import { missing, startDaprd, type Daprd } from "./daprd";
import { shipment, storeContract } from "./store.contract";

const why = missing();
if (why && process.env.SHIPPING_INTEGRATION === "1") {
  throw new Error(`SHIPPING_INTEGRATION=1 but the real-daprd tests cannot run: ${why}`);
}
const skip = why ? `needs a real daprd and redis-server: ${why}` : undefined;

let started: Promise<{ d: Daprd; sidecar: Sidecar; store: DaprStore; metrics: Metrics }> | undefined;

/** sidecarOf is a Sidecar for d that sends apiToken. */
function sidecarOf(d: Daprd, apiToken: string, metrics = new Metrics("shipping")): Sidecar {
  return new Sidecar({
    httpPort: d.httpPort,
    apiToken,
    timeoutMs: 5000,
    log: discard,
    observer: metrics,
    breaker: parseConfig({}).breaker,
    gauge: metrics.breakerState,
  });
}

/** setup starts daprd once for the file. */
function setup() {
  started ??= (async () => {
    const d = await startDaprd();
    const metrics = new Metrics("shipping");
    const sidecar = sidecarOf(d, d.token, metrics);
    return { d, sidecar, store: new DaprStore(sidecar, "shipping-store"), metrics };
  })();
  return started;
}

after(async () => {
  if (!started) return;
  const { d, sidecar } = await started;
  await sidecar.stop();
  await d.stop();
});

async function waitFor(d: Daprd, id: string, n: number, ms: number) {
  const mine = () => d.delivered.filter((e) => (e.data as { shipment_id?: string })?.shipment_id === id);
  for (const end = Date.now() + ms; mine().length < n && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  return mine();
}

storeContract(
  "dapr (real daprd 1.14, state.redis with the outbox)",
  async () => {
    const { d, store } = await setup();
    return {
      store,
      published: async (id, n, ms) =>
        (await waitFor(d, id, n, ms)).map((e) => ({ type: e.type, data: e.data, traceparent: e.traceparent })),
      close: async () => {},
    };
  },
  skip,
);

describe("dapr adapter on a real daprd", { skip }, () => {
  it("the outbox publishes one CloudEvent per transaction: type = data.type, JSON data, the trace context", async () => {
    const { d, store } = await setup();
    const s = shipment();
    const ev = eventOf(s);
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await withTrace(tp, () => store.putShipment(s, undefined, ev));
    const got = await waitFor(d, s.id, 2, 4000);
    assert.equal(got.length, 1, JSON.stringify(got));
    const ce = got[0]!;
    assert.equal(ce.type, "shipment.created");
    assert.equal(ce.datacontenttype, "application/json");
    assert.equal(typeof ce.data, "object");
    assert.deepEqual(ce.data, ev);
    assert.equal(ce.traceparent, tp);
    assert.equal(ce.topic, "shipments");
    assert.equal(ce.pubsubname, "events");
  });

  it("a refused first-write (a stale ETag, a taken key) is a conflict, not a failure of the store", async () => {
    const { store, sidecar } = await setup();
    const s = shipment();
    await store.putShipment(s, undefined, eventOf(s));
    const v = (await store.getShipment(s.id))!.version;
    await store.putShipment({ ...s, status: "shipped" }, v, eventOf({ ...s, status: "shipped" }));
    const lease = `lease:${s.id}`;
    await store.putLease(lease, { token: "x", until: new Date().toISOString() }, undefined, 5);
    for (let i = 0; i < 8; i++) {
      await assert.rejects(store.putShipment({ ...s, status: "delivered" }, v, eventOf({ ...s, status: "delivered" })), { code: "conflict" });
      await assert.rejects(store.putLease(lease, { token: "y", until: new Date().toISOString() }, undefined, 5), { code: "conflict" });
      await assert.rejects(store.putLease(lease, { token: "y", until: new Date().toISOString() }, "999", 5), { code: "conflict" });
    }
    assert.equal(sidecar.breaker("shipping-store").state(), "closed", "conflicts do not open the breaker");
  });

  it("reads the label key from the secret store", async () => {
    const { d, sidecar } = await setup();
    const key = new LabelKey(sidecar, "secrets", "shipping-label-key");
    assert.equal(key.loaded, false);
    assert.equal(await key.get(), d.secret);
    assert.equal(key.loaded, true);
    assert.match(trackingNumber(await key.get(), "shp_000000000000000000000001"), /^DS[0-9A-F]{16}$/);
    await assert.rejects(sidecar.secret("secrets", "no-such-secret"), { code: "unavailable" });
  });

  it("sends the API token daprd requires", async () => {
    const { d, sidecar } = await setup();
    await sidecar.healthy();
    const without = await fetch(`http://127.0.0.1:${d.httpPort}/v1.0/state/shipping-store/bulk`, {
      method: "POST",
      body: JSON.stringify({ keys: ["x"] }),
    });
    assert.equal(without.status, 401, "daprd refuses a call without the token");
    assert.equal(await sidecar.secret("secrets", "shipping-label-key"), d.secret);
    for (const token of ["", "wrong-" + d.token]) {
      const other = sidecarOf(d, token);
      await assert.rejects(new DaprStore(other, "shipping-store").getShipment("shp_000000000000000000000001"), (err: Error) => /401/.test(String((err as { cause?: unknown }).cause)));
      await other.stop();
    }
  });

  it("measures every call: sidecar_calls_total by op, target and outcome", async () => {
    const { metrics } = await setup();
    const text = await metrics.registry.metrics();
    for (const op of ["state_bulk_get", "state_transaction", "state_save", "secret"]) {
      assert.match(text, new RegExp(`sidecar_calls_total\\{op="${op}",target="[a-z-]+",outcome="(ok|client_error|server_error)",service="shipping"\\} \\d`), op);
    }
  });
});
