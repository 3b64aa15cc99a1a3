/**
 * Order events as the orders service publishes them (its events.schema.json),
 * for the tests to deliver: a CloudEvent per call, with fresh IDs.
 */
import type { OrderEvent } from "../src/contracts";
import type { CloudEvent } from "../src/events";
import { Order, User } from "../src/id";

let seq = 0;

/** orderEvent returns the CloudEvent of an order event of type for order n of user u. */
export function orderEvent(type: OrderEvent["type"], n: number, u = 1, extra: Partial<OrderEvent> = {}): CloudEvent {
  const status = ({ "order.created": "pending", "order.paid": "paid", "order.confirmed": "confirmed", "order.cancelled": "cancelled" } as const)[type];
  const data: OrderEvent = {
    type,
    order_id: Order.example(n),
    user_id: User.example(u),
    status,
    items: [{ product_id: "prd_000000000000000000000007", quantity: 2, unit_price: 450 }],
    total: 900,
    currency: "EUR",
    at: "2026-01-01T00:00:00Z",
    ...extra,
  };
  return { id: `ev-${++seq}`, type, source: "orders", topic: "orders", pubsubname: "events", datacontenttype: "application/json", traceparent: "", data };
}
