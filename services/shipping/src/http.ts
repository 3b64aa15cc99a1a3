/**
 * Shipping's HTTP side on node:http, with the behaviour lib/web, lib/events
 * and lib/metrics give the Go services: the routes in one table (routes),
 * the app token check (only the sidecar, which sends APP_API_TOKEN in
 * dapr-api-token, gets past it, but for the probes and /metrics), trace
 * context in, panic recovery, RED metrics per route template, every error in
 * the suite's error model (unknown routes 404, known routes with the wrong
 * method 405 with Allow), the subscription endpoint's SUCCESS/RETRY/DROP
 * replies, and a server that shuts down gracefully (serve).
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { ApiError, describe, errorf, status as statusOf_, type FieldError } from "./apierr";
import { decodeEnvelope, statusOf, type CloudEvent, type Status } from "./events";
import type { Gate } from "./gate";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import type { ShipmentView } from "./shipping";
import { withTrace } from "./tracecontext";

/** Service is what the routes need from the domain. */
export interface Service {
  handle(e: CloudEvent): Promise<void>;
  get(orderId: string, owner: string | undefined): Promise<ShipmentView>;
}

/** RoutesOptions are what the routes are built from. */
export interface RoutesOptions {
  svc: Service;
  metrics: Metrics;
  log: Logger;
  /** ready throws while the service is not ready (the sidecar, the label key). */
  ready: () => Promise<void>;
  /** appApiToken, when set, is the token the sidecar sends; other callers are refused (401). */
  appApiToken: string;
  /** draining reports whether a shutdown's drain has begun: readiness then fails. */
  draining: () => boolean;
  /** events bounds the deliveries handled at once; none: no bound. */
  events?: Gate;
}

/** MaxBodyBytes bounds every request body read (web.MaxBodyBytes). */
export const maxBodyBytes = 1 << 20;

/** OwnerHeader carries the user a customer route acts for, set by the gateway from the caller's token. */
export const ownerHeader = "x-user-id";

/** probePaths stay open without the app token: the runner, Kubernetes and Prometheus call them directly. */
const probePaths = new Set(["/healthz", "/readyz", "/metrics"]);

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>;

interface Route {
  template: string;
  pattern: RegExp;
  methods: Record<string, Handler>;
}

/**
 * routes returns the service's request handler with every route: the probes,
 * /metrics, GET /shipments/{order_id} for the owner in X-User-ID, and
 * /events/orders, where the declarative subscription delivers.
 */
export function routes(o: RoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { log, metrics } = o;
  const table: Route[] = [
    { template: "/healthz", pattern: /^\/healthz$/, methods: { GET: async (_q, res) => respond(res, 200, { status: "ok" }) } },
    { template: "/readyz", pattern: /^\/readyz$/, methods: { GET: async (_q, res) => ready(o, res) } },
    {
      template: "/metrics",
      pattern: /^\/metrics$/,
      methods: {
        GET: async (_q, res) => {
          const m = await metrics.text();
          res.writeHead(200, { "Content-Type": m.contentType });
          res.end(m.body);
        },
      },
    },
    {
      template: "/shipments/{order_id}",
      pattern: /^\/shipments\/([^/]+)$/,
      methods: {
        GET: async (req, res, [orderId = ""]) => {
          const owners = req.headersDistinct[ownerHeader];
          const owner = owners?.length === 1 ? owners[0] : undefined;
          respond(res, 200, await o.svc.get(orderId, owner));
        },
      },
    },
    { template: "/events/orders", pattern: /^\/events\/orders$/, methods: { POST: (req, res) => deliver(o, req, res) } },
  ];
  const check = sidecarOnly(o.appApiToken);

  return (req, res) => {
    const start = performance.now();
    let route = "unmatched";
    const path = pathOf(req.url ?? "/");
    res.on("finish", () => {
      if (route !== "") metrics.observeRequest(route, req.method ?? "", res.statusCode, (performance.now() - start) / 1000);
    });
    res.on("close", () => {
      // The client went away before the answer: nginx's 499, never seen by it.
      if (!res.writableFinished && route !== "") metrics.observeRequest(route, req.method ?? "", 499, (performance.now() - start) / 1000);
      route = "";
    });
    withTrace(req.headers.traceparent, async () => {
      if (!probePaths.has(path) && !check(req)) {
        // Outside the router, as web.SidecarOnly: not counted per route.
        route = "";
        respondError(res, log, errorf("unauthenticated", "requests must come through the Dapr sidecar"));
        return;
      }
      const match = table.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
      try {
        if (!match) throw errorf("not_found", "no such route");
        const handler = match.r.methods[req.method ?? ""];
        if (!handler) {
          res.setHeader("Allow", Object.keys(match.r.methods).join(", "));
          throw errorf("method_not_allowed", "method not allowed");
        }
        route = match.r.template;
        await handler(req, res, match.m!.slice(1));
      } catch (err) {
        respondError(res, log, err, req);
      }
    }).catch((err) => {
      log.error("request failed outside its handler", { err: describe(err) });
      res.destroy();
    });
  };
}

/**
 * pathOf is the request's path, percent-decoded, without its query. It is
 * never cleaned: a path with dot segments or double slashes matches no route
 * rather than being redirected (web.Router's SkipClean).
 */
function pathOf(url: string): string {
  const raw = url.split("?")[0] ?? "/";
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** sidecarOnly returns the app token check (web.SidecarOnly): an empty token admits everything. */
function sidecarOnly(token: string): (req: IncomingMessage) => boolean {
  if (token === "") return () => true;
  const want = Buffer.from(token);
  return (req) => {
    const got = Buffer.from(String(req.headers["dapr-api-token"] ?? ""));
    return got.length === want.length && timingSafeEqual(got, want);
  };
}

/** respond writes v as JSON with the given status. */
export function respond(res: ServerResponse, status: number, v: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(v) + "\n");
}

/** ErrorBody is the JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; fields?: FieldError[] };
}

/**
 * respondError writes err in the error model. An error that is not an
 * ApiError is logged and shown as a generic internal error; one with a cause
 * is logged as a warning. A client that went away gets nothing.
 */
export function respondError(res: ServerResponse, log: Logger, err: unknown, req?: IncomingMessage): void {
  if (res.destroyed || res.headersSent) {
    if (!res.headersSent) log.debug("client went away", { method: req?.method, path: req?.url, err: describe(err) });
    else res.destroy();
    return;
  }
  let e: ApiError;
  if (err instanceof ApiError) {
    e = err;
    if (e.cause !== undefined) log.warn("request failed", { method: req?.method, path: req?.url, code: e.code, err: e.detail() });
  } else {
    log.error("internal error", { method: req?.method, path: req?.url, err: describe(err) });
    e = new ApiError("internal", "internal error");
  }
  if (e.retryAfterSeconds && e.retryAfterSeconds > 0) res.setHeader("Retry-After", String(Math.ceil(e.retryAfterSeconds)));
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  if (e.fields?.length) body.error.fields = e.fields;
  respond(res, statusOf_(e.code), body);
}

async function ready(o: RoutesOptions, res: ServerResponse): Promise<void> {
  if (o.draining()) return respond(res, 503, { status: "shutting down" });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      o.ready(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("readiness check timed out after 2s")), 2000))),
    ]);
    respond(res, 200, { status: "ready" });
  } catch (err) {
    // The reason names addresses and errors: logged, not shown.
    o.log.warn("not ready", { err: describe(err) });
    respond(res, 503, { status: "not ready" });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * invoked reports whether a request came by service invocation from another
 * app rather than as a delivery from the app's own sidecar: daprd adds
 * dapr-caller-app-id and dapr-callee-app-id to every invocation and never to
 * a delivery (lib/events.Invoked).
 */
function invoked(req: IncomingMessage): boolean {
  return "dapr-caller-app-id" in req.headers || "dapr-callee-app-id" in req.headers;
}

/**
 * deliver is the subscription endpoint (lib/events.Handler): SUCCESS when the
 * domain took the event, DROP for an undecodable or oversized envelope or an
 * event the domain can never take, RETRY for anything else (a body not read
 * to its end too). Invocations of the route are refused (403): they would
 * skip the pub/sub scopes, so anyone able to invoke shipping could forge
 * events.
 */
async function deliver(o: RoutesOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (invoked(req)) {
    o.log.warn("subscription route invoked by an app, refused", { caller: req.headers["dapr-caller-app-id"], path: req.url });
    throw errorf("forbidden", "this route takes pub/sub deliveries only");
  }
  let status: Status = "SUCCESS";
  const body = await readBody(req).catch((err: unknown) => err as Error);
  if (body instanceof Error && !(body instanceof TooLarge)) {
    // The connection, not the event: it may go through next time.
    o.log.warn("event not read", { err: describe(body) });
    status = "RETRY";
  } else {
    const e = body instanceof Buffer ? decodeEnvelope(body) : undefined;
    if (!e) {
      o.log.warn("undecodable event dropped", { bytes: body instanceof Buffer ? body.length : maxBodyBytes });
      status = "DROP";
    } else {
      try {
        const handle = () => o.svc.handle(e);
        await withTrace(req.headers.traceparent ?? e.traceparent, () => (o.events ? o.events.run(handle) : handle()));
      } catch (err) {
        status = statusOf(err);
        o.log.warn("event not processed", { event_id: e.id, topic: e.topic, type: e.type, status, err: describe(err) });
      }
    }
  }
  respond(res, 200, { status });
}

class TooLarge extends Error {}

/** readBody reads a request's body up to maxBodyBytes; more is a TooLarge error. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > maxBodyBytes) {
        done = true;
        reject(new TooLarge(`request body exceeds ${maxBodyBytes} bytes`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => !done && ((done = true), resolve(Buffer.concat(chunks))));
    req.on("error", (err) => !done && ((done = true), reject(err)));
    req.on("aborted", () => !done && ((done = true), reject(new Error("request aborted"))));
  });
}

/** ServeOptions say where to listen and how to shut down. */
export interface ServeOptions {
  host: string;
  port: number;
  /** drainMs: once shutdown starts, how long to go on serving while readiness fails. */
  drainMs: number;
  /** graceMs: how long in-flight requests get to finish once the listener is closed. */
  graceMs: number;
  log: Logger;
  /** stop starts the shutdown when aborted (SIGTERM, SIGINT). */
  stop: AbortSignal;
  /** onDrain is called when the drain begins (readiness fails from then on). */
  onDrain: () => void;
  /** onClose is called when the listener closes, and is awaited within the grace (the ticker stops). */
  onClose: () => Promise<void>;
  /** listening is told the bound port (APP_PORT 0 picks one, for tests). */
  listening?: (port: number) => void;
}

/**
 * serve runs the server until stop is aborted, then shuts down as
 * web.ServeDrained does: readiness fails at once and the server goes on
 * serving for drainMs; then it stops accepting, and in-flight requests (and
 * onClose) get up to graceMs to finish. It throws when the server cannot
 * listen or the grace runs out.
 */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, o: ServeOptions): Promise<void> {
  const server: Server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 120_000 }, handler);
  server.timeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`serving on ${o.host}:${o.port}: ${err.message}`)));
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  o.log.info("listening", { addr: `${o.host}:${port}` });
  o.listening?.(port);
  const failed = new Promise<never>((_, reject) => server.on("error", (err) => reject(new Error(`serving: ${err.message}`))));
  const stopped = new Promise<void>((resolve) => (o.stop.aborted ? resolve() : o.stop.addEventListener("abort", () => resolve(), { once: true })));
  await Promise.race([stopped, failed]);
  if (o.drainMs > 0) {
    o.onDrain();
    o.log.info("draining: not ready, still serving", { drain: `${o.drainMs}ms` });
    await Promise.race([new Promise((r) => setTimeout(r, o.drainMs)), failed]);
  } else {
    o.onDrain();
  }
  o.log.info("shutting down", { grace: `${o.graceMs}ms` });
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Connections that finish their request while closing are idle: close them too.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  try {
    const graceOver = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), o.graceMs)));
    const done = await Promise.race([Promise.all([closed, o.onClose()]).then(() => "done" as const), graceOver]);
    if (done === "timeout") {
      server.closeAllConnections();
      throw new Error(`graceful shutdown: requests still running after ${o.graceMs}ms`);
    }
  } finally {
    clearInterval(sweep);
    clearTimeout(timer);
  }
}
