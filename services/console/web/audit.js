// Commands and audit: control's stored commands and its audit log, newest
// first, filtered by actor, verb, state and time. Every filter goes to
// control as a query argument (commands.list, audit.list), so a match is
// found however old it is; when an answer is full, "Older" asks for the
// next page (before_id = the last row shown).

import { query } from './api.js';
import { el, clear, ko, table, when, section, stateBadge, errorBox, field, add, koText } from './ui.js';

export function title () { return '명령·감사 Commands & audit'; }

const S_VERBS = ['run.start', 'run.stop', 'run.resume', 'dispatch.pause', 'dispatch.resume',
  'deliveries.retry', 'template.publish', 'run.schedule', 'run.unschedule'];
const S_STATES = ['RECEIVED', 'FORWARDED', 'DONE', 'FAILED', 'REJECTED'];
const S_OUTCOMES = ['received', 'done', 'failed', 'refused', 'rejected', 'repeated'];

function s_args (a) {
  if (!a || typeof a !== 'object') return '—';
  const s = Object.entries(a).map(([k, v]) => `${k}=${typeof v === 'string' && v.length > 60 ? v.slice(0, 57) + '…' : v}`).join(' ');
  return el('code', {}, s || '—');
}

// A datetime-local value (the browser's local time) as RFC 3339 UTC; '' stays ''.
function s_instant (local) {
  if (!local) return '';
  const t = new Date(local);
  return isNaN(t.getTime()) ? local : t.toISOString();
}

function s_select (id, values) {
  return el('select', { id }, el('option', { value: '' }, '전체 all'),
    values.map((s) => el('option', { value: s }, s)));
}

const S_COMMAND_COLS = [
  { h: ['받음', 'Received'], get: (c) => when(c.received_at) },
  { h: ['보낸 이', 'Client'], get: (c) => c.client },
  { h: ['대상', 'Target'], get: (c) => c.target },
  { h: ['동작', 'Verb'], get: (c) => c.verb },
  { h: ['인자', 'Args'], get: (c) => s_args(c.args) },
  { h: ['상태', 'State'], get: (c) => stateBadge(c.state) },
  { h: ['완료', 'Completed'], get: (c) => when(c.completed_at) },
  { h: ['오류', 'Error'], get: (c) => c.error || '—' },
  { h: ['명령 ID', 'Command id'], get: (c) => el('code', {}, c.command_id) }
];

const S_AUDIT_COLS = [
  { h: ['시각', 'Time'], get: (a) => when(a.at) },
  { h: ['행위자', 'Actor'], get: (a) => a.actor },
  { h: ['대상', 'Target'], get: (a) => a.target || '—' },
  { h: ['동작', 'Verb'], get: (a) => a.verb || '—' },
  { h: ['인자', 'Args'], get: (a) => s_args(a.args) },
  { h: ['결과', 'Outcome'], get: (a) => stateBadge(String(a.outcome || '—').toUpperCase()) },
  { h: ['상세', 'Detail'], get: (a) => a.detail || '—' },
  { h: ['명령 ID', 'Command id'], get: (a) => el('code', {}, a.command_id || '—') }
];

// One list (commands or audit) in box: the rows so far, and an "Older"
// button while control's last answer was full.
function s_list (box, spec) {
  let rows = [];
  let args = {};
  const show = (full) => {
    const older = el('button', { type: 'button', id: `${box.id}-older` }, ...ko('이전 항목 더 보기', 'Older'));
    older.addEventListener('click', () => page(true));
    add(clear(box), table(spec.cols, rows, { label: spec.label, empty: spec.empty }),
      full ? el('div.buttons', {}, older) : null);
  };
  const page = async (more) => {
    const limit = Number(args.limit) || 20;
    const q = more && rows.length ? { ...args, before_id: spec.key(rows[rows.length - 1]) } : args;
    try {
      const doc = await query(spec.verb, q);
      const got = doc[spec.list] || [];
      rows = more ? rows.concat(got) : got;
      show(got.length >= limit);
    } catch (err) {
      if (!more) rows = [];
      add(clear(box), rows.length ? table(spec.cols, rows, { label: spec.label }) : null, errorBox(err));
    }
  };
  return (a) => { args = a; rows = []; return page(false); };
}

export function render (main) {
  const actor = el('input', { type: 'text', id: 'f-actor', maxlength: '80', placeholder: 'console/kim' });
  const verb = el('input', { type: 'text', id: 'f-verb', maxlength: '40', placeholder: 'run.start', list: 'verbs' });
  const verbs = el('datalist', { id: 'verbs' }, S_VERBS.map((v) => el('option', { value: v })));
  const state = s_select('f-state', S_STATES);
  const outcome = s_select('f-outcome', S_OUTCOMES);
  const cid = el('input', { type: 'text', id: 'f-command', maxlength: '128' });
  const from = el('input', { type: 'datetime-local', id: 'f-from', step: '1' });
  const to = el('input', { type: 'datetime-local', id: 'f-to', step: '1' });
  const limit = el('input', { type: 'number', id: 'f-limit', min: '1', max: '500', value: '100', size: '4' });
  const form = el('form.filters', { id: 'audit-filter' },
    field(ko('행위자', 'Actor'), actor),
    field(ko('동작', 'Verb'), verb), verbs,
    field(ko('명령 상태', 'Command state'), state, koText('명령 목록만', 'commands only')),
    field(ko('감사 결과', 'Audit outcome'), outcome, koText('감사 기록만', 'audit log only')),
    field(ko('명령 ID', 'Command id'), cid),
    field(ko('부터', 'From'), from, koText('이 시각 포함', 'inclusive')),
    field(ko('까지', 'To'), to, koText('이 시각 전까지', 'exclusive')),
    field(ko('최대', 'Limit'), limit, koText('한 번에', 'per page')),
    el('div.buttons', {}, el('button', { type: 'submit', class: 'primary' }, ...ko('적용', 'Apply'))));
  const cmdBox = el('div', { id: 'commands' });
  const auditBox = el('div', { id: 'audit' });
  add(main, el('h1', {}, ...ko('명령과 감사', 'Commands and audit')), form,
    section(ko('명령', 'Commands'), cmdBox), section(ko('감사 기록', 'Audit log'), auditBox));

  const commands = s_list(cmdBox, { verb: 'commands.list', list: 'commands', cols: S_COMMAND_COLS,
    key: (c) => c.command_id, label: 'commands', empty: ko('명령 없음', 'No command') });
  const audit = s_list(auditBox, { verb: 'audit.list', list: 'audit', cols: S_AUDIT_COLS,
    key: (a) => a.id, label: 'audit log', empty: ko('기록 없음', 'No entry') });

  const load = () => {
    const common = {
      actor: actor.value.trim(), verb: verb.value.trim(), command_id: cid.value.trim(),
      since: s_instant(from.value), until: s_instant(to.value), limit: limit.value
    };
    return Promise.all([commands({ ...common, state: state.value }),
      audit({ ...common, state: outcome.value })]);
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  load();
  return null;
}
