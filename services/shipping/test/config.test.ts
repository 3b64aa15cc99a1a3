/**
 * The configuration: the contract's defaults, Go's duration syntax, and
 * every bad value reported at once, by name.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, describeConfig, parseConfig } from "../src/config";
import { parseDuration } from "../src/duration";
import { parseSteps } from "../src/shipping";

describe("config", () => {
  it("has the contract's defaults", () => {
    const c = parseConfig({});
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.port, 8086);
    assert.equal(c.daprHttpPort, 3500);
    assert.equal(c.daprGrpcPort, 50001);
    assert.equal(c.stateStore, "shipping-store");
    assert.equal(c.secretStore, "secrets");
    assert.equal(c.labelKeySecret, "shipping-label-key");
    assert.deepEqual(c.steps, [
      { status: "shipped", delayMs: 3000 },
      { status: "delivered", delayMs: 5000 },
    ]);
    assert.equal(c.tickMs, 500);
    assert.equal(c.shutdownGraceMs, 10_000);
    assert.equal(c.shutdownDrainMs, 0);
    assert.equal(c.eventsConcurrency, 2);
    assert.equal(c.eventsWaitMs, 4000);
  });

  it("lists every bad value, by variable", () => {
    try {
      parseConfig({ APP_PORT: "http", SHIPPING_STEPS: "shipped=soon", SHIPPING_TICK: "0s", SHUTDOWN_GRACE: "-1s", LEASE_TTL: "1s", EVENTS_CONCURRENCY: "0", EVENTS_WAIT: "soon" });
      assert.fail("no error");
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const vars = err.problems.map((p) => p.split("=")[0]);
      assert.deepEqual(vars, ["APP_PORT", "SHIPPING_STEPS", "SHUTDOWN_GRACE", "EVENTS_WAIT", "SHIPPING_TICK", "EVENTS_CONCURRENCY", "LEASE_TTL"]);
    }
  });

  it("refuses durations Node's timers cannot honour", () => {
    try {
      parseConfig({ SHIPPING_TICK: "9999999h", SHUTDOWN_GRACE: "999999h", SIDECAR_TIMEOUT: "1ns" });
      assert.fail("no error");
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.split("=")[0]), ["SHIPPING_TICK", "SHUTDOWN_GRACE", "SIDECAR_TIMEOUT"]);
    }
    // Steps are dates, not timers: a month is fine.
    assert.equal(parseConfig({ SHIPPING_STEPS: "shipped=720h" }).steps[0]!.delayMs, 720 * 3_600_000);
  });

  it("masks secrets in the start-up line", () => {
    const line = describeConfig({ APP_API_TOKEN: "a", DAPR_API_TOKEN: "b" });
    assert.match(line, /APP_API_TOKEN=\*\*\*\*\*\* /);
    assert.match(line, /DAPR_API_TOKEN=\*\*\*\*\*\* /);
    assert.doesNotMatch(line, /=a |=b /);
  });

  it("reads durations as Go does", () => {
    assert.equal(parseDuration("300ms"), 300);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("1.5h"), 5_400_000);
    assert.equal(parseDuration("0"), 0);
    for (const bad of ["", "3", "s", "1 s", "1d", "1ss"]) assert.equal(parseDuration(bad), undefined, bad);
  });

  it("reads SHIPPING_STEPS: status=duration in order, each once", () => {
    assert.deepEqual(parseSteps("shipped=300ms, delivered=1s"), [
      { status: "shipped", delayMs: 300 },
      { status: "delivered", delayMs: 1000 },
    ]);
    assert.deepEqual(parseSteps("delivered=2h"), [{ status: "delivered", delayMs: 7_200_000 }]);
    for (const bad of ["", "shipped", "shipped=1s,shipped=2s", "delivered=1s,shipped=1s", "lost=1s", "shipped=-1s", "shipped=1s=2s"]) {
      assert.throws(() => parseSteps(bad), bad);
    }
  });
});
