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
 * The SDK's state, secret and invocation APIs (HTTPClientState,
 * HTTPClientSecret, HTTPClientInvoker: what DaprClient's HTTP client is made
 * of) run over a Transport of shipping's own in place of the SDK's
 * HTTPClient, for two reasons. Memory: HTTPClient imports the package's
 * index, and with it gRPC, Express, the actor and workflow clients, none of
 * which shipping uses (`require` of the package: 83 MB resident, of this
 * module: 48 MB, of nothing: 39 MB; shipping idled at 93 MB before, 57
 * after; docs/performance.md). And the call path: the transport sends with
 * node:http (one keep-alive agent per sidecar), not HTTPClient's
 * node-fetch, whose streams and header objects took a fifth of shipping's
 * CPU per order, and adds what the SDK's methods cannot take: the API token
 * (DAPR_API_TOKEN, from the configuration), the work's traceparent, a
 * timeout bounded by the work's deadline (a lease's step) and the sidecar
 * call metrics (op, target, outcome, duration).
 *
 * These are deep imports, not the package's public API: they hold because
 * @dapr/dapr is pinned exactly and has no exports map; tsc fails the build
 * if a path moves, and test/transport.test.ts if HTTPClient and Transport
 * put different requests on the wire.
 */
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { HttpMethod } from "@dapr/dapr/enum/HttpMethod.enum";
import { StateConcurrencyEnum } from "@dapr/dapr/enum/StateConcurrency.enum";
import type HTTPClient from "@dapr/dapr/implementation/Client/HTTPClient/HTTPClient";
import HTTPClientInvoker from "@dapr/dapr/implementation/Client/HTTPClient/invoker";
import HTTPClientSecret from "@dapr/dapr/implementation/Client/HTTPClient/secret";
import HTTPClientState from "@dapr/dapr/implementation/Client/HTTPClient/state";
import { LogLevel } from "@dapr/dapr/types/logger/LogLevel";
import type { LoggerService } from "@dapr/dapr/types/logger/LoggerService";
import type { OperationType } from "@dapr/dapr/types/Operation.type";
import { serializeHttp } from "@dapr/dapr/utils/Serializer.util";
import { SDK_VERSION } from "@dapr/dapr/version";
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
  /** apiToken is sent in dapr-api-token on every call (DAPR_API_TOKEN); empty: none. */
  apiToken: string;
  /** timeoutMs bounds each call (less when the work's deadline is nearer). */
  timeoutMs: number;
  log: Logger;
  observer?: Observer;
  /** breaker is the settings of every component's breaker; its name is the component's. */
  breaker: Omit<BreakerSettings, "name">;
  gauge?: StateGauge;
}

/** Reply is a sidecar's whole reply. */
interface Reply {
  status: number;
  text: string;
}

/**
 * send makes one HTTP call to the sidecar and reads its whole reply; it
 * fails after timeoutMs (the connection is dropped) or on a network error.
 */
function send(url: string, agent: Agent, method: string, headers: OutgoingHttpHeaders, body: string | Buffer | undefined, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
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

/** SidecarError is a reply of daprd outside 2xx-3xx: its status and body. */
export class SidecarError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: daprd answered ${status}: ${body.slice(0, 300)}`);
    this.name = "SidecarError";
  }
}

/** Params is what the SDK's API classes hand HTTPClient.execute. */
interface Params {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * Transport keeps HTTPClient.execute's contract for the SDK's API classes
 * (a path under the API version, the method GET without a body and POST
 * with one, a body serialized by the SDK's serializer after its
 * Content-Type, the reply parsed as JSON when it is, a status outside
 * 2xx-3xx thrown; redirects are not followed) over node:http, with the
 * token, trace context, deadline and metrics described at the top.
 */
class Transport {
  /** options is what the API classes read of their client: the logger settings. */
  readonly options: { daprApiToken: string; logger: { level: LogLevel; service: LoggerService } };
  private readonly origin: string;
  private readonly agent = new Agent({ keepAlive: true, keepAliveMsecs: 30_000 });

  constructor(private readonly o: SidecarOptions) {
    this.origin = `http://127.0.0.1:${o.httpPort}`;
    this.options = { daprApiToken: o.apiToken, logger: { level: LogLevel.Info, service: sdkLogger(o.log) } };
  }

  /** execute calls path under /v1.0, as HTTPClient.execute. */
  async execute(path: string, params: Params = {}): Promise<unknown> {
    return this.executeWithApiVersion("v1.0", path, params);
  }

  /** executeWithApiVersion calls path under apiVersion (the state query API is v1.0-alpha1). */
  async executeWithApiVersion(apiVersion: string, path: string, params: Params = {}): Promise<unknown> {
    const method = params.method?.toUpperCase() ?? (params.body ? "POST" : "GET");
    const headers: OutgoingHttpHeaders = { ...params.headers, "user-agent": `dapr-sdk-js/v${SDK_VERSION} http/1` };
    if (this.o.apiToken) headers["dapr-api-token"] = this.o.apiToken;
    const tp = traceparent();
    if (tp) headers.traceparent = tp;
    let body: string | Buffer | undefined;
    if (params.body) {
      const { serializedData, contentType } = serializeHttp(params.body, params.headers?.["Content-Type"]);
      headers["Content-Type"] = contentType;
      body = serializedData as string | Buffer; // JSON or text, or the caller's bytes as they are
    }
    const dl = deadline();
    const timeout = Math.min(this.o.timeoutMs, dl === undefined ? Infinity : dl - Date.now());
    const { op, target } = operation(method, path);
    const start = performance.now();
    const observe = (outcome: string) => {
      if (this.o.observer && op) this.o.observer.observeCall(op, target, outcome, (performance.now() - start) / 1000);
    };
    if (!(timeout > 0)) {
      observe("unavailable");
      throw new Error("deadline passed before the call to the sidecar");
    }
    let res: Reply;
    try {
      res = await send(`${this.origin}/${apiVersion}${path}`, this.agent, method, headers, body, timeout);
    } catch (err) {
      observe("unavailable");
      throw err;
    }
    observe(res.status < 300 ? "ok" : res.status < 500 ? "client_error" : "server_error");
    if (res.status < 200 || res.status > 399) throw new SidecarError(res.status, res.text, `${method} ${path.split("?")[0]}`);
    if (res.text === "") return "";
    try {
      return JSON.parse(res.text);
    } catch {
      return res.text;
    }
  }

  /** close drops the idle connections. */
  close(): void {
    this.agent.destroy();
  }
}

/** operation names a call to daprd's HTTP API (a path under /v1.0) as lib/sidecar does: state_get, state_save... and its component. */
export function operation(method: string, path: string): { op?: string; target: string } {
  const p = path.split("?")[0]!.split("/");
  // ["", api, component, ...]
  const [, api, target = "", rest] = p;
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

/** Sidecar is shipping's connection to its daprd: the SDK's state, secret and invocation APIs, and a breaker per component. */
export class Sidecar {
  readonly state: HTTPClientState;
  readonly secrets: HTTPClientSecret;
  readonly invoker: HTTPClientInvoker;
  private readonly transport: Transport;
  private readonly breakers = new Map<string, Breaker>();

  constructor(private readonly o: SidecarOptions) {
    this.transport = new Transport(o);
    // The API classes take an HTTPClient and use only its execute and options.
    const client = this.transport as unknown as HTTPClient;
    this.state = new HTTPClientState(client);
    this.secrets = new HTTPClientSecret(client);
    this.invoker = new HTTPClientInvoker(client);
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

  /** healthy resolves when daprd answers /v1.0/healthz/outbound (its components are ready), and throws otherwise. */
  async healthy(): Promise<void> {
    await this.transport.execute("/healthz/outbound", { method: "GET" });
  }

  /** secret reads one value of a secret store: the key of the same name in secret name. */
  async secret(store: string, name: string): Promise<string> {
    return this.breaker(store).run(async () => {
      let vals: unknown;
      try {
        vals = await this.secrets.get(store, name);
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

  /** stop closes the connections to the sidecar. */
  async stop(): Promise<void> {
    this.transport.close();
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

/** statusOf is the status daprd answered with (SidecarError), undefined for a failure to reach it. */
function statusOf(err: unknown): number | undefined {
  return err instanceof SidecarError ? err.status : undefined;
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
      let reply: unknown;
      try {
        reply = await this.sidecar.invoker.invoke(this.app, "users/" + encodeURIComponent(userId), HttpMethod.GET);
      } catch (err) {
        if (statusOf(err) === 404) throw errorf("not_found", `no account ${userId}`);
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
    return this.sidecar.breaker(this.name).run(fn);
  }

  private get state() {
    return this.sidecar.state;
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
      if (statusOf(res.error) === 409) throw errorf("conflict", `${this.name} changed meanwhile`);
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
    if (statusOf(res.error) !== 409) throw unavailable(res.error, `${this.name} unavailable`);
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
