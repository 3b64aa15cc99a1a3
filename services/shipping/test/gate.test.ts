/**
 * The gate that bounds deliveries in hand: never more than its limit at
 * once, turns in arrival order, and a delivery that waits too long is
 * turned away as unavailable (RETRY) without taking a turn.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { codeOf } from "../src/apierr";
import { statusOf } from "../src/events";
import { Gate } from "../src/gate";
import { Metrics } from "../src/metrics";

/** opened returns a promise and the function that settles it. */
function opened(): { done: Promise<void>; open: () => void } {
  let open = () => {};
  const done = new Promise<void>((r) => (open = r));
  return { done, open };
}

describe("gate", () => {
  it("runs at most its limit at once, the rest in arrival order", async () => {
    const gate = new Gate(2, 10_000);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const holds = [0, 1, 2, 3, 4].map(() => opened());
    const runs = holds.map((h, i) =>
      gate.run(async () => {
        running++;
        most = Math.max(most, running);
        started.push(i);
        await h.done;
        running--;
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1]);
    assert.equal(gate.waiting, 3);
    assert.equal(gate.inHand, 2);
    holds[1]!.open();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1, 2]);
    for (const h of holds) h.open();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3, 4]);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(most, 2);
    assert.equal(gate.waiting, 0);
    assert.equal(gate.inHand, 0);
    assert.equal(gate.refused, 0);
  });

  it("turns away a delivery that waited too long, and frees its place in line", async () => {
    const gate = new Gate(1, 20);
    const hold = opened();
    const first = gate.run(() => hold.done);
    let ran = false;
    const late = gate.run(async () => {
      ran = true;
    });
    const err = await late.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(ran, false);
    assert.equal(codeOf(err), "unavailable");
    assert.equal(statusOf(err), "RETRY");
    assert.equal(gate.waiting, 0);
    assert.equal(gate.refused, 1);
    // The turn still held is still held: a newcomer waits for it.
    const next = gate.run(async () => "after the first");
    await new Promise((r) => setImmediate(r));
    assert.equal(gate.waiting, 1);
    hold.open();
    await first;
    assert.equal(await next, "after the first");
    // The turn it never took is free: the next one runs at once.
    assert.equal(await gate.run(async () => "next"), "next");
  });

  it("frees the turn of a function that throws, once", async () => {
    const gate = new Gate(1, 0);
    await assert.rejects(gate.run(() => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await gate.run(async () => 1), 1);
    // One turn, not two: with one held, the next is turned away at once.
    const hold = opened();
    const held = gate.run(() => hold.done);
    await assert.rejects(gate.run(async () => 2), (e: unknown) => codeOf(e) === "unavailable");
    hold.open();
    await held;
  });

  it("refuses a limit under one", () => {
    assert.throws(() => new Gate(0, 1000), RangeError);
  });

  it("shows what it holds in the metrics when scraped", async () => {
    const gate = new Gate(1, 10);
    const m = new Metrics("shipping");
    m.observeGate(gate);
    const hold = opened();
    const first = gate.run(() => hold.done);
    const waiting = gate.run(async () => {}).catch(() => {});
    const late = gate.run(async () => {}).catch(() => {});
    let text = (await m.text()).body;
    assert.match(text, /^shipping_events_in_hand\{service="shipping"\} 1$/m);
    assert.match(text, /^shipping_events_waiting\{service="shipping"\} 2$/m);
    await late;
    await waiting;
    text = (await m.text()).body;
    assert.match(text, /^shipping_events_waiting\{service="shipping"\} 0$/m);
    assert.match(text, /^shipping_events_refused_total\{service="shipping"\} 2$/m);
    hold.open();
    await first;
    text = (await m.text()).body;
    assert.match(text, /^shipping_events_in_hand\{service="shipping"\} 0$/m);
  });
});
