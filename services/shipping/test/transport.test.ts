/**
 * Shipping's transport against the SDK's own HTTP client: the SDK's state,
 * secret and invocation APIs run over src/dapr.ts's Transport in place of
 * HTTPClient (which loads the whole SDK), so the two must put the same
 * requests on the wire and read the same replies. Both send to one fake
 * daprd; an SDK upgrade that changes either side fails here.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { after, before, describe, it } from "node:test";
import { CommunicationProtocolEnum, DaprClient, HttpMethod, LogLevel, StateConcurrencyEnum } from "@dapr/dapr";
import { parseConfig } from "../src/config";
import { SidecarError, Sidecar } from "../src/dapr";
import { discard } from "../src/log";

interface Request {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let reply = { status: 200, body: "" };
const seen: Request[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(reply.status, { "Content-Type": "application/json" });
    res.end(reply.body);
  });
});

let sdk: DaprClient;
let ours: Sidecar;

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  process.env.DAPR_API_TOKEN = "token";
  sdk = new DaprClient({ daprHost: "127.0.0.1", daprPort: String(port), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: { level: LogLevel.Error } });
  // No wait for a sidecar's health: the fake has none.
  (sdk.daprClient as unknown as { setIsInitialized(v: boolean): void }).setIsInitialized(true);
  ours = new Sidecar({ httpPort: port, apiToken: "token", timeoutMs: 1000, log: discard, breaker: parseConfig({}).breaker });
});

after(async () => {
  await ours.stop();
  await sdk.stop();
  server.close();
});

type Apis = Pick<Sidecar, "state" | "secrets" | "invoker">;

/** wire runs call on both clients and returns what each sent, as far as a sidecar reads it. */
async function wire(call: (c: Apis) => Promise<unknown>): Promise<[unknown, unknown]> {
  const out: unknown[] = [];
  const theirs = { state: sdk.state, secrets: sdk.secret, invoker: sdk.invoker } as unknown as Apis;
  for (const c of [theirs, ours]) {
    seen.length = 0;
    await call(c).catch(() => {});
    assert.equal(seen.length, 1);
    const r = seen[0]!;
    out.push({
      method: r.method,
      // node-fetch sends an empty query's "?", node:http drops it: the same to daprd.
      url: r.url.replace(/\?$/, ""),
      contentType: r.headers["content-type"],
      token: r.headers["dapr-api-token"],
      ifMatch: r.headers["if-match"],
      userAgent: r.headers["user-agent"],
      body: r.body,
    });
  }
  return out as [unknown, unknown];
}

describe("transport: the same requests as the SDK's HTTP client", () => {
  const calls: [string, (c: Apis) => Promise<unknown>][] = [
    ["state save, first-write with an ETag and a TTL", (c) => c.state.save("s", [{ key: "k", value: { a: 1 }, etag: "3", options: { concurrency: StateConcurrencyEnum.CONCURRENCY_FIRST_WRITE }, metadata: { ttlInSeconds: "5" } } as never])],
    ["state bulk read", (c) => c.state.getBulk("s", ["a", "b"])],
    ["state delete at a version", (c) => c.state.delete("s", "k", { etag: "7", concurrency: StateConcurrencyEnum.CONCURRENCY_FIRST_WRITE } as never)],
    ["state transaction", (c) => c.state.transaction("s", [{ operation: "upsert", request: { key: "k", value: { a: 1 }, metadata: { type: "x" } } }] as never)],
    ["secret", (c) => c.secrets.get("secrets", "name")],
    ["invoke GET", (c) => c.invoker.invoke("users", "users/usr_1", HttpMethod.GET)],
    ["invoke with a JSON body", (c) => c.invoker.invoke("users", "x", HttpMethod.POST, { a: 1 })],
    ["invoke with text", (c) => c.invoker.invoke("users", "x", HttpMethod.POST, "hi")],
    ["invoke with bytes", (c) => c.invoker.invoke("users", "x", HttpMethod.POST, Buffer.from("hi"))],
    ["invoke with the caller's Content-Type", (c) => c.invoker.invoke("users", "x", HttpMethod.POST, { a: 1 }, { headers: { "Content-Type": "text/plain" } })],
    ["invoke with an empty body", (c) => c.invoker.invoke("users", "x", HttpMethod.POST, "")],
  ];
  for (const [name, call] of calls) {
    it(name, async () => {
      reply = { status: 204, body: "" };
      const [theirs, mine] = await wire(call);
      assert.deepEqual(mine, theirs);
    });
  }
});

describe("transport: the same reading of replies as the SDK's HTTP client", () => {
  const replies = [
    { status: 204, body: "" },
    { status: 200, body: "plain text" },
    { status: 200, body: '{"name":"Ada"}' },
    { status: 200, body: "null" },
  ];
  for (const r of replies) {
    it(`${r.status} ${JSON.stringify(r.body)}`, async () => {
      reply = r;
      const theirs = await sdk.invoker.invoke("users", "x", HttpMethod.GET);
      const mine = await ours.invoker.invoke("users", "x", HttpMethod.GET);
      assert.deepEqual(mine, theirs);
    });
  }

  it("a status outside 2xx-3xx fails, with the status and body the SDK's error carries", async () => {
    reply = { status: 404, body: '{"errorCode":"ERR_DIRECT_INVOKE"}' };
    const theirs = await sdk.invoker.invoke("users", "x", HttpMethod.GET).then(
      () => assert.fail("the SDK did not fail"),
      (err: Error) => JSON.parse(err.message) as { status: number; error_msg: string },
    );
    await assert.rejects(ours.invoker.invoke("users", "x", HttpMethod.GET), (err: unknown) => {
      assert.ok(err instanceof SidecarError);
      assert.equal(err.status, theirs.status);
      assert.equal(err.body, theirs.error_msg);
      return true;
    });
  });
});
