/**
 * The validators compiled at build time (scripts/generate.mjs, ajv's
 * standalone code) hold event data to the topics' schemas as ajv's compiler
 * did at start before: every rule, formats asserted, extra fields refused,
 * every problem reported at once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orderEvent as validOrder, SchemaError, shipmentEvent, type OrderEvent, type ShipmentEvent } from "../src/contracts";
import { orderEvent } from "./orders";

const order = () => orderEvent("order.confirmed", 1).data as OrderEvent;
const shipment = (): ShipmentEvent => ({
  type: "shipment.shipped",
  shipment_id: "shp_000000000000000000000001",
  order_id: "ord_000000000000000000000001",
  user_id: "usr_000000000000000000000001",
  status: "shipped",
  tracking_number: "DS0123456789ABCDEF",
  at: "2026-01-01T00:00:00Z",
});

/** problems returns what the validator says of data, or [] when it passes. */
function problems(validate: (d: unknown) => unknown, data: unknown): string[] {
  try {
    validate(data);
    return [];
  } catch (err) {
    assert.ok(err instanceof SchemaError, String(err));
    return err.problems;
  }
}

describe("contracts: the topics' validators", () => {
  it("pass events as the services publish them", () => {
    assert.deepEqual(problems(validOrder, order()), []);
    assert.deepEqual(problems(shipmentEvent, shipment()), [], "a shipment event (keep this test's example in step with events.schema.json)");
  });

  it("assert formats: a time that is not RFC 3339 is refused", () => {
    const p = problems(validOrder, { ...order(), at: "yesterday" });
    assert.equal(p.length, 1);
    assert.match(p[0]!, /^\/at .*date-time/);
    assert.match(problems(shipmentEvent, { ...shipment(), at: "2026-13-01T00:00:00Z" })[0]!, /^\/at /);
  });

  it("refuse fields the schema does not name, and report every problem at once", () => {
    const p = problems(validOrder, { ...order(), extra: 1, order_id: "ord_x", status: "lost" });
    assert.equal(p.length, 3, p.join("; "));
    assert.ok(p.some((x) => /additional properties/.test(x)));
    assert.ok(p.some((x) => x.startsWith("/order_id ")));
    assert.ok(p.some((x) => x.startsWith("/status ")));
  });
});
