// app.js: the storefront, one page with a view per hash route (#/products,
// #/products/{id}, #/cart, #/orders, #/orders/{id}, #/notifications,
// #/login, #/signup, #/admin).
//
// Safe by construction: the page is built with createElement and
// textContent only, so whatever the API returns (a product named
// "<img src=x onerror=alert(1)>") is shown as those characters and never
// parsed as HTML. IDs are checked against their pattern before they go into
// a link or a path. The Content-Security-Policy allows no inline script or
// style, so nothing here sets one.

import * as api from './api.js';

const PAGE = 12;
const ID = { product: /^prd_[0-9a-f]{24}$/, order: /^ord_[0-9a-f]{24}$/ };
// Product IDs inside a text (a cancel reason): ID.product without its anchors.
const PRODUCT_IDS = new RegExp(ID.product.source.slice(1, -1), 'g');

// The cart: product ID -> {product, quantity}, in memory like the session.
const cart = new Map();

// Where to go once signed in, when a view asked for a session.
let afterLogin = '#/products';

// ---- DOM helpers --------------------------------------------------------

/**
 * el makes an element: attrs are attributes (class, text for textContent,
 * on<event> for listeners, true for a bare attribute); children are nodes or
 * strings, added as text.
 */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c);
  }
  return e;
}

const $ = (sel) => document.querySelector(sel);

function announce(msg) {
  const a = $('#announce');
  a.textContent = '';
  // A fresh text node, a moment later, so that the same message twice is
  // announced twice.
  setTimeout(() => {
    a.textContent = msg;
  }, 50);
}

function money(amount, currency) {
  // An order cancelled before it was priced (out of stock) has no currency.
  if (!currency) return '—';
  try {
    const f = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    return f.format(amount / 10 ** f.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${amount} ${currency}`;
  }
}

function minorDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

function when(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? String(s) : d.toLocaleString();
}

/** errorBox shows err (an APIError) as the error model's message and fields. */
function errorBox(err) {
  const box = el('div', { class: 'error', role: 'alert' }, el('p', { text: err.message || 'Something went wrong.' }));
  // Each field's own message, unless it is the message already.
  const lines = (err.fields || []).map((f) => `${f.field}: ${f.message}`).filter((l) => l !== err.message);
  if (lines.length) box.append(el('ul', {}, ...lines.map((l) => el('li', { text: l }))));
  return box;
}

/**
 * failed shows err in place of the view's "Loading…", with a button that
 * draws the view again (the same link would not: its address is the same).
 */
function failed(wait, err) {
  wait.replaceWith(errorBox(err), el('button', { type: 'button', class: 'secondary', text: 'Try again', onclick: () => route() }));
}

/** showFormError fills a static form's error box and marks the fields named. */
function showFormError(form, err) {
  const box = form.querySelector('.error');
  // The message names the fields; each field's own message goes under it.
  box.replaceChildren(...(err ? errorBox(err).childNodes : []));
  box.hidden = !err;
  for (const input of form.querySelectorAll('input, select, textarea')) {
    const named = err && err.fields && err.fields.some((f) => f.field === input.name);
    if (named) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
  if (err) box.focus();
}

function showFormOK(form, msg) {
  const p = form.querySelector('.ok');
  p.textContent = msg || '';
  p.hidden = !msg;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new DOMException('left the view', 'AbortError'));
    }, { once: true });
  });
}

function productLink(p) {
  return ID.product.test(p.id) ? '#/products/' + p.id : '#/products';
}

// ---- views --------------------------------------------------------------

// The view on screen: its abort signal stops its requests and polling when
// another view replaces it.
let current = null;

/** page shows the dynamic view with a heading and returns its section. */
function page(title) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = true;
  const sec = $('#view-dynamic');
  sec.replaceChildren(el('h1', { tabindex: '-1', id: 'view-title', text: title }));
  sec.setAttribute('aria-labelledby', 'view-title');
  sec.hidden = false;
  document.title = `${title} · daprshop`;
  return sec;
}

function staticView(id, title) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== id;
  document.title = `${title} · daprshop`;
  return document.getElementById(id);
}

function loading(sec) {
  const p = el('p', { class: 'muted', role: 'status', text: 'Loading…' });
  sec.append(p);
  return p;
}

function needSession(sec) {
  afterLogin = location.hash;
  sec.append(el('p', {}, 'Please ', el('a', { href: '#/login', text: 'log in' }), ' or ', el('a', { href: '#/signup', text: 'sign up' }), ' first.'));
}

async function productsView(signal, offsetText) {
  const offset = Number(offsetText || 0);
  const sec = page('Products');
  const wait = loading(sec);
  let list;
  try {
    list = await api.request('GET', `/products?offset=${offset}&limit=${PAGE}`, undefined, signal);
  } catch (e) {
    failed(wait, e);
    throw e;
  }
  wait.remove();
  const items = Array.isArray(list.products) ? list.products : [];
  const total = Number(list.total) || 0;
  if (!items.length && offset > 0 && total > 0) {
    // Past the end (an old link, a catalog that shrank): the last page is
    // where to go, not one more empty one before this.
    const last = Math.floor((total - 1) / PAGE) * PAGE;
    sec.append(el('p', {}, 'There are no products this far. ', el('a', { href: `#/products?offset=${last}`, text: 'Go to the last page' }), '.'));
    return;
  }
  if (!items.length) sec.append(el('p', { text: 'The catalog is empty.' }));
  sec.append(el('ul', { class: 'cards' }, ...items.map((p) => el('li', { class: 'card' },
    el('h2', {}, el('a', { href: productLink(p), text: p.name })),
    el('p', { class: 'price', text: money(p.price, p.currency) }),
    el('p', { class: 'stock', text: p.stock > 0 ? `${p.stock} in stock` : 'Out of stock' }),
    addButton(p),
  ))));
  const pager = el('nav', { class: 'pager', 'aria-label': 'Catalog pages' });
  if (offset > 0) pager.append(el('a', { href: `#/products?offset=${Math.max(0, offset - PAGE)}`, text: '← Previous' }));
  if (items.length) pager.append(el('span', { text: `${offset + 1}–${offset + items.length} of ${total}` }));
  if (Number.isInteger(list.next_offset)) pager.append(el('a', { href: `#/products?offset=${list.next_offset}`, text: 'Next →' }));
  sec.append(pager);
}

async function productView(signal, id) {
  const sec = page('Product');
  const wait = loading(sec);
  let p;
  try {
    p = await api.request('GET', '/products/' + id, undefined, signal);
  } catch (e) {
    failed(wait, e);
    throw e;
  }
  wait.remove();
  sec.querySelector('h1').textContent = p.name;
  document.title = `${p.name} · daprshop`;
  const inCart = held(p);
  // append() would write a null as the text "null": no description, no line.
  if (p.description) sec.append(el('p', { class: 'description', text: p.description }));
  sec.append(
    el('p', { class: 'price', text: money(p.price, p.currency) }),
    el('p', { class: 'stock', id: 'product-stock-level', text: p.stock > 0 ? `${p.stock} in stock` : 'Out of stock' }),
  );
  const room = limitOf(p) - inCart;
  if (p.stock > 0 && room <= 0) {
    sec.append(el('p', {}, `The cart holds all ${inCart} that can be ordered. `, el('a', { href: '#/cart', text: 'See the cart' }), '.'));
  } else if (p.stock > 0) {
    const qty = el('input', { id: 'add-quantity', name: 'quantity', type: 'number', min: 1, max: room, step: 1, value: 1, required: true });
    const problem = el('p', { class: 'error', role: 'alert', hidden: true });
    const form = el('form', { class: 'form inline', novalidate: true },
      el('label', { for: 'add-quantity', text: 'Quantity' }), qty,
      el('button', { type: 'submit', text: 'Add to cart' }));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const n = Number(qty.value);
      if (qty.value === '' || !Number.isInteger(n) || n < 1 || n > room) {
        problem.textContent = room === 1 ? 'Only 1 can be added.' : `Choose a quantity from 1 to ${room}.`;
        problem.hidden = false;
        qty.setAttribute('aria-invalid', 'true');
        qty.focus();
        return;
      }
      addToCart(p, n);
      location.hash = '#/cart';
    });
    sec.append(form, problem);
  }
  sec.append(el('p', {}, el('a', { href: '#/products', text: '← Back to the catalog' })));
}

/** held is how many of p the cart holds. */
function held(p) {
  return cart.has(p.id) ? cart.get(p.id).quantity : 0;
}

/** limitOf is the most of p one order may ask: its stock, 1000 at most. */
function limitOf(p) {
  return Math.max(0, Math.min(Number(p.stock) || 0, 1000));
}

/** addButton adds one of p from the catalog, until the cart holds its stock. */
function addButton(p) {
  const b = el('button', { type: 'button', text: 'Add to cart', 'aria-label': `Add ${p.name} to cart` });
  b.disabled = held(p) >= limitOf(p);
  b.addEventListener('click', () => {
    if (held(p) >= limitOf(p)) return;
    addToCart(p, 1);
    b.disabled = held(p) >= limitOf(p);
    if (b.disabled) announce(`The cart holds all ${held(p)} of ${p.name} in stock.`);
  });
  return b;
}

function addToCart(p, n) {
  const line = cart.get(p.id) || { product: p, quantity: 0 };
  line.product = p;
  line.quantity = Math.min(limitOf(p), line.quantity + n);
  cart.set(p.id, line);
  updateNav();
  announce(`Added ${n} × ${p.name} to the cart.`);
}

function cartView(signal) {
  const sec = page('Cart');
  if (!cart.size) {
    sec.append(el('p', {}, 'The cart is empty. ', el('a', { href: '#/products', text: 'Browse the catalog' }), '.'));
    return;
  }
  const list = el('ul', { class: 'lines' });
  let i = 0;
  for (const [id, line] of cart) {
    const inputID = `cart-qty-${i++}`;
    const most = Math.max(1, limitOf(line.product));
    const qty = el('input', { id: inputID, type: 'number', min: 1, max: most, step: 1, value: line.quantity });
    qty.addEventListener('change', () => {
      const n = Number(qty.value);
      if (qty.value !== '' && Number.isInteger(n) && n >= 1 && n <= most) {
        line.quantity = n;
        updateNav();
        sum.textContent = totals();
      } else {
        qty.value = line.quantity;
      }
    });
    list.append(el('li', { class: 'line' },
      el('a', { href: productLink(line.product), text: line.product.name }),
      el('span', { class: 'price', text: money(line.product.price, line.product.currency) }),
      el('span', { class: 'qty' }, el('label', { for: inputID }, 'Quantity', el('span', { class: 'visually-hidden', text: ` of ${line.product.name}` })), qty),
      el('button', { type: 'button', class: 'secondary', onclick: () => { cart.delete(id); updateNav(); announce(`Removed ${line.product.name}.`); cartView(signal); focusTitle(); } },
        'Remove', el('span', { class: 'visually-hidden', text: ` ${line.product.name}` })),
    ));
  }
  const sum = el('p', { class: 'total', text: totals() });
  const result = el('div');
  const place = el('button', { type: 'button', text: 'Place order' });
  place.addEventListener('click', async () => {
    // One order per press: a second click event (a script's, or one
    // dispatched to the disabled button) must not send a second one.
    if (place.disabled) return;
    result.replaceChildren();
    if (!api.user()) {
      afterLogin = '#/cart';
      result.append(el('p', { role: 'alert' }, 'Please ', el('a', { href: '#/login', text: 'log in' }), ' or ', el('a', { href: '#/signup', text: 'sign up' }), ' to place the order.'));
      return;
    }
    place.disabled = true;
    place.textContent = 'Placing the order…';
    try {
      const items = [...cart].map(([productID, l]) => ({ product_id: productID, quantity: l.quantity }));
      const o = await api.request('POST', '/orders', { items }, signal);
      cart.clear();
      updateNav();
      announce(o.status === 'cancelled' ? 'The order was placed and cancelled.' : 'Order placed.');
      location.hash = ID.order.test(o.id) ? '#/orders/' + o.id : '#/orders';
    } catch (e) {
      if (e.name === 'AbortError') return;
      place.disabled = false;
      place.textContent = 'Place order';
      result.append(errorBox(e));
    }
  });
  sec.append(list, sum, place, result);
}

function totals() {
  const by = new Map();
  for (const { product, quantity } of cart.values()) by.set(product.currency, (by.get(product.currency) || 0) + product.price * quantity);
  return 'Total: ' + [...by].map(([c, amount]) => money(amount, c)).join(' + ');
}

async function ordersView(signal) {
  const sec = page('Your orders');
  if (!api.user()) return needSession(sec);
  const wait = loading(sec);
  let list;
  try {
    list = await api.request('GET', '/orders', undefined, signal);
  } catch (e) {
    failed(wait, e);
    throw e;
  }
  wait.remove();
  const orders = Array.isArray(list.orders) ? list.orders : [];
  if (!orders.length) {
    sec.append(el('p', {}, 'No orders yet. ', el('a', { href: '#/products', text: 'Browse the catalog' }), '.'));
    return;
  }
  sec.append(el('ul', { class: 'lines orders' }, ...orders.map((o) => el('li', { class: 'line' },
    el('a', { href: ID.order.test(o.id) ? '#/orders/' + o.id : '#/orders', text: `Order ${o.id}` }),
    el('span', { text: when(o.created_at) }),
    el('span', { class: `badge status-${o.status}`, text: o.status }),
    el('span', { class: 'price', text: money(o.total, o.currency) }),
  ))));
}

const FINAL = new Set(['confirmed', 'cancelled']);
const STATUS_TEXT = {
  pending: 'Placed: waiting for the payment…',
  paid: 'Paid: waiting for confirmation…',
  confirmed: 'Confirmed.',
  cancelled: 'Cancelled.',
};

async function orderView(signal, id) {
  const sec = page('Order');
  if (!api.user()) return needSession(sec);
  const status = el('p', { id: 'order-status', class: 'status', role: 'status', 'aria-live': 'polite', text: 'Loading…' });
  const problem = el('div');
  const details = el('div');
  const actions = el('div');
  const shipment = el('section', { 'aria-labelledby': 'shipment-title', hidden: true },
    el('h2', { id: 'shipment-title', text: 'Shipment' }));
  sec.append(status, problem, details, actions, shipment);

  let shown = '';
  let o = null;
  const show = (order) => {
    o = order;
    let text = STATUS_TEXT[o.status] || `Status: ${o.status}`;
    if (o.status === 'cancelled' && o.cancel_reason) text = `Cancelled: ${o.cancel_reason}`;
    if (text !== shown) {
      status.textContent = text;
      status.className = `status status-${o.status}`;
      shown = text;
      withProductNames(status, text, signal);
    }
    details.replaceChildren(orderDetails(o, signal));
    actions.replaceChildren();
    if (o.status === 'pending' || o.status === 'paid') {
      const cancel = el('button', { type: 'button', class: 'secondary', text: 'Cancel order' });
      cancel.addEventListener('click', async () => {
        cancel.disabled = true;
        problem.replaceChildren();
        try {
          show(await api.request('POST', `/orders/${id}/cancel`, undefined, signal));
          status.focus();
        } catch (e) {
          if (e.name === 'AbortError') return;
          cancel.disabled = false;
          problem.replaceChildren(errorBox(e));
        }
      });
      actions.append(cancel);
    }
  };

  // Watch the order until it is confirmed or cancelled: once a second, the
  // API having no push. A failed read says why and tries again.
  for (;;) {
    try {
      show(await api.request('GET', '/orders/' + id, undefined, signal));
      problem.replaceChildren();
    } catch (e) {
      if (e.name === 'AbortError') return;
      problem.replaceChildren(errorBox(e));
      if (e.status === 404 || e.status === 401 || e.status === 403) {
        status.textContent = '';
        return;
      }
    }
    if (o && FINAL.has(o.status)) break;
    await sleep(1000, signal);
  }
  if (o.status === 'confirmed') await watchShipment(signal, id, shipment);
}

function orderDetails(o, signal) {
  const items = el('ul', { class: 'items' });
  for (const it of Array.isArray(o.items) ? o.items : []) {
    const name = el('span', { text: it.product_id });
    const li = el('li', {}, ID.product.test(it.product_id) ? el('a', { href: '#/products/' + it.product_id }, name) : name,
      ` × ${it.quantity}`, it.unit_price ? ` at ${money(it.unit_price, o.currency)}` : '');
    items.append(li);
    productName(it.product_id, signal).then((n) => { if (n) name.textContent = n; }, () => {});
  }
  return el('dl', { class: 'facts' },
    el('dt', { text: 'Order' }), el('dd', { text: o.id }),
    el('dt', { text: 'Placed' }), el('dd', { text: when(o.created_at) }),
    el('dt', { text: 'Total' }), el('dd', { text: money(o.total, o.currency) }),
    el('dt', { text: 'Items' }), el('dd', {}, items));
}

/**
 * withProductNames shows text in node with every product ID in it replaced,
 * once known, by the product's name in quotes ("out of stock: prd_…" names
 * the product the customer chose), as text like the rest.
 */
function withProductNames(node, text, signal) {
  const ids = [...new Set(text.match(PRODUCT_IDS) || [])];
  if (!ids.length) return;
  Promise.all(ids.map((id) => productName(id, signal).catch(() => ''))).then((found) => {
    if (node.textContent !== text) return; // replaced since
    let named = text;
    ids.forEach((id, i) => { if (found[i]) named = named.replaceAll(id, `“${found[i]}”`); });
    node.textContent = named;
  });
}

/** named shows the product IDs in node's text by their names, once known, and returns node. */
function named(node) {
  withProductNames(node, node.textContent, current && current.signal);
  return node;
}

const names = new Map();
function productName(id, signal) {
  if (!ID.product.test(id)) return Promise.resolve('');
  if (!names.has(id)) {
    const p = api.request('GET', '/products/' + id, undefined, signal).then((p) => p.name);
    p.catch(() => names.delete(id));
    names.set(id, p);
  }
  return names.get(id);
}

const SHIPMENT_TEXT = {
  label_created: 'Label created',
  shipped: 'Shipped',
  delivered: 'Delivered',
  cancelled: 'Cancelled',
};

// watchShipment shows the order's shipment: shipping makes it once the order
// is confirmed (a 404 until then), then moves it on to shipped and delivered.
async function watchShipment(signal, id, box) {
  box.hidden = false;
  const state = el('p', { id: 'shipment-status', role: 'status', 'aria-live': 'polite', text: 'Preparing the shipment…' });
  const body = el('div');
  box.append(state, body);
  let shown = '';
  for (let tries = 0; tries < 300; tries++) {
    try {
      const s = await api.request('GET', `/orders/${id}/shipment`, undefined, signal);
      const text = SHIPMENT_TEXT[s.status] || s.status;
      if (text !== shown) {
        state.textContent = `Shipment: ${text}`;
        shown = text;
      }
      body.replaceChildren(el('dl', { class: 'facts' },
        el('dt', { text: 'Tracking number' }), el('dd', { text: s.tracking_number }),
        el('dt', { text: 'Recipient' }), el('dd', { text: s.recipient })),
      el('ol', { class: 'history' }, ...(Array.isArray(s.history) ? s.history : []).map((h) =>
        el('li', { text: `${SHIPMENT_TEXT[h.status] || h.status}, ${when(h.at)}` }))));
      if (s.status === 'delivered' || s.status === 'cancelled') return;
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status !== 404) body.replaceChildren(errorBox(e));
    }
    await sleep(tries < 30 ? 1000 : 5000, signal);
  }
}

async function notificationsView(signal) {
  const sec = page('Notifications');
  if (!api.user()) return needSession(sec);
  const wait = loading(sec);
  let list;
  try {
    list = await api.request('GET', '/notifications', undefined, signal);
  } catch (e) {
    failed(wait, e);
    throw e;
  }
  wait.remove();
  const notes = Array.isArray(list.notifications) ? list.notifications : [];
  if (!notes.length) {
    sec.append(el('p', { text: 'No notifications yet.' }));
  }
  sec.append(el('ul', { class: 'lines notes' }, ...notes.map((n) => el('li', { class: 'line' },
    named(el('span', { class: 'message', text: n.message })),
    el('span', { class: 'muted', text: when(n.created_at) }),
    ID.order.test(n.order_id) ? el('a', { href: '#/orders/' + n.order_id, text: 'See the order' }) : null,
  ))));
  sec.append(el('button', { type: 'button', class: 'secondary', text: 'Refresh', onclick: () => route() }));
}

function loginView() {
  const sec = staticView('view-login', 'Log in');
  // What an earlier visit typed (a password too) is not kept.
  $('#login-form').reset();
  showFormError($('#login-form'), null);
  return sec;
}

function signupView() {
  const sec = staticView('view-signup', 'Sign up');
  // What an earlier visit typed (a password too) is not kept.
  $('#signup-form').reset();
  showFormError($('#signup-form'), null);
  return sec;
}

async function adminView(signal) {
  const u = api.user();
  if (!u || u.role !== 'admin') {
    const sec = page('Admin');
    if (!u) return needSession(sec);
    sec.append(el('p', { role: 'alert', text: 'Only admins may change the catalog.' }));
    return;
  }
  staticView('view-admin', 'Admin');
  await fillStockChoices(signal);
}

async function fillStockChoices(signal, keep) {
  const select = $('#stock-product');
  const form = $('#stock-form');
  try {
    // Every product, a page of 200 (the API's most) at a time.
    const all = [];
    for (let offset = 0, pages = 0; offset !== null && pages < 100; pages++) {
      const list = await api.request('GET', `/products?limit=200&offset=${offset}`, undefined, signal);
      all.push(...(Array.isArray(list.products) ? list.products : []));
      offset = Number.isInteger(list.next_offset) && list.next_offset > offset ? list.next_offset : null;
    }
    const prev = keep || select.value;
    select.replaceChildren(...all.filter((p) => ID.product.test(p.id)).map((p) =>
      el('option', { value: p.id, text: `${p.name} (stock ${p.stock})` })));
    if (prev) select.value = prev;
    if (!select.value && select.options.length) select.selectedIndex = 0;
  } catch (e) {
    if (e.name !== 'AbortError') showFormError(form, e);
  }
}

// ---- forms ---------------------------------------------------------------

async function submitting(form, f) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  showFormError(form, null);
  if (form.querySelector('.ok')) showFormOK(form, '');
  try {
    await f();
  } catch (e) {
    if (e.name !== 'AbortError') showFormError(form, e);
  } finally {
    button.disabled = false;
  }
}

async function logIn(email, password) {
  const t = await api.request('POST', '/login', { email, password });
  const before = api.user();
  // Another customer on the same page does not get the first one's cart.
  if (before && before.id !== t.user.id) cart.clear();
  api.signIn(t.token, t.user);
  updateNav();
  announce(`Signed in as ${t.user.name}.`);
  const next = afterLogin;
  afterLogin = '#/products';
  location.hash = next === location.hash ? '#/products' : next;
}

function wireForms() {
  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    submitting(form, async () => {
      await logIn(form.elements.email.value.trim(), form.elements.password.value);
      form.reset();
    });
  });
  $('#signup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    submitting(form, async () => {
      const email = form.elements.email.value.trim();
      await api.request('POST', '/users', { email, password: form.elements.password.value, name: form.elements.name.value.trim() });
      await logIn(email, form.elements.password.value);
      form.reset();
    });
  });
  $('#product-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    submitting(form, async () => {
      const currency = form.elements.currency.value;
      const digits = minorDigits(currency);
      const price = parsePrice(form.elements.price.value, digits);
      if (price === null) {
        const like = digits ? `like 12.${'50'.padEnd(digits, '0').slice(0, digits)}, at most ${digits} digits after the point` : 'in whole units, like 1200';
        throw new api.APIError(400, 'invalid', 'invalid product: price', [{ field: 'price', message: `must be an amount in ${currency} ${like}` }]);
      }
      const stock = wholeNumber(form, 'stock', 'product');
      const p = await api.request('POST', '/products', {
        name: form.elements.name.value, description: form.elements.description.value || undefined,
        price, currency, stock,
      });
      form.reset();
      showFormOK(form, `Added “${p.name}”.`);
      announce(`Added product ${p.name}.`);
      await fillStockChoices(current && current.signal, p.id);
    });
  });
  $('#stock-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    submitting(form, async () => {
      const id = form.elements.product.value;
      if (!ID.product.test(id)) throw new api.APIError(400, 'invalid', 'Choose a product.', []);
      const p = await api.request('PUT', `/products/${id}/stock`, { stock: wholeNumber(form, 'stock', 'stock') });
      showFormOK(form, `The stock of “${p.name}” is now ${p.stock}.`);
      announce(`Stock set to ${p.stock}.`);
      await fillStockChoices(current && current.signal, p.id);
    });
  });
  $('#logout').addEventListener('click', () => {
    api.signOut();
    cart.clear();
    updateNav();
    announce('Signed out.');
    location.hash = '#/products';
  });
  $('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('#main').focus();
  });
}

/**
 * wholeNumber is the form's field name as a whole number from 0 up, or
 * throws a field error about what the form sends: an empty field (or one a
 * number input cannot read, which it also gives as "") is not 0.
 */
function wholeNumber(form, name, what) {
  const text = form.elements[name].value.trim();
  if (!/^\d{1,9}$/.test(text)) {
    throw new api.APIError(400, 'invalid', `invalid ${what}: ${name}`, [{ field: name, message: 'must be a whole number from 0 up' }]);
  }
  return Number(text);
}

/** parsePrice reads "12.50" as 1250 minor units (digits after the point). */
function parsePrice(text, digits) {
  const m = /^\s*(\d{1,9})(?:[.,](\d+))?\s*$/.exec(text);
  if (!m || (m[2] || '').length > digits) return null;
  return Number(m[1]) * 10 ** digits + Number((m[2] || '').padEnd(digits, '0') || 0);
}

// ---- navigation -------------------------------------------------------------

function updateNav() {
  const u = api.user();
  for (const e of document.querySelectorAll('.signed-in')) e.hidden = !u;
  for (const e of document.querySelectorAll('.signed-out')) e.hidden = !!u;
  for (const e of document.querySelectorAll('.admin-only')) e.hidden = !u || u.role !== 'admin';
  $('#whoami').textContent = u ? u.name : '';
  let n = 0;
  for (const l of cart.values()) n += l.quantity;
  $('#nav-cart').textContent = n ? `Cart (${n})` : 'Cart';
}

const ROUTES = [
  [/^#\/products\/(prd_[0-9a-f]{24})$/, productView],
  [/^#\/products(?:\?offset=(\d{1,9}))?$/, productsView],
  [/^#\/cart$/, cartView],
  [/^#\/orders\/(ord_[0-9a-f]{24})$/, orderView],
  [/^#\/orders$/, ordersView],
  [/^#\/notifications$/, notificationsView],
  [/^#\/login$/, loginView],
  [/^#\/signup$/, signupView],
  [/^#\/admin$/, adminView],
];

function focusTitle() {
  const h = [...document.querySelectorAll('main > section')].find((s) => !s.hidden)?.querySelector('h1');
  if (h) h.focus();
}

let first = true;

function route() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const hash = location.hash || '#/products';
  let view = null;
  let args = [];
  for (const [re, v] of ROUTES) {
    const m = re.exec(hash === '#' || hash === '#/' ? '#/products' : hash);
    if (m) {
      view = v;
      args = m.slice(1);
      break;
    }
  }
  for (const a of document.querySelectorAll('.nav a')) {
    if (hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // A view that needs a session sets where to go after signing in as it
  // draws; any other view but the forms forgets it (signing up later, from
  // the catalog, stays in the catalog).
  if (view !== loginView && view !== signupView) afterLogin = '#/products';
  let done;
  if (!view) {
    const sec = page('Not found');
    sec.append(el('p', {}, 'There is no such page. ', el('a', { href: '#/products', text: 'Browse the catalog' }), '.'));
    done = Promise.resolve();
  } else {
    // Called at once (an async wrapper turns a throw into a rejection): every
    // view draws its heading before its first await, for the focus below.
    done = (async () => view(signal, ...args))();
  }
  // Move the focus to the new view's heading, so that keyboard and screen
  // reader users start there; not on the first load, where the page starts.
  if (!first) focusTitle();
  first = false;
  done.catch((e) => {
    if (e && e.name !== 'AbortError' && !(e instanceof api.APIError)) {
      console.error(e);
    }
  });
}

api.whenExpired(() => {
  updateNav();
  announce('Your session expired: please log in again.');
  afterLogin = location.hash;
  location.hash = '#/login';
});

wireForms();
updateNav();
window.addEventListener('hashchange', route);
route();
