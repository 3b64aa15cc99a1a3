/**
 * The contracts of the topics shipping reads and writes, from the JSON
 * Schemas that src/gen/ is generated from at build time: the types the code
 * reads and writes event data through, and validators (ajv, draft 2020-12,
 * strict, formats asserted, compiled at build time: scripts/generate.mjs)
 * for the data of every incoming event and of every event before it is
 * stored in the outbox. A schema change the code does not follow fails the
 * build; data the schema refuses is refused at run time.
 */
import type { ErrorObject, ValidateFunction } from "ajv";
import type { OrdersTopicEventData } from "./gen/orders-events";
import type { ShipmentsTopicEventData } from "./gen/shipments-events";
import * as compiled from "./gen/validators";

/** OrderEvent is the data of an event on the orders topic (services/orders/events.schema.json). */
export type OrderEvent = OrdersTopicEventData;
/** ShipmentEvent is the data of an event on the shipments topic (services/shipping/events.schema.json). */
export type ShipmentEvent = ShipmentsTopicEventData;

const orders = compiled.orders as ValidateFunction<OrderEvent>;
const shipments = compiled.shipments as ValidateFunction<ShipmentEvent>;

/** SchemaError says which rules of a topic's schema some data breaks. */
export class SchemaError extends Error {
  constructor(
    readonly topic: string,
    readonly problems: string[],
  ) {
    super(`not ${topic} event data: ${problems.join("; ")}`);
    this.name = "SchemaError";
  }
}

function check<T>(topic: string, validate: ValidateFunction<T>, data: unknown): T {
  if (validate(data)) return data;
  throw new SchemaError(topic, (validate.errors ?? []).map(render));
}

function render(e: ErrorObject): string {
  return `${e.instancePath || "/"} ${e.message ?? "is invalid"}`;
}

/** orderEvent returns data as orders topic event data, or throws a SchemaError. */
export function orderEvent(data: unknown): OrderEvent {
  return check("orders", orders, data);
}

/** shipmentEvent returns data as shipments topic event data, or throws a SchemaError. */
export function shipmentEvent(data: unknown): ShipmentEvent {
  return check("shipments", shipments, data);
}
