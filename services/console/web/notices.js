// Notices: counts by state and channel, the failures with masked contacts,
// and the dispatch commands: retry every failed notice of a run, retry the
// selected ones, pause and resume dispatch.

import { canAct, query } from './api.js';
import { el, clear, ko, table, num, when, section, stateBadge, badge, errorBox, field, PERIOD_RE, add, koText } from './ui.js';
import { confirmCommand } from './dialog.js';
import { channelTable } from './overview.js';

// The longest "ids" argument the console takes (BF_ROUTE_VALUE_MAX).
const IDS_MAX = 256;

export function title (arg) { return `통지 Notices ${arg || ''}`; }

export function render (main, arg) {
  const period = PERIOD_RE.test(arg || '') ? arg : '';
  const pick = el('input', { type: 'text', value: period, maxlength: '7', size: '8', placeholder: 'YYYY-MM', pattern: '[0-9]{4}-[0-9]{2}' });
  const chan = el('select', {}, el('option', { value: '' }, '전체 all'), ['EMAIL', 'SMS', 'PUSH'].map((c) => el('option', { value: c }, c)));
  const limit = el('input', { type: 'number', min: '1', max: '500', value: '50', size: '4' });
  const filter = el('form.inline', {}, field(ko('기간', 'Period'), pick, koText('비우면 전체', 'empty: all')),
    field(ko('채널', 'Channel'), chan), field(ko('최대', 'Limit'), limit),
    el('button', { type: 'submit' }, ...ko('보기', 'Show')));
  const summaryBox = el('div', { id: 'notices-summary' });
  const failBox = el('div', { id: 'notices-failures' });
  add(main, el('h1', {}, ...ko('통지', 'Notices'), period ? ` ${period}` : ''), filter,
    section(ko('상태별·채널별', 'By state and channel'), summaryBox),
    section(ko('실패한 통지', 'Failed notices'), failBox));

  let runId = null;
  const load = async () => {
    add(clear(summaryBox), el('p.muted', {}, ...ko('불러오는 중…', 'Loading…')));
    try {
      const [sum, fails, show] = await Promise.all([
        query('deliveries.summary', { period }),
        query('deliveries.failures', { period, channel: chan.value, limit: limit.value }),
        period ? query('run.show', { period }) : Promise.resolve(null)]);
      runId = show && show.run ? show.run.run_id : null;
      s_summary(summaryBox, sum, load);
      s_failures(failBox, fails.failures || [], runId, period, load);
    } catch (err) {
      add(clear(summaryBox), errorBox(err));
    }
  };
  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = pick.value.trim();
    if (p && !PERIOD_RE.test(p)) { pick.setCustomValidity('YYYY-MM'); pick.reportValidity(); return; }
    pick.setCustomValidity('');
    if (p !== period) location.hash = p ? `#/notices/${p}` : '#/notices';
    else load();
  });
  load();
  return null;
}

function s_summary (box, sum, reload) {
  const n = sum.notices || {};
  add(clear(box), 
    el('p', {}, ko('발송', 'Dispatch'), ': ', sum.paused ? badge('일시정지 paused', 'warn') : badge('발송 중 sending', 'good'),
      ' · ', ko('합계', 'Total'), `: ${num(n.total)} · `, ko('대체 발송', 'Fallbacks'), `: ${num(n.fallbacks)} · `,
      ko('보류 해제', 'Held until'), `: ${when(n.held_until)}`),
    el('div.states', {}, Object.entries(n.by_state || {}).map(([s, c]) => el('span.state', {}, stateBadge(s), ' ', num(c)))),
    channelTable(n.by_channel, ko('채널별 상태', 'States by channel')));
  if (canAct()) {
    add(box, el('div.buttons.actions', {},
      sum.paused
        ? el('button', { type: 'button', class: 'primary', 'data-verb': 'dispatch.resume', onclick: () => confirmCommand({ verb: 'dispatch.resume', text: ['통지 발송을 다시 시작합니다', 'Sends notices again'], onDone: reload }) }, ...ko('발송 재개', 'Resume dispatch'))
        : el('button', { type: 'button', class: 'danger', 'data-verb': 'dispatch.pause', onclick: () => confirmCommand({ verb: 'dispatch.pause', text: ['재개할 때까지 모든 통지를 붙잡아 둡니다 (재시작 후에도)', 'Holds every notice until resumed (kept across restarts)'], onDone: reload }) }, ...ko('발송 일시정지', 'Pause dispatch'))));
  }
}

function s_failures (box, rows, runId, period, reload) {
  const act = canAct();
  const checks = new Map();
  const cols = [];
  if (act) {
    cols.push({ h: ['선택', 'Select'], get: (r) => {
      const c = el('input', { type: 'checkbox', value: String(r.id), 'aria-label': `통지 notice ${r.id}` });
      checks.set(r.id, c);
      return c;
    } });
  }
  cols.push(
    { h: 'id', cls: 'n', get: (r) => String(r.id) },
    { h: ['기간', 'Period'], get: (r) => r.period },
    { h: ['가입자', 'Subscriber'], get: (r) => el('a', { href: `#/subscriber/${r.subscriber_id}` }, String(r.subscriber_id)) },
    { h: ['청구서', 'Bill'], get: (r) => el('a', { href: `#/bill/${r.bill_id}` }, String(r.bill_id)) },
    { h: ['채널', 'Channel'], get: (r) => r.channel },
    { h: ['연락처', 'Contact'], get: (r) => el('span.masked', {}, r.contact || '—') },
    { h: ['시도', 'Attempts'], cls: 'n', get: (r) => num(r.attempts) },
    { h: ['마지막 오류', 'Last error'], get: (r) => r.last_error || '—' },
    { h: ['종료', 'Final at'], get: (r) => when(r.final_at) },
    { h: ['대체 발송', 'Fallback'], get: (r) => (r.fallback_id ? String(r.fallback_id) : '—') });
  const msg = el('p', { role: 'status' });
  const buttons = act ? el('div.buttons.actions', {},
    el('button', { type: 'button', id: 'retry-run', 'data-verb': 'deliveries.retry', disabled: !runId, onclick: () => confirmCommand({
      verb: 'deliveries.retry', args: { run_id: String(runId) },
      text: ['이 실행의 실패한 통지를 모두 다시 보냅니다', 'Sends every failed notice of this run again'], onDone: reload }) },
    ...ko('실패 전체 재발송', 'Retry all failed'), runId ? ` (run ${runId})` : ''),
    el('button', { type: 'button', id: 'retry-selected', 'data-verb': 'deliveries.retry', onclick: () => {
      const ids = [...checks.entries()].filter(([, c]) => c.checked).map(([id]) => id).sort((a, b) => a - b);
      if (!ids.length) { msg.textContent = '먼저 통지를 고르세요 Select notices first'; return; }
      // The console takes an argument of at most 256 bytes (bf_route.h
      // BF_ROUTE_VALUE_MAX): more ids are refused there, so say it here.
      const list = ids.join(',');
      if (list.length > IDS_MAX) {
        msg.textContent = `너무 많이 골랐습니다: 번호 목록은 ${IDS_MAX}자까지, 나누어 보내세요 Too many selected: the ids may take ${IDS_MAX} characters at most; send them in parts`;
        return;
      }
      msg.textContent = '';
      confirmCommand({ verb: 'deliveries.retry', args: { ids: list },
        text: ['고른 통지를 다시 보냅니다', 'Sends the selected notices again'], onDone: reload });
    } }, ...ko('선택 재발송', 'Retry selected'))) : null;
  add(clear(box), 
    act && !runId ? el('p.small.muted', {}, ...ko('실행 전체 재발송은 기간을 고르면 쓸 수 있습니다', 'Pick a period to retry a whole run')) : null,
    buttons, msg,
    table(cols, rows, { label: 'failures', empty: ko('실패한 통지 없음', 'No failed notice') }));
}
