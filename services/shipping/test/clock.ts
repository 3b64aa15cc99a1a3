/**
 * A clock tests move by hand, so that due times, leases and their expiry are
 * tested without waiting.
 */

/** Clock is a settable epoch-milliseconds clock; now is bound, to pass as a function. */
export class Clock {
  constructor(public t = Date.parse("2026-01-01T00:00:00Z")) {}
  readonly now = (): number => this.t;
  /** advance moves the clock on by ms. */
  advance(ms: number): void {
    this.t += ms;
  }
}
