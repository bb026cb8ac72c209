// DOM helpers: every text goes in through textContent, never as HTML.

// el('tag.class#id', {attrs}, ...children): children are nodes, strings or arrays.
export function el (spec, attrs = {}, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/.exec(spec);
  const node = document.createElement(m ? m[1] : spec);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') node.classList.add(part.slice(1));
      else node.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') String(v).split(/\s+/).filter(Boolean).forEach((c) => node.classList.add(c));
    else if (k in node && typeof v !== 'string' && k !== 'list') node[k] = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

export function append (node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Korean first, English second: "청구서" + "Bills" -> 청구서 <span lang=en>Bills</span>
export function ko (korean, english) {
  return [korean + ' ', el('span', { lang: 'en' }, english)];
}

export function clear (node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function won (n) {
  if (n === null || n === undefined || n === '') return '—';
  return Number(n).toLocaleString('ko-KR') + '원';
}

export function num (n) {
  if (n === null || n === undefined || n === '') return '—';
  return Number(n).toLocaleString('ko-KR');
}

export function pct (part, whole) {
  if (!whole) return '—';
  return (100 * part / whole).toFixed(1) + '%';
}

// ISO time -> "2026-11-03 10:00:05" in the browser's zone (operators' clocks are KST).
export function when (iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function seconds (s) {
  if (s === null || s === undefined) return '—';
  const v = Number(s);
  if (v < 60) return v.toFixed(v < 10 ? 3 : 1) + ' s';
  const m = Math.floor(v / 60);
  return `${m} min ${Math.round(v - 60 * m)} s`;
}

// A table: cols = [{h: [ko, en] | string, cls, get: row -> node|string}]
export function table (cols, rows, opts = {}) {
  const thead = el('thead', {}, el('tr', {}, cols.map((c) =>
    el('th', { scope: 'col', class: c.cls }, Array.isArray(c.h) ? ko(c.h[0], c.h[1]) : c.h))));
  const tbody = el('tbody', {}, rows.map((r) =>
    el('tr', {}, cols.map((c) => el('td', { class: c.cls }, c.get(r))))));
  const t = el('table', { class: opts.class }, opts.caption ? el('caption', {}, opts.caption) : null, thead, tbody);
  if (!rows.length)
    tbody.append(el('tr', {}, el('td', { colspan: String(cols.length), class: 'muted' }, opts.empty || ko('없음', 'None'))));
  return el('div.scroll', { tabindex: '0', role: 'region', 'aria-label': opts.label || (Array.isArray(opts.caption) ? opts.caption.join(' ') : 'table') }, t);
}

export function badge (text, kind) {
  return el('span', { class: `badge ${kind || ''}` }, text);
}

// The badge class of a state name (RUNNING, DELIVERED, FAILED, ...).
export function stateBadge (state) {
  const s = String(state || '—');
  const kind = /FAIL|REJECT|PERMANENT|DOWN|STOPPED/.test(s) ? 'bad'
    : /DELIVER|DONE|COMPLETED|OK|UP|FINAL/.test(s) ? 'good'
      : /HELD|RETRY|RUNNING|SENDING|PENDING|FORWARD|RECEIVED|TRANSIENT|THROTTLED/.test(s) ? 'warn' : '';
  return badge(s, kind);
}

export function progress (done, total, label) {
  const d = Number(done) || 0;
  const t = Number(total) || 0;
  return el('span.progress', {},
    el('progress', { max: String(Math.max(t, 1)), value: String(Math.min(d, Math.max(t, 1))), 'aria-label': label }),
    el('span.small', {}, t ? `${num(d)} / ${num(t)} (${pct(d, t)})` : '—'));
}

export function section (title, ...children) {
  const id = 'h-' + Math.random().toString(36).slice(2, 9);
  return el('section.card', { 'aria-labelledby': id }, el('h2', { id }, title), children);
}

export function errorBox (err) {
  const msg = err && err.message ? err.message : String(err);
  return el('p.error', { role: 'alert' }, '오류 Error: ', msg);
}

export function kv (pairs) {
  return el('dl.kv', {}, pairs.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

export function toast (text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

export function field (label, input, hint) {
  const id = input.id || ('f-' + Math.random().toString(36).slice(2, 9));
  input.id = id;
  return el('div.field', {}, el('label', { for: id }, label), input, hint ? el('span.small.muted', {}, hint) : null);
}

// A period "YYYY-MM" of the month before today (the month a run settles).
export function lastMonth () {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 1);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

export const PERIOD_RE = /^[0-9]{4}-(0[1-9]|1[0-2])$/;

// node.append for children that may be null, false or nested arrays.
export function add (node, ...children) {
  return append(node, children);
}

// "한국어 English" as one plain string (attributes, hints).
export function koText (korean, english) {
  return `${korean} ${english}`;
}
