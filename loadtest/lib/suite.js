// Shared options, data and journeys of the suite's k6 scripts. Every script
// drives the public API of the gateway (BASE_URL, default
// http://127.0.0.1:8080) and stops by itself.
import http from 'k6/http';
import { check, fail } from 'k6';

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

// browse reads the catalog and one product.
export function browse(ids) {
  const list = http.get(`${API}/products`, { tags: { kind: 'read' } });
  check(list, { 'catalog is 200': (r) => r.status === 200 });
  const id = ids[Math.floor(Math.random() * ids.length)];
  const one = http.get(`${API}/products/${id}`, { tags: { kind: 'read' } });
  check(one, { 'product is 200': (r) => r.status === 200 });
}

// order places an order for one unit of a random product and checks it paid.
export function order(token, ids) {
  const id = ids[Math.floor(Math.random() * ids.length)];
  const res = http.post(`${API}/orders`, JSON.stringify({ items: [{ product_id: id, quantity: 1 }] }), authed(token, 'write'));
  check(res, {
    'order is 201': (r) => r.status === 201,
    'order is paid': (r) => r.status === 201 && r.json().status === 'paid',
  });
}

// prepare seeds products with stock for every order a run can place and
// signs up users, whose tokens the iterations share.
export function prepare(users) {
  const ids = seedProducts(5, 1000000);
  const tokens = [];
  for (let i = 0; i < users; i++) {
    tokens.push(signUp());
  }
  return { ids, tokens };
}

// journey is one customer visit: browse the catalog, then order.
export function journey(data) {
  browse(data.ids);
  order(data.tokens[Math.floor(Math.random() * data.tokens.length)], data.ids);
}

// env reads a number from the environment, with a default.
export function num(name, dflt) {
  const v = __ENV[name];
  return v === undefined || v === '' ? dflt : Number(v);
}
