/**
 * Durations written as Go writes them (300ms, 3s, 1m30s, 1.5h), the syntax
 * of every duration in the suite's configuration, so that SHIPPING_TICK or
 * SHIPPING_STEPS read the same here as SHUTDOWN_GRACE does in a Go service.
 */

const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * parseDuration reads a duration as Go's time.ParseDuration does (a sequence
 * of decimal numbers, each with a unit; "0" alone) and returns milliseconds,
 * or undefined when s is not one.
 */
export function parseDuration(s: string): number | undefined {
  if (s === "0" || s === "+0" || s === "-0") return 0;
  const m = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) return undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * units[part[2]!]!;
  }
  return m[1] === "-" ? -total : total;
}
