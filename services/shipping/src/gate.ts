/**
 * Gate bounds how many deliveries shipping handles at once.
 *
 * Why: Node runs every handler on one thread, and daprd hands shipping up to
 * the pub/sub's concurrency (100) events at once. Each event makes several
 * sidecar calls, whose replies queue on the event loop ahead of a customer's
 * shipment read and of the sidecar's health probe. Measured under a backlog
 * (e2e TestK6Stress, two cores): with no bound, reads waited past the
 * gateway's 5 s timeout (43 to 84 of them a run) and daprd marked the app
 * unhealthy; with 8 at once, 12 to 87; with 2 (EVENTS_CONCURRENCY's
 * default), none in three runs. The backlog waits in the broker, or briefly
 * here, and reads and probes go through.
 *
 * A delivery that waits longer than maxWaitMs (EVENTS_WAIT, 4 s) is answered
 * RETRY (an unavailable error) before daprd's own delivery timeout (5 s)
 * gives up on it: the broker keeps it and delivers it again.
 */
import { unavailable } from "./apierr";

/** Waiter is a delivery waiting for a turn. */
interface Waiter {
  admit: () => void;
  timer: NodeJS.Timeout;
}

/** Gate runs at most limit functions at once, the rest in arrival order. */
export class Gate {
  private active = 0;
  private readonly queue: Waiter[] = [];
  private turnedAway = 0;

  constructor(
    readonly limit: number,
    readonly maxWaitMs: number,
  ) {
    if (!(limit >= 1) || !(maxWaitMs >= 0)) throw new RangeError(`gate: limit ${limit}, max wait ${maxWaitMs} ms`);
  }

  /** waiting is how many deliveries wait for a turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /** inHand is how many deliveries are being handled. */
  get inHand(): number {
    return this.active;
  }

  /** refused is how many deliveries waited maxWaitMs in vain (answered RETRY) so far. */
  get refused(): number {
    return this.turnedAway;
  }

  /** run calls fn once fewer than limit run, or throws unavailable after maxWaitMs without a turn. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await fn();
    } finally {
      this.leave();
    }
  }

  private enter(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        admit: resolve,
        timer: setTimeout(() => {
          const i = this.queue.indexOf(w);
          if (i < 0) return; // admitted: leave() cleared this timer first
          this.queue.splice(i, 1);
          this.turnedAway++;
          reject(unavailable(undefined, `busy: ${this.limit} events in hand, this one waited ${this.maxWaitMs} ms`));
        }, this.maxWaitMs),
      };
      this.queue.push(w);
    });
  }

  /** leave hands the turn to the longest waiter, if any (active stays the same), else frees it. */
  private leave(): void {
    const next = this.queue.shift();
    if (next) {
      clearTimeout(next.timer);
      next.admit();
      return;
    }
    this.active--;
  }
}
