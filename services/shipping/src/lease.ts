/**
 * Leases give one holder at a time, across processes and replicas, the right
 * to work on a key (a shipment) for a while: the TypeScript twin of lib/lease,
 * over the same kind of record. A lease is a record in the state store every
 * replica shares, written with first-write concurrency (insert only, or over
 * the version read), so of two replicas taking a free lease one wins. It
 * carries its expiry, so a holder that died blocks the key for at most its
 * TTL, after which another takes it over; the store also drops it a second
 * after its end (ttlInSeconds).
 *
 * A lease is mutual exclusion in time, not a fence: a holder that stalls past
 * its expiry may still act after another took over. Hence a holder never
 * starts a step that could outlast its lease: step() renews the lease once
 * half of it is gone and bounds the step (every sidecar call in it) to end
 * margin (a quarter of the TTL) before the lease does. What must hold even
 * then belongs in the records themselves (ETags).
 */
import { randomBytes } from "node:crypto";
import { ApiError, codeOf } from "./apierr";
import { withDeadline } from "./tracecontext";

/** LeaseRecord is a lease as stored (lib/lease.Record): who holds it and until when (RFC 3339). */
export interface LeaseRecord {
  token: string;
  until: string;
}

/** Versioned is a stored value and its version (the state store's ETag). */
export interface Versioned<T> {
  value: T;
  version: string;
}

/**
 * LeaseStore keeps lease records by key, with versions. putLease writes r
 * over version, or only if the key has none when version is undefined; a
 * record that changed meanwhile (or exists) is a conflict ApiError. The store
 * may forget the record ttlSeconds after the write. deleteLease removes the
 * record if still at version: changed is a conflict, gone is no error.
 */
export interface LeaseStore {
  getLease(key: string): Promise<Versioned<LeaseRecord> | undefined>;
  putLease(key: string, r: LeaseRecord, version: string | undefined, ttlSeconds: number): Promise<void>;
  deleteLease(key: string, version: string): Promise<void>;
}

/** HeldError says another holder kept the lease for as long as the caller could wait. */
export class HeldError extends ApiError {
  constructor(
    readonly key: string,
    readonly until: number,
  ) {
    super("conflict", `${key} is busy`, { retryAfterSeconds: 1 });
    this.name = "HeldError";
  }
}

/** LostError is the error of a holder whose lease expired and was taken over: it must stop. */
export class LostError extends ApiError {
  constructor(readonly key: string) {
    super("conflict", `lease ${key} lost: expired and taken over`);
    this.name = "LostError";
  }
}

/** Leases hands out leases of a LeaseStore. */
export class Leases {
  constructor(
    private readonly store: LeaseStore,
    /** ttlMs is how long a lease lasts from its acquisition or renewal. */
    readonly ttlMs: number,
    /** waitMs is how long acquire waits for a lease another holds (when asked to wait). */
    private readonly waitMs: number,
    /** now is the clock leases' expiries are read and written with (epoch ms). */
    readonly now: () => number,
  ) {}

  /** margin is the part of a lease a step never uses. */
  get margin(): number {
    return this.ttlMs / 4;
  }

  /** ttlSeconds is the store TTL of a lease record ending at until: the store drops leases nobody released. */
  ttlSeconds(until: number): number {
    // A second past the end, so that a lease is never dropped while it counts.
    return Math.max(1, Math.ceil((until - this.now()) / 1000) + 1);
  }

  /**
   * acquire takes key's lease; with wait, it waits up to waitMs while another
   * holds it. It throws a HeldError when the lease stays held; a store
   * failure is thrown as it is. A free key costs one write.
   */
  async acquire(key: string, wait: boolean): Promise<Lease> {
    const token = randomBytes(12).toString("hex");
    const end = Date.now() + (wait ? this.waitMs : 0);
    let seenHolder = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(key, token, seenHolder);
      } catch (err) {
        const held = err instanceof HeldError;
        if (!held && codeOf(err) !== "conflict") throw err;
        seenHolder ||= held;
        const pause = Math.min(250, 20 * 2 ** (attempt - 1)) * (1 - 0.2 * Math.random());
        if (Date.now() + pause >= end) {
          throw held ? err : new HeldError(key, this.now() + this.ttlMs);
        }
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  private async attempt(key: string, token: string, seenHolder: boolean): Promise<Lease> {
    // Once a live holder was seen, read before writing: a lease still
    // held then costs one read instead of a refused write and a read.
    if (seenHolder) {
      const cur = await this.store.getLease(key);
      if (cur && Date.parse(cur.value.until) > this.now()) throw new HeldError(key, Date.parse(cur.value.until));
    }
    let until = this.now() + this.ttlMs;
    const rec = () => ({ token, until: new Date(until).toISOString() });
    try {
      await this.store.putLease(key, rec(), undefined, this.ttlSeconds(until));
    } catch (err) {
      if (codeOf(err) !== "conflict") throw err;
      // Taken: by a live holder, or by one whose lease expired.
      const cur = await this.store.getLease(key);
      if (!cur) throw err; // released meanwhile: try again
      if (Date.parse(cur.value.until) > this.now()) throw new HeldError(key, Date.parse(cur.value.until));
      until = this.now() + this.ttlMs;
      await this.store.putLease(key, rec(), cur.version, this.ttlSeconds(until));
    }
    return new Lease(this, this.store, key, token, until);
  }
}

/** Lease is a lease this process holds. */
export class Lease {
  constructor(
    private readonly m: Leases,
    private readonly store: LeaseStore,
    readonly key: string,
    private readonly token: string,
    private until: number,
  ) {}

  /** current returns the stored record's version if it is still this lease; LostError otherwise. */
  private async current(): Promise<string> {
    const cur = await this.store.getLease(this.key);
    if (!cur || cur.value.token !== this.token) throw new LostError(this.key);
    return cur.version;
  }

  /** renew extends the lease to a full TTL from now; LostError means the caller must stop. */
  async renew(): Promise<void> {
    const version = await this.current();
    const until = this.m.now() + this.m.ttlMs;
    try {
      await this.store.putLease(this.key, { token: this.token, until: new Date(until).toISOString() }, version, this.m.ttlSeconds(until));
    } catch (err) {
      if (codeOf(err) === "conflict") throw new LostError(this.key);
      throw err;
    }
    this.until = until;
  }

  /**
   * step runs fn as one step of the holder's work: it renews the lease once
   * half of it is gone, and every sidecar call in fn ends at the latest
   * margin before the lease does.
   */
  async step<T>(fn: () => Promise<T>): Promise<T> {
    if (this.until - this.m.now() < this.m.ttlMs / 2) await this.renew();
    // Deadlines are on the system clock: the lease's remaining time, less margin, from now.
    const deadline = Date.now() + (this.until - this.m.now()) - this.m.margin;
    return withDeadline(deadline, fn);
  }

  /** release gives the lease up; one taken over is left alone, and a failure only lets it expire. */
  async release(): Promise<void> {
    await withDeadline(Date.now() + 2000, async () => {
      let version: string;
      try {
        version = await this.current();
      } catch (err) {
        if (err instanceof LostError) return;
        throw err;
      }
      try {
        await this.store.deleteLease(this.key, version);
      } catch (err) {
        if (codeOf(err) !== "conflict") throw err;
      }
    });
  }
}
