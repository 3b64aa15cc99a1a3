/**
 * Structured JSON logs on stdout, one object a line, with the keys and level
 * names of Go's slog JSON handler as the other services write them: time,
 * level (DEBUG, INFO, WARN, ERROR), msg, then service="shipping" and the
 * line's own attributes, and trace_id last when the work under way carries a
 * trace context (lib/tracecontext's LogHandler). Below INFO nothing is
 * written, as with slog's default level.
 */
import { describe } from "./apierr";
import { traceId } from "./tracecontext";

/** Level is a log line's severity. */
export type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";

const rank: Record<Level, number> = { DEBUG: -4, INFO: 0, WARN: 4, ERROR: 8 };

/** Attrs are a line's attributes; errors are rendered as their messages, dates as RFC 3339. */
export type Attrs = Record<string, unknown>;

/** Logger writes JSON lines; with() derives one with more attributes on every line. */
export class Logger {
  constructor(
    private readonly write: (line: string) => void = (line) => void process.stdout.write(line),
    private readonly attrs: Attrs = {},
    private readonly min: Level = "INFO",
  ) {}

  /** with returns a logger that adds attrs to every line (slog's With). */
  with(attrs: Attrs): Logger {
    return new Logger(this.write, { ...this.attrs, ...attrs }, this.min);
  }

  /** debug logs at DEBUG (dropped at the default level). */
  debug(msg: string, attrs?: Attrs): void {
    this.log("DEBUG", msg, attrs);
  }

  /** info logs at INFO. */
  info(msg: string, attrs?: Attrs): void {
    this.log("INFO", msg, attrs);
  }

  /** warn logs at WARN. */
  warn(msg: string, attrs?: Attrs): void {
    this.log("WARN", msg, attrs);
  }

  /** error logs at ERROR. */
  error(msg: string, attrs?: Attrs): void {
    this.log("ERROR", msg, attrs);
  }

  /** log writes one line at level, unless the level is below the logger's. */
  log(level: Level, msg: string, attrs?: Attrs): void {
    if (rank[level] < rank[this.min]) return;
    const line: Attrs = { time: new Date().toISOString(), level, msg };
    for (const [k, v] of Object.entries({ ...this.attrs, ...attrs })) {
      if (v !== undefined) line[k] = render(v);
    }
    const tid = traceId();
    if (tid) line.trace_id = tid;
    this.write(JSON.stringify(line) + "\n");
  }
}

/** discard is a logger that writes nothing, for tests. */
export const discard = new Logger(() => {});

function render(v: unknown): unknown {
  if (v instanceof Error) return describe(v);
  if (v instanceof Date) return v.toISOString();
  return v;
}
