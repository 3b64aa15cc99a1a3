/**
 * Command shipping is the shipping service: it consumes the orders topic
 * (order.confirmed, order.cancelled), keeps one shipment per confirmed order
 * in its own Dapr state store, moves it on (label created -> shipped ->
 * delivered) on every replica's ticker, and publishes every change on the
 * shipments topic through the Dapr outbox. This file only reads the
 * configuration, builds the parts, runs them and shuts them down.
 */
import { describe } from "./apierr";
import { ConfigError, describeConfig, parseConfig, type Config } from "./config";
import { DaprStore, DaprUsers, LabelKey, Sidecar } from "./dapr";
import { Gate } from "./gate";
import { routes, serve } from "./http";
import { Logger } from "./log";
import { Metrics } from "./metrics";
import { eventTypes, Shipping, type Counters } from "./shipping";
import { Ticker } from "./ticker";

const service = "shipping";

async function run(cfg: Config, log: Logger, stop: AbortSignal): Promise<void> {
  const metrics = new Metrics(service);
  const sidecar = new Sidecar({
    httpPort: cfg.daprHttpPort,
    apiToken: cfg.daprApiToken,
    timeoutMs: cfg.sidecarTimeoutMs,
    log,
    observer: metrics,
    breaker: cfg.breaker,
    gauge: metrics.breakerState,
  });
  // A gauge series per dependency from the start.
  sidecar.breaker(cfg.stateStore);
  sidecar.breaker(cfg.secretStore);
  sidecar.breaker(cfg.usersApp);
  const label = new LabelKey(sidecar, cfg.secretStore, cfg.labelKeySecret);
  const svc = new Shipping({
    store: new DaprStore(sidecar, cfg.stateStore),
    steps: cfg.steps,
    labelKey: () => label.get(),
    recipients: new DaprUsers(sidecar, cfg.usersApp),
    now: Date.now,
    leaseTtlMs: cfg.leaseTtlMs,
    leaseWaitMs: cfg.leaseWaitMs,
    log,
    counters: counters(metrics),
  });
  const gate = new Gate(cfg.eventsConcurrency, cfg.eventsWaitMs);
  metrics.observeGate(gate);
  const ticker = new Ticker(() => svc.tick(), cfg.tickMs, log);
  let draining = false;
  const handler = routes({
    svc,
    metrics,
    log,
    appApiToken: cfg.appApiToken,
    draining: () => draining,
    events: gate,
    // Ready once the sidecar's components are and the label key is read.
    ready: async () => {
      await sidecar.healthy();
      await label.get();
    },
  });
  ticker.start();
  try {
    await serve(handler, {
      host: cfg.host,
      port: cfg.port,
      drainMs: cfg.shutdownDrainMs,
      graceMs: cfg.shutdownGraceMs,
      log,
      stop,
      onDrain: () => (draining = true),
      onClose: () => ticker.stop(),
    });
  } finally {
    await ticker.stop();
    await sidecar.stop().catch(() => {});
  }
}

/** counters are the business metrics: shipping_events_total, shipping_order_events_total, shipping_index_repairs_total. */
function counters(m: Metrics): Counters {
  const stored = m.counter("shipping_events_total", "Shipment changes stored with their event, by event type (shipment.created, shipment.shipped, shipment.delivered, shipment.cancelled).", ["type"]);
  const orders = m.counter("shipping_order_events_total", "Order events handled, by type and outcome (applied, duplicate, ignored, dropped, retried).", ["type", "outcome"]);
  const repairs = m.counter("shipping_index_repairs_total", "Due index entries the ticker repaired from the shipment record, by kind (orphan, stale, final).", ["kind"]);
  // A series per label from the start: rates read 0, not "no data".
  for (const t of Object.values(eventTypes)) stored.inc({ type: t }, 0);
  for (const t of ["order.confirmed", "order.cancelled"]) {
    for (const o of ["applied", "duplicate", "ignored", "dropped", "retried"]) orders.inc({ type: t, outcome: o }, 0);
  }
  for (const k of ["orphan", "stale", "final"]) repairs.inc({ kind: k }, 0);
  return {
    stored: (type) => stored.inc({ type }),
    order: (type, outcome) => orders.inc({ type, outcome }),
    repaired: (kind) => repairs.inc({ kind }),
  };
}

/** main is what web.Main does for a Go service: JSON logs tagged with the service, SIGINT/SIGTERM to stop, exit 1 on failure. */
function main(): void {
  const log = new Logger().with({ service });
  let cfg: Config;
  try {
    cfg = parseConfig(process.env);
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [describe(err)];
    log.error("exit", { err: `config: ${problems.join("; ")}` });
    process.stderr.write(`shipping: bad configuration:\n${problems.map((p) => `  ${p}\n`).join("")}`);
    process.exit(1);
  }
  log.info("starting", { config: describeConfig(process.env) });
  const ac = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => ac.abort());
  run(cfg, log, ac.signal).then(
    () => process.exit(0),
    (err) => {
      log.error("exit", { err: describe(err) });
      process.exit(1);
    },
  );
}

main();
