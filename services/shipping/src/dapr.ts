/**
 * The adapter over the Dapr sidecar, through Dapr's JS SDK (@dapr/dapr 3.4,
 * made for Dapr 1.14) on daprd's HTTP API: the shipping Store on the
 * service's own state store (shipments written with their event in one
 * outbox transaction, leases and the due index with first-write
 * concurrency), the label key from the secret store, the recipient's name
 * from users by service invocation, and the sidecar's health. It is the twin of services/orders/internal/dapr and lib/sidecar:
 *
 *   - The outbox transaction is written as lib/sidecar.SaveWithEvent writes
 *     it: the record (no contentType: state.redis would switch to RedisJSON,
 *     which a plain Redis lacks) whose metadata names the CloudEvent type
 *     and carries the trace context, and the event as its projection
 *     (outbox.projection, contentType application/json). Only on the HTTP
 *     API does the projection keep its JSON content type (Dapr 1.14), and the
 *     SDK's gRPC transaction drops per-operation metadata, hence HTTP.
 *   - Reads go through the bulk API, the one HTTP read of the SDK that
 *     returns ETags and per-key errors (a failed read must not pass for a
 *     missing key).
 *   - An insert the store refuses comes back as an error that does not say
 *     why: the key is read to tell a conflict from a failure (SaveJSON); a
 *     failed transaction is a conflict when its record's version moved
 *     (orders' explain).
 *   - Every call goes through a circuit breaker per component (lib/breaker
 *     settings): conflicts and missing keys are answers, not failures.
 *
 * The SDK reads DAPR_API_TOKEN itself and sends it on every call. Its HTTP
 * client fetches through a static fetch function; this module replaces it
 * (install) with one that adds what the SDK's methods cannot take: the
 * work's traceparent, a timeout bounded by the work's deadline (a lease's
 * step), and the sidecar call metrics (op, target, outcome, duration). It
 * sends with node:http itself (send), not node-fetch: the SDK reads only a
 * reply's status and text, and node-fetch's streams and header objects, with
 * an abort signal per call, took a fifth of shipping's CPU per order
 * (docs/performance.md).
 */
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { CommunicationProtocolEnum, DaprClient, HTTPClient, HttpMethod, LogLevel, StateConcurrencyEnum, type LoggerService } from "@dapr/dapr";
import type { OperationType } from "@dapr/dapr/types/Operation.type";
import { errorf, unavailable } from "./apierr";
import { Breaker, type BreakerSettings, type StateGauge } from "./breaker";
import type { ShipmentEvent } from "./contracts";
import type { LeaseRecord, Versioned } from "./lease";
import type { Logger } from "./log";
import type { DueShard, Recipients, Shipment, Store } from "./shipping";
import { deadline, traceparent } from "./tracecontext";

/** Observer records every call to the sidecar (Metrics.observeCall). */
export interface Observer {
  observeCall(op: string, target: string, outcome: string, seconds: number): void;
}

/** SidecarOptions say how to reach the sidecar and what to record. */
export interface SidecarOptions {
  httpPort: number;
  /** timeoutMs bounds each call (less when the work's deadline is nearer). */
  timeoutMs: number;
  log: Logger;
  observer?: Observer;
  /** breaker is the settings of every component's breaker; its name is the component's. */
  breaker: Omit<BreakerSettings, "name">;
  gauge?: StateGauge;
}

/** Reply is what the SDK reads of a sidecar's reply. */
interface Reply {
  status: number;
  statusText: string;
  text(): Promise<string>;
}

type Fetch = (url: string, init?: Record<string, unknown>) => Promise<Reply>;

/** agent keeps the connections to the sidecar open between calls. */
const agent = new Agent({ keepAlive: true, keepAliveMsecs: 30_000 });

/**
 * send makes one HTTP call to the sidecar and reads its whole reply; it
 * fails after timeoutMs (the connection is dropped) or on a network error.
 */
function send(url: string, method: string, headers: OutgoingHttpHeaders, body: string | Buffer | undefined, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? "", text: async () => text });
      });
      res.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`the sidecar did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** transports maps a sidecar's base URL to what its calls go through; the SDK's fetch is one per process. */
const transports = new Map<string, { timeoutMs: number; observer?: Observer }>();
const wrapped = Symbol("shipping transport");

/**
 * install replaces the SDK's fetch once: every call gets the work's
 * traceparent and a timeout, and is observed by its sidecar's observer.
 */
function install(): void {
  const holder = HTTPClient as unknown as { client?: Fetch & { [wrapped]?: true } };
  if (holder.client?.[wrapped]) return;
  const fetchWith: Fetch & { [wrapped]?: true } = async (url, init = {}) => {
    const base = /^https?:\/\/[^/]+/.exec(url)?.[0] ?? "";
    const t = transports.get(base);
    const headers = { ...((init.headers as Record<string, string>) ?? {}) };
    const tp = traceparent();
    if (tp) headers.traceparent = tp;
    const dl = deadline();
    const timeout = Math.min(t?.timeoutMs ?? 5000, dl === undefined ? Infinity : dl - Date.now());
    const { op, target } = operation(String(init.method ?? "GET"), url.slice(base.length));
    const start = performance.now();
    const observe = (outcome: string) => {
      if (t?.observer && op) t.observer.observeCall(op, target, outcome, (performance.now() - start) / 1000);
    };
    if (!(timeout > 0)) {
      observe("unavailable");
      throw new Error("deadline passed before the call to the sidecar");
    }
    try {
      const body = init.body as string | Buffer | undefined;
      const res = await send(url, String(init.method ?? "GET"), headers, body, timeout);
      observe(res.status < 300 ? "ok" : res.status < 500 ? "client_error" : "server_error");
      return res;
    } catch (err) {
      observe("unavailable");
      throw err;
    }
  };
  fetchWith[wrapped] = true;
  holder.client = fetchWith;
}

/** operation names a call to daprd's HTTP API as lib/sidecar does: state_get, state_save... and its component. */
export function operation(method: string, path: string): { op?: string; target: string } {
  const p = path.split("?")[0]!.split("/");
  // ["", "v1.0", api, component, ...]
  const [, , api, target = "", rest] = p;
  switch (api) {
    case "state":
      if (rest === "bulk") return { op: "state_bulk_get", target };
      if (rest === "transaction") return { op: "state_transaction", target };
      if (rest === undefined) return { op: "state_save", target };
      return { op: method === "DELETE" ? "state_delete" : "state_get", target };
    case "secrets":
      return { op: "secret", target };
    case "publish":
      return { op: "publish", target };
    case "invoke":
      return { op: "invoke", target };
  }
  return { target }; // healthz, metadata: not observed, as in Go
}

/** Sidecar is shipping's connection to its daprd: the SDK client and a breaker per component. */
export class Sidecar {
  readonly client: DaprClient;
  private readonly breakers = new Map<string, Breaker>();
  private started = false;
  private starting?: Promise<void>;

  constructor(private readonly o: SidecarOptions) {
    this.client = new DaprClient({
      daprHost: "127.0.0.1",
      daprPort: String(o.httpPort),
      communicationProtocol: CommunicationProtocolEnum.HTTP,
      logger: { level: LogLevel.Info, service: sdkLogger(o.log) },
    });
    install();
    transports.set(`http://127.0.0.1:${o.httpPort}`, { timeoutMs: o.timeoutMs, observer: o.observer });
  }

  /** breaker returns the breaker of a component, made on first use (its gauge series from then on). */
  breaker(component: string): Breaker {
    let b = this.breakers.get(component);
    if (!b) {
      b = new Breaker({ ...this.o.breaker, name: component }, this.o.log, this.o.gauge);
      this.breakers.set(component, b);
    }
    return b;
  }

  /**
   * start makes sure the SDK client is started before a call: the SDK would
   * otherwise hold a first call for up to 30 s while it waits for the
   * sidecar. Here a call while the sidecar is down fails at once
   * (unavailable), and the first one after it came up starts the client.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.starting ??= (async () => {
      try {
        await this.healthy();
        await this.client.start();
        this.started = true;
      } catch (err) {
        throw unavailable(err, "dapr sidecar unavailable");
      } finally {
        this.starting = undefined;
      }
    })();
    await this.starting;
  }

  /** healthy resolves when daprd answers /v1.0/healthz/outbound (its components are ready), and throws otherwise. */
  async healthy(): Promise<void> {
    const http = this.client.daprClient as HTTPClient;
    await http.execute("/healthz/outbound", { method: "GET" }, false);
  }

  /** secret reads one value of a secret store: the key of the same name in secret name. */
  async secret(store: string, name: string): Promise<string> {
    return this.breaker(store).run(async () => {
      await this.start();
      let vals: unknown;
      try {
        vals = await this.client.secret.get(store, name);
      } catch (err) {
        throw unavailable(err, "secret store unavailable");
      }
      const v = (vals as Record<string, unknown> | undefined)?.[name];
      if (typeof v !== "string" || v === "") {
        throw unavailable(new Error(`secret ${name} in store ${store} is empty`), "secret unavailable");
      }
      return v;
    });
  }

  /** stop closes the SDK's connections. */
  async stop(): Promise<void> {
    transports.delete(`http://127.0.0.1:${this.o.httpPort}`);
    await this.client.stop();
    // As the SDK does with its own agents: no idle connection outlives it.
    agent.destroy();
  }
}

/** sdkLogger hands the SDK's log lines to shipping's logger; refused writes are reported by the adapter, as conflicts or failures. */
function sdkLogger(log: Logger): LoggerService {
  const text = (m: unknown, rest: unknown[]) => ["dapr sdk:", m, ...rest].map(String).join(" ");
  return {
    error: (m, ...rest) => {
      if (/^\[HTTPClient, State\] Error (saving|deleting) state/.test(String(m))) return;
      log.error(text(m, rest));
    },
    warn: (m, ...rest) => log.warn(text(m, rest)),
    info: (m, ...rest) => log.info(text(m, rest)),
    // Debug lines carry request headers, the API token among them.
    verbose: () => {},
    debug: () => {},
  };
}

/** DaprError is what daprd answered a call with: its status and body. */
interface DaprError {
  status?: number;
  body?: string;
}

/** daprError reads the SDK's error for a non-2xx reply ({error, error_msg, status} as JSON text). */
function daprError(err: unknown): DaprError {
  try {
    const v = JSON.parse((err as Error).message) as { status?: number; error_msg?: string };
    return { status: v.status, body: v.error_msg };
  } catch {
    return {};
  }
}

interface BulkItem {
  key: string;
  data?: unknown;
  etag?: string;
  error?: string;
}

/** LabelKey is the label key, read from the secret store on first use and kept; a failed read is tried again next time. */
export class LabelKey {
  private value?: string;
  private pending?: Promise<string>;

  constructor(
    private readonly sidecar: Pick<Sidecar, "secret">,
    private readonly store: string,
    private readonly name: string,
  ) {}

  /** loaded reports whether the key was read. */
  get loaded(): boolean {
    return this.value !== undefined;
  }

  /** get returns the key. */
  async get(): Promise<string> {
    if (this.value !== undefined) return this.value;
    this.pending ??= this.sidecar.secret(this.store, this.name).finally(() => (this.pending = undefined));
    this.value = await this.pending;
    return this.value;
  }
}

/**
 * DaprUsers asks users (app ID app) for an account's name by service
 * invocation, as the gateway's GET /api/me does, behind the breaker of that
 * app: users' 404 is an answer (no such account), any other failure counts
 * (its 4xx other than 404 would be a bug here, so it counts too).
 */
export class DaprUsers implements Recipients {
  constructor(
    private readonly sidecar: Sidecar,
    private readonly app: string,
  ) {}

  async nameOf(userId: string): Promise<string> {
    return this.sidecar.breaker(this.app).run(async () => {
      await this.sidecar.start();
      let reply: unknown;
      try {
        reply = await this.sidecar.client.invoker.invoke(this.app, "users/" + encodeURIComponent(userId), HttpMethod.GET);
      } catch (err) {
        if (daprError(err).status === 404) throw errorf("not_found", `no account ${userId}`);
        throw unavailable(err, `${this.app} unavailable`);
      }
      const name = (reply as { name?: unknown } | undefined)?.name;
      if (typeof name !== "string") throw unavailable(new Error(`users answered ${JSON.stringify(reply)}`), `${this.app} unavailable`);
      return name;
    });
  }
}

/** DaprStore is the shipping Store on a Dapr state store whose component has the outbox configured. */
export class DaprStore implements Store {
  constructor(
    private readonly sidecar: Sidecar,
    /** name is the state store component (STATE_STORE). */
    private readonly name: string,
  ) {}

  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.sidecar.breaker(this.name).run(async () => {
      await this.sidecar.start();
      return fn();
    });
  }

  private get state() {
    return this.sidecar.client.state;
  }

  /** bulk reads keys in one call; a key's own error is a failure, not a missing key. */
  private async bulk(keys: string[]): Promise<Map<string, Versioned<unknown>>> {
    let items: BulkItem[];
    try {
      items = (await this.state.getBulk(this.name, keys)) as unknown as BulkItem[];
    } catch (err) {
      throw unavailable(err, `${this.name} unavailable`);
    }
    if (!Array.isArray(items)) throw unavailable(new Error(`bulk read answered ${JSON.stringify(items)}`), `${this.name} unavailable`);
    const out = new Map<string, Versioned<unknown>>();
    for (const it of items) {
      if (it.error) throw unavailable(new Error(`${it.key}: ${it.error}`), `${this.name} unavailable`);
      if (it.data === undefined || it.data === null || it.data === "") continue;
      let value = it.data;
      if (typeof value === "string") {
        try {
          value = JSON.parse(value);
        } catch {
          throw new Error(`decoding ${this.name}/${it.key}: not JSON`);
        }
      }
      out.set(it.key, { value, version: it.etag ?? "" });
    }
    return out;
  }

  private async read<T>(key: string): Promise<Versioned<T> | undefined> {
    return (await this.bulk([key])).get(key) as Versioned<T> | undefined;
  }

  /**
   * save writes value under key over version, or only if key does not exist
   * when version is undefined (first-write either way); a refused insert is
   * told from a failure by reading the key, once more if it is gone by then
   * (deleted meanwhile: a lease released).
   */
  private async save(key: string, value: unknown, version: string | undefined, ttlSeconds?: number): Promise<void> {
    const item: Record<string, unknown> = { key, value, options: { concurrency: StateConcurrencyEnum.CONCURRENCY_FIRST_WRITE } };
    if (version !== undefined) item.etag = version;
    if (ttlSeconds !== undefined) item.metadata = { ttlInSeconds: String(ttlSeconds) };
    for (let attempt = 0; ; attempt++) {
      const res = await this.state.save(this.name, [item as never]);
      if (!res.error) return;
      const e = daprError(res.error);
      if (e.status === 409) throw errorf("conflict", `${this.name} changed meanwhile`);
      if (version !== undefined) throw unavailable(res.error, `${this.name} unavailable`);
      const existing = await this.read(key);
      if (existing) throw errorf("conflict", `${this.name}: key exists`);
      if (attempt > 0) throw unavailable(res.error, `${this.name} unavailable`);
    }
  }

  async getShipment(id: string): Promise<Versioned<Shipment> | undefined> {
    return this.run(() => this.read<Shipment>("shipment:" + id));
  }

  async putShipment(s: Shipment, version: string | undefined, event?: ShipmentEvent): Promise<void> {
    const key = "shipment:" + s.id;
    await this.run(async () => {
      if (!event) return this.save(key, s, version);
      // lib/sidecar.SaveWithEvent: the write names the event's type and
      // carries the trace context (Dapr 1.14's outbox does not carry it
      // by itself); the projection is the event.
      const metadata: Record<string, string> = { type: event.type };
      const tp = traceparent();
      if (tp) metadata.traceparent = metadata.traceid = tp;
      const write: Record<string, unknown> = { key, value: s, metadata };
      if (version !== undefined) {
        write.etag = version;
        write.options = { concurrency: StateConcurrencyEnum.CONCURRENCY_FIRST_WRITE };
      }
      const projection = { key, value: event, contentType: "application/json", metadata: { "outbox.projection": "true" } };
      const ops = [
        { operation: "upsert", request: write },
        { operation: "upsert", request: projection },
      ] as unknown as OperationType[];
      try {
        await this.state.transaction(this.name, ops);
      } catch (err) {
        // The sidecar reports a failed ETag check inside a transaction only
        // as an internal error: a version that moved says conflict.
        if (version !== undefined) {
          const now = await this.read<Shipment>(key).catch(() => undefined);
          if (now && now.version !== version) throw errorf("conflict", `shipment ${s.id} changed meanwhile`);
        }
        throw unavailable(err, `${this.name} unavailable`);
      }
    });
  }

  async getLease(key: string): Promise<Versioned<LeaseRecord> | undefined> {
    return this.run(() => this.read<LeaseRecord>(key));
  }

  async putLease(key: string, r: LeaseRecord, version: string | undefined, ttlSeconds: number): Promise<void> {
    await this.run(() => this.save(key, r, version, ttlSeconds));
  }

  async deleteLease(key: string, version: string): Promise<void> {
    await this.run(() => this.remove(key, version));
  }

  /** remove deletes key at version; a key gone already is no error, one that changed is a conflict. */
  private async remove(key: string, version: string): Promise<void> {
    const res = await this.state.delete(this.name, key, {
      etag: version,
      concurrency: StateConcurrencyEnum.CONCURRENCY_FIRST_WRITE,
    } as never);
    if (!res.error) return;
    if (daprError(res.error).status !== 409) throw unavailable(res.error, `${this.name} unavailable`);
    // PostgreSQL answers a missing key like a changed one.
    if (await this.read(key)) throw errorf("conflict", `${this.name} changed meanwhile`);
  }

  async getDue(shardList: number[]): Promise<DueShard[]> {
    return this.run(async () => {
      const got = await this.bulk(shardList.map((n) => "due:" + n));
      return shardList.map((shard) => {
        const cur = got.get("due:" + shard) as Versioned<{ entries?: Record<string, string> }> | undefined;
        if (!cur) return { shard, entries: {} };
        return { shard, entries: cur.value.entries ?? {}, version: cur.version };
      });
    });
  }

  async putDue(shard: number, entries: Record<string, string>, version: string | undefined): Promise<void> {
    const key = "due:" + shard;
    if (Object.keys(entries).length > 0) return this.run(() => this.save(key, { entries }, version));
    if (version === undefined) return; // nothing to write
    // A slot left empty goes: a bucket per 2 s would otherwise leave keys behind forever.
    await this.run(() => this.remove(key, version));
  }
}
