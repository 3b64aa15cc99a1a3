/**
 * The contracts drive the types: a schema change the code does not follow
 * must fail npm run build. The sources are copied to a temporary tree laid
 * out like the repository (services/shipping next to services/orders), a
 * field the code reads is renamed in the orders topic's schema, and the
 * build there must fail naming it; a field the code writes is renamed in the
 * shipments topic's schema, and the build must fail too.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";

const service = resolve(__dirname, "..", "..");
const orders = resolve(service, "..", "orders", "events.schema.json");

/** copyTree lays out a temporary services/ with shipping's sources (node_modules linked) and orders' schema. */
function copyTree(): { root: string; shipping: string; ordersSchema: string } {
  const root = mkdtempSync(join(tmpdir(), "shipping-build-"));
  const shipping = join(root, "services", "shipping");
  for (const f of ["package.json", "tsconfig.json", "events.schema.json", "src", "test", "scripts"]) {
    cpSync(join(service, f), join(shipping, f), { recursive: true, filter: (src) => !src.includes(`${join("src", "gen")}`) });
  }
  symlinkSync(join(service, "node_modules"), join(shipping, "node_modules"), "dir");
  const ordersSchema = join(root, "services", "orders", "events.schema.json");
  cpSync(orders, ordersSchema);
  return { root, shipping, ordersSchema };
}

function build(dir: string) {
  const r = spawnSync("npm", ["run", "--silent", "build"], { cwd: dir, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** rename renames a property of a schema file, in properties and required. */
function rename(file: string, from: string, to: string): void {
  const schema = JSON.parse(readFileSync(file, "utf8"));
  schema.properties[to] = schema.properties[from];
  delete schema.properties[from];
  schema.required = schema.required.map((r: string) => (r === from ? to : r));
  writeFileSync(file, JSON.stringify(schema, null, 2));
}

describe("the build follows the schemas", () => {
  it("fails when the orders topic renames a field shipping reads", () => {
    const t = copyTree();
    try {
      rename(t.ordersSchema, "order_id", "order_ref");
      const r = build(t.shipping);
      assert.notEqual(r.status, 0, "the build passed over a renamed order_id");
      assert.match(r.out, /error TS\d+: Property 'order_id' does not exist on type 'OrdersTopicEventData'/, r.out);
    } finally {
      rmSync(t.root, { recursive: true, force: true });
    }
  });

  it("fails when the shipments topic renames a field shipping writes", () => {
    const t = copyTree();
    try {
      rename(join(t.shipping, "events.schema.json"), "tracking_number", "tracking");
      const r = build(t.shipping);
      assert.notEqual(r.status, 0, "the build passed over a renamed tracking_number");
      assert.match(r.out, /error TS\d+:.*tracking_number/, r.out);
    } finally {
      rmSync(t.root, { recursive: true, force: true });
    }
  });
});
