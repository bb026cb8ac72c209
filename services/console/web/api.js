// The console's JSON API (services/console/README.md): session, queries, commands.
// Every request is same-origin; the session cookie is HttpOnly, so the page only
// ever holds the CSRF token, which it sends on every POST.

export const session = { name: null, role: null, csrf: null };

export class ApiError extends Error {
  constructor (status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function s_json (res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(res.status, `알 수 없는 응답 unreadable answer (HTTP ${res.status})`);
  }
}

// Any 401 means the session is gone: the app listens and shows the login page.
function s_check (res, body) {
  if (res.ok) return body;
  if (res.status === 401) {
    session.name = session.role = session.csrf = null;
    window.dispatchEvent(new CustomEvent('bf-logged-out'));
  }
  const msg = body && body.error ? body.error : `HTTP ${res.status}`;
  throw new ApiError(res.status, msg, res.headers.get('Retry-After'));
}

export async function me () {
  const res = await fetch('/api/me', { credentials: 'same-origin' });
  if (res.status === 401) return null;
  const body = s_check(res, await s_json(res));
  Object.assign(session, { name: body.name, role: body.role, csrf: body.csrf });
  return body;
}

export async function login (name, password) {
  const res = await fetch('/api/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, password })
  });
  const body = await s_json(res);
  if (!res.ok) {
    const msg = body && body.error ? body.error : `HTTP ${res.status}`;
    throw new ApiError(res.status, msg, res.headers.get('Retry-After'));
  }
  Object.assign(session, { name: body.name, role: body.role, csrf: body.csrf });
  return body;
}

export async function logout () {
  const res = await fetch('/api/logout', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-CSRF-Token': session.csrf || '' }
  });
  session.name = session.role = session.csrf = null;
  if (!res.ok && res.status !== 401) throw new ApiError(res.status, `HTTP ${res.status}`);
}

// A session over its rate (console.session_rate) is answered 429 before its
// request reaches control: ask again after the Retry-After it names (at most
// 10 s, at most 3 times) so that a long "retry selected" slows down instead
// of failing half-way; a command keeps its id, so asking again is safe.
const s_tooManyTries = 3;

async function s_fetchPaced (url, init) {
  for (let i = 0; ; i++) {
    const res = await fetch(url, init);
    if (res.status !== 429 || i >= s_tooManyTries) return res;
    const wait = Math.min(Math.max(Number(res.headers.get('Retry-After')) || 1, 1), 10);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

// GET /api/query/VERB?args: control's result document.
// With { post: true }: POST /api/query/VERB with {"args": {...}} (and the CSRF
// token) instead, for arguments that must never be in a URL (an email or a
// phone: proxies and ingresses log query strings).
export async function query (verb, args = {}, { post = false } = {}) {
  const kept = {};
  for (const [k, v] of Object.entries(args))
    if (v !== undefined && v !== null && v !== '') kept[k] = String(v);
  const path = `/api/query/${encodeURIComponent(verb)}`;
  let res;
  if (post) {
    res = await s_fetchPaced(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf || '' },
      body: JSON.stringify({ args: kept })
    });
  } else {
    const qs = new URLSearchParams(kept).toString();
    res = await s_fetchPaced(qs ? `${path}?${qs}` : path, { credentials: 'same-origin' });
  }
  return s_check(res, await s_json(res));
}

// POST /api/command/VERB with the command id made when the dialog opened.
export async function command (verb, args, commandId) {
  const res = await s_fetchPaced(`/api/command/${encodeURIComponent(verb)}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf || '' },
    body: JSON.stringify({ command_id: commandId, args })
  });
  return s_check(res, await s_json(res));
}

export function canAct () {
  return session.role === 'operator';
}

// A UUID v4: crypto.randomUUID where the page is a secure context, else the
// same from crypto.getRandomValues (plain http to a host other than localhost).
export function newCommandId () {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
