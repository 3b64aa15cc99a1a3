/**
 * The W3C trace context (traceparent) of what shipping is doing, carried
 * through async calls with AsyncLocalStorage (lib/tracecontext in Go passes
 * a context.Context instead). Dapr starts and records the spans; shipping
 * only passes traceparent on from the request or event its sidecar delivered
 * to the calls it makes to its sidecar (and into the outbox transaction's
 * metadata), and puts the trace ID in its log lines. The same store carries
 * the deadline of the work under way, which bounds every sidecar call.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** The W3C trace context header. */
export const header = "traceparent";

/** valid matches a version-00 traceparent: version, trace ID, parent ID, flags. */
const valid = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Scope is what a piece of work carries: its trace context and its deadline, each optional. */
export interface Scope {
  traceparent?: string;
  /** Epoch milliseconds by which the work's calls must be done (a lease's step). */
  deadline?: number;
}

const storage = new AsyncLocalStorage<Scope>();

/** wellFormed returns tp when it is a well-formed traceparent, else undefined. */
export function wellFormed(tp: unknown): string | undefined {
  return typeof tp === "string" && valid.test(tp) ? tp : undefined;
}

/** withTrace calls fn within a scope that carries traceparent (if well formed) and the current deadline. */
export function withTrace<T>(traceparent: unknown, fn: () => T): T {
  const cur = storage.getStore() ?? {};
  const tp = wellFormed(traceparent);
  return storage.run(tp ? { ...cur, traceparent: tp } : { ...cur }, fn);
}

/** withDeadline calls fn within a scope whose calls end by deadline (epoch ms), or earlier if the scope already said so. */
export function withDeadline<T>(deadline: number, fn: () => T): T {
  const cur = storage.getStore() ?? {};
  const d = cur.deadline === undefined ? deadline : Math.min(cur.deadline, deadline);
  return storage.run({ ...cur, deadline: d }, fn);
}

/** traceparent returns the traceparent of the current scope, or undefined. */
export function traceparent(): string | undefined {
  return storage.getStore()?.traceparent;
}

/** traceId returns the trace ID of the current scope's traceparent, or undefined. */
export function traceId(): string | undefined {
  const tp = traceparent();
  return tp ? valid.exec(tp)?.[1] : undefined;
}

/** deadline returns the deadline (epoch ms) of the current scope, or undefined. */
export function deadline(): number | undefined {
  return storage.getStore()?.deadline;
}
