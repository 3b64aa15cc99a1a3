/**
 * The domain on the in-memory store, with a clock moved by hand: a shipment
 * is created once however its confirmation is delivered, cancelled or not
 * as the order's events say in whatever order they come, moved on step by
 * step at its pace, by any number of replicas without a step taken twice,
 * and finished by another instance after a crash at any point.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { statusOf } from "../src/events";
import { Order, Shipment as ShipmentID, User } from "../src/id";
import { Leases } from "../src/lease";
import { discard } from "../src/log";
import { MemoryStore, MemoryUsers } from "../src/memory";
import { bucketOf, parseSteps, settleBuckets, shards, Shipping, trackingNumber, type Store } from "../src/shipping";
import { Clock } from "./clock";
import { orderEvent } from "./orders";

const steps = parseSteps("shipped=1s,delivered=2s");

function build(store: Store, clock: Clock, o: { leaseWaitMs?: number; users?: MemoryUsers } = {}) {
  return new Shipping({
    store,
    steps,
    labelKey: async () => "test-label-key",
    recipients: o.users ?? new MemoryUsers(),
    now: clock.now,
    leaseTtlMs: 12_000,
    leaseWaitMs: o.leaseWaitMs ?? 2000,
    log: discard,
  });
}

function setup() {
  const clock = new Clock();
  const store = new MemoryStore(clock.now);
  return { clock, store, svc: build(store, clock) };
}

/** events lists the types published about order n, in order. */
function events(store: MemoryStore, n: number): string[] {
  return store.published.filter((p) => p.data.order_id === Order.example(n)).map((p) => p.type);
}

/** deliver hands the event over until it is taken (Dapr redelivers on RETRY). */
async function deliver(svc: Shipping, e: Parameters<Shipping["handle"]>[0]): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await svc.handle(e);
    } catch (err) {
      if (statusOf(err) !== "RETRY" || i > 20) throw err;
    }
  }
}

const owner = User.example(1);

describe("creation", () => {
  it("happens once however often order.confirmed is delivered", async () => {
    const { store, svc } = setup();
    for (let i = 0; i < 3; i++) await svc.handle(orderEvent("order.confirmed", 1));
    assert.deepEqual(events(store, 1), ["shipment.created"]);
    const s = await svc.get(Order.example(1), owner);
    const id = ShipmentID.derive(Order.example(1));
    assert.equal(s.id, id);
    assert.equal(s.status, "label_created");
    assert.equal(s.tracking_number, trackingNumber("test-label-key", id));
    assert.match(s.tracking_number, /^DS[0-9A-F]{16}$/);
    assert.deepEqual(s.items, [{ product_id: "prd_000000000000000000000007", quantity: 2 }]);
    assert.deepEqual(s.history.map((h) => h.status), ["label_created"]);
  });

  it("happens once under concurrent deliveries, on one replica or several", async () => {
    const { clock, store, svc } = setup();
    const other = build(store, clock);
    await Promise.all(Array.from({ length: 12 }, (_, i) => deliver(i % 2 ? svc : other, orderEvent("order.confirmed", 2))));
    assert.deepEqual(events(store, 2), ["shipment.created"]);
    assert.equal(store.keys().filter((k) => k.startsWith("lease:")).length, 0, "every lease released");
  });

  it("the shipment ID is the contract's: shp_ and the first 24 hex digits of SHA-256(order ID)", () => {
    assert.equal(ShipmentID.derive("ord_45c48cce2e2d7fbdea1afc51"), "shp_" + require("node:crypto").createHash("sha256").update("ord_45c48cce2e2d7fbdea1afc51").digest("hex").slice(0, 24));
  });
});

describe("cancellation", () => {
  it("before the confirmation leaves a cancelled record: the late confirmation creates nothing, nothing is announced", async () => {
    const { clock, store, svc } = setup();
    await svc.handle(orderEvent("order.cancelled", 3, 1, { reason: "payment declined" }));
    await svc.handle(orderEvent("order.confirmed", 3));
    await svc.handle(orderEvent("order.cancelled", 3));
    clock.advance(10_000);
    await svc.tick();
    assert.deepEqual(events(store, 3), []);
    await assert.rejects(svc.get(Order.example(3), owner), { code: "not_found" });
    assert.equal((await store.getShipment(ShipmentID.derive(Order.example(3))))?.value.status, "cancelled");
  });

  it("after the confirmation, before shipping, cancels the shipment with its event", async () => {
    const { clock, store, svc } = setup();
    await svc.handle(orderEvent("order.confirmed", 4));
    await svc.handle(orderEvent("order.cancelled", 4, 1, { reason: "cancelled by customer" }));
    await svc.handle(orderEvent("order.cancelled", 4));
    clock.advance(10_000);
    await svc.tick();
    assert.deepEqual(events(store, 4), ["shipment.created", "shipment.cancelled"]);
    const cancelled = store.published.find((p) => p.type === "shipment.cancelled")!.data;
    assert.equal(cancelled.reason, "cancelled by customer");
    assert.equal(cancelled.status, "cancelled");
    const s = await svc.get(Order.example(4), owner);
    assert.equal(s.status, "cancelled");
    assert.deepEqual(s.history.map((h) => h.status), ["label_created", "cancelled"]);
    assert.deepEqual(store.dueIds(), []);
  });

  it("after shipping changes nothing", async () => {
    const { clock, store, svc } = setup();
    await svc.handle(orderEvent("order.confirmed", 5));
    clock.advance(1000);
    await svc.tick();
    await svc.handle(orderEvent("order.cancelled", 5));
    clock.advance(2000);
    await svc.tick();
    assert.deepEqual(events(store, 5), ["shipment.created", "shipment.shipped", "shipment.delivered"]);
    assert.equal((await svc.get(Order.example(5), owner)).status, "delivered");
  });
});

describe("steps", () => {
  it("advance at their pace (SHIPPING_STEPS), one event each, and leave the due index empty", async () => {
    const { clock, store, svc } = setup();
    await svc.handle(orderEvent("order.confirmed", 6));
    clock.advance(999);
    assert.equal((await svc.tick()).advanced, 0);
    clock.advance(1);
    assert.equal((await svc.tick()).advanced, 1);
    assert.equal((await svc.get(Order.example(6), owner)).status, "shipped");
    clock.advance(1999);
    assert.equal((await svc.tick()).advanced, 0);
    clock.advance(1);
    assert.equal((await svc.tick()).advanced, 1);
    const s = await svc.get(Order.example(6), owner);
    assert.equal(s.status, "delivered");
    assert.deepEqual(s.history, [
      { status: "label_created", at: "2026-01-01T00:00:00.000Z" },
      { status: "shipped", at: "2026-01-01T00:00:01.000Z" },
      { status: "delivered", at: "2026-01-01T00:00:03.000Z" },
    ]);
    assert.deepEqual(events(store, 6), ["shipment.created", "shipment.shipped", "shipment.delivered"]);
    clock.advance(60_000);
    assert.deepEqual(await svc.tick(), { due: 0, advanced: 0, busy: 0 });
  });

  it("of two replicas ticking together are taken once each", async () => {
    const clock = new Clock();
    const store = new MemoryStore(clock.now); // publishes a refused transaction's event, as Redis does
    const a = build(store, clock);
    const b = build(store, clock);
    const orders = Array.from({ length: 24 }, (_, i) => 100 + i);
    await Promise.all(orders.map((n, i) => deliver(i % 2 ? a : b, orderEvent("order.confirmed", n))));
    for (let i = 0; i < 8; i++) {
      clock.advance(500);
      await Promise.all([a.tick(), b.tick(), a.tick()]);
    }
    for (const n of orders) assert.deepEqual(events(store, n), ["shipment.created", "shipment.shipped", "shipment.delivered"], `order ${n}`);
  });

  it("are picked up by a new instance after a restart, once a dead holder's lease has expired", async () => {
    const { clock, store, svc } = setup();
    await svc.handle(orderEvent("order.confirmed", 7));
    await svc.handle(orderEvent("order.confirmed", 8));
    // The first instance dies holding order 8's lease.
    await new Leases(store, 12_000, 0, clock.now).acquire("lease:" + ShipmentID.derive(Order.example(8)), false);
    const next = build(store, clock);
    clock.advance(1000);
    assert.deepEqual(await next.tick(), { due: 2, advanced: 1, busy: 1 });
    clock.advance(12_000);
    await next.tick();
    clock.advance(2000);
    await next.tick();
    assert.deepEqual(events(store, 7), ["shipment.created", "shipment.shipped", "shipment.delivered"]);
    assert.deepEqual(events(store, 8), ["shipment.created", "shipment.shipped", "shipment.delivered"]);
  });
});

/**
 * dying is store as a process sees it that is killed (-9) at its call number
 * k: that call is made or not (after), and every later one never happens.
 */
function dying(store: MemoryStore, k: number, after: boolean): Store {
  let calls = 0;
  const killed = () => new Error("killed");
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      return async (...args: unknown[]) => {
        const n = calls++;
        if (n > k) throw killed();
        if (n === k && !after) throw killed();
        const res = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (n === k) throw killed();
        return res;
      };
    },
  }) as Store;
}

describe("the due index", () => {
  it("is read from its cursor to now, however many shipments are in flight, and catches up after a stop", async () => {
    const clock = new Clock();
    const store = new MemoryStore(clock.now);
    const svc = new Shipping({ store, steps: parseSteps("shipped=60s,delivered=10m"), labelKey: async () => "k",
      recipients: new MemoryUsers(), now: clock.now, leaseTtlMs: 12_000, leaseWaitMs: 2000, log: discard });
    for (let i = 0; i < 100; i++) await svc.handle(orderEvent("order.confirmed", 1000 + i));
    const perTick: number[][] = [];
    const get = store.getDue.bind(store);
    store.getDue = async (slots) => {
      perTick[perTick.length - 1]?.push(...slots);
      return get(slots);
    };
    const tick = async () => {
      perTick.push([]);
      return svc.tick();
    };
    // A minute of ticks: nothing due, and no tick reads past now.
    for (let t = 0; t < 59; t++) {
      assert.deepEqual(await tick(), { due: 0, advanced: 0, busy: 0 });
      const past = perTick.at(-1)!.filter((slot) => slot > 0 && Math.floor(slot / shards) > bucketOf(clock.now()));
      assert.deepEqual(past, [], "a tick read slots of the future");
      assert.ok(perTick.at(-1)!.length <= (settleBuckets + 2) * shards + 1, `a tick read ${perTick.at(-1)!.length} slots`);
      clock.advance(1000);
    }
    clock.advance(2000);
    let shipped = 0;
    for (let t = 0; t < 5 && shipped < 100; t++) shipped += (await tick()).advanced;
    assert.equal(shipped, 100);
    // Stopped for an hour: the cursor is far behind; it catches up a
    // minute of buckets a tick, and every delivery is made.
    clock.advance(3_600_000);
    let delivered = 0;
    for (let t = 0; t < 200 && delivered < 100; t++) delivered += (await tick()).advanced;
    assert.equal(delivered, 100);
    assert.deepEqual(store.dueIds(), []);
  });
});

describe("a crash at any point (kill -9)", () => {
  it("loses no shipment, creates none twice and announces no step twice", async () => {
    for (const after of [false, true]) {
      for (let k = 0; k < 40; k++) {
        const clock = new Clock();
        const store = new MemoryStore(clock.now);
        const first = build(store, clock);
        const doomed = build(dying(store, k, after), clock);
        // The first instance sees the confirmation and ticks until it dies.
        try {
          await doomed.handle(orderEvent("order.confirmed", 9));
          for (let i = 0; i < 4; i++) {
            clock.advance(1000);
            await doomed.tick();
          }
        } catch {
          // killed
        }
        // Dapr redelivers the unacknowledged event (or a copy arrives anyway);
        // another instance takes over once the dead one's leases expire.
        clock.advance(13_000);
        await deliver(first, orderEvent("order.confirmed", 9));
        for (let i = 0; i < 4; i++) {
          clock.advance(2000);
          await first.tick();
        }
        const label = `crash at call ${k} (${after ? "after" : "before"} it)`;
        assert.deepEqual(events(store, 9), ["shipment.created", "shipment.shipped", "shipment.delivered"], label);
        assert.equal((await first.get(Order.example(9), owner)).status, "delivered", label);
        assert.deepEqual(store.dueIds(), [], label);
      }
    }
  });
});

describe("bad events", () => {
  it("are dropped when poison or not of the orders schema, retried when the store is down", async () => {
    const { store, svc } = setup();
    const status = async (e: ReturnType<typeof orderEvent>) => statusOf(await svc.handle(e).then(() => undefined, (err: unknown) => err));
    const noData = { ...orderEvent("order.confirmed", 10), data: undefined };
    assert.equal(await status(noData), "DROP");
    assert.equal(await status({ ...orderEvent("order.confirmed", 10), data: "text" }), "DROP");
    const e = orderEvent("order.confirmed", 10);
    assert.equal(await status({ ...e, data: { ...(e.data as object), order_id: undefined } }), "DROP");
    assert.equal(await status({ ...e, data: { ...(e.data as object), extra: 1 } }), "DROP");
    assert.equal(await status({ ...e, data: { ...(e.data as object), at: "yesterday" } }), "DROP");
    // Valid for the orders schema, not an ID shipping can ship to.
    assert.equal(await status(orderEvent("order.confirmed", 10, 1, { user_id: "usr_x" })), "DROP");
    assert.equal(await status(orderEvent("order.created", 10)), "SUCCESS");
    store.down = true;
    assert.equal(await status(orderEvent("order.confirmed", 10)), "RETRY");
    assert.equal(await status(orderEvent("order.cancelled", 10)), "RETRY");
    store.down = false;
    assert.equal(await status(orderEvent("order.confirmed", 10)), "SUCCESS");
    assert.deepEqual(events(store, 10), ["shipment.created"]);
  });

  it("wait for users when it is down, and are dropped for an account users does not know", async () => {
    const clock = new Clock();
    const store = new MemoryStore(clock.now);
    const users = new MemoryUsers();
    const svc = build(store, clock, { users });
    const status = async (e: ReturnType<typeof orderEvent>) => statusOf(await svc.handle(e).then(() => undefined, (err: unknown) => err));
    users.down = true;
    assert.equal(await status(orderEvent("order.confirmed", 13)), "RETRY");
    assert.deepEqual(events(store, 13), []);
    users.down = false;
    assert.equal(await status(orderEvent("order.confirmed", 13)), "SUCCESS");
    assert.equal((await svc.get(Order.example(13), owner)).recipient, "Customer " + owner.slice(-4));
    users.missing.add(User.example(2));
    assert.equal(await status(orderEvent("order.confirmed", 14, 2)), "DROP");
    assert.deepEqual(events(store, 14), []);
  });
});

describe("the API's reads", () => {
  it("answer the owner only; bad IDs are invalid", async () => {
    const { svc } = setup();
    await svc.handle(orderEvent("order.confirmed", 11));
    await svc.get(Order.example(11), owner);
    await assert.rejects(svc.get(Order.example(11), User.example(2)), { code: "not_found" });
    await assert.rejects(svc.get(Order.example(12), owner), { code: "not_found" });
    await assert.rejects(svc.get("ord_nope", owner), (err: { code: string; fields: { field: string }[] }) => err.code === "invalid" && err.fields[0]!.field === "order_id");
    await assert.rejects(svc.get(Order.example(11), undefined), (err: { code: string; fields: { field: string }[] }) => err.code === "invalid" && err.fields[0]!.field === "X-User-ID");
  });
});
