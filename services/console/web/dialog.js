// The one confirmation dialog every command goes through. It makes the
// command id when it opens and sends that same id on every submit of the
// dialog (a double click, "send again", a retry after a network error), so
// control applies the command once; a replayed answer says "already done".
// The open command is also kept in the tab's sessionStorage until the dialog
// is closed, so a reload reopens it with the same id instead of losing it
// (a second submit after the reload would otherwise make a new command).

import { command, newCommandId, ApiError, session, canAct } from './api.js';
import { el, clear, ko, kv, add } from './ui.js';

const VERB_NAMES = {
  'run.start': ['실행 시작', 'Start the run'],
  'run.stop': ['실행 중지', 'Stop the run'],
  'run.resume': ['실행 재개', 'Resume the run'],
  'dispatch.pause': ['발송 일시정지', 'Pause dispatch'],
  'dispatch.resume': ['발송 재개', 'Resume dispatch'],
  'deliveries.retry': ['실패 통지 재발송', 'Retry failed notices'],
  'template.publish': ['템플릿 게시', 'Publish a template version'],
  'run.schedule': ['발송 예약', 'Schedule the release'],
  'run.unschedule': ['발송 예약 취소', 'Cancel the scheduled release']
};

let s_current = null;   // { verb, args, id, inflight, answered, onDone }

// The pending command in sessionStorage (per tab, survives a reload): verb,
// args, id, opened_at (ms) and by (the operator's name, so it never reopens
// for someone else logging in to the same tab). Nothing else: no contact,
// no CSRF token (that stays in memory, api.js).
const PENDING_KEY = 'bf.pending-command';
// Older than this it is not reopened: the console's default idle expiry
// (console.session_idle_s, 30 min); a session idle longer is gone anyway.
const PENDING_MAX_MS = 30 * 60 * 1000;

function s_storePending (cur) {
  try {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verb: cur.verb, args: cur.args, id: cur.id, opened_at: cur.openedAt, by: session.name }));
  } catch (err) {
    // Storage off or full: the dialog still works, only a reload forgets it.
    console.warn(`dialog: the pending command is not kept across a reload: ${err.message || err}`);
  }
}

function s_clearPending () {
  try { sessionStorage.removeItem(PENDING_KEY); } catch (err) { /* storage off: nothing kept */ }
}

// The stored command if it is whole, young enough and this person's, else
// null (and a stale or unreadable one is dropped).
function s_loadPending () {
  let raw = null;
  try { raw = sessionStorage.getItem(PENDING_KEY); } catch (err) { return null; }
  if (!raw) return null;
  let p = null;
  try { p = JSON.parse(raw); } catch (err) { p = null; }
  const age = p ? Date.now() - Number(p.opened_at) : NaN;
  const whole = p && typeof p === 'object' && Object.prototype.hasOwnProperty.call(VERB_NAMES, p.verb) && typeof p.id === 'string' && p.id &&
    p.args && typeof p.args === 'object' && !Array.isArray(p.args) && Object.values(p.args).every((v) => typeof v === 'string');
  if (!whole || !(age >= 0 && age < PENDING_MAX_MS)) {
    console.warn(`dialog: dropped a ${whole ? 'stale' : 'malformed'} pending command from before the reload`);
    s_clearPending();
    return null;
  }
  if (p.by !== session.name) {   // someone else logged in to this tab since
    s_clearPending();
    return null;
  }
  return p;
}

function s_parts () {
  return {
    dialog: document.getElementById('confirm'),
    title: document.getElementById('confirm-title'),
    text: document.getElementById('confirm-text'),
    args: document.getElementById('confirm-args'),
    id: document.getElementById('confirm-id'),
    result: document.getElementById('confirm-result'),
    ok: document.getElementById('confirm-ok'),
    cancel: document.getElementById('confirm-cancel'),
    form: document.getElementById('confirm-form')
  };
}

function s_argText (v) {
  const s = String(v);
  return s.length > 120 ? s.slice(0, 117) + '…' : s;
}

function s_show (p, reply) {
  clear(p.result);
  const st = reply.status;
  let head;
  if (reply.replayed) head = el('p.done', {}, ko('이미 처리됨', 'already done'));
  else if (st === 'OK') head = el('p.done', {}, ko('완료', 'Done'));
  else if (st === 'ACCEPTED') head = el('p.warn', {}, ko('접수됨: 서비스가 받으면 실행됩니다', 'Accepted: it runs when the service takes it'));
  else if (st === 'FAILED') head = el('p.error', {}, ko('실패', 'Failed'), reply.retryable ? [' — ', ko('같은 ID로 다시 보낼 수 있습니다', 'may be sent again with the same id')] : null);
  else head = el('p.error', {}, ko('거부됨', 'Rejected'));
  add(p.result, head);
  if (reply.error) add(p.result, el('p.small', {}, reply.error));
  const r = reply.result;
  if (r && typeof r === 'object') {
    const pairs = [];
    if (r.outcome) pairs.push([ko('결과', 'Outcome'), String(r.outcome)]);
    for (const k of ['retried', 'count', 'version', 'at', 'paused'])
      if (r[k] !== undefined && typeof r[k] !== 'object') pairs.push([k, String(r[k])]);
    if (pairs.length) add(p.result, kv(pairs));
  }
}

async function s_submit (ev) {
  ev.preventDefault();
  const p = s_parts();
  const cur = s_current;
  if (!cur || cur.inflight) return;     // a second click while the first is on its way
  cur.inflight = true;
  p.ok.disabled = true;
  p.dialog.setAttribute('aria-busy', 'true');
  add(clear(p.result), el('p.muted', {}, ko('보내는 중…', 'Sending…')));
  try {
    const reply = await command(cur.verb, cur.args, cur.id);
    cur.answered = reply;
    s_show(p, reply);
  } catch (err) {
    clear(p.result);
    const e = err instanceof ApiError ? err : new ApiError(0, String(err.message || err));
    if (e.status === 403) add(p.result, el('p.error', {}, ko('권한 없음', 'Not allowed'), ': ', e.message));
    else if (e.status === 503 || e.status === 0) {
      add(p.result, el('p.error', {}, ko('제어 서비스가 응답하지 않습니다', 'control did not answer'), ': ', e.message,
        ' — ', ko('같은 ID로 다시 보내세요', 'send again: the same id runs once')));
    } else add(p.result, el('p.error', {}, e.message));
  } finally {
    cur.inflight = false;
    p.dialog.removeAttribute('aria-busy');
    p.ok.disabled = false;
    add(clear(p.ok), ...ko('다시 보내기', 'Send again'));
  }
}

function s_close () {
  const p = s_parts();
  const cur = s_current;
  s_current = null;
  s_clearPending();
  if (p.dialog.open) p.dialog.close();
  if (cur && cur.opener && document.contains(cur.opener)) cur.opener.focus();
  if (cur && cur.answered && cur.onDone) cur.onDone(cur.answered);
}

let s_wired = false;
function s_wire () {
  if (s_wired) return;
  s_wired = true;
  const p = s_parts();
  p.form.addEventListener('submit', s_submit);
  p.cancel.addEventListener('click', s_close);
  p.dialog.addEventListener('cancel', (ev) => { ev.preventDefault(); s_close(); });
}

// Fills and opens the dialog for cur (s_current); reopened: it comes back
// after a reload, unconfirmed.
function s_open (cur, text, reopened) {
  s_wire();
  const p = s_parts();
  const name = VERB_NAMES[cur.verb] || [cur.verb, cur.verb];
  s_current = cur;
  s_storePending(cur);
  add(clear(p.title), ...ko(name[0], name[1]), el('span.small.muted', {}, ` (${cur.verb})`));
  clear(p.text);
  if (reopened) {
    add(p.text, el('span.warn', { id: 'confirm-reopened' }, ...ko('새로고침 전에 답을 확인하지 못한 명령입니다. 이미 실행됐을 수 있습니다: 같은 ID로 보내면 한 번만 실행됩니다',
      'This command was not confirmed before the reload. It may have run already: sent again with the same id, it runs once')));
  } else if (text) add(p.text, ...ko(text[0], text[1]));
  clear(p.args);
  for (const [k, v] of Object.entries(cur.args)) add(p.args, el('dt', {}, k), el('dd', {}, s_argText(v)));
  p.id.textContent = cur.id;
  clear(p.result);
  p.ok.disabled = false;
  if (reopened) add(clear(p.ok), ...ko('다시 보내기', 'Send again'));
  else add(clear(p.ok), ...ko('실행', 'Run'));
  if (!p.dialog.open) p.dialog.showModal();
  p.cancel.focus();
}

// Opens the dialog for one command. args: the command's args (strings);
// text: what it does, [ko, en]; onDone(reply): after the dialog closes, when
// control answered. The id is made here, once.
export function confirmCommand ({ verb, args = {}, text, onDone }) {
  s_open({ verb, args, id: newCommandId(), openedAt: Date.now(), inflight: false, answered: null, onDone, opener: document.activeElement }, text, false);
}

// After a page is shown: reopens the command whose dialog was open when the
// tab was reloaded, with its id, for the operator who opened it. onDone as
// for confirmCommand (the caller's page was rebuilt; its own callback is gone).
export function resumePending (onDone) {
  if (s_current || !canAct()) return;
  const p = s_loadPending();
  if (!p) return;
  s_open({ verb: p.verb, args: p.args, id: p.id, openedAt: Number(p.opened_at), inflight: false, answered: null, onDone, opener: null }, null, true);
}

// Forgets the pending command (logging out: the next person never sees it).
export function dropPending () {
  s_clearPending();
}

// A button that opens the dialog; operators only (the caller checks canAct).
export function commandButton (label, spec, cls) {
  return el('button', { type: 'button', class: cls || '', 'data-verb': spec.verb, onclick: () => confirmCommand(typeof spec.get === 'function' ? spec.get() : spec) }, ...ko(label[0], label[1]));
}
