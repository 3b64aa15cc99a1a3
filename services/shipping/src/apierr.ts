/**
 * The suite's one error model (lib/apierr in Go): a small set of codes, an
 * error that carries a code, a client-safe message and field errors, and the
 * one table that maps codes to HTTP statuses. Whatever shipping answers a
 * client with, or decides an event's fate by, is one of these.
 */

/** Code classifies an error for clients and for retry decisions. */
export type Code =
  | "invalid"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "too_many_requests"
  | "unavailable"
  | "internal";

/** statuses is the one place where codes meet HTTP (as in lib/apierr). */
const statuses: Record<Code, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_many_requests: 429,
  unavailable: 503,
  internal: 500,
};

/** Every code, sorted: what the OpenAPI document's error code enumeration lists. */
export function codes(): Code[] {
  return (Object.keys(statuses) as Code[]).sort();
}

/** status returns the HTTP status of a code. */
export function status(code: Code): number {
  return statuses[code] ?? 500;
}

/** FieldError names one invalid field of a request and says what is wrong with it. */
export interface FieldError {
  field: string;
  message: string;
}

/** ApiErrorOptions are the optional parts of an ApiError. */
export interface ApiErrorOptions {
  fields?: FieldError[];
  /** Seconds after which a client may try again (Retry-After), for unavailable errors. */
  retryAfterSeconds?: number;
  /** The underlying failure: logged, never shown to the client. */
  cause?: unknown;
}

/**
 * ApiError is an error that is safe to show to a client: its message never
 * names internals; the cause, which may, is only logged.
 */
export class ApiError extends Error {
  readonly code: Code;
  readonly fields: FieldError[] | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: Code, message: string, opts: ApiErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ApiError";
    this.code = code;
    this.fields = opts.fields;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }

  /** detail renders the error with its cause, for logs. */
  detail(): string {
    let msg = `${this.code}: ${this.message}`;
    if (this.fields?.length) msg += ` ${JSON.stringify(this.fields)}`;
    if (this.cause !== undefined) msg += `: ${describe(this.cause)}`;
    return msg;
  }
}

/** errorf returns an ApiError with the given code and message. */
export function errorf(code: Code, message: string): ApiError {
  return new ApiError(code, message);
}

/** invalid returns an invalid error for a single field, named in the message too. */
export function invalid(field: string, message: string): ApiError {
  return new ApiError("invalid", `${field}: ${message}`, { fields: [{ field, message }] });
}

/** unavailable returns an unavailable error with a client-safe message and its cause. */
export function unavailable(cause: unknown, message: string, retryAfterSeconds?: number): ApiError {
  return new ApiError("unavailable", message, { cause, retryAfterSeconds });
}

/**
 * FieldErrors collects what is wrong with a request, field by field, so that
 * a client learns about every mistake at once.
 */
export class FieldErrors {
  private readonly list: FieldError[] = [];

  /** add records that field is invalid. */
  add(field: string, message: string): void {
    this.list.push({ field, message });
  }

  /** err is undefined when nothing was added, else an invalid error about what naming every field. */
  err(what: string): ApiError | undefined {
    if (this.list.length === 0) return undefined;
    return new ApiError("invalid", `invalid ${what}: ${this.list.map((f) => f.field).join(", ")}`, {
      fields: [...this.list],
    });
  }
}

/** codeOf returns the code of err: internal for anything that is not an ApiError. */
export function codeOf(err: unknown): Code {
  return err instanceof ApiError ? err.code : "internal";
}

/** describe renders any thrown value for a log line, with its causes. */
export function describe(err: unknown): string {
  if (err instanceof ApiError) return err.detail();
  if (err instanceof Error) {
    const cause = err.cause === undefined ? "" : `: ${describe(err.cause)}`;
    return `${err.message}${cause}`;
  }
  return String(err);
}
