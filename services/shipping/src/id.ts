/**
 * The kinds of ID shipping reads and mints (lib/id in Go): a prefix naming
 * the kind, then lowercase hex digits. A shipment's ID is derived from its
 * order's ID (Kind.derive), so every replica, and the Go side, computes the
 * same one without asking anyone.
 */
import { createHash } from "node:crypto";

/** Kind is one kind of ID: its prefix and its number of hex digits. */
export class Kind {
  private readonly re: RegExp;

  constructor(
    readonly prefix: string,
    readonly digits: number,
  ) {
    this.re = new RegExp(`^${prefix}[0-9a-f]{${digits}}$`);
  }

  /** valid reports whether s is an ID of the kind, nothing before or after. */
  valid(s: unknown): s is string {
    return typeof s === "string" && this.re.test(s);
  }

  /** derive returns the ID of the kind that seed always maps to: the first digits of SHA-256(seed). */
  derive(seed: string): string {
    return this.prefix + createHash("sha256").update(seed, "utf8").digest("hex").slice(0, this.digits);
  }

  /** example is a valid ID whose last digits are n in hex: for tests and documentation. */
  example(n: number): string {
    const h = n.toString(16);
    return this.prefix + h.padStart(this.digits, "0").slice(-this.digits);
  }
}

/** The kinds shipping deals with (the same as lib/id's, plus Shipment). */
export const User = new Kind("usr_", 24);
export const Order = new Kind("ord_", 24);
export const Shipment = new Kind("shp_", 24);
