// Overview: services, the newest runs with live progress, notices by state
// and channel, failure ratio per channel, held notices. Live: one snapshot a
// second from the console's poller over /api/events (never a poll of ours).

import { canAct } from './api.js';
import { el, clear, ko, table, num, won, when, pct, progress, section, stateBadge, badge, field, lastMonth, PERIOD_RE, seconds, add } from './ui.js';
import { confirmCommand } from './dialog.js';

export function title () { return '개요 Overview'; }

export const FINISHED = ['DELIVERED', 'FAILED', 'CANCELLED'];
export const STATES = ['PENDING', 'SENDING', 'RETRY', 'HELD', 'DELIVERED', 'FAILED', 'CANCELLED'];

// Notices finished of a by_state object.
export function finishedOf (byState) {
  return FINISHED.reduce((a, s) => a + (Number((byState || {})[s]) || 0), 0);
}

// The notices-by-channel table, with the failure ratio (failed / finished).
export function channelTable (byChannel, caption) {
  const chans = Object.keys(byChannel || {}).sort();
  const rows = chans.map((c) => ({ c, s: byChannel[c] || {} }));
  const cols = [{ h: ['채널', 'Channel'], get: (r) => r.c }]
    .concat(STATES.map((s) => ({ h: s, cls: 'n', get: (r) => num(r.s[s] || 0) })))
    .concat([{ h: ['실패율', 'Failure ratio'], cls: 'n', get: (r) => pct(r.s.FAILED || 0, finishedOf(r.s)) }]);
  return table(cols, rows, { caption, class: 'channels' });
}

function s_services (snap) {
  const list = (snap.services && snap.services.services) || [];
  return table([
    { h: ['서비스', 'Service'], get: (r) => r.service },
    { h: ['인스턴스', 'Instance'], get: (r) => `${r.instance_id} (pid ${r.pid})` },
    { h: ['상태', 'State'], get: (r) => stateBadge(r.up ? 'UP' : 'DOWN') },
    { h: ['리더', 'Leader'], get: (r) => s_leader(r) },
    { h: ['마지막 신호', 'Last heartbeat'], get: (r) => [when(r.last_heartbeat), el('span.small.muted', {}, ` (${num(r.age_ms)} ms)`)] },
    { h: ['버전', 'Version'], get: (r) => r.version || '—' }
  ], list, { label: 'services', empty: ko('등록된 서비스 없음', 'No service registered') });
}

// services.list's leader: the active control (true), settle's relay holder
// ("relay", the role's name), a standby (false); null for a service whose
// instances have no leader (notify).
function s_leader (r) {
  if (r.leader === true) return badge('리더 leader', 'good');
  if (typeof r.leader === 'string' && r.leader) return badge(r.leader, 'good');
  if (r.leader === false) return el('span.muted', {}, ...ko('대기', 'standby'));
  return '—';
}

function s_runs (snap) {
  const list = (snap.runs && snap.runs.runs) || [];
  return table([
    { h: ['기간', 'Period'], get: (r) => el('a', { href: `#/run/${r.period}` }, r.period) },
    { h: ['상태', 'State'], get: (r) => stateBadge(r.state) },
    { h: ['진행', 'Progress'], get: (r) => progress(r.chunks_done, r.chunks_total, `${r.period} 진행 progress`) },
    { h: ['청구서', 'Bills'], cls: 'n', get: (r) => num(r.bills) },
    { h: ['금액', 'Amount'], cls: 'n', get: (r) => won(r.amount_total) },
    { h: ['소요', 'Duration'], cls: 'n', get: (r) => seconds(r.seconds) }
  ], list, { label: 'runs', empty: ko('실행 없음', 'No run yet') });
}

function s_deliveries (snap) {
  const d = snap.deliveries;
  if (!d || !d.notices) return el('p.muted', {}, ...ko('통지 없음', 'No notices yet'));
  const n = d.notices;
  return el('div', {},
    el('p', {}, ko('기간', 'Period'), ': ', d.period ? el('a', { href: `#/notices/${d.period}` }, d.period) : '—', ' · ',
      ko('합계', 'Total'), `: ${num(n.total)} · `, ko('완료', 'Finished'), `: ${num(finishedOf(n.by_state))} · `,
      ko('발송', 'Dispatch'), ': ', d.paused ? badge('일시정지 paused', 'warn') : badge('발송 중 sending', 'good')),
    progress(finishedOf(n.by_state), n.total, '통지 진행 notices progress'),
    el('div.states', {}, Object.entries(n.by_state || {}).map(([s, c]) => el('span.state', {}, stateBadge(s), ' ', num(c)))),
    channelTable(n.by_channel, ko('채널별 상태', 'States by channel')));
}

function s_held (snap) {
  const held = Array.isArray(snap.held) ? snap.held : [];
  return table([
    { h: ['기간', 'Period'], get: (r) => el('a', { href: `#/run/${r.period}` }, r.period) },
    { h: ['보류', 'Held'], cls: 'n', get: (r) => num(r.held) },
    { h: ['보류 해제', 'Held until'], get: (r) => when(r.held_until) },
    { h: ['예약 발송', 'Release at'], get: (r) => r.release_at ? when(r.release_at) : '—' }
  ], held, { label: 'held', empty: ko('보류된 통지 없음', 'No notice held') });
}

function s_startForm () {
  const input = el('input', { type: 'text', inputmode: 'numeric', pattern: '[0-9]{4}-[0-9]{2}', value: lastMonth(), maxlength: '7', size: '8' });
  const form = el('form.inline', {}, field(ko('기간', 'Period'), input, 'YYYY-MM'),
    el('button', { type: 'submit', 'data-verb': 'run.start' }, ...ko('실행 시작', 'Start a run')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const period = input.value.trim();
    if (!PERIOD_RE.test(period)) { input.setCustomValidity('YYYY-MM'); input.reportValidity(); return; }
    input.setCustomValidity('');
    confirmCommand({ verb: 'run.start', args: { period }, text: ['이 기간의 청구서를 정산합니다', 'Settles the bills of this period'],
      onDone: () => { location.hash = `#/run/${period}`; } });
  });
  return form;
}

export function render (main) {
  const status = el('p.live', { role: 'status' }, ...ko('연결 중…', 'Connecting…'));
  const body = el('div.grid');
  add(main, el('h1', {}, ...ko('개요', 'Overview')), status, canAct() ? s_startForm() : null, body);
  const es = new EventSource('/api/events');
  let last = 0;
  es.addEventListener('overview', (ev) => {
    let snap;
    try { snap = JSON.parse(ev.data); } catch (e) { return; }
    last = Date.now();
    add(clear(status), ...ko('실시간', 'Live'), ` · ${when(new Date(snap.at_ms || Date.now()).toISOString())}`);
    status.classList.remove('stale');
    add(clear(body), 
      snap.error ? el('p.error', { role: 'alert' }, ...ko('제어 서비스 오류', 'control error'), `: ${snap.error}`) : null,
      section(ko('최근 실행', 'Latest runs'), s_runs(snap)),
      section(ko('통지', 'Notices'), s_deliveries(snap)),
      section(ko('보류된 통지', 'Held notices'), s_held(snap)),
      section(ko('서비스', 'Services'), s_services(snap)));
  });
  es.addEventListener('error', () => {
    if (Date.now() - last > 3000) {
      add(clear(status), ...ko('연결 끊김: 다시 연결 중', 'Disconnected: reconnecting'));
      status.classList.add('stale');
    }
  });
  return () => es.close();
}
