// Commands and audit: control's stored commands and its audit log, newest
// first, filtered by actor, verb, state and time. control filters by actor
// (audit), state and target (commands) and command id; verb and time are
// filtered here, on the rows control returned (up to the limit).

import { query } from './api.js';
import { el, clear, ko, table, when, section, stateBadge, errorBox, field, add, koText } from './ui.js';

export function title () { return '명령·감사 Commands & audit'; }

function s_args (a) {
  if (!a || typeof a !== 'object') return '—';
  const s = Object.entries(a).map(([k, v]) => `${k}=${typeof v === 'string' && v.length > 60 ? v.slice(0, 57) + '…' : v}`).join(' ');
  return el('code', {}, s || '—');
}

function s_inTime (iso, from, to) {
  if (!from && !to) return true;
  const t = Date.parse(iso);
  if (isNaN(t)) return false;
  if (from && t < Date.parse(from)) return false;
  if (to && t > Date.parse(to)) return false;
  return true;
}

export function render (main) {
  const actor = el('input', { type: 'text', id: 'f-actor', maxlength: '80', placeholder: 'console/kim' });
  const verb = el('input', { type: 'text', id: 'f-verb', maxlength: '40', placeholder: 'run.start', list: 'verbs' });
  const verbs = el('datalist', { id: 'verbs' }, ['run.start', 'run.stop', 'run.resume', 'dispatch.pause', 'dispatch.resume',
    'deliveries.retry', 'template.publish', 'run.schedule', 'run.unschedule'].map((v) => el('option', { value: v })));
  const state = el('select', { id: 'f-state' }, el('option', { value: '' }, '전체 all'),
    ['RECEIVED', 'FORWARDED', 'DONE', 'FAILED', 'REJECTED'].map((s) => el('option', { value: s }, s)));
  const cid = el('input', { type: 'text', id: 'f-command', maxlength: '128' });
  const from = el('input', { type: 'datetime-local', id: 'f-from' });
  const to = el('input', { type: 'datetime-local', id: 'f-to' });
  const limit = el('input', { type: 'number', id: 'f-limit', min: '1', max: '500', value: '100', size: '4' });
  const form = el('form.filters', { id: 'audit-filter' },
    field(ko('행위자', 'Actor'), actor, koText('감사 기록만', 'audit log only')),
    field(ko('동작', 'Verb'), verb), verbs,
    field(ko('명령 상태', 'Command state'), state, koText('명령 목록만', 'commands only')),
    field(ko('명령 ID', 'Command id'), cid),
    field(ko('부터', 'From'), from), field(ko('까지', 'To'), to),
    field(ko('최대', 'Limit'), limit),
    el('div.buttons', {}, el('button', { type: 'submit', class: 'primary' }, ...ko('적용', 'Apply'))));
  const cmdBox = el('div', { id: 'commands' });
  const auditBox = el('div', { id: 'audit' });
  add(main, el('h1', {}, ...ko('명령과 감사', 'Commands and audit')), form,
    section(ko('명령', 'Commands'), cmdBox), section(ko('감사 기록', 'Audit log'), auditBox));

  const load = async () => {
    const v = verb.value.trim();
    const f = from.value;
    const t = to.value;
    try {
      const [cmds, aud] = await Promise.all([
        query('commands.list', { state: state.value, command_id: cid.value.trim(), limit: limit.value }),
        query('audit.list', { actor: actor.value.trim(), command_id: cid.value.trim(), limit: limit.value })]);
      const crow = (cmds.commands || []).filter((c) => (!v || c.verb === v) && s_inTime(c.received_at, f, t));
      const arow = (aud.audit || []).filter((a) => (!v || a.verb === v) && s_inTime(a.at, f, t));
      add(clear(cmdBox), table([
        { h: ['받음', 'Received'], get: (c) => when(c.received_at) },
        { h: ['보낸 이', 'Client'], get: (c) => c.client },
        { h: ['대상', 'Target'], get: (c) => c.target },
        { h: ['동작', 'Verb'], get: (c) => c.verb },
        { h: ['인자', 'Args'], get: (c) => s_args(c.args) },
        { h: ['상태', 'State'], get: (c) => stateBadge(c.state) },
        { h: ['완료', 'Completed'], get: (c) => when(c.completed_at) },
        { h: ['오류', 'Error'], get: (c) => c.error || '—' },
        { h: ['명령 ID', 'Command id'], get: (c) => el('code', {}, c.command_id) }
      ], crow, { label: 'commands', empty: ko('명령 없음', 'No command') }));
      add(clear(auditBox), table([
        { h: ['시각', 'Time'], get: (a) => when(a.at) },
        { h: ['행위자', 'Actor'], get: (a) => a.actor },
        { h: ['대상', 'Target'], get: (a) => a.target || '—' },
        { h: ['동작', 'Verb'], get: (a) => a.verb || '—' },
        { h: ['인자', 'Args'], get: (a) => s_args(a.args) },
        { h: ['결과', 'Outcome'], get: (a) => stateBadge(String(a.outcome || '—').toUpperCase()) },
        { h: ['상세', 'Detail'], get: (a) => a.detail || '—' },
        { h: ['명령 ID', 'Command id'], get: (a) => el('code', {}, a.command_id || '—') }
      ], arow, { label: 'audit log', empty: ko('기록 없음', 'No entry') }));
    } catch (err) {
      add(clear(cmdBox), errorBox(err));
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  load();
  return null;
}
