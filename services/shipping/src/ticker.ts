/**
 * The ticker that moves shipments on: every SHIPPING_TICK it runs one tick
 * of the domain (read the due index, advance what is due). Ticks never
 * overlap (the next is scheduled when one ends), a failed tick is logged and
 * the next one tries again, and stop() waits for the tick under way, so a
 * shutdown never cuts a step short. Every replica runs one: the shipments'
 * leases settle which replica takes each step.
 */
import { describe } from "./apierr";
import type { Logger } from "./log";
import type { TickResult } from "./shipping";

/** Ticker runs tick every intervalMs until stopped. */
export class Ticker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private failing = false;

  constructor(
    private readonly tick: () => Promise<TickResult>,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** start schedules the first tick. */
  start(): void {
    this.stopped = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.once().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
  }

  private async once(): Promise<void> {
    try {
      const r = await this.tick();
      if (this.failing) this.log.info("ticking again");
      this.failing = false;
      if (r.advanced > 0 || r.busy > 0) this.log.debug("tick", { ...r });
    } catch (err) {
      // One line per outage, not one per tick.
      if (!this.failing) this.log.warn("tick failed", { err: describe(err) });
      this.failing = true;
    }
  }

  /** stop cancels the next tick and waits for the one under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
