// Subscriber: find one by id, or by an exact email or phone (control looks
// it up through the contact's keyed hash), then the timeline — every bill,
// opening to its itemised statement, every notice with every attempt. The
// page shows contacts only as control masked them.

import { query } from './api.js';
import { el, clear, ko, table, num, won, when, section, stateBadge, errorBox, field, kv, add } from './ui.js';

export function title (arg) { return `가입자 Subscriber ${arg || ''}`; }
export function billTitle (arg) { return `청구서 Bill ${arg || ''}`; }

function s_card (s) {
  return kv([
    [ko('가입자 ID', 'Subscriber id'), String(s.subscriber_id)],
    [ko('이메일', 'Email'), el('span.masked', {}, s.email || '—')],
    [ko('전화', 'Phone'), el('span.masked', {}, s.phone || '—')],
    [ko('푸시', 'Push'), s.push ? 'yes' : 'no'],
    [ko('채널', 'Channels'), (s.channels || []).join(', ') || '—'],
    [ko('가입일', 'Activated'), s.activated_on || '—'],
    [ko('해지일', 'Terminated'), s.terminated_on || '—']
  ]);
}

// Notices, one block per channel, each with its attempts, newest first.
export function noticesBlock (notices) {
  if (!notices || !notices.length) return el('p.muted', {}, ...ko('통지 없음', 'No notices'));
  const byChannel = {};
  for (const n of notices) (byChannel[n.channel] = byChannel[n.channel] || []).push(n);
  return Object.keys(byChannel).sort().map((ch) => el('div.channel', {},
    el('h4', {}, ch),
    byChannel[ch].map((n) => el('div.notice', {},
      el('p', {}, `#${n.id} `, stateBadge(n.state), ' · ', ko('연락처', 'contact'), ': ', el('span.masked', {}, n.contact || '—'),
        ` · ${num(n.attempts)} `, ko('회 시도', 'attempts'),
        n.fallback_of ? [' · ', ko('대체 발송', 'fallback of'), ` #${n.fallback_of}`] : null,
        n.hold_reason ? [' · ', ko('보류', 'held'), `: ${n.hold_reason}`] : null,
        n.last_error ? [' · ', ko('오류', 'error'), `: ${n.last_error}`] : null),
      table([
        { h: ['회차', 'Attempt'], cls: 'n', get: (a) => String(a.attempt_no) },
        { h: ['발송 형식', 'Sent as'], get: (a) => a.sent_as || '—' },
        { h: ['제공자', 'Provider'], get: (a) => a.provider || '—' },
        { h: ['결과', 'Outcome'], get: (a) => stateBadge(a.outcome || '—') },
        { h: ['코드', 'Status'], cls: 'n', get: (a) => (a.status_code === null || a.status_code === undefined ? '—' : String(a.status_code)) },
        { h: ['오류', 'Error'], get: (a) => a.error || '—' },
        { h: ['종료', 'Finished'], get: (a) => when(a.finished_at || a.started_at) }
      ], n.attempt_log || [], { label: `attempts of notice ${n.id}`, empty: ko('시도 없음', 'No attempt yet') })))));
}

function s_timeline (box, doc) {
  clear(box);
  if (!doc || !doc.subscriber) {
    add(box, el('p', {}, ...ko('그런 가입자가 없습니다', 'No such subscriber')));
    return;
  }
  add(box, section(ko('가입자', 'Subscriber'), s_card(doc.subscriber)));
  const bills = doc.bills || [];
  const sec = section(ko('청구서와 통지', 'Bills and notices'),
    bills.length ? null : el('p.muted', {}, ...ko('청구서 없음', 'No bills')),
    bills.map((b) => el('article.bill', {},
      el('h3', {}, `${b.period} · `, el('a', { href: `#/bill/${b.bill_id}`, class: 'statement-link', 'data-bill': String(b.bill_id) },
        ...ko('명세서', 'Statement'), ` #${b.bill_id}`)),
      el('p', {}, ko('합계', 'Total'), `: ${won(b.total)} · `, ko('납부기한', 'Due'), `: ${b.due_date || '—'} · `,
        ko('항목', 'Lines'), `: ${num(b.line_count)} · run ${b.run_id}`),
      noticesBlock(b.notices))),
    doc.more ? el('p.small.muted', {}, ...ko('이전 청구서는 생략됨', 'Older bills left out')) : null);
  add(box, sec);
}

export function render (main, arg) {
  const how = el('select', { id: 'find-how' },
    el('option', { value: 'subscriber_id' }, '가입자 ID Subscriber id'),
    el('option', { value: 'email' }, '이메일 Email (exact)'),
    el('option', { value: 'phone' }, '전화 Phone (exact)'));
  const value = el('input', { type: 'search', id: 'find-value', required: true, maxlength: '254', autocomplete: 'off', spellcheck: 'false' });
  const form = el('form.inline', { id: 'find-form', role: 'search' }, field(ko('찾는 방법', 'Find by'), how), field(ko('값', 'Value'), value),
    el('button', { type: 'submit', class: 'primary' }, ...ko('찾기', 'Find')));
  const results = el('div', { id: 'find-results', 'aria-live': 'polite' });
  const timeline = el('div', { id: 'timeline' });
  add(main, el('h1', {}, ...ko('가입자', 'Subscriber'), arg ? ` ${arg}` : ''),
    el('p.small.muted', {}, ...ko('이메일과 전화는 정확히 일치하는 것만 찾습니다 (키 해시로 찾으며, 복호화하지 않습니다)', 'Email and phone match exactly only (found through a keyed hash, never by decrypting)')),
    form, results, timeline);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = value.value.trim();
    if (!v) return;
    add(clear(results), el('p.muted', {}, ...ko('찾는 중…', 'Searching…')));
    try {
      // An email or a phone goes in a POST body, never in the URL.
      const doc = await query('subscriber.find', { [how.value]: v }, { post: how.value !== 'subscriber_id' });
      value.value = '';     // what was typed is not kept on the page
      const subs = doc.subscribers || [];
      clear(results);
      if (subs.length === 1) { location.hash = `#/subscriber/${subs[0].subscriber_id}`; return; }
      add(results, subs.length ? table([
        { h: ['가입자 ID', 'Subscriber id'], get: (s) => el('a', { href: `#/subscriber/${s.subscriber_id}` }, String(s.subscriber_id)) },
        { h: ['이메일', 'Email'], get: (s) => el('span.masked', {}, s.email || '—') },
        { h: ['전화', 'Phone'], get: (s) => el('span.masked', {}, s.phone || '—') },
        { h: ['채널', 'Channels'], get: (s) => (s.channels || []).join(', ') }
      ], subs, { label: 'subscribers' }) : el('p', {}, ...ko('찾지 못했습니다', 'Nobody found')));
    } catch (err) {
      add(clear(results), errorBox(err));
    }
  });
  if (/^[1-9][0-9]{0,18}$/.test(arg || '')) {
    add(timeline, el('p.muted', {}, ...ko('불러오는 중…', 'Loading…')));
    query('subscriber.timeline', { subscriber_id: arg })
      .then((doc) => s_timeline(timeline, doc))
      .catch((err) => add(clear(timeline), errorBox(err)));
  } else {
    value.focus();
  }
  return null;
}

// #/bill/ID: the itemised statement as the subscriber sees it, and its notices.
export function renderBill (main, arg) {
  add(main, el('h1', {}, ...ko('청구서', 'Bill'), arg ? ` #${arg}` : ''));
  if (!/^[1-9][0-9]{0,18}$/.test(arg || '')) {
    add(main, el('p', {}, ...ko('청구서 번호가 필요합니다', 'A bill id is needed')));
    return null;
  }
  const box = el('div', { id: 'bill' }, el('p.muted', {}, ...ko('불러오는 중…', 'Loading…')));
  add(main, box);
  query('bill.show', { bill_id: arg }).then((doc) => {
    const b = doc && doc.bill;
    clear(box);
    if (!b) { add(box, el('p', {}, ...ko('그런 청구서가 없습니다', 'No such bill'))); return; }
    const lines = b.lines || [];
    const stmt = el('table.statement', { id: 'statement' },
      el('caption', {}, ...ko(`${b.period} 이용요금 명세서`, `Statement of ${b.period}`)),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, ...ko('번호', 'No.')), el('th', { scope: 'col' }, ...ko('항목', 'Item')),
        el('th', { scope: 'col', class: 'n' }, ...ko('금액', 'Amount')))),
      el('tbody', {}, lines.map((l) => el('tr', { 'data-code': l.code },
        el('td.n', {}, String(l.line_no)), el('td.label', {}, l.label), el('td.n.amount', { 'data-amount': String(l.amount) }, won(l.amount))))),
      el('tfoot', {}, el('tr', {}, el('th', { scope: 'row', colspan: '2' }, ...ko('청구 금액', 'Total')), el('td.n', { id: 'statement-total' }, won(b.total)))));
    add(box, 
      section(ko('명세서', 'Statement'),
        kv([[ko('기간', 'Period'), b.period], [ko('가입자', 'Subscriber'), el('a', { href: `#/subscriber/${b.subscriber_id}` }, String(b.subscriber_id))],
          [ko('납부기한', 'Due'), b.due_date || '—'], [ko('발행', 'Issued'), when(b.issued_at)], ['run', String(b.run_id)]]),
        el('div.scroll', { tabindex: '0', role: 'region', 'aria-label': 'statement' }, stmt)),
      section(ko('통지', 'Notices'), noticesBlock(b.notices)));
  }).catch((err) => add(clear(box), errorBox(err)));
  return null;
}
