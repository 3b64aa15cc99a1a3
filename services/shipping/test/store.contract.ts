/**
 * The repository contract: what the domain assumes of its Store, run against
 * both the in-memory fake (store.memory.test.ts) and the Dapr adapter on a
 * real daprd 1.14 with Redis (store.dapr.test.ts), so the fake stands for
 * what the real store does: versions and first-write conflicts, inserts,
 * lease records that expire, the due index, and an outbox that publishes one
 * event per transaction, whose CloudEvent type is the event's type.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { codeOf } from "../src/apierr";
import { Order, Shipment as ShipmentID, User } from "../src/id";
import { eventOf, type Shipment, type Store } from "../src/shipping";
import { withTrace } from "../src/tracecontext";

/** PublishedEvent is what a subscriber of the shipments topic got: the CloudEvent's type, data and trace context. */
export interface PublishedEvent {
  type: string;
  data: unknown;
  traceparent?: string;
}

/** Harness is a store under test and a way to see what its outbox published. */
export interface Harness {
  store: Store;
  /** published waits until at least n events about shipment id arrived (or waitMs passed) and returns them all. */
  published(id: string, n: number, waitMs: number): Promise<PublishedEvent[]>;
  close(): Promise<void>;
}

let n = 0;

/** shipment returns a fresh shipment in status label_created. */
export function shipment(): Shipment {
  n++;
  const order = Order.example(Date.now() * 100 + n);
  const at = new Date().toISOString();
  return {
    id: ShipmentID.derive(order),
    order_id: order,
    user_id: User.example(n),
    status: "label_created",
    tracking_number: "DS0123456789ABCDEF",
    recipient: "E2E Customer",
    items: [{ product_id: "prd_1", quantity: 1 }],
    history: [{ status: "label_created", at }],
    created_at: at,
    updated_at: at,
    next_at: at,
  };
}

async function conflict(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err) => codeOf(err) === "conflict", "want a conflict");
}

/**
 * storeContract registers the contract's tests for the store setup makes,
 * skipped with the reason skip gives (when not undefined).
 */
export function storeContract(name: string, setup: () => Promise<Harness>, skip?: string): void {
  describe(`store contract: ${name}`, { skip }, () => {
    let h: Harness;
    before(async () => {
      h = await setup();
    });
    after(async () => {
      await h?.close();
    });

    it("a missing shipment is undefined", async () => {
      assert.equal(await h.store.getShipment(shipment().id), undefined);
    });

    it("a shipment is written with its event, which is published once with the event's type", async () => {
      const s = shipment();
      const ev = eventOf(s);
      const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      await withTrace(tp, () => h.store.putShipment(s, undefined, ev));
      const got = await h.store.getShipment(s.id);
      assert.ok(got, "the shipment is stored");
      assert.deepEqual(got.value, s);
      assert.ok(got.version !== "");
      const events = await h.published(s.id, 2, 3000); // waits for a second that must not come
      assert.equal(events.length, 1, `one event, got ${JSON.stringify(events)}`);
      assert.equal(events[0]!.type, "shipment.created");
      assert.deepEqual(events[0]!.data, ev);
      assert.equal(events[0]!.traceparent, tp);
    });

    it("a write over the version read moves it on; over a stale version it is a conflict and changes nothing", async () => {
      const s = shipment();
      await h.store.putShipment(s, undefined, eventOf(s));
      const v1 = (await h.store.getShipment(s.id))!.version;
      const shipped: Shipment = { ...s, status: "shipped", history: [...s.history, { status: "shipped", at: s.updated_at }] };
      await h.store.putShipment(shipped, v1, eventOf(shipped));
      const cur = (await h.store.getShipment(s.id))!;
      assert.notEqual(cur.version, v1);
      assert.equal(cur.value.status, "shipped");
      const delivered: Shipment = { ...shipped, status: "delivered", next_at: null };
      await conflict(h.store.putShipment(delivered, v1, eventOf(delivered)));
      await conflict(h.store.putShipment(delivered, v1));
      assert.equal((await h.store.getShipment(s.id))!.value.status, "shipped");
      // Events may arrive out of order; Redis may publish a refused
      // transaction's event, so the wait is for all three that may come (the
      // first two to arrive were once created and the refused delivered).
      const events = await h.published(s.id, 3, 3000);
      assert.deepEqual(events.map((e) => e.type).filter((t) => t !== "shipment.delivered").sort(), ["shipment.created", "shipment.shipped"]);
    });

    it("an insert without an event refuses a key that an insert wrote", async () => {
      const s: Shipment = { ...shipment(), status: "cancelled", tracking_number: "", next_at: null, reason: "early" };
      await h.store.putShipment(s, undefined);
      await conflict(h.store.putShipment(s, undefined));
      assert.deepEqual((await h.store.getShipment(s.id))!.value, s);
      assert.deepEqual(await h.published(s.id, 1, 1500), []);
    });

    it("leases: insert once, write over the version, delete at the version, gone is no error", async () => {
      const key = `lease:${shipment().id}`;
      const until = new Date(Date.now() + 60_000).toISOString();
      await h.store.putLease(key, { token: "a", until }, undefined, 61);
      await conflict(h.store.putLease(key, { token: "b", until }, undefined, 61));
      const got = await h.store.getLease(key);
      assert.deepEqual(got?.value, { token: "a", until });
      await h.store.putLease(key, { token: "a", until }, got!.version, 61);
      await conflict(h.store.putLease(key, { token: "c", until }, got!.version, 61));
      const cur = (await h.store.getLease(key))!;
      await conflict(h.store.deleteLease(key, got!.version));
      await h.store.deleteLease(key, cur.version);
      assert.equal(await h.store.getLease(key), undefined);
      await h.store.deleteLease(key, cur.version);
      await h.store.putLease(key, { token: "d", until }, undefined, 61); // free again
    });

    it("a lease record is forgotten after its TTL", async () => {
      const key = `lease:${shipment().id}`;
      await h.store.putLease(key, { token: "a", until: new Date().toISOString() }, undefined, 1);
      await wait(2100);
      assert.equal(await h.store.getLease(key), undefined);
    });

    it("due index slots: empty until written, versioned with first-write, deleted when emptied", async () => {
      // Slots are shared by every test of a store: a slot of this run's own.
      const shard = 7 + 8 * (Date.now() % 1_000_000);
      const [before] = await h.store.getDue([shard]);
      assert.equal(before!.shard, shard);
      const entries = { ...before!.entries, shp_000000000000000000000001: new Date().toISOString() };
      if (before!.version === undefined) {
        await h.store.putDue(shard, entries, undefined);
        await conflict(h.store.putDue(shard, entries, undefined));
      } else {
        await h.store.putDue(shard, entries, before!.version);
      }
      const slots = [shard - 1, shard, shard + 1];
      const all = await h.store.getDue(slots);
      assert.deepEqual(all.map((s) => s.shard), slots);
      const written = all[1]!;
      assert.deepEqual(written.entries, entries);
      assert.ok(written.version);
      await conflict(h.store.putDue(shard, {}, before!.version ?? "1000000"));
      await h.store.putDue(shard, {}, written.version);
      const [gone] = await h.store.getDue([shard]);
      assert.deepEqual(gone!.entries, {});
      assert.equal(gone!.version, undefined, "an emptied slot is deleted, not kept");
      await h.store.putDue(shard, {}, undefined); // nothing to write, no error
      assert.equal((await h.store.getDue([shard]))[0]!.version, undefined);
    });
  });
}

function wait(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
