/**
 * Shipping's typed configuration, read once from the environment at start-up
 * (lib/conf in Go) under the names the runner, the Dapr CLI and Kubernetes
 * set: nothing below main reads the environment. Every bad value is reported
 * at once, each naming its variable. Durations are written as Go writes them
 * (500ms, 3s, 1m30s), as everywhere else in the suite.
 */
import { parseDuration } from "./duration";

/** maxTimerMs is the longest delay a Node timer honours. */
const maxTimerMs = 2 ** 31 - 1;
import { parseSteps, type Step } from "./shipping";

/** Config is everything shipping reads from the environment. */
export interface Config {
  host: string;
  port: number;
  /** appApiToken, when set, is what the sidecar sends in dapr-api-token; other callers are refused. */
  appApiToken: string;
  daprHttpPort: number;
  daprGrpcPort: number;
  /** daprApiToken is sent to daprd on every call (dapr-api-token). */
  daprApiToken: string;
  stateStore: string;
  secretStore: string;
  labelKeySecret: string;
  /** usersApp is the app ID of users, asked for the recipient's name. */
  usersApp: string;
  steps: Step[];
  tickMs: number;
  shutdownGraceMs: number;
  shutdownDrainMs: number;
  /** sidecarTimeoutMs bounds each call to the sidecar. */
  sidecarTimeoutMs: number;
  /** leaseTtlMs is how long a shipment's lease lasts unless renewed (a holder that died blocks it that long). */
  leaseTtlMs: number;
  /** leaseWaitMs is how long an event waits for a shipment another holder has. */
  leaseWaitMs: number;
  /** eventsConcurrency is how many deliveries are handled at once (Gate). */
  eventsConcurrency: number;
  /** eventsWaitMs is how long a delivery waits for a turn before it is answered RETRY. */
  eventsWaitMs: number;
  breaker: { maxRequests: number; intervalMs: number; timeoutMs: number; consecutiveFailures: number };
}

type Kind = "string" | "port" | "duration" | "count" | "steps";

/** fields lists every variable: its name, its kind, its default and whether it is a secret. */
const fields: { env: string; kind: Kind; def?: string; secret?: boolean }[] = [
  { env: "APP_HOST", kind: "string", def: "127.0.0.1" },
  { env: "APP_PORT", kind: "port", def: "8086" },
  { env: "APP_API_TOKEN", kind: "string", def: "", secret: true },
  { env: "DAPR_HTTP_PORT", kind: "port", def: "3500" },
  { env: "DAPR_GRPC_PORT", kind: "port", def: "50001" },
  { env: "DAPR_API_TOKEN", kind: "string", def: "", secret: true },
  { env: "STATE_STORE", kind: "string", def: "shipping-store" },
  { env: "SECRET_STORE", kind: "string", def: "secrets" },
  { env: "LABEL_KEY_SECRET", kind: "string", def: "shipping-label-key" },
  { env: "USERS_APP_ID", kind: "string", def: "users" },
  { env: "SHIPPING_STEPS", kind: "steps", def: "shipped=3s,delivered=5s" },
  { env: "SHIPPING_TICK", kind: "duration", def: "500ms" },
  { env: "SHUTDOWN_GRACE", kind: "duration", def: "10s" },
  { env: "SHUTDOWN_DRAIN", kind: "duration", def: "0s" },
  { env: "SIDECAR_TIMEOUT", kind: "duration", def: "3s" },
  { env: "LEASE_TTL", kind: "duration", def: "12s" },
  { env: "LEASE_WAIT", kind: "duration", def: "4s" },
  { env: "EVENTS_CONCURRENCY", kind: "count", def: "2" },
  { env: "EVENTS_WAIT", kind: "duration", def: "4s" },
  { env: "SIDECAR_BREAKER_MAX_REQUESTS", kind: "count", def: "1" },
  { env: "SIDECAR_BREAKER_INTERVAL", kind: "duration", def: "30s" },
  { env: "SIDECAR_BREAKER_TIMEOUT", kind: "duration", def: "10s" },
  { env: "SIDECAR_BREAKER_FAILURES", kind: "count", def: "5" },
];

/** ConfigError lists every bad variable, one problem a line. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/**
 * parseConfig reads the configuration from env (process.env in main). It
 * throws a ConfigError that names every bad variable.
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];
  const v = new Map<string, string | number | Step[]>();
  for (const f of fields) {
    const raw = env[f.env] ?? f.def ?? "";
    const bad = (why: string) => problems.push(`${f.env}=${JSON.stringify(raw)}: ${why}`);
    switch (f.kind) {
      case "string":
        v.set(f.env, raw);
        break;
      case "port": {
        const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
        if (!(n >= 1 && n <= 65535)) bad("must be a port number (1-65535)");
        v.set(f.env, n);
        break;
      }
      case "count": {
        const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isSafeInteger(n)) bad("must be a whole number (0 or more)");
        v.set(f.env, n);
        break;
      }
      case "duration": {
        const ms = parseDuration(raw);
        if (ms === undefined) bad("must be a duration such as 500ms, 3s or 1m30s");
        else if (ms < 0) bad("must not be negative");
        // Each is a timer's delay: Node takes whole milliseconds up to
        // 2^31-1 and runs a longer one at once (a tick every 1 ms).
        else if (!Number.isInteger(ms)) bad("must be a whole number of milliseconds");
        else if (ms > maxTimerMs) bad("must be at most 596h (Node's timers end at 2^31-1 ms)");
        v.set(f.env, ms ?? NaN);
        break;
      }
      case "steps":
        try {
          v.set(f.env, parseSteps(raw));
        } catch (err) {
          bad((err as Error).message);
        }
        break;
    }
  }
  const num = (k: string) => v.get(k) as number;
  const rawOf = (k: string) => JSON.stringify(env[k] ?? fields.find((f) => f.env === k)?.def ?? "");
  const str = (k: string) => v.get(k) as string;
  for (const k of ["STATE_STORE", "SECRET_STORE", "LABEL_KEY_SECRET", "USERS_APP_ID"]) {
    if (str(k) === "") problems.push(`${k}="": must name a Dapr component or secret`);
  }
  for (const k of ["SHIPPING_TICK", "SHUTDOWN_GRACE", "SIDECAR_TIMEOUT", "LEASE_WAIT", "EVENTS_CONCURRENCY"]) {
    if (num(k) === 0) problems.push(`${k}=${rawOf(k)}: must be more than 0`);
  }
  // A step under a lease ends a quarter of the lease before its end and
  // starts with at least half of it left: a sidecar call must fit in the
  // quarter between (as orders' LEASE_TTL >= 4 x INVOKE_TIMEOUT).
  if (num("LEASE_TTL") < 4 * num("SIDECAR_TIMEOUT")) {
    problems.push(`LEASE_TTL=${rawOf("LEASE_TTL")}: must be at least 4 x SIDECAR_TIMEOUT (${rawOf("SIDECAR_TIMEOUT")})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host: str("APP_HOST"),
    port: num("APP_PORT"),
    appApiToken: str("APP_API_TOKEN"),
    daprHttpPort: num("DAPR_HTTP_PORT"),
    daprGrpcPort: num("DAPR_GRPC_PORT"),
    daprApiToken: str("DAPR_API_TOKEN"),
    stateStore: str("STATE_STORE"),
    secretStore: str("SECRET_STORE"),
    labelKeySecret: str("LABEL_KEY_SECRET"),
    usersApp: str("USERS_APP_ID"),
    steps: v.get("SHIPPING_STEPS") as Step[],
    tickMs: num("SHIPPING_TICK"),
    shutdownGraceMs: num("SHUTDOWN_GRACE"),
    shutdownDrainMs: num("SHUTDOWN_DRAIN"),
    sidecarTimeoutMs: num("SIDECAR_TIMEOUT"),
    leaseTtlMs: num("LEASE_TTL"),
    leaseWaitMs: num("LEASE_WAIT"),
    eventsConcurrency: num("EVENTS_CONCURRENCY"),
    eventsWaitMs: num("EVENTS_WAIT"),
    breaker: {
      maxRequests: num("SIDECAR_BREAKER_MAX_REQUESTS"),
      intervalMs: num("SIDECAR_BREAKER_INTERVAL"),
      timeoutMs: num("SIDECAR_BREAKER_TIMEOUT"),
      consecutiveFailures: num("SIDECAR_BREAKER_FAILURES"),
    },
  };
}

/** describeConfig renders the configuration's variables as NAME=value pairs for the start-up line, secrets masked. */
export function describeConfig(env: Record<string, string | undefined>): string {
  return fields
    .map((f) => {
      const val = env[f.env] ?? f.def ?? "";
      return `${f.env}=${f.secret && val !== "" ? "******" : val}`;
    })
    .join(" ");
}
