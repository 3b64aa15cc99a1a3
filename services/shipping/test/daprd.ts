/**
 * Starts a real daprd (1.14) for the tests, as lib/internal/daprdtest does
 * for the Go ones: on loopback, on free ports, with an app ID and an API
 * token of its own, next to a private redis-server (no persistence) that
 * holds its state store (state.redis with the outbox metadata of the suite's
 * shipping-store), its pub/sub (pubsub.redis) and a local file secret store.
 * A small HTTP server stands for the app: it receives what the shipments
 * topic publishes. daprd comes from $DAPRD or the repository's .bin/daprd
 * (make tools); without it, or without redis-server, the tests that need it
 * are skipped, unless SHIPPING_INTEGRATION=1 asks for them.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as netServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** daprdPath is $DAPRD or the repository's .bin/daprd. */
export function daprdPath(): string {
  return process.env.DAPRD || resolve(__dirname, "..", "..", "..", "..", ".bin", "daprd");
}

/**
 * missing says why the real-daprd tests cannot run here, or undefined when
 * they can. With SHIPPING_INTEGRATION=1 a missing tool is a failure, not a
 * skip: the caller throws the reason.
 */
export function missing(): string | undefined {
  const bin = daprdPath();
  if (!existsSync(bin)) return `no daprd at ${bin} (make tools builds it; or set DAPRD)`;
  if (spawnSync("redis-server", ["--version"]).error) return "no redis-server on PATH (apt-get install redis-server)";
  return undefined;
}

/** freePort returns a port nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = netServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => res(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Delivered is a CloudEvent the app got from the shipments topic. */
export interface Delivered {
  id: string;
  type: string;
  datacontenttype?: string;
  traceparent?: string;
  data: unknown;
  [k: string]: unknown;
}

/** Daprd is a started daprd, its redis-server and the app that receives the shipments topic. */
export interface Daprd {
  appId: string;
  token: string;
  httpPort: number;
  secret: string;
  /** delivered lists what the app received, in order. */
  delivered: Delivered[];
  stop(): Promise<void>;
}

async function until(ms: number, cond: () => Promise<boolean>): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    if (await cond().catch(() => false)) return true;
  }
  return false;
}

/** startDaprd starts redis-server, the app and daprd, and waits until daprd is healthy. */
export async function startDaprd(): Promise<Daprd> {
  const dir = mkdtempSync(join(tmpdir(), "shipping-daprd-"));
  const resources = join(dir, "resources");
  mkdirSync(resources);
  const procs: ChildProcess[] = [];
  const out: string[] = [];
  const appId = `shipping-test-${process.pid}-${randomBytes(3).toString("hex")}`;
  const token = randomBytes(16).toString("hex");
  const secret = randomBytes(16).toString("hex");
  const delivered: Delivered[] = [];
  let app: Server | undefined;
  const stop = async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null) p.kill("SIGKILL");
    }
    await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", () => procs.forEach((p) => p.exitCode === null && p.kill("SIGKILL")));
  try {
    const redisPort = await freePort();
    const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    procs.push(redis);
    // The app: receives the shipments topic's deliveries.
    const appPort = await freePort();
    app = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.method === "POST" && req.url === "/events/shipments") {
          delivered.push(JSON.parse(Buffer.concat(chunks).toString()) as Delivered);
          res.writeHead(200, { "Content-Type": "application/json" });
          res.end('{"status":"SUCCESS"}');
          return;
        }
        res.writeHead(404);
        res.end();
      });
    });
    await new Promise<void>((r) => app!.listen(appPort, "127.0.0.1", () => r()));
    const redisHost = `127.0.0.1:${redisPort}`;
    writeFileSync(join(dir, "secrets.json"), JSON.stringify({ "shipping-label-key": secret }));
    writeFileSync(
      join(resources, "components.yaml"),
      `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: shipping-store
spec:
  type: state.redis
  version: v1
  metadata:
    - {name: redisHost, value: "${redisHost}"}
    - {name: keyPrefix, value: appid}
    - {name: outboxPublishPubsub, value: events}
    - {name: outboxPublishTopic, value: shipments}
    - {name: outboxDiscardWhenMissingState, value: "true"}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: events
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {name: redisHost, value: "${redisHost}"}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: secrets
spec:
  type: secretstores.local.file
  version: v1
  metadata:
    - {name: secretsFile, value: "${join(dir, "secrets.json")}"}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: shipments-probe
spec:
  pubsubname: events
  topic: shipments
  routes:
    default: /events/shipments
`,
    );
    const httpPort = await freePort();
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const args = [
      "--app-id", appId, "--dapr-listen-addresses", "127.0.0.1",
      "--dapr-http-port", String(httpPort), "--dapr-grpc-port", String(ports[0]),
      "--dapr-internal-grpc-port", String(ports[1]), "--dapr-internal-grpc-listen-address", "127.0.0.1",
      "--metrics-port", String(ports[2]), "--metrics-listen-address", "127.0.0.1",
      "--resources-path", resources, "--log-level", "warn",
      "--app-port", String(appPort), "--app-channel-address", "127.0.0.1",
    ];
    const daprd = spawn(daprdPath(), args, {
      env: { ...process.env, DAPR_API_TOKEN: token, DAPR_HOST_IP: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(daprd);
    daprd.stdout!.on("data", (b: Buffer) => out.push(b.toString()));
    daprd.stderr!.on("data", (b: Buffer) => out.push(b.toString()));
    const healthy = await until(30_000, async () => {
      const r = await fetch(`http://127.0.0.1:${httpPort}/v1.0/healthz`);
      return r.ok;
    });
    if (!healthy) throw new Error(`daprd ${appId} not healthy:\n${out.join("")}`);
    return { appId, token, httpPort, secret, delivered, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
