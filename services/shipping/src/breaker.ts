/**
 * A circuit breaker on shipping's calls to its sidecar, with the settings
 * vocabulary and the behaviour of lib/breaker (sony/gobreaker behind a Dapr
 * Resiliency-like policy): closed, it counts consecutive failures and trips
 * open after more than ConsecutiveFailures; open, it fails fast for Timeout;
 * then half-open, it lets MaxRequests calls through and closes after as many
 * successes, or opens again at the first failure. Closed counts reset every
 * Interval. Only failures of the dependency count (unavailable, internal): a
 * conflict or a missing key is an answer, not a failure. Each state change
 * is logged and set on circuit_breaker_state.
 */
import { ApiError, codeOf } from "./apierr";
import type { Logger } from "./log";

/** Settings mirror a Dapr Resiliency circuitBreaker policy (lib/breaker.Settings). */
export interface BreakerSettings {
  /** name identifies the protected dependency in logs and metrics. */
  name: string;
  /** maxRequests may pass while half-open. */
  maxRequests: number;
  /** intervalMs is the cyclic period of the closed state after which counts reset (0: never). */
  intervalMs: number;
  /** timeoutMs is how long the breaker stays open before trying half-open. */
  timeoutMs: number;
  /** consecutiveFailures trips the breaker when exceeded. */
  consecutiveFailures: number;
}

/** State is a breaker's state; its gauge value is its index here. */
export type BreakerState = "closed" | "half-open" | "open";
const gaugeValue: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2 };

/** errOpen is the cause of the error a breaker answers with while open. */
export const errOpen = new Error("circuit open");

/** isFailure reports whether err says the dependency is unhealthy (lib/breaker.IsFailure). */
export function isFailure(err: unknown): boolean {
  const code = codeOf(err);
  return code === "unavailable" || code === "internal";
}

/** Gauge is where a breaker reports its state (prom-client's Gauge fits). */
export interface StateGauge {
  set(labels: { name: string }, value: number): void;
}

/** Breaker guards the calls to one dependency. */
export class Breaker {
  private st: BreakerState = "closed";
  private generation = 0;
  private requests = 0;
  private consecutiveSuccesses = 0;
  private consecutiveFailures = 0;
  private expiry = 0;

  constructor(
    private readonly s: BreakerSettings,
    private readonly log: Logger,
    private readonly gauge?: StateGauge,
    private readonly now: () => number = Date.now,
  ) {
    this.gauge?.set({ name: s.name }, 0);
    this.newGeneration(this.now());
  }

  /** state returns the current state. */
  state(): BreakerState {
    return this.current(this.now());
  }

  /**
   * run calls fn through the breaker. While open (or half-open with its
   * probes under way) it fails at once with an unavailable error that says
   * when to come back.
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const now = this.now();
    const st = this.current(now);
    const max = Math.max(1, this.s.maxRequests);
    if (st === "open" || (st === "half-open" && this.requests >= max)) {
      throw new ApiError("unavailable", `${this.s.name} unavailable (circuit open)`, {
        retryAfterSeconds: Math.ceil(this.s.timeoutMs / 1000),
        cause: errOpen,
      });
    }
    this.requests++;
    const gen = this.generation;
    try {
      const v = await fn();
      this.after(gen, true);
      return v;
    } catch (err) {
      this.after(gen, !isFailure(err));
      throw err;
    }
  }

  private after(gen: number, ok: boolean): void {
    const now = this.now();
    const st = this.current(now);
    if (gen !== this.generation) return;
    if (ok) {
      this.consecutiveSuccesses++;
      this.consecutiveFailures = 0;
      if (st === "half-open" && this.consecutiveSuccesses >= Math.max(1, this.s.maxRequests)) {
        this.setState("closed", now);
      }
      return;
    }
    this.consecutiveFailures++;
    this.consecutiveSuccesses = 0;
    if (st === "half-open" || (st === "closed" && this.consecutiveFailures > this.s.consecutiveFailures)) {
      this.setState("open", now);
    }
  }

  private current(now: number): BreakerState {
    if (this.st === "closed" && this.expiry !== 0 && this.expiry < now) {
      this.newGeneration(now);
    } else if (this.st === "open" && this.expiry < now) {
      this.setState("half-open", now);
    }
    return this.st;
  }

  private setState(to: BreakerState, now: number): void {
    if (to === this.st) return;
    const from = this.st;
    this.st = to;
    this.newGeneration(now);
    this.log.warn("circuit breaker state change", { breaker: this.s.name, from, to });
    this.gauge?.set({ name: this.s.name }, gaugeValue[to]);
  }

  private newGeneration(now: number): void {
    this.generation++;
    this.requests = 0;
    this.consecutiveSuccesses = 0;
    this.consecutiveFailures = 0;
    switch (this.st) {
      case "closed":
        this.expiry = this.s.intervalMs > 0 ? now + this.s.intervalMs : 0;
        break;
      case "open":
        this.expiry = now + this.s.timeoutMs;
        break;
      default:
        this.expiry = 0;
    }
  }
}
