// Run: one period's run — state, progress, counts, amount, durations, rating
// errors, the reconciliation report (as `billctl run report`), a chart of
// bills/s and notices/s, and the run's commands (start, stop, resume, the
// scheduled release).
//
// The chart: the whole run from control's run.rates (the active control
// samples every run's bills and finished notices once a second; at most 600
// points whatever the run's length), read when the page opens or the period's
// newest run changes, then the rates between the snapshots of the live
// stream (/api/events, one a second) appended after its last point (the
// first of them measured from that point, or from the run's start when
// run.rates had none yet): bills/s from the run's bill count, notices/s from
// the period's finished notices (delivered, failed, cancelled). An interval
// without an active control (a failover) is a gap in the lines. The x axis is seconds since the run began.

import { canAct, query } from './api.js';
import { el, clear, ko, table, num, won, when, progress, section, stateBadge, badge, kv, errorBox, field, seconds, lastMonth, PERIOD_RE, add, koText } from './ui.js';
import { confirmCommand } from './dialog.js';
import { channelTable, finishedOf } from './overview.js';

export function title (arg) { return `실행 Run ${arg || ''}`; }

// Rows of objects as a table, columns from the first row's keys.
export function autoTable (rows, label) {
  if (!Array.isArray(rows) || !rows.length) return el('p.muted', {}, ...ko('없음', 'None'));
  const keys = Object.keys(rows[0]);
  return table(keys.map((k) => ({ h: k, get: (r) => s_plain(r[k]) })), rows, { label });
}

function s_plain (v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function s_report (rep) {
  if (!rep) return el('p.muted', {}, ...ko('보고서 없음', 'No report'));
  const b = rep.bills || {};
  const n = rep.notices || {};
  const h = rep.held || {};
  const u = rep.unnotified || {};
  const att = rep.attempts || {};
  const outcomes = ['DELIVERED', 'DUPLICATE', 'TRANSIENT', 'PERMANENT', 'THROTTLED', 'UNKNOWN'];
  const attRows = Object.entries(att.by_channel || {}).map(([c, o]) => ({ c, o }));
  return el('div.report', {},
    el('p', {}, ko('최종', 'Final'), ': ', rep.final
      ? badge('FINAL 최종', 'good') : badge('NOT FINAL 진행 중', 'warn'),
    ' · ', ko('실행 상태', 'Run state'), ': ', stateBadge(rep.run_state)),
    el('h3', {}, ...ko('청구서', 'Bills')),
    kv([[ko('건수', 'Count'), num(b.count)], [ko('금액', 'Amount'), won(b.amount_total)],
      [ko('테이블 건수', 'Rows in the table'), num(b.table_count)], [ko('테이블 금액', 'Amount in the table'), won(b.table_amount_total)],
      [ko('일치', 'Consistent'), b.consistent ? badge('OK', 'good') : badge('MISMATCH 불일치', 'bad')]]),
    el('h3', {}, ...ko('실행', 'Runs')),
    table([
      { h: 'run_id', cls: 'n', get: (r) => String(r.run_id) },
      { h: ['상태', 'State'], get: (r) => stateBadge(r.state) },
      { h: ['재평정', 'Rerate'], get: (r) => (r.rerate ? 'yes' : 'no') },
      { h: ['청구서', 'Bills'], cls: 'n', get: (r) => num(r.bills) },
      { h: ['금액', 'Amount'], cls: 'n', get: (r) => won(r.amount_total) },
      { h: ['평정 오류', 'Rating errors'], cls: 'n', get: (r) => num(r.rating_errors) },
      { h: ['시작', 'Started'], get: (r) => when(r.started_at) },
      { h: ['종료', 'Finished'], get: (r) => when(r.finished_at) },
      { h: ['소요', 'Duration'], cls: 'n', get: (r) => seconds(r.seconds) }
    ], rep.runs || [], { label: 'runs' }),
    el('h3', {}, ...ko('통지', 'Notices')),
    kv([[ko('합계', 'Total'), num(n.total)], [ko('완료', 'Finished'), num(n.finished)], [ko('미완료', 'Unfinished'), num(n.unfinished)]]),
    channelTable(n.by_channel, ko('채널별 상태', 'States by channel')),
    el('h3', {}, ...ko('대체 발송', 'Fallbacks')),
    kv(Object.entries(rep.fallbacks || {}).map(([k, v]) => [k, num(v)])),
    el('h3', {}, ...ko('보류', 'Held')),
    kv([[ko('건수', 'Count'), num(h.count)], [ko('부터', 'From'), when(h.from)], [ko('까지', 'Until'), when(h.until)]]),
    autoTable(h.reasons, 'held reasons'),
    el('h3', {}, ...ko('발송 시도', 'Attempts')),
    el('p', {}, ko('합계', 'Total'), `: ${num(att.total)}`),
    table([{ h: ['채널', 'Channel'], get: (r) => r.c }].concat(outcomes.map((o) => ({ h: o, cls: 'n', get: (r) => num(r.o[o] || 0) }))),
      attRows, { label: 'attempts' }),
    el('h3', {}, ...ko('중복 가능성', 'Possible duplicates')),
    kv(Object.entries(rep.possible_duplicates || {}).map(([k, v]) => [k, num(v)])),
    el('h3', {}, ...ko('최종 통지 없는 청구서', 'Bills without a final notice')),
    kv([[ko('건수', 'Count'), num(u.count)]].concat(Object.entries(u.by_reason || {}).map(([k, v]) => [k, num(v)]))),
    autoTable(u.bills, 'unnotified bills'));
}

function s_status (doc) {
  const r = doc.run;
  const n = doc.notices || {};
  if (!r) return el('p.muted', {}, ...ko('이 기간에는 아직 실행이 없습니다', 'No run for this period yet'));
  return el('div', {},
    kv([
      [ko('상태', 'State'), stateBadge(r.state)],
      [ko('정산 진행', 'Settlement'), progress(r.chunks_done, r.chunks_total, '정산 진행 settlement progress')],
      [ko('통지 진행', 'Notices'), progress(finishedOf(n.by_state), n.total, '통지 진행 notices progress')],
      [ko('가입자', 'Subscribers'), num(r.subscribers_done)],
      [ko('청구서', 'Bills'), num(r.bills)],
      [ko('금액', 'Amount'), won(r.amount_total)],
      [ko('평정 오류', 'Rating errors'), num(r.rating_errors)],
      [ko('시작', 'Started'), when(r.started_at)],
      [ko('종료', 'Finished'), when(r.finished_at)],
      [ko('정산 소요', 'Settlement took'), seconds(r.seconds)],
      [ko('통지 소요', 'Notices took'), s_noticeSpan(doc)],
      [ko('재평정', 'Rerate'), r.rerate ? 'yes' : 'no'],
      [ko('보류 해제', 'Held until'), when(n.held_until)],
      [ko('최종', 'Final'), doc.final ? badge('FINAL 최종', 'good') : badge('진행 중 in progress', 'warn')],
      ['run_id', String(r.run_id)],
      [ko('명령 ID', 'Command id'), el('code', {}, r.command_id || '—')]
    ]));
}

// From the run's start to now, or to the end when every notice is final.
function s_noticeSpan (doc) {
  if (!doc.run || !doc.run.started_at) return '—';
  if (!doc.final) return ko('진행 중', 'in progress');
  return el('span.small.muted', {}, ko('최종 확인됨', 'final when last read'));
}

function s_errors (doc) {
  return table([
    { h: ['가입자', 'Subscriber'], get: (e) => el('a', { href: `#/subscriber/${e.subscriber_id}` }, String(e.subscriber_id)) },
    { h: ['사유', 'Reason'], get: (e) => e.reason }
  ], doc.rating_errors || [], { label: 'rating errors', empty: ko('평정 오류 없음', 'No rating error') });
}

function s_actions (period, doc, refresh) {
  if (!canAct()) return null;
  const text = {
    'run.start': ['이 기간의 청구서를 정산합니다', 'Settles the bills of this period'],
    'run.stop': ['진행 중인 청크 뒤에 멈춥니다', 'Stops after the chunks in hand'],
    'run.resume': ['멈춘 실행을 이어갑니다', 'Resumes a stopped run']
  };
  const b = (verb, label, cls) => el('button', { type: 'button', class: cls, 'data-verb': verb,
    onclick: () => confirmCommand({ verb, args: { period }, text: text[verb], onDone: refresh }) }, ...ko(label[0], label[1]));
  return el('div.buttons.actions', {},
    b('run.start', ['시작', 'Start'], 'primary'),
    b('run.stop', ['중지', 'Stop'], 'danger'),
    b('run.resume', ['재개', 'Resume'], ''));
}

function s_schedule (period, doc, refresh) {
  const s = doc.schedule;
  const cur = s ? kv([[ko('발송 시작', 'Send from'), `${s.at} (${koText('현지', 'local')})`],
    [ko('해제 시각', 'Release at'), when(s.release_at)], [ko('명령 ID', 'Command id'), el('code', {}, s.command_id || '—')]])
    : el('p.muted', {}, ...ko('예약 없음: 통지는 평소대로 나갑니다', 'None: notices go out as usual'));
  if (!canAct()) return [cur];
  const at = el('input', { type: 'datetime-local', required: true });
  const form = el('form.inline', {}, field(ko('발송 시작 시각', 'Send from (local time)'), at),
    el('button', { type: 'submit', 'data-verb': 'run.schedule' }, ...ko('예약', 'Schedule')),
    s ? el('button', { type: 'button', class: 'danger', 'data-verb': 'run.unschedule', onclick: () => confirmCommand({
      verb: 'run.unschedule', args: { period }, text: ['예약을 취소합니다: 통지는 평소대로 나갑니다', 'Cancels it: the notices go out as usual'], onDone: refresh }) },
    ...ko('예약 취소', 'Cancel schedule')) : null);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = at.value.slice(0, 16);
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v)) { at.reportValidity(); return; }
    confirmCommand({ verb: 'run.schedule', args: { period, at: v },
      text: ['이 시각부터 이 실행의 통지를 보냅니다 (방해 금지 시간은 그대로)', 'Sends this run\'s notices from then on (quiet hours still apply)'], onDone: refresh });
  });
  return [cur, form];
}

// The chart of the run's rates; Chart.js is loaded on demand. state.history:
// run.rates' points; state.samples: the live snapshots since it was read.
function s_chart (box, note) {
  const canvas = el('canvas', { id: 'rate-chart', role: 'img', 'aria-label': '초당 청구서와 통지 bills and notices per second' });
  add(box, el('div.chartbox', {}, canvas));
  const state = { chart: null, samples: [], history: [], runId: null, startMs: null, failed: false, loading: false };
  import('/static/chart.esm.js').then((mod) => {
    mod.Chart.register(...mod.registerables);
    const css = getComputedStyle(document.documentElement);
    state.chart = new mod.Chart(canvas, {
      type: 'line',
      data: { datasets: [
        { label: '청구서/초 bills/s', data: [], borderColor: css.getPropertyValue('--c-bills').trim() || '#1f5fbf', pointRadius: 0, tension: 0.2, spanGaps: false },
        { label: '통지/초 notices/s', data: [], borderColor: css.getPropertyValue('--c-notices').trim() || '#b3471d', pointRadius: 0, tension: 0.2, spanGaps: false }
      ] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: { x: { type: 'linear', title: { display: true, text: '초 s (실행 시작부터 since the run began)' } },
          y: { beginAtZero: true, title: { display: true, text: '/s' } } }
      }
    });
    box.dataset.chart = 'ready';
    s_draw(state, box);
  }).catch((err) => {
    state.failed = true;
    box.dataset.chart = 'failed';
    add(note, el('p.error', {}, ko('차트를 불러오지 못했습니다', 'The chart did not load'), `: ${err.message}`));
  });
  return state;
}

// Reads run.rates for runId (the period's newest run) into state.history;
// again only when the run changes. A failure leaves the live points alone.
async function s_loadRates (state, box, note, runId, startedAt) {
  if (state.loading || runId === state.runId) return;
  state.loading = true;
  try {
    const doc = await query('run.rates', { run_id: String(runId) });
    state.runId = runId;
    state.startMs = Date.parse(startedAt || (doc.run && doc.run.started_at) || '') || null;
    state.history = Array.isArray(doc.points) ? doc.points : [];
    state.samples = state.samples.filter((x) => state.startMs !== null && x.t > state.startMs + s_lastT(state) * 1000);
    box.dataset.history = String(state.history.length);
    s_draw(state, box);
  } catch (err) {
    add(note, el('p.error', {}, ko('실행 전체의 비율을 읽지 못했습니다', 'The run\'s rates did not load'), `: ${err.message}`));
  } finally {
    state.loading = false;
  }
}

function s_lastT (state) {
  return state.history.length ? Number(state.history[state.history.length - 1].t) || 0 : 0;
}

// Adds one live snapshot (only after run.rates' last point, so the two
// never overlap).
function s_addSample (state, box, sample) {
  if (state.startMs !== null && sample.t <= state.startMs + s_lastT(state) * 1000) return;
  state.samples.push(sample);
  if (state.samples.length > 3600) state.samples.shift();
  s_draw(state, box);
}

// Where the live rates start: the end of run.rates' last point, with the
// run's bills there (its points' changes add up to them: the run's start row
// has none), or the run's start with no bills when run.rates had no points yet
// (read before the first sample). Without it the bills between that instant
// and the first live snapshot were not drawn, e.g. every bill of a run that
// settles in under a second. The period's finished notices there are not
// known (an earlier run's notices count too): no notices rate over that interval.
// null until run.rates has been read.
function s_anchor (state) {
  if (state.startMs === null) return null;
  const bills = state.history.reduce((n, p) => n + (Number(p.bills) || 0), 0);
  return { t: state.startMs + s_lastT(state) * 1000, bills, notices: null };
}

function s_draw (state, box) {
  if (!state.chart) return;
  const bills = [];
  const notices = [];
  // x: seconds since the run began; before run.rates came, since the first snapshot.
  const origin = state.startMs !== null ? state.startMs : (state.samples.length ? state.samples[0].t : 0);
  let drawn = 0;   // the bills of the intervals drawn with a rate
  for (const p of state.history) {
    const x = Number(p.t);
    if (p.bills_per_s !== null) drawn += Number(p.bills) || 0;
    bills.push({ x, y: p.bills_per_s === null ? null : Number(p.bills_per_s) });
    notices.push({ x, y: p.notices_per_s === null ? null : Number(p.notices_per_s) });
  }
  const anchor = s_anchor(state);
  const s = anchor ? [anchor, ...state.samples] : state.samples;
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i].t - s[i - 1].t) / 1000;
    if (dt <= 0) continue;
    const x = (s[i].t - origin) / 1000;
    drawn += Math.max(0, s[i].bills - s[i - 1].bills);
    bills.push({ x, y: Math.max(0, (s[i].bills - s[i - 1].bills) / dt) });
    if (s[i].notices !== null && s[i - 1].notices !== null)
      notices.push({ x, y: Math.max(0, (s[i].notices - s[i - 1].notices) / dt) });
  }
  state.chart.data.datasets[0].data = bills;
  state.chart.data.datasets[1].data = notices;
  state.chart.update('none');
  if (box) {
    box.dataset.points = String(bills.length);
    box.dataset.first = bills.length ? String(bills[0].x) : '';
    box.dataset.peak = String(bills.reduce((m, p) => (p.y !== null && p.y > m ? p.y : m), 0));
    box.dataset.bills = String(drawn);
  }
}

export function render (main, arg) {
  const period = PERIOD_RE.test(arg || '') ? arg : null;
  const pick = el('input', { type: 'text', value: period || lastMonth(), maxlength: '7', size: '8', pattern: '[0-9]{4}-[0-9]{2}' });
  const pickForm = el('form.inline', {}, field(ko('기간', 'Period'), pick, 'YYYY-MM'), el('button', { type: 'submit' }, ...ko('보기', 'Show')));
  pickForm.addEventListener('submit', (ev) => { ev.preventDefault(); if (PERIOD_RE.test(pick.value.trim())) location.hash = `#/run/${pick.value.trim()}`; });
  add(main, el('h1', {}, ...ko('실행', 'Run'), period ? ` ${period}` : ''), pickForm);
  if (!period) {
    add(main, el('p', {}, ...ko('기간을 고르세요', 'Choose a period')));
    return null;
  }
  const statusBox = el('div', { id: 'run-status' });
  const actionBox = el('div');
  const schedBox = el('div', { id: 'run-schedule' });
  const errBox = el('div');
  const reportBox = el('div', { id: 'run-report' });
  const chartNote = el('div.small.muted', {}, ...ko('실행 전체: 제어 서비스가 1초마다 남긴 표본(run.rates, 최대 600점)에 이 페이지를 연 뒤의 실시간 값을 이어 그립니다. 끊긴 구간은 활성 제어 서비스가 없던 때(전환 중)입니다.',
    'The whole run: the samples the active control takes once a second (run.rates, at most 600 points), then the live stream\'s snapshots since this page opened. A break in a line is a time without an active control (a failover).'));
  const chartBox = el('div', { id: 'run-chart' });
  const avgBox = el('p.small');
  add(main, 
    section(ko('상태', 'Status'), statusBox, actionBox),
    section(ko('초당 청구서·통지', 'Bills and notices per second'), chartNote, chartBox, avgBox),
    section(ko('예약 발송', 'Scheduled release'), schedBox),
    section(ko('평정 오류', 'Rating errors'), el('p.small.muted', {}, ...ko('처음 10건', 'the first 10')), errBox),
    section(ko('대사 보고서', 'Reconciliation report'), reportBox));

  let doc = null;
  let busy = false;
  let lastRead = 0;
  let gone = false;
  // The report is control's slow query: control keeps the newest report of
  // the period and answers wait=0 at once with it, marked "current" (the
  // period has not changed since) and "computing" (a newer one is being
  // made). One request at a time, apart from the status; again while it is
  // not final: when the run turns final, every 15 s, and after 1 s while
  // the answer is not current.
  const rpt = { busy: false, last: 0, final: false, wasFinal: false };
  const reportStatus = el('p.small.muted', { role: 'status' });
  const loadReport = async (force) => {
    if (rpt.busy || gone || !doc || !doc.run) return;
    const due = force || (!rpt.final && ((doc.final && !rpt.wasFinal) || Date.now() - rpt.last > 15000));
    if (!due) return;
    rpt.busy = true;
    rpt.last = Date.now();
    rpt.wasFinal = doc.final;
    try {
      const rep = await query('run.report', { period, wait: '0' });
      if (gone) return;
      rpt.final = !!rep.final && rep.current !== false;
      if (rep.as_of === null) {
        // Nothing computed yet: control is making the first report.
        add(clear(reportBox), reportStatus);
        clear(reportStatus).append(...ko('보고서를 만드는 중…', 'computing the report…'));
      } else {
        add(clear(reportBox), s_report(rep), reportStatus);
        clear(reportStatus).append(...ko('기준 시각', 'as of'), ` ${when(rep.as_of || new Date().toISOString())}`);
        if (rep.current === false) reportStatus.append(', ', ...ko('새로 고치는 중…', 'refreshing…'));
      }
      if (rep.current === false) rpt.last = Date.now() - 14000;   // again in about 1 s
    } catch (err) {
      if (gone) return;
      if (!reportBox.contains(reportStatus)) add(clear(reportBox), reportStatus);
      clear(reportStatus);
      add(reportStatus, err.status === 503
        ? ko('보고서를 만드는 중입니다 (제어 서비스 바쁨): 곧 다시 읽습니다', 'control is busy with reports: read again shortly')
        : errorBox(err));
      rpt.last = Date.now() - 10000;     // again in about 5 s
    } finally {
      rpt.busy = false;
    }
  };
  const refresh = async (withReport) => {
    if (busy || gone) return;
    busy = true;
    lastRead = Date.now();
    try {
      doc = await query('run.show', { period });
      if (gone) return;
      add(clear(statusBox), s_status(doc));
      add(clear(actionBox), s_actions(period, doc, () => refresh(true)) || '');
      add(clear(schedBox), ...s_schedule(period, doc, () => refresh(true)));
      add(clear(errBox), s_errors(doc));
      const r = doc.run;
      if (r) s_loadRates(chart, chartBox, chartNote, r.run_id, r.started_at);
      clear(avgBox);
      if (r && r.seconds > 0) add(avgBox, ko('정산 평균', 'Settlement average'), `: ${num(Math.round(r.bills / r.seconds))} `, ko('청구서/초', 'bills/s'));
      if (!r) add(clear(reportBox), el('p.muted', {}, ...ko('보고서 없음', 'No report')));
      loadReport(withReport);
    } catch (err) {
      if (!gone) add(clear(statusBox), errorBox(err));
    } finally {
      busy = false;
    }
  };
  const chart = s_chart(chartBox, chartNote);
  refresh(true);

  const es = new EventSource('/api/events');
  let lastKey = '';
  es.addEventListener('overview', (ev) => {
    let snap;
    try { snap = JSON.parse(ev.data); } catch (e) { return; }
    const runs = (snap.runs && snap.runs.runs) || [];
    const run = runs.find((x) => x.period === period);
    const d = snap.deliveries && snap.deliveries.period === period ? snap.deliveries.notices : null;
    if (run && (chart.runId === null || run.run_id === chart.runId))
      s_addSample(chart, chartBox, { t: snap.at_ms || Date.now(), bills: Number(run.bills) || 0, notices: d ? finishedOf(d.by_state) : null });
    const key = JSON.stringify([run, d]);
    if (key !== lastKey) {
      lastKey = key;
      refresh(false);
    } else if (doc && !doc.final && Date.now() - lastRead > 5000) {
      refresh(false);     // not the newest run: its changes are not in the snapshot
    } else {
      loadReport(false);  // the report, when it is due
    }
  });
  return () => { gone = true; es.close(); if (chart.chart) chart.chart.destroy(); };
}
