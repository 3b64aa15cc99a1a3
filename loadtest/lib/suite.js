// Shared options, data and journeys of the suite's k6 scripts. Every script
// drives the public API of the gateway (BASE_URL, default
// http://127.0.0.1:8080) and stops by itself.
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
export const API = `${BASE_URL}/api`;
export const ADMIN_EMAIL = __ENV.ADMIN_EMAIL || 'admin@daprshop.local';
export const ADMIN_PASSWORD = __ENV.ADMIN_PASSWORD || 'admin-local-dev-password';

// Correctness thresholds of every scenario: almost no errors, every check
// passing.
export const correct = {
  http_req_failed: ['rate<0.01'],
  checks: ['rate>0.99'],
};

// Thresholds of the load scenarios: correctness, and latency budgets that
// fail the run when missed. The smoke run in CI takes correctness only: its
// handful of requests on a shared machine say nothing about latency.
export const thresholds = {
  ...correct,
  'http_req_duration{kind:read}': ['p(95)<200', 'p(99)<500'],
  'http_req_duration{kind:write}': ['p(95)<500', 'p(99)<1000'],
};

const json = { headers: { 'Content-Type': 'application/json' } };

function authed(token, kind) {
  return { headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, tags: { kind } };
}

function must(res, what, status) {
  if (!check(res, { [`${what} is ${status}`]: (r) => r.status === status })) {
    fail(`${what}: ${res.status} ${res.body}`);
  }
  return res.json();
}

// login returns a bearer token.
export function login(email, password) {
  const res = http.post(`${API}/login`, JSON.stringify({ email, password }), { ...json, tags: { kind: 'write' } });
  return must(res, 'login', 200).token;
}

// signUp creates a customer with a unique email and returns its token.
export function signUp() {
  // __VU is 0 and there is no __ITER in setup(): randomness keeps emails unique.
  const email = `k6-${__VU}-${Date.now()}-${Math.floor(Math.random() * 1e12)}@example.com`;
  const password = 'load test password';
  const res = http.post(`${API}/users`, JSON.stringify({ email, password, name: 'k6' }), { ...json, tags: { kind: 'write' } });
  must(res, 'sign-up', 201);
  return login(email, password);
}

// seedProducts creates n products with plenty of stock, as the admin.
export function seedProducts(n, stock) {
  const admin = login(ADMIN_EMAIL, ADMIN_PASSWORD);
  const ids = [];
  for (let i = 0; i < n; i++) {
    const res = http.post(`${API}/products`, JSON.stringify({ name: `k6 product ${i}`, price: 100 + i, currency: 'EUR', stock }),
      authed(admin, 'write'));
    ids.push(must(res, 'create product', 201).id);
  }
  return ids;
}

// Admission control (services/gateway/internal/admit): the gateway refuses
// what the suite cannot serve within its latency target at once, with 503
// (or 429), Retry-After, and an error whose message starts with this.
// Nothing of a refused request was done. A 503 relayed from a service says
// something else (an order's may name the order it kept).
export const SHED_MESSAGE = 'at capacity';

// The figures of the overload scenarios (stress, spike): what was admitted
// and how fast, what was refused and how fast, and the accounting of orders
// that teardown checks against the orders the suite holds.
export const admission = {
  admittedOrder: new Trend('admitted_order_duration', true),
  admittedRead: new Trend('admitted_read_duration', true),
  refused: new Trend('refused_duration', true),
  refusals: new Counter('refusals'),
  serverErrors: new Counter('server_errors'),
  ordersAccepted: new Counter('orders_accepted'),
  // +1 for each order a client was told about (201, or a 503 naming the
  // order kept), -1 for each order the suite lists, settled, at the end:
  // anything but 0 is an order lost, made twice, or never settled.
  orderBalance: new Counter('order_balance'),
  ordersUnsettled: new Counter('orders_unsettled'),
  ordersListedTwice: new Counter('orders_listed_twice'),
  // Confirmed orders that shipping has no shipment for at the end.
  shipmentsMissing: new Counter('shipments_missing'),
  rss: new Trend('service_rss_mb'),
};

// isShed reports whether res is the gateway's refusal for capacity.
export function isShed(res) {
  if (res.status < 400) {
    return false;
  }
  try {
    const e = res.json().error;
    return typeof e.message === 'string' && e.message.startsWith(SHED_MESSAGE);
  } catch (_) {
    return false;
  }
}

// observe records res of a kind of request (read, order) as admitted or
// refused, and checks what a refusal must carry and that nothing else is a
// 5xx or no answer. It returns whether res was admitted.
export function observe(res, kind) {
  if (isShed(res)) {
    admission.refused.add(res.timings.duration, { kind });
    admission.refusals.add(1, { kind });
    check(res, {
      'a refusal is 503 or 429 with Retry-After': (r) => (r.status === 503 || r.status === 429) && Number(r.headers['Retry-After']) >= 1,
    });
    return false;
  }
  (kind === 'order' ? admission.admittedOrder : admission.admittedRead).add(res.timings.duration);
  // Status 0: no answer at all (a timeout, a connection refused).
  if (!check(res, { 'an answer, and no 5xx but a refusal': (r) => r.status !== 0 && r.status < 500 })) {
    admission.serverErrors.add(1, { kind, status: String(res.status) });
  }
  return true;
}

// browse reads the catalog and one product.
export function browse(ids) {
  const list = http.get(`${API}/products`, { tags: { kind: 'read' } });
  if (observe(list, 'read')) {
    check(list, { 'catalog is 200': (r) => r.status === 200 });
  }
  const id = ids[Math.floor(Math.random() * ids.length)];
  const one = http.get(`${API}/products/${id}`, { tags: { kind: 'read' } });
  if (observe(one, 'read')) {
    check(one, { 'product is 200': (r) => r.status === 200 });
  }
}

// keptOrder matches the 503 of an order that orders stored but could not
// finish now (it finishes it later): the client was told of that order.
const keptOrder = /order (ord_[0-9a-f]{24}) is pending/;

// placed holds, per VU, orders it placed: [token, id, when], the newest
// last, for track to follow.
const placed = [];

// order places an order for one unit of a random product and checks it
// paid, unless the gateway refused it.
export function order(token, ids) {
  const id = ids[Math.floor(Math.random() * ids.length)];
  const res = http.post(`${API}/orders`, JSON.stringify({ items: [{ product_id: id, quantity: 1 }] }), authed(token, 'write'));
  if (!observe(res, 'order')) {
    return;
  }
  if (res.status === 201) {
    admission.ordersAccepted.add(1);
    admission.orderBalance.add(1);
    placed.push([token, res.json().id, Date.now()]);
    placed.splice(0, placed.length - 20);
  } else if (res.status === 503 && keptOrder.test(res.body)) {
    admission.orderBalance.add(1);
  }
  check(res, {
    'order is 201': (r) => r.status === 201,
    'order is paid': (r) => r.status === 201 && r.json().status === 'paid',
  });
}

// tracked is what a shipment read may answer: the shipment, 404 before the
// order's confirmation, or the gateway's refusals.
const tracked = http.expectedStatuses({ min: 200, max: 399 }, 404, 429, 503);

// track reads the shipment of an order this VU placed a while ago (shipping,
// TypeScript, through the gateway): 200 with the shipment once the order is
// confirmed, 404 before (or for a cancelled order), nothing else.
export function track() {
  const i = placed.findIndex(([, , at]) => Date.now() - at < 1000);
  const old = i === -1 ? placed.length - 1 : i - 1;
  if (old < 0) {
    return;
  }
  const [token, id] = placed[old];
  const res = http.get(`${API}/orders/${id}/shipment`, {
    headers: { Authorization: `Bearer ${token}` },
    tags: { kind: 'read' },
    // 404 is an answer here (not shipped yet), not a failed request.
    responseCallback: tracked,
  });
  if (observe(res, 'read')) {
    check(res, {
      'shipment is 200 for this order, or 404 before its confirmation': (r) =>
        (r.status === 200 && r.json().order_id === id) || (r.status === 404 && r.json().error.code === 'not_found'),
    });
  }
}

// prepare seeds products with stock for every order a run can place and
// signs up users, whose tokens the iterations share. The orders spread over
// the products and the users: each product's stock and each user's list of
// orders is one key written under an ETag, which concurrent orders of one
// product or one user contend for (docs/performance.md, Hot keys).
export function prepare(users, products = 10) {
  const ids = seedProducts(products, 1000000);
  const tokens = [];
  for (let i = 0; i < users; i++) {
    tokens.push(signUp());
  }
  return { ids, tokens };
}

// journey is one customer visit: browse the catalog, order, and follow the
// shipment of an earlier order.
export function journey(data) {
  browse(data.ids);
  order(data.tokens[Math.floor(Math.random() * data.tokens.length)], data.ids);
  track();
}

// env reads a number from the environment, with a default.
export function num(name, dflt) {
  const v = __ENV[name];
  if (v === undefined || v === '') {
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`${name}=${v}: must be a number, e.g. 30`);
  }
  return n;
}

// settle is the overload scenarios' teardown: it waits (up to SETTLE, 60s by
// default) until every order of the run's users is confirmed or cancelled,
// then takes each settled order off order_balance, counts what is still
// unsettled, any order listed twice and any confirmed order shipping has no
// shipment for. With order_balance's threshold
// count==0, an order a client was told about that the suite lost, or one
// it holds that no client was told about (made twice, or kept for a
// request that was answered as refused), fails the run.
export function settle(data) {
  const deadline = Date.now() + durationMs(__ENV.SETTLE || '60s');
  let lists = [];
  for (;;) {
    lists = data.tokens.map(listOrders);
    const open = lists.flat().filter((o) => o.status !== 'confirmed' && o.status !== 'cancelled').length;
    if (open === 0 || Date.now() > deadline) {
      break;
    }
    sleep(1);
  }
  const seen = {};
  let settled = 0;
  let open = 0;
  let twice = 0;
  let unshipped = 0;
  data.tokens.forEach((token, i) => {
    for (const o of lists[i]) {
      if (o.status === 'confirmed' && !hasShipment(token, o.id)) {
        unshipped++;
      }
    }
  });
  admission.shipmentsMissing.add(unshipped);
  for (const o of lists.flat()) {
    if (seen[o.id]) {
      twice++;
      continue;
    }
    seen[o.id] = true;
    if (o.status === 'confirmed' || o.status === 'cancelled') {
      settled++;
    } else {
      open++;
    }
  }
  admission.orderBalance.add(-settled);
  admission.ordersUnsettled.add(open);
  admission.ordersListedTwice.add(twice);
  console.log(`teardown: the suite lists ${settled} orders settled, ${open} not settled, ${twice} listed twice, ` +
    `${unshipped} confirmed without a shipment`);
}

// hasShipment reports whether shipping has a shipment for the order,
// asking again while the gateway refuses or shipping has not caught up.
function hasShipment(token, id) {
  for (let i = 0; i < 30; i++) {
    const res = http.get(`${API}/orders/${id}/shipment`, { headers: { Authorization: `Bearer ${token}` }, tags: { kind: 'teardown' } });
    if (res.status === 200) {
      return true;
    }
    sleep(Number(res.headers['Retry-After']) || 1);
  }
  return false;
}

// listOrders lists one user's orders, asking again while the gateway
// refuses (the suite is still busy with the run's last requests).
function listOrders(token) {
  for (let i = 0; i < 30; i++) {
    const res = http.get(`${API}/orders`, { headers: { Authorization: `Bearer ${token}` }, tags: { kind: 'teardown' } });
    if (res.status === 200) {
      return res.json().orders || [];
    }
    sleep(Number(res.headers['Retry-After']) || 1);
  }
  fail('listing orders kept failing');
}

// durationMs reads a duration as k6 writes them: 500ms, 60s, 1m30s, 2h.
export function durationMs(d) {
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(d) ? d.match(/\d+(?:\.\d+)?(?:ms|s|m|h)/g) : null;
  if (!parts) {
    fail(`not a duration: ${d}`);
  }
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  return parts.reduce((sum, p) => sum + Number(/[\d.]+/.exec(p)[0]) * unit[/[a-z]+$/.exec(p)[0]], 0);
}

// METRICS names each service's /metrics (name=url, comma-separated); by
// default the ports of dapr.yaml, as make run and tools/loadtest.sh start
// the suite.
const METRICS = (__ENV.METRICS ||
  'gateway=http://127.0.0.1:8080/metrics,orders=http://127.0.0.1:8081/metrics,payments=http://127.0.0.1:8082/metrics,' +
  'users=http://127.0.0.1:8083/metrics,products=http://127.0.0.1:8084/metrics,notifications=http://127.0.0.1:8085/metrics,' +
  'shipping=http://127.0.0.1:8086/metrics')
  .split(',').filter((s) => s).map((s) => s.split('='));

const rssLine = /^process_resident_memory_bytes(?:\{[^}]*\})?\s+(\S+)$/m;

// watchMemory is the function of a scenario that reads every service's
// resident memory (process_resident_memory_bytes) every 2 s into
// service_rss_mb, tagged with the service, so that a threshold on its max
// bounds every service's memory over the whole run.
export function watchMemory() {
  for (const [service, url] of METRICS) {
    const res = http.get(url, { tags: { kind: 'probe' }, timeout: '2s' });
    const m = res.status === 200 ? rssLine.exec(res.body) : null;
    if (check(m, { "every service's /metrics tells its resident memory": (v) => v !== null })) {
      admission.rss.add(Number(m[1]) / 1e6, { service });
    }
  }
  sleep(2);
}

// memoryThresholds bounds the resident memory of every service of METRICS:
// mb each, nodeMb for the services on Node.js (NODE_SERVICES, default
// shipping): Node.js alone is resident at 39 MB, shipping idles at about
// 55 and measured 70-75 under the overloads (docs/performance.md).
export function memoryThresholds(mb, nodeMb) {
  const node = (__ENV.NODE_SERVICES || 'shipping').split(',');
  const t = {};
  for (const [service] of METRICS) {
    t[`service_rss_mb{service:${service}}`] = [`max<${node.includes(service) ? nodeMb : mb}`];
  }
  return t;
}

// overload is what the overload scenarios (stress, spike) assert, at 4
// times the rate the suite sustains: what is admitted stays fast, what is
// not is refused at once and says when to come back, no other 5xx, every
// order a client was told about settled exactly once, and every service's
// memory bounded. A refusal is no failure of the suite (see
// expectRefusals), so http_req_failed counts only the rest.
// LATENCY=0 leaves the latency thresholds out and keeps the rest: make
// test runs the stress scenario so on a machine shared with other work
// (e2e TestK6Stress), where what is lost or duplicated is the suite's doing
// and a late refusal may be the machine's.
export const overload = {
  ...(__ENV.LATENCY === '0' ? {} : {
    admitted_order_duration: ['p(99)<250'],
    admitted_read_duration: ['p(99)<250'],
    refused_duration: ['p(99)<5'],
  }),
  orders_accepted: ['count>0'],
  server_errors: ['count==0'],
  order_balance: ['count==0'],
  orders_unsettled: ['count==0'],
  orders_listed_twice: ['count==0'],
  shipments_missing: ['count==0'],
  http_req_failed: ['rate<0.01'],
  checks: ['rate>0.99'],
  ...memoryThresholds(num('MAX_RSS_MB', 40), num('MAX_RSS_MB_NODE', 100)),
};

// expectRefusals makes k6 take the gateway's refusals (503, 429) as expected
// answers, not failed requests: observe tells them from a service's 503.
export function expectRefusals() {
  http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 429, 503));
}
