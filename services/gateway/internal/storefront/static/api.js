// api.js: the public API under /api, and the session that signs its calls.

// The session (the bearer token and whose it is) lives only in this module's
// memory. Never in localStorage or sessionStorage: any script that ever runs on
// this origin could read it from there, and it would outlive the tab on a
// shared computer. Never in a URL: it would land in the history, in logs and
// in Referer headers. Never in a cookie: the API takes bearer tokens, so it
// needs no CSRF defence, and a cookie would bring that need with it. The price
// is that a reload, or a new tab, signs out.
let session = null;

// Told when the API refuses the session's token (it expired): the session is
// already gone by then.
let onExpired = () => {};

/** APIError is an error of the API, in its error model: code, message, fields. */
export class APIError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

export function signIn(token, user) {
  session = { token, user };
}

export function signOut() {
  session = null;
}

/** user is the signed-in user ({id, email, name, role}), or null. */
export function user() {
  return session ? session.user : null;
}

export function whenExpired(f) {
  onExpired = f;
}

// How long a call may take before the page says the shop did not answer
// (the gateway's own timeouts are shorter: this is for one that hangs).
const TIMEOUT_MS = 15000;

// Calls that make a session, and so must not carry one: a wrong password
// typed while signed in is that, not the session's expiry.
const ANONYMOUS = new Set(['POST /login', 'POST /users']);

/**
 * request calls the API: method, a path under /api, a body to send as JSON
 * (undefined for none). It resolves to the reply's JSON (null when empty) and
 * rejects with an APIError holding the error model's message, or with the
 * AbortError of signal.
 */
export async function request(method, path, body, signal) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const sent = ANONYMOUS.has(`${method} ${path}`) ? null : session;
  if (sent) headers.Authorization = 'Bearer ' + sent.token;
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  let resp;
  let text;
  try {
    resp = await fetch('/api' + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
    text = await resp.text();
  } catch (e) {
    if (signal && signal.aborted) throw signal.reason;
    if (timeout.aborted) throw new APIError(0, 'unavailable', 'The shop did not answer in time. Try again in a moment.', []);
    throw new APIError(0, 'unavailable', 'The shop cannot be reached. Check your connection and try again.', []);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (resp.ok) return data;
  const e = data && typeof data === 'object' && data.error && typeof data.error.message === 'string' ? data.error : null;
  if (resp.status === 401 && sent && session === sent) {
    session = null;
    onExpired();
  }
  if (!e) throw new APIError(resp.status, 'internal', `The shop answered with status ${resp.status}.`, []);
  const fields = Array.isArray(e.fields) ? e.fields.filter((f) => f && typeof f.field === 'string' && typeof f.message === 'string') : [];
  throw new APIError(resp.status, String(e.code), e.message, fields);
}
