/**
 * Shipping's domain: a confirmed order gets one shipment, which then moves on
 * by itself (label created -> shipped -> delivered, the steps and their pace
 * set by SHIPPING_STEPS) unless its order is cancelled first. Every change of
 * a shipment is stored together with the event that announces it on the
 * shipments topic (the Dapr outbox), so a change is announced if and only if
 * it is stored.
 *
 * # Records (all in the service's own state store)
 *
 *   - shipment:<id>  the shipment, authoritative. Its ID is derived from the
 *     order's (Shipment.derive), so every delivery of an order's events, on
 *     any replica, lands on the same key. It keeps next_at, when its next
 *     step is due (null once it is delivered or cancelled).
 *   - lease:<id>     the shipment's lease (src/lease.ts, as lib/lease): a
 *     first-write insert with an expiry and ttlInSeconds. Whoever writes a
 *     shipment or its index entry holds it: the event handler and every
 *     replica's ticker alike. So the writers of a shipment take turns, and no
 *     ETag check of a shipment's outbox transaction fails: on Redis, a
 *     transaction whose ETag check fails may still publish its event
 *     (lib/sidecar.SaveWithEvent), which would announce a step twice.
 *   - due:<slot>     the due index: shipment ID -> next_at for every
 *     shipment not yet final, cut by time and by shipment (slotOf: the
 *     bucket of 2 s its next_at falls in, times 8 shards, plus shardOf), each
 *     slot written under its ETag and deleted once empty. due:0 holds the
 *     cursor, the oldest bucket that may still hold entries. Every replica's
 *     ticker reads the slots from the cursor to now (one bulk read, about 48
 *     slots: the cursor stays 10 s behind for the replicas' clocks; after a
 *     stop, a minute of buckets a tick until it caught up) every
 *     SHIPPING_TICK, advances the shipments that are due and moves the
 *     cursor past the buckets it found empty: a tick costs the same whatever
 *     the number of shipments in flight (a day's deliveries wait in buckets
 *     a day ahead). An entry is a hint: the shipment record decides, and the
 *     ticker repairs an entry that disagrees with it (an orphan without a
 *     record is removed, a stale time is moved to its slot, a final
 *     shipment's entry is removed).
 *
 * # Events in, steps out
 *
 *   - order.confirmed: no shipment yet -> under the lease, read again; still
 *     none: index it (the due entry first), then store it (label_created,
 *     tracking number from the label key) with shipment.created. A shipment
 *     that exists (any status, a cancelled one too) is left alone: a
 *     redelivery, a copy or a late confirmation creates nothing.
 *   - order.cancelled: no shipment yet (the cancellation overtook the
 *     confirmation, or the order was never confirmed) -> a cancelled record
 *     without a label, stored without an event: the late confirmation then
 *     finds it and creates nothing, and the customer hears nothing of a
 *     shipment that never was (GET answers 404 for it). label_created ->
 *     cancelled with shipment.cancelled, and its index entry removed. Shipped,
 *     delivered or cancelled already -> nothing changes.
 *   - the ticker: a due entry -> try the lease without waiting (held: another
 *     replica or the event handler is at it; the next tick looks again),
 *     read the shipment, and if its step is due store the next status with
 *     its event over the version read, then move its index entry on (or
 *     remove it when final).
 *
 * # Crash cases (kill -9 at any point, any replica)
 *
 *   - before the creation's index write: the event was not acknowledged;
 *     Dapr redelivers it and the creation runs again.
 *   - between the index write and the creation: an entry without a record;
 *     the redelivery creates the record (the entry is already there), or a
 *     ticker that gets the lease first removes the orphan entry and the
 *     redelivery writes it again. No record ever lacks its entry: it is
 *     written first and removed only under the lease once the record is final
 *     or absent.
 *   - after the creation, before the acknowledgement: the redelivery finds
 *     the shipment and creates nothing.
 *   - a ticker between a step's write and its index update (the new entry
 *     is written before the old one is removed): the old entry still holds
 *     the past time; the next tick finds the record not due (or final) and
 *     repairs the entry. The step is not taken twice: its record moved on.
 *   - holding a lease: it blocks its shipment until it expires (LEASE_TTL),
 *     then the next tick or redelivery takes it over.
 *   - restart: nothing lives in memory; every replica reads the index.
 *
 * What the lease does not cover (as in orders): a holder that stalls longer
 * than its lease's margin past a step's deadline (a frozen process) may write
 * after another took over; the ETag then refuses its write, but on Redis its
 * outbox event may still be published.
 */
import { createHmac } from "node:crypto";
import { errorf, FieldErrors, codeOf, describe } from "./apierr";
import { orderEvent, shipmentEvent, SchemaError, type OrderEvent, type ShipmentEvent } from "./contracts";
import { parseDuration } from "./duration";
import { dataOf, drop, isDrop, type CloudEvent } from "./events";
import { Order, Shipment as ShipmentID, User } from "./id";
import { HeldError, Leases, LostError, type Lease, type LeaseStore, type Versioned } from "./lease";
import type { Logger } from "./log";
import { traceparent, withTrace } from "./tracecontext";

/** Status is where a shipment stands: the statuses of the shipments topic's schema. */
export type Status = ShipmentEvent["status"];
/** EventType is the type of a shipments topic event. */
export type EventType = ShipmentEvent["type"];

/** eventTypes names the event that announces each status. */
export const eventTypes: Record<Status, EventType> = {
  label_created: "shipment.created",
  shipped: "shipment.shipped",
  delivered: "shipment.delivered",
  cancelled: "shipment.cancelled",
};

/** Item is one line of a shipment: what the order's line ships. */
export interface Item {
  product_id: string;
  quantity: number;
}

/** HistoryEntry is one status a shipment reached, and when. */
export interface HistoryEntry {
  status: Status;
  at: string;
}

/** Shipment is a shipment as stored. */
export interface Shipment {
  id: string;
  order_id: string;
  user_id: string;
  status: Status;
  /** tracking_number is "" for a shipment cancelled before its label (it was never made). */
  tracking_number: string;
  /** recipient is the name on the label (users' account name); "" without a label. */
  recipient: string;
  items: Item[];
  history: HistoryEntry[];
  created_at: string;
  updated_at: string;
  /** next_at is when the next step is due; null once no step is left. */
  next_at: string | null;
  /** reason is why it was cancelled. */
  reason?: string;
  /** traceparent is the trace of the confirmation, which the later steps join. */
  traceparent?: string;
}

/** ShipmentView is a shipment as the API shows it (openapi.yaml's Shipment). */
export interface ShipmentView {
  id: string;
  order_id: string;
  user_id: string;
  status: Status;
  tracking_number: string;
  recipient: string;
  items: Item[];
  history: HistoryEntry[];
  created_at: string;
  updated_at: string;
}

/**
 * Recipients names who a label is addressed to: users' account of the
 * order's customer, asked by service invocation. An account that does not
 * exist is a not_found ApiError (the event can never be shipped); users
 * that cannot answer, an unavailable one (the event is retried).
 */
export interface Recipients {
  nameOf(userId: string): Promise<string>;
}

/** Step is one automatic move of a shipment: to status, delayMs after the previous one. */
export interface Step {
  status: "shipped" | "delivered";
  delayMs: number;
}

const stepOrder: Step["status"][] = ["shipped", "delivered"];

/**
 * parseSteps reads SHIPPING_STEPS: comma-separated status=duration pairs, in
 * the order the shipment goes through them (shipped, then delivered; either
 * may be left out), each duration (Go's syntax: 300ms, 3s, 2h) the delay
 * after the previous status. It throws an Error that says what is wrong.
 */
export function parseSteps(s: string, parse: (d: string) => number | undefined = parseDuration): Step[] {
  const problems: string[] = [];
  const steps: Step[] = [];
  if (s.trim() === "") throw new Error(`must list steps as status=duration, e.g. shipped=3s,delivered=5s`);
  for (const part of s.split(",")) {
    const [name = "", dur, ...rest] = part.split("=").map((x) => x.trim());
    if (dur === undefined || rest.length > 0) {
      problems.push(`"${part.trim()}" is not status=duration`);
      continue;
    }
    const status = name as Step["status"];
    const ms = parse(dur);
    if (!stepOrder.includes(status)) problems.push(`"${name}" is not a step (shipped, delivered)`);
    else if (steps.some((x) => x.status === status)) problems.push(`${name} is listed twice`);
    else if (steps.length > 0 && stepOrder.indexOf(status) < stepOrder.indexOf(steps[steps.length - 1]!.status)) {
      problems.push(`${name} must come before ${steps[steps.length - 1]!.status}`);
    }
    if (ms === undefined || !(ms >= 0)) problems.push(`${name}: "${dur}" is not a duration (300ms, 3s, 1h)`);
    else steps.push({ status, delayMs: ms });
  }
  if (problems.length > 0) throw new Error(problems.join("; "));
  return steps;
}

/**
 * The due index is cut by time, then by shipment: a slot holds the entries
 * due within one bucket of bucketMs in one of shards shards, so a tick
 * reads the few slots from its cursor to now, whatever the number of
 * shipments in flight (a day's deliveries at Kubernetes' pace sit in
 * buckets a day ahead, unread until then), and writers of one bucket spread
 * over its shards. Every replica must agree on these: they are not
 * configurable.
 */
export const shards = 8;
/** bucketMs is the width of a due index bucket. */
export const bucketMs = 2000;
/** settleBuckets is how far behind the clock the cursor stays (10 s): replicas' clocks may disagree that much. */
export const settleBuckets = 5;
/** catchUpBuckets is the most buckets one tick reads: after a long stop, a minute of due entries a tick. */
export const catchUpBuckets = 30;
/** cursorSlot holds the cursor, the oldest bucket that may still hold entries: slot 0, the bucket of 1970, which nothing is due in. */
export const cursorSlot = 0;

/** shardOf is the due index shard of a shipment ID (its digits are uniform: a SHA-256 prefix). */
export function shardOf(id: string): number {
  return parseInt(id.slice(4, 8), 16) % shards;
}

/** bucketOf is the bucket of a time (epoch ms). */
export function bucketOf(ms: number): number {
  return Math.floor(ms / bucketMs);
}

/** slotOf is the due index slot of shipment id due at at (RFC 3339). */
export function slotOf(id: string, at: string): number {
  return bucketOf(Date.parse(at)) * shards + shardOf(id);
}

/** DueShard is one slot of the due index as stored: shipment ID -> when due (RFC 3339). */
export interface DueShard {
  shard: number;
  entries: Record<string, string>;
  /** version is undefined for a shard never written. */
  version?: string;
}

/**
 * Store is what the domain needs from its state store. Conflicts (a version
 * that moved, an insert over an existing key) are conflict ApiErrors; a
 * store that cannot answer is an unavailable one.
 */
export interface Store extends LeaseStore {
  /** getShipment returns the shipment and its version, or undefined. */
  getShipment(id: string): Promise<Versioned<Shipment> | undefined>;
  /**
   * putShipment writes s over version, and with event publishes event in
   * the same transaction (the outbox; its CloudEvent type is event.type).
   * Without version, with an event: a write whose caller holds the lease and
   * saw no record. Without version and event: an insert, refused (conflict)
   * when the key exists.
   */
  putShipment(s: Shipment, version: string | undefined, event?: ShipmentEvent): Promise<void>;
  /** getDue returns the listed slots of the due index (empty ones without version). */
  getDue(shardList: number[]): Promise<DueShard[]>;
  /**
   * putDue writes a slot over version (undefined: only if it does not exist
   * yet); a slot left without entries is deleted (at that version).
   */
  putDue(shard: number, entries: Record<string, string>, version: string | undefined): Promise<void>;
}

/** OrderOutcome is what an order event did: applied, a duplicate of what was done, ignored as too late, dropped or to be retried. */
export type OrderOutcome = "applied" | "duplicate" | "ignored" | "dropped" | "retried";
/** RepairKind names why the ticker rewrote an index entry. */
export type RepairKind = "orphan" | "stale" | "final";

/** Counters count shipping's business events (shipping_* metrics). */
export interface Counters {
  stored(type: EventType): void;
  order(type: string, outcome: OrderOutcome): void;
  repaired(kind: RepairKind): void;
}

const noCounters: Counters = { stored() {}, order() {}, repaired() {} };

/** trackingNumber is the label's number: DS and the first 16 hex digits, uppercased, of HMAC-SHA256(key, shipment ID). */
export function trackingNumber(key: string | Buffer, id: string): string {
  return "DS" + createHmac("sha256", key).update(id, "utf8").digest("hex").slice(0, 16).toUpperCase();
}

/** ShippingOptions are what a Shipping is built from. */
export interface ShippingOptions {
  store: Store;
  steps: Step[];
  /** labelKey returns the label key (the secret store's shipping-label-key). */
  labelKey: () => Promise<string | Buffer>;
  recipients: Recipients;
  /** now is the clock (epoch ms): records, leases, due times. */
  now: () => number;
  leaseTtlMs: number;
  leaseWaitMs: number;
  log: Logger;
  counters?: Counters;
  /** concurrency is how many due shipments one tick advances at once. */
  concurrency?: number;
}

/** TickResult says what one tick found and did. */
export interface TickResult {
  due: number;
  advanced: number;
  busy: number;
}

/** Shipping handles order events, answers for shipments and moves them on. */
export class Shipping {
  private readonly store: Store;
  private readonly leases: Leases;
  private readonly counters: Counters;
  /** cursorSeen: the due index's cursor exists (startCursor need not look again). */
  private cursorSeen = false;

  constructor(private readonly o: ShippingOptions) {
    this.store = o.store;
    this.leases = new Leases(o.store, o.leaseTtlMs, o.leaseWaitMs, o.now);
    this.counters = o.counters ?? noCounters;
  }

  /**
   * handle applies one event of the orders topic. It throws a drop error for
   * an event it can never apply (no data, not of the schema, data it cannot
   * ship), and any other error for one to retry.
   */
  async handle(e: CloudEvent): Promise<void> {
    let type = "other";
    try {
      let d: OrderEvent;
      try {
        d = orderEvent(dataOf(e));
      } catch (err) {
        throw drop(err);
      }
      type = d.type;
      switch (d.type) {
        case "order.confirmed":
          return await this.confirmed(d);
        case "order.cancelled":
          return await this.cancelled(d);
        default:
          // Not shipping's (the subscription's rules hand it only those two).
          this.counters.order(d.type, "ignored");
      }
    } catch (err) {
      this.counters.order(type, isDrop(err) ? "dropped" : "retried");
      throw err;
    }
  }

  /** confirmed creates the order's shipment unless one (any, a cancelled one too) exists. */
  private async confirmed(d: OrderEvent): Promise<void> {
    const id = this.shipmentOf(d);
    if (await this.store.getShipment(id)) {
      this.counters.order(d.type, "duplicate");
      return;
    }
    const tracking = trackingNumber(await this.o.labelKey(), id);
    const recipient = await this.recipient(d.user_id);
    await this.underLease(id, async (lease) => {
      if (await lease.step(() => this.store.getShipment(id))) {
        this.counters.order(d.type, "duplicate");
        return;
      }
      const now = this.o.now();
      const at = iso(now);
      const first = this.o.steps[0];
      const s: Shipment = {
        id,
        order_id: d.order_id,
        user_id: d.user_id,
        status: "label_created",
        tracking_number: tracking,
        recipient,
        items: d.items.map((it) => ({ product_id: it.product_id, quantity: it.quantity })),
        history: [{ status: "label_created", at }],
        created_at: at,
        updated_at: at,
        next_at: first ? iso(now + first.delayMs) : null,
      };
      const tp = traceparent();
      if (tp) s.traceparent = tp;
      const ev = eventOf(s);
      // The index entry first: no record is ever without one.
      const due = s.next_at;
      if (due) {
        await lease.step(() => this.startCursor(now));
        await lease.step(() => this.index(id, due));
      }
      await lease.step(() => this.store.putShipment(s, undefined, ev));
      this.counters.stored(ev.type);
      this.counters.order(d.type, "applied");
      this.o.log.info("shipment created", { shipment_id: id, order_id: d.order_id, tracking_number: tracking });
    });
  }

  /** cancelled cancels the order's shipment unless it has shipped; none yet leaves a cancelled record. */
  private async cancelled(d: OrderEvent): Promise<void> {
    const id = this.shipmentOf(d);
    const seen = await this.store.getShipment(id);
    if (seen && seen.value.status !== "label_created") {
      this.counters.order(d.type, seen.value.status === "cancelled" ? "duplicate" : "ignored");
      return;
    }
    await this.underLease(id, async (lease) => {
      const cur = await lease.step(() => this.store.getShipment(id));
      const now = this.o.now();
      const at = iso(now);
      const reason = d.reason || "order cancelled";
      if (!cur) {
        // The cancellation came first: a record without a label, and no
        // event (there was no shipment to announce the end of).
        const tomb: Shipment = {
          id,
          order_id: d.order_id,
          user_id: d.user_id,
          status: "cancelled",
          tracking_number: "",
          recipient: "",
          items: d.items.map((it) => ({ product_id: it.product_id, quantity: it.quantity })),
          history: [{ status: "cancelled", at }],
          created_at: at,
          updated_at: at,
          next_at: null,
          reason,
        };
        await lease.step(() => this.store.putShipment(tomb, undefined));
        this.counters.order(d.type, "applied");
        return;
      }
      if (cur.value.status !== "label_created") {
        this.counters.order(d.type, cur.value.status === "cancelled" ? "duplicate" : "ignored");
        return;
      }
      const s: Shipment = {
        ...cur.value,
        status: "cancelled",
        reason,
        updated_at: at,
        next_at: null,
        history: [...cur.value.history, { status: "cancelled", at }],
      };
      const ev = eventOf(s);
      await lease.step(() => this.store.putShipment(s, cur.version, ev));
      this.counters.stored(ev.type);
      this.counters.order(d.type, "applied");
      this.o.log.info("shipment cancelled", { shipment_id: id, order_id: d.order_id, reason });
      const was = cur.value.next_at;
      if (was) await lease.step(() => this.unindex(id, was));
    });
  }

  /** recipient asks users for the customer's name; an account users does not know can never be shipped to (drop). */
  private async recipient(userId: string): Promise<string> {
    try {
      return await this.o.recipients.nameOf(userId);
    } catch (err) {
      throw codeOf(err) === "not_found" ? drop(err) : err;
    }
  }

  /** shipmentOf returns the shipment ID of an order event's order, or drops an event shipping cannot ship. */
  private shipmentOf(d: OrderEvent): string {
    const problems = new FieldErrors();
    if (!Order.valid(d.order_id)) problems.add("order_id", "must be an order ID (ord_ and 24 hex digits)");
    if (!User.valid(d.user_id)) problems.add("user_id", "must be a user ID (usr_ and 24 hex digits)");
    const err = problems.err("order event");
    if (err) throw drop(err);
    return ShipmentID.derive(d.order_id);
  }

  /**
   * get returns the shipment of order orderId for owner. A malformed order
   * ID or owner is invalid; no shipment, one never labelled, or another
   * owner's is not found (the same answer: an owner learns nothing of
   * another's orders).
   */
  async get(orderId: string, owner: string | undefined): Promise<ShipmentView> {
    const problems = new FieldErrors();
    if (!User.valid(owner)) problems.add("X-User-ID", "must hold the signed-in user's ID (usr_ and 24 hex digits)");
    if (!Order.valid(orderId)) problems.add("order_id", "must be an order ID (ord_ and 24 hex digits)");
    const err = problems.err("request");
    if (err) throw err;
    const cur = await this.store.getShipment(ShipmentID.derive(orderId));
    if (!cur || cur.value.user_id !== owner || cur.value.tracking_number === "") {
      throw errorf("not_found", `no shipment for order ${orderId}`);
    }
    const s = cur.value;
    return {
      id: s.id,
      order_id: s.order_id,
      user_id: s.user_id,
      status: s.status,
      tracking_number: s.tracking_number,
      recipient: s.recipient ?? "",
      items: s.items,
      history: s.history,
      created_at: s.created_at,
      updated_at: s.updated_at,
    };
  }

  /**
   * tick reads the due index from its cursor to now, advances every
   * shipment that is due, a few at a time, in an order of its own (replicas
   * ticking together spread over the work; the lease settles who does
   * each), and moves the cursor past the buckets it found empty.
   */
  async tick(): Promise<TickResult> {
    const now = this.o.now();
    const nowB = bucketOf(now);
    const [c] = await this.store.getDue([cursorSlot]);
    const stored = Number(c?.entries.cursor);
    const from = Number.isInteger(stored) && stored > 0 ? Math.min(stored, nowB - settleBuckets) : nowB - settleBuckets;
    const to = Math.min(nowB, from + catchUpBuckets - 1);
    const slots: number[] = [];
    for (let b = from; b <= to; b++) for (let sh = 0; sh < shards; sh++) slots.push(b * shards + sh);
    const got = await this.store.getDue(slots);
    const due: [string, string][] = [];
    const full = new Set<number>();
    for (const sh of got) {
      for (const [id, at] of Object.entries(sh.entries)) {
        full.add(Math.floor(sh.shard / shards));
        if (!(Date.parse(at) > now)) due.push([id, at]);
      }
    }
    // The cursor passes the buckets found empty, up to the settle margin.
    let next = from;
    while (next <= to && next < nowB - settleBuckets && !full.has(next)) next++;
    if (next !== stored) {
      await this.store.putDue(cursorSlot, { cursor: String(next) }, c?.version).catch((err) => {
        if (codeOf(err) !== "conflict") throw err; // another replica moved it
      });
    }
    shuffle(due);
    const res: TickResult = { due: due.length, advanced: 0, busy: 0 };
    const take = () => due.shift();
    const worker = async () => {
      for (let e = take(); e !== undefined; e = take()) {
        try {
          const r = await this.advance(e[0], e[1]);
          if (r === "advanced") res.advanced++;
          if (r === "busy") res.busy++;
        } catch (err) {
          this.o.log.warn("shipment not advanced", { shipment_id: e[0], err: describe(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.concurrency ?? 4) }, worker));
    return res;
  }

  /**
   * startCursor writes the cursor if there is none yet (a first shipment),
   * at the settle margin before now: the ticker reads from there.
   */
  private async startCursor(now: number): Promise<void> {
    if (this.cursorSeen) return;
    const [c] = await this.store.getDue([cursorSlot]);
    if (!c?.version) {
      await this.store.putDue(cursorSlot, { cursor: String(bucketOf(now) - settleBuckets) }, undefined).catch((err) => {
        if (codeOf(err) !== "conflict") throw err;
      });
    }
    this.cursorSeen = true;
  }

  /** advance takes the due step of shipment id, whose index entry says at, if it still is due, or repairs that entry. */
  async advance(id: string, at: string): Promise<"advanced" | "busy" | "repaired"> {
    let lease: Lease;
    try {
      lease = await this.leases.acquire(leaseKey(id), false);
    } catch (err) {
      if (err instanceof HeldError) return "busy";
      throw err;
    }
    try {
      const cur = await lease.step(() => this.store.getShipment(id));
      if (!cur) {
        // An entry whose creation did not finish: the redelivery indexes it again.
        await lease.step(() => this.unindex(id, at));
        this.counters.repaired("orphan");
        return "repaired";
      }
      return await withTrace(cur.value.traceparent, () => this.step(lease, cur, at));
    } catch (err) {
      if (err instanceof LostError) return "busy";
      throw err;
    } finally {
      await lease.release().catch((err) => this.o.log.warn("lease not released", { key: lease.key, err: describe(err) }));
    }
  }

  private async step(lease: Lease, cur: Versioned<Shipment>, entry: string): Promise<"advanced" | "repaired"> {
    const s = cur.value;
    const next = this.nextStep(s.status);
    if (!next || s.next_at === null) {
      await lease.step(() => this.reindex(s.id, [entry, s.next_at], null));
      this.counters.repaired("final");
      return "repaired";
    }
    const now = this.o.now();
    if (Date.parse(s.next_at) > now) {
      await lease.step(() => this.reindex(s.id, [entry], s.next_at));
      this.counters.repaired("stale");
      return "repaired";
    }
    const at = iso(now);
    const after = this.nextStep(next.status);
    const moved: Shipment = {
      ...s,
      status: next.status,
      updated_at: at,
      next_at: after ? iso(now + after.delayMs) : null,
      history: [...s.history, { status: next.status, at }],
    };
    const ev = eventOf(moved);
    await lease.step(() => this.store.putShipment(moved, cur.version, ev));
    this.counters.stored(ev.type);
    this.o.log.info("shipment moved on", { shipment_id: s.id, order_id: s.order_id, status: next.status });
    await lease.step(() => this.reindex(s.id, [entry, s.next_at], moved.next_at));
    return "advanced";
  }

  /**
   * reindex makes shipment id's index entry say to (none when null): the
   * entry at to first, so the shipment is never without one, then the
   * entries at the times in from (those whose slot differs) removed.
   */
  private async reindex(id: string, from: (string | null)[], to: string | null): Promise<void> {
    if (to) await this.index(id, to);
    const done = new Set(to ? [slotOf(id, to)] : []);
    for (const at of from) {
      if (!at || done.has(slotOf(id, at))) continue;
      done.add(slotOf(id, at));
      await this.unindex(id, at);
    }
  }

  /** nextStep is the configured step after status, if any. */
  private nextStep(status: Status): Step | undefined {
    if (status === "cancelled" || status === "delivered") return undefined;
    const i = this.o.steps.findIndex((x) => x.status === status);
    return this.o.steps[i + 1]; // label_created: i = -1, the first step
  }

  /** underLease runs fn holding shipment id's lease, waiting for it a while; busy is retried later. */
  private async underLease(id: string, fn: (lease: Lease) => Promise<void>): Promise<void> {
    const lease = await this.leases.acquire(leaseKey(id), true);
    try {
      await fn(lease);
    } finally {
      await lease.release().catch((err) => this.o.log.warn("lease not released", { key: lease.key, err: describe(err) }));
    }
  }

  /**
   * index sets shipment id's due entry to at, in at's slot; to now instead
   * when at has passed: a writer that stalled (a busy machine, a sidecar
   * timing out) between reading the clock and writing must not put an entry
   * in a bucket the cursor has already passed, where no tick would read it.
   * The entry holds the time its slot was chosen by, so its removal finds
   * it; the record still decides what is due.
   */
  private index(id: string, at: string): Promise<void> {
    const when = Date.parse(at) < this.o.now() ? iso(this.o.now()) : at;
    return this.modifyDue(slotOf(id, when), (entries) => {
      if (entries[id] === when) return false;
      entries[id] = when;
      return true;
    });
  }

  /** unindex removes shipment id's due entry from at's slot. */
  private unindex(id: string, at: string): Promise<void> {
    return this.modifyDue(slotOf(id, at), (entries) => {
      if (!(id in entries)) return false;
      delete entries[id];
      return true;
    });
  }

  /** modifyDue applies change to a shard and writes it over the version read, again while others win the race. */
  private async modifyDue(shard: number, change: (entries: Record<string, string>) => boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const [cur] = await this.store.getDue([shard]);
      const entries = { ...(cur?.entries ?? {}) };
      if (!change(entries)) return;
      try {
        await this.store.putDue(shard, entries, cur?.version);
        return;
      } catch (err) {
        if (codeOf(err) !== "conflict" || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * Math.min(attempt, 8)));
      }
    }
  }
}

/** leaseKey is the lease of a shipment. */
export function leaseKey(id: string): string {
  return "lease:" + id;
}

/** eventOf is the event announcing s's current status, checked against the shipments schema (a failure is a drop). */
export function eventOf(s: Shipment): ShipmentEvent {
  const ev: ShipmentEvent = {
    type: eventTypes[s.status],
    shipment_id: s.id,
    order_id: s.order_id,
    user_id: s.user_id,
    status: s.status,
    tracking_number: s.tracking_number,
    at: s.updated_at,
  };
  if (s.status === "cancelled" && s.reason) ev.reason = s.reason;
  try {
    return shipmentEvent(ev);
  } catch (err) {
    throw drop(err instanceof SchemaError ? err : new Error(String(err)));
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function shuffle<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
