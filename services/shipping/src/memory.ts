/**
 * An in-memory Store: the fake the domain's tests run on, held to the same
 * contract as the Dapr adapter (test/store.contract.ts). It behaves as the
 * suite's state.redis does where that matters for correctness: versions with
 * first-write concurrency, inserts refused over an existing key, lease
 * records that expire, and an outbox whose transaction publishes its event
 * even when its version check fails (Redis runs a transaction's writes
 * without rollback; lib/sidecar.SaveWithEvent). So a design that let a
 * shipment's writers race would publish a step twice here too. Every call
 * yields to the event loop first, so concurrent callers interleave.
 */
import { ApiError, errorf } from "./apierr";
import type { ShipmentEvent } from "./contracts";
import type { LeaseRecord, Versioned } from "./lease";
import { cursorSlot, type DueShard, type Recipients, type Shipment, type Store } from "./shipping";
import { traceparent } from "./tracecontext";

/** Published is one event the fake outbox published: its CloudEvent type, data and trace context. */
export interface Published {
  type: string;
  data: ShipmentEvent;
  traceparent?: string;
}

interface Entry {
  json: string;
  version: number;
  /** expires is when the store forgets the key (epoch ms), if ever. */
  expires?: number;
}

/** MemoryStore keeps everything in a Map; one instance stands for one shared state store. */
export class MemoryStore implements Store {
  /** published lists every event the outbox published, in order. */
  readonly published: Published[] = [];
  /** down makes every call fail as an unreachable store does. */
  down = false;
  /** publishOnConflict publishes a transaction's event even when its version check fails, as state.redis does. */
  publishOnConflict = true;
  /** calls counts the calls by operation. */
  readonly calls = new Map<string, number>();
  private readonly data = new Map<string, Entry>();
  private seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** keys lists the keys stored now, for tests. */
  keys(): string[] {
    return [...this.data.keys()].filter((k) => this.read(k) !== undefined).sort();
  }

  async getShipment(id: string): Promise<Versioned<Shipment> | undefined> {
    await this.turn("state_get");
    return this.get<Shipment>("shipment:" + id);
  }

  async putShipment(s: Shipment, version: string | undefined, event?: ShipmentEvent): Promise<void> {
    await this.turn(event ? "state_transaction" : "state_save");
    const key = "shipment:" + s.id;
    if (!event) {
      this.put(key, s, version, undefined);
      return;
    }
    const cur = this.read(key);
    if (version !== undefined && String(cur?.version) !== version) {
      if (this.publishOnConflict) this.publish(event);
      throw errorf("conflict", `shipment ${s.id} changed meanwhile`);
    }
    this.write(key, s, undefined);
    this.publish(event);
  }

  async getLease(key: string): Promise<Versioned<LeaseRecord> | undefined> {
    await this.turn("state_get");
    return this.get<LeaseRecord>(key);
  }

  async putLease(key: string, r: LeaseRecord, version: string | undefined, ttlSeconds: number): Promise<void> {
    await this.turn("state_save");
    this.put(key, r, version, ttlSeconds);
  }

  async deleteLease(key: string, version: string): Promise<void> {
    await this.turn("state_delete");
    const cur = this.read(key);
    if (!cur) return;
    if (String(cur.version) !== version) throw errorf("conflict", `${key} changed meanwhile`);
    this.data.delete(key);
  }

  async getDue(shardList: number[]): Promise<DueShard[]> {
    await this.turn("state_bulk_get");
    return shardList.map((shard) => {
      const cur = this.get<{ entries: Record<string, string> }>("due:" + shard);
      return cur ? { shard, entries: cur.value.entries, version: cur.version } : { shard, entries: {} };
    });
  }

  async putDue(shard: number, entries: Record<string, string>, version: string | undefined): Promise<void> {
    const key = "due:" + shard;
    if (Object.keys(entries).length > 0) {
      await this.turn("state_save");
      this.put(key, { entries }, version, undefined);
      return;
    }
    if (version === undefined) return; // nothing to write
    await this.turn("state_delete");
    const cur = this.read(key);
    if (!cur || String(cur.version) !== version) throw errorf("conflict", `${key} changed meanwhile`);
    this.data.delete(key);
  }

  /** dueIds lists the shipment IDs of every due index slot (not the cursor), for tests to see the whole index. */
  dueIds(): string[] {
    const out: string[] = [];
    for (const [key, e] of this.data) {
      if (!key.startsWith("due:") || key === "due:" + cursorSlot) continue;
      out.push(...Object.keys((JSON.parse(e.json) as { entries: Record<string, string> }).entries));
    }
    return out;
  }

  private async turn(op: string): Promise<void> {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    await new Promise((r) => setImmediate(r));
    if (this.down) throw new ApiError("unavailable", "shipping store unavailable", { cause: new Error("store down (fake)") });
  }

  private read(key: string): Entry | undefined {
    const e = this.data.get(key);
    if (e?.expires !== undefined && e.expires <= this.now()) {
      this.data.delete(key);
      return undefined;
    }
    return e;
  }

  private get<T>(key: string): Versioned<T> | undefined {
    const e = this.read(key);
    return e ? { value: JSON.parse(e.json) as T, version: String(e.version) } : undefined;
  }

  /** put is a first-write save: over version, or only if absent when version is undefined. */
  private put(key: string, value: unknown, version: string | undefined, ttlSeconds: number | undefined): void {
    const cur = this.read(key);
    if (version === undefined ? cur !== undefined : String(cur?.version) !== version) {
      throw errorf("conflict", version === undefined ? `${key} exists` : `${key} changed meanwhile`);
    }
    this.write(key, value, ttlSeconds);
  }

  private write(key: string, value: unknown, ttlSeconds: number | undefined): void {
    const e: Entry = { json: JSON.stringify(value), version: ++this.seq };
    if (ttlSeconds !== undefined && ttlSeconds > 0) e.expires = this.now() + ttlSeconds * 1000;
    this.data.set(key, e);
  }

  private publish(event: ShipmentEvent): void {
    const p: Published = { type: event.type, data: structuredClone(event) };
    const tp = traceparent();
    if (tp) p.traceparent = tp;
    this.published.push(p);
  }
}

/**
 * MemoryUsers is the fake of users' accounts (Recipients, as DaprUsers asks
 * them): a name for every user ID but those in missing (not_found); down
 * answers unavailable.
 */
export class MemoryUsers implements Recipients {
  readonly missing = new Set<string>();
  down = false;

  async nameOf(userId: string): Promise<string> {
    await Promise.resolve();
    if (this.down) throw errorf("unavailable", "users unavailable");
    if (this.missing.has(userId)) throw errorf("not_found", `no account ${userId}`);
    return "Customer " + userId.slice(-4);
  }
}
