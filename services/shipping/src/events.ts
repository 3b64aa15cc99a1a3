/**
 * The consumer side of the suite's pub/sub (lib/events in Go): the CloudEvent
 * envelope Dapr delivers, and the reply Dapr understands. A handler's success
 * is SUCCESS; an event no retry can help (undecodable, not of the schema, or
 * refused as a client error) is DROP, which sends it to the route's
 * dead-letter topic; anything else (a store down, a lease held) is RETRY.
 */
import { codeOf } from "./apierr";

/** CloudEvent is a delivered event: the envelope's fields shipping reads, and its data as it came. */
export interface CloudEvent {
  id: string;
  type: string;
  source: string;
  topic: string;
  pubsubname: string;
  datacontenttype: string;
  traceparent: string;
  data: unknown;
}

/** Status is a subscriber's reply to Dapr. */
export type Status = "SUCCESS" | "RETRY" | "DROP";

/** DropError marks an event that can never be processed: it goes to the dead-letter topic. */
export class DropError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "DropError";
  }
}

/** drop wraps a reason to say the event can never be processed. */
export function drop(reason: unknown): DropError {
  if (reason instanceof DropError) return reason;
  return new DropError(reason instanceof Error ? reason.message : String(reason), reason);
}

/**
 * isDrop reports whether err asks for the event to be dropped. A client
 * error (invalid, not found, forbidden) is a drop too: the same event would
 * get the same answer again.
 */
export function isDrop(err: unknown): boolean {
  if (err instanceof DropError) return true;
  const code = codeOf(err);
  return code === "invalid" || code === "not_found" || code === "forbidden";
}

const envelopeStrings = ["id", "type", "source", "topic", "pubsubname", "datacontenttype", "traceparent"] as const;

/**
 * decodeEnvelope reads a delivery's body as a CloudEvent, as Go's
 * json.Unmarshal into lib/events.Event does: a JSON object whose known
 * fields, when present and not null, are strings. Anything else is
 * undefined: undecodable, dropped.
 */
export function decodeEnvelope(body: Buffer): CloudEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const e: Record<string, unknown> = { data: o.data };
  for (const k of envelopeStrings) {
    const f = o[k];
    if (f !== undefined && f !== null && typeof f !== "string") return undefined;
    e[k] = f ?? "";
  }
  return e as unknown as CloudEvent;
}

/**
 * dataOf returns an event's data; an event without any is a poison event.
 * Its shape is checked against the topic's schema by the handler.
 */
export function dataOf(e: CloudEvent): unknown {
  if (e.data === undefined || e.data === null || e.data === "") {
    throw new DropError("the event carries no data");
  }
  return e.data;
}

/** statusOf is the reply for a handler's outcome: nil SUCCESS, a drop DROP, anything else RETRY. */
export function statusOf(err: unknown): Status {
  if (err === undefined) return "SUCCESS";
  return isDrop(err) ? "DROP" : "RETRY";
}
