// The console in headless Chromium against the real stack (tests/browser/run.sh
// starts it and sets the BF_* variables). One browser, the tests in order:
// each builds on the state the one before left (the run started in 2 is the
// one whose report 3 waits for, whose failures 4 retries, ...).
//
// Every response body of the whole session (and every event of the live
// stream) is recorded and scanned at the end for the dataset's emails and
// phone numbers in clear: the console must never serve one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run tests/browser/run.sh`);
  return v;
};
const URL = env('BF_URL');
const PERIOD = env('BF_PERIOD');
const SHOTS = env('BF_SHOTS');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// The dataset's contacts in clear, and the bills as billdata exports them.

function parseCsv (text) {
  const rows = [];
  let row = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; } else if (c !== '\r') cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  const head = rows.shift();
  return rows.filter((r) => r.length === head.length).map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

const subscribers = parseCsv(readFileSync(join(env('BF_DATA'), 'subscribers.csv'), 'utf8'));
// Every form a contact could take in a body: the email (any case), the
// phone as written, with its digits only, and with spaces.
const needles = [];
for (const s of subscribers) {
  if (s.email) needles.push(s.email.toLowerCase());
  if (s.phone) {
    const d = s.phone.replace(/\D/g, '');
    needles.push(s.phone, d, `${d.slice(0, 3)} ${d.slice(3, 7)} ${d.slice(7)}`);
  }
}
assert.ok(needles.length > 100, 'the dataset has contacts to look for');

function exportBills () {
  const dir = mkdtempSync(join(env('BF_TMP'), 'export-'));
  execFileSync('bash', ['-c', '. "$1/env" && "$2/tools/billdata/billdata" export-bills --period "$3" "$4"', '_',
    env('BF_STATE'), env('BF_BUILD'), PERIOD, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    bills: parseCsv(readFileSync(join(dir, 'bills.csv'), 'utf8')),
    lines: parseCsv(readFileSync(join(dir, 'bill_lines.csv'), 'utf8'))
  };
}

// ---------------------------------------------------------------------------
// The browser, the recorder, helpers.

let browser;
let page;
const bodies = [];          // { url, text }
let pending = [];

async function record (p) {
  // The live stream never ends as a response: its events are recorded by a
  // wrapper around EventSource instead (installed before any page script).
  await p.exposeFunction('__bfRecordEvent', (url, data) => { bodies.push({ url: `${url} (event)`, text: data }); });
  await p.evaluateOnNewDocument(() => {
    const Orig = window.EventSource;
    window.EventSource = class extends Orig {
      constructor (u, o) {
        super(u, o);
        this.addEventListener('overview', (ev) => window.__bfRecordEvent(String(u), ev.data));
        this.addEventListener('message', (ev) => window.__bfRecordEvent(String(u), ev.data));
      }
    };
  });
  // Every URL the page asks for: a contact in one would stay in the
  // access logs of every proxy on the way (scanned at the end).
  p.on('request', (req) => { urls.push(req.url()); });
  p.on('response', (res) => {
    const ct = res.headers()['content-type'] || '';
    if (ct.startsWith('text/event-stream')) return;
    pending.push(res.buffer().then((b) => bodies.push({ url: res.url(), text: b.toString('utf8') }), () => {}));
  });
  p.on('pageerror', (err) => { console.log(`page error: ${err.message}`); pageErrors.push(err.message); });
}
const pageErrors = [];
const urls = [];

async function newPage (ctx) {
  const p = await (ctx || browser).newPage();
  await p.setViewport({ width: 1280, height: 900 });
  await record(p);
  return p;
}

async function shot (p, name, opts = {}) {
  mkdirSync(SHOTS, { recursive: true });
  await sleep(300);
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: opts.fullPage !== false });
}

async function go (p, hash, selector) {
  await p.evaluate((h) => { location.hash = h; }, hash);
  if (selector) await p.waitForSelector(selector, { timeout: 20000 });
}

// A 429 (the session over its rate, as after step 8b's burst) is waited out
// as the pages' api.js does: Retry-After, at most 3 times.
async function api (p, path, init) {
  return p.evaluate(async (path, init) => {
    let res = await fetch(path, init || {});
    for (let i = 0; i < 3 && res.status === 429; i++) {
      const wait = Number(res.headers.get('Retry-After')) || 1;
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      res = await fetch(path, init || {});
    }
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { body = text; }
    return { status: res.status, body };
  }, path, init || null);
}

async function login (p, name, password) {
  await p.goto(`${URL}/`, { waitUntil: 'domcontentloaded' });
  await p.waitForSelector('#login-form', { timeout: 20000 });
  await p.type('#login-form input[name=name]', name);
  await p.type('#login-form input[name=password]', password);
  await p.click('#login-submit');
  await p.waitForFunction((n) => {
    const w = document.getElementById('who-name');
    return w && !document.getElementById('who').hidden && w.textContent.includes(n);
  }, { timeout: 20000 }, name);
}

// Opens the command dialog with the button, returns its command id.
async function openDialog (p, selector) {
  await p.waitForSelector(selector, { visible: true, timeout: 20000 });
  await p.click(selector);
  await p.waitForSelector('#confirm[open]', { timeout: 5000 });
  return p.$eval('#confirm-id', (e) => e.textContent);
}

async function dialogResult (p) {
  await p.waitForFunction(() => {
    const r = document.getElementById('confirm-result');
    return r && r.querySelector('.done, .error, .warn') && !document.getElementById('confirm-ok').disabled;
  }, { timeout: 30000 });
  return p.$eval('#confirm-result', (e) => e.innerText);
}

async function closeDialog (p) {
  await p.click('#confirm-cancel');
  await p.waitForFunction(() => !document.getElementById('confirm').open, { timeout: 5000 });
}

before(async () => {
  browser = await puppeteer.launch({
    executablePath: env('BF_CHROMIUM'),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--lang=ko-KR'],
    protocolTimeout: 180000
  });
  page = await newPage();
});

after(async () => {
  if (browser) await browser.close();
});

// ---------------------------------------------------------------------------

test('1. log in as an operator', async () => {
  await page.goto(`${URL}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#login-form');
  await shot(page, 'login', { fullPage: false });
  // A wrong password is refused and says so.
  await page.type('#login-form input[name=name]', env('BF_OPERATOR'));
  await page.type('#login-form input[name=password]', 'not-the-password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error .error', { timeout: 20000 });
  await login(page, env('BF_OPERATOR'), env('BF_OPERATOR_PW'));
  const cookie = (await page.cookies()).find((c) => c.name === 'bf_session');
  assert.ok(cookie, 'a session cookie');
  assert.equal(cookie.httpOnly, true, 'HttpOnly');
  assert.equal(cookie.sameSite, 'Strict', 'SameSite=Strict');
  const me = await api(page, '/api/me');
  assert.equal(me.status, 200);
  assert.equal(me.body.role, 'operator');
});

test('2. start a run by button and watch its progress bar move without reloading', async () => {
  await go(page, `#/run/${PERIOD}`, '#run-status');
  await page.evaluate(() => { window.__bfNoReload = 'still here'; });
  const id = await openDialog(page, '#run-status ~ div button[data-verb="run.start"], button[data-verb="run.start"]');
  assert.match(id, /^[0-9a-f-]{36}$/);
  await page.click('#confirm-ok');
  const text = await dialogResult(page);
  assert.match(text, /완료 Done|접수됨 Accepted/);
  await shot(page, 'dialog', { fullPage: false });
  await closeDialog(page);
  // The bars: settlement (chunks) and notices (finished / total).
  const seen = new Set();
  const deadline = Date.now() + 60000;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.$$eval('#run-status progress', (ps) => ps.map((p) => `${p.value}/${p.max}`).join(' '));
    if (last) seen.add(last);
    // Held notices (quiet hours) may keep the notices bar short of its end.
    const settled = await page.$$eval('#run-status progress', (ps) => ps.length === 2 && ps[0].max > 1 && ps[0].value >= ps[0].max);
    if (seen.size >= 4 && settled) break;
    await sleep(250);
  }
  console.log(`progress values seen: ${seen.size} (last ${last})`);
  assert.ok(seen.size >= 3, `the progress bars moved (${[...seen].join(' | ')})`);
  assert.equal(await page.evaluate(() => window.__bfNoReload), 'still here', 'the page was not reloaded');
});

test('3. the reconciliation report reaches FINAL', async () => {
  try {
    await page.waitForFunction(() => {
      const r = document.getElementById('run-report');
      return r && [...r.querySelectorAll('.badge.good')].some((b) => b.textContent === 'FINAL 최종');
    }, { timeout: 100000, polling: 500 });
  } catch (err) {
    const shown = await page.$eval('#run-report', (e) => e.innerText.slice(0, 400));
    const status = await page.$eval('#run-status', (e) => e.innerText.slice(0, 400));
    throw new Error(`no FINAL in the report after 100 s: report shows "${shown}"; status "${status}"`);
  }
  // The chart got its samples from the live stream.
  const chart = await page.$eval('#run-chart', (e) => e.dataset.chart);
  assert.equal(chart, 'ready', 'Chart.js loaded from /static/chart.esm.js');
  await shot(page, 'run');
  // The page was opened before the run: its chart draws the bills from the
  // run's start, also those settled before the first sample or snapshot (a
  // run of a few hundred bills settles in well under a second). Every bill
  // is drawn as a rate except those in run.rates' gaps (no active control).
  const box = await page.$eval('#run-chart', (e) => ({ ...e.dataset }));
  const show = await api(page, `/api/query/run.show?period=${PERIOD}`);
  const rates = await api(page, `/api/query/run.rates?run_id=${show.body.run.run_id}`);
  assert.equal(rates.status, 200);
  const unwatched = rates.body.points.filter((p) => p.bills_per_s === null).reduce((n, p) => n + p.bills, 0);
  console.log(`live run chart: ${box.history} points from run.rates, ${box.points} drawn, bills/s peak ${box.peak}, ${box.bills} of ${show.body.run.bills} bills drawn (${unwatched} in gaps)`);
  assert.ok(Number(box.peak) > 0, `the chart's bills/s line has a positive peak (${box.peak})`);
  assert.equal(Number(box.bills), show.body.run.bills - unwatched, 'the bills/s line accounts for every bill of the run outside gaps');
  const rep = await api(page, `/api/query/run.report?period=${PERIOD}`);
  assert.equal(rep.status, 200);
  assert.equal(rep.body.final, true);
});

test('3b. the Run chart opened after the run shows it from its start (run.rates)', async () => {
  const show = await api(page, `/api/query/run.show?period=${PERIOD}`);
  assert.equal(show.status, 200);
  const started = Date.parse(show.body.run.started_at);
  const rates = await api(page, `/api/query/run.rates?run_id=${show.body.run.run_id}`);
  assert.equal(rates.status, 200);
  assert.ok(rates.body.points.length >= 2, `run.rates has points (${rates.body.points.length})`);
  // A bad run_id is refused by control, with the reason.
  const bad = await api(page, '/api/query/run.rates?run_id=abc');
  assert.equal(bad.status, 400);
  // A fresh page on the run: everything before it was opened comes from run.rates.
  const fresh = await newPage();
  try {
    // The same browser context: the operator's session cookie comes along.
    const opened = Date.now();
    await fresh.goto(`${URL}/#/run/${PERIOD}`, { waitUntil: 'domcontentloaded' });
    await fresh.waitForSelector('#run-status dl', { timeout: 20000 });
    await fresh.waitForFunction(() => {
      const b = document.getElementById('run-chart');
      return b && b.dataset.chart === 'ready' && Number(b.dataset.history) >= 2 && Number(b.dataset.points) >= 2;
    }, { timeout: 30000 });
    const box = await fresh.$eval('#run-chart', (e) => ({ ...e.dataset }));
    const beforeOpen = (opened - started) / 1000;
    console.log(`run chart: ${box.history} points from run.rates, first at ${box.first} s, page opened ${beforeOpen.toFixed(1)} s after the start`);
    assert.ok(Number(box.first) < beforeOpen, `the chart has points from before the page was opened (first x ${box.first} s < ${beforeOpen} s)`);
    assert.ok(Number(box.peak) > 0, `bills/s above zero somewhere (${box.peak})`);
  } finally {
    await fresh.close();
  }
});

let retryId = null;
test('4. double-click "retry failed": exactly one command', async () => {
  await go(page, `#/notices/${PERIOD}`, '#notices-failures table');
  await page.waitForSelector('#retry-run:not([disabled])', { timeout: 20000 });
  const failed = await page.$$eval('#notices-failures tbody input[type=checkbox]', (c) => c.length);
  assert.ok(failed > 0, 'the run has failed notices to retry');
  await shot(page, 'notices');
  retryId = await openDialog(page, '#retry-run');
  // A double click on the confirmation: one command id, one command.
  await page.click('#confirm-ok', { clickCount: 2 });
  await page.evaluate(() => { const b = document.getElementById('confirm-ok'); b.click(); b.click(); });
  const first = await dialogResult(page);
  assert.match(first, /완료 Done|접수됨 Accepted|이미 처리됨 already done/);
  // Sending again reuses the id: control answers from the stored command.
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.getElementById('confirm-result').innerText.includes('이미 처리됨'), { timeout: 30000 });
  await closeDialog(page);
  const cmds = await api(page, `/api/query/commands.list?command_id=${retryId}`);
  assert.equal(cmds.status, 200);
  assert.equal(cmds.body.commands.length, 1, 'one stored command');
  const all = await api(page, '/api/query/commands.list?limit=100');
  const retries = all.body.commands.filter((c) => c.verb === 'deliveries.retry');
  assert.equal(retries.length, 1, 'one deliveries.retry in the whole command list');
  const aud = await api(page, `/api/query/audit.list?command_id=${retryId}`);
  const received = aud.body.audit.filter((a) => a.outcome === 'received');
  assert.equal(received.length, 1, 'received once in the audit log');
  assert.ok(aud.body.audit.every((a) => a.actor === `console/${env('BF_OPERATOR')}`), 'audited as the person');
});

let billId = null;
test('5. look up a subscriber by phone; the statement equals billdata export-bills', async () => {
  const exp = exportBills();
  const withBill = new Set(exp.bills.map((b) => b.subscriber_id));
  const phones = new Map();
  for (const s of subscribers) if (s.phone) phones.set(s.phone.replace(/\D/g, ''), (phones.get(s.phone.replace(/\D/g, '')) || 0) + 1);
  const sub = subscribers.find((s) => s.phone && withBill.has(s.id) && phones.get(s.phone.replace(/\D/g, '')) === 1);
  assert.ok(sub, 'a subscriber with a phone of their own and a bill');
  await go(page, '#/subscriber', '#find-form');
  await page.select('#find-how', 'phone');
  await page.type('#find-value', sub.phone);
  await page.click('#find-form button[type=submit]');
  await page.waitForFunction((id) => location.hash === `#/subscriber/${id}`, { timeout: 20000 }, sub.id);
  await page.waitForSelector('#timeline .statement-link', { timeout: 20000 });
  assert.equal(await page.$eval('#find-value', (e) => e.value), '', 'the phone typed is not kept on the page');
  await shot(page, 'subscriber');
  billId = await page.$eval('#timeline .statement-link', (a) => a.dataset.bill);
  await page.click('#timeline .statement-link');
  await page.waitForSelector('#statement tbody tr', { timeout: 20000 });
  const shown = await page.$$eval('#statement tbody tr', (trs) => trs.map((tr) => ({
    label: tr.querySelector('td.label').textContent,
    amount: tr.querySelector('td.amount').dataset.amount
  })));
  const expected = exp.lines.filter((l) => l.subscriber_id === sub.id && l.period === PERIOD)
    .sort((a, b) => Number(a.line_no) - Number(b.line_no)).map((l) => ({ label: l.label, amount: l.amount }));
  assert.ok(expected.length > 0, 'billdata exported lines for the subscriber');
  assert.deepEqual(shown, expected, 'every line: label and amount as billdata exports them');
  const bill = exp.bills.find((b) => b.subscriber_id === sub.id && b.period === PERIOD);
  const total = await page.$eval('#statement-total', (e) => e.textContent);
  assert.equal(total, `${Number(bill.total).toLocaleString('ko-KR')}원`);
  await shot(page, 'bill');
});

test('6. publish a template version and preview it', async () => {
  await go(page, '#/templates', '#templates-list table');
  const before = await page.$$eval('#templates-list button[data-channel="PUSH"]', (b) => b.map((x) => Number(x.dataset.version)));
  const next = Math.max(...before) + 1;
  await page.select('#pub-channel', 'PUSH');
  await page.type('#pub-subject', '{{period_label}} 요금 안내');
  await page.type('#pub-body', '{{period_label}} 요금 {{total}}원, 납기 {{due_label}} (브라우저 시험 browser test)');
  await page.click('#publish-form button[type=submit]');
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  const text = await dialogResult(page);
  assert.match(text, /완료 Done|접수됨 Accepted/, text);
  await closeDialog(page);
  await page.waitForSelector(`#templates-list button[data-channel="PUSH"][data-version="${next}"]`, { timeout: 20000 });
  await page.click(`#templates-list button[data-channel="PUSH"][data-version="${next}"]`);
  await page.waitForFunction((v) => document.getElementById('template-show').innerText.includes(`PUSH v${v}`), { timeout: 20000 }, next);
  await page.type('#pv-bill', String(billId));
  await page.click('#preview-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('preview').innerText.includes('browser test'), { timeout: 20000 });
  const pv = await page.$eval('#preview', (e) => e.innerText);
  assert.ok(!pv.includes('{{'), 'the preview is rendered');
  assert.match(pv, /원, 납기/);
  await shot(page, 'templates');
});

// ---------------------------------------------------------------------------
// Double-submit safety across a reload (docs/console.md): the command whose
// dialog is open is kept in the tab's sessionStorage; the reloaded page
// reopens it with the same id, so sending it again cannot run it twice.

const PENDING_KEY = 'bf.pending-command';

async function templateVersions (p, channel) {
  const doc = await api(p, '/api/query/templates.list');
  assert.equal(doc.status, 200);
  return doc.body.templates.filter((t) => t.channel === channel).map((t) => Number(t.version));
}

// Fills the publish form (emptied first) and opens its dialog; the command id.
async function openPublish (p, marker) {
  await p.evaluate(() => { for (const id of ['pub-subject', 'pub-body', 'pub-html', 'pub-short']) document.getElementById(id).value = ''; });
  await p.select('#pub-channel', 'PUSH');
  await p.type('#pub-subject', `{{period_label}} 요금 (${marker})`);
  await p.type('#pub-body', `{{period_label}} 요금 {{total}}원, 납기 {{due_label}} (${marker})`);
  await p.click('#publish-form button[type=submit]');
  await p.waitForSelector('#confirm[open]', { timeout: 5000 });
  return p.$eval('#confirm-id', (e) => e.textContent);
}

async function reloadToDialog (p, id) {
  await p.reload({ waitUntil: 'domcontentloaded' });
  try {
    await p.waitForSelector('#confirm[open] #confirm-reopened', { timeout: 20000 });
  } catch (err) {
    throw new Error('the dialog did not come back after the reload: sending the command again would make a new one');
  }
  assert.equal(await p.$eval('#confirm-id', (e) => e.textContent), id, 'the reopened dialog has the same command id');
}

// After the dialog was closed (how: for the message): nothing is kept, and
// the reloaded Templates page opens no dialog.
async function forgottenAfterReload (p, how) {
  assert.equal(await p.evaluate((k) => sessionStorage.getItem(k), PENDING_KEY), null, `${how}: the command is forgotten`);
  await p.reload({ waitUntil: 'domcontentloaded' });
  await p.waitForSelector('#templates-list table', { timeout: 20000 });
  await sleep(500);
  assert.equal(await p.$eval('#confirm', (d) => d.open), false, `${how}: no dialog after a reload`);
}

test('6b. reload before and after the answer: the reopened dialog runs the command once', async () => {
  await go(page, '#/templates', '#publish-form');
  const before = await templateVersions(page, 'PUSH');
  const id = await openPublish(page, '새로고침 시험 reload test');
  // Before the answer: control gets the command and answers, the browser
  // holds the answer back, and the tab is reloaded.
  const cdp = await page.createCDPSession();
  try {
    await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/api/command/*', requestStage: 'Response' }] });
    const held = new Promise((resolve, reject) => {
      cdp.once('Fetch.requestPaused', resolve);
      setTimeout(() => reject(new Error('the command was not sent within 30 s')), 30000).unref();
    });
    await page.click('#confirm-ok');
    const ev = await held;
    assert.ok(ev.responseStatusCode >= 200 && ev.responseStatusCode < 300, `control answered the first submit (HTTP ${ev.responseStatusCode})`);
    const reloaded = reloadToDialog(page, id);
    reloaded.catch(() => {});     // awaited below
    await cdp.send('Fetch.failRequest', { requestId: ev.requestId, errorReason: 'Aborted' }).catch(() => {});
    await reloaded;
  } finally {
    await cdp.send('Fetch.disable').catch(() => {});
    await cdp.detach().catch(() => {});
  }
  const kept = await page.evaluate((k) => JSON.parse(sessionStorage.getItem(k)), PENDING_KEY);
  assert.deepEqual(Object.keys(kept).sort(), ['args', 'by', 'id', 'opened_at', 'verb'], 'only the command is kept');
  assert.equal(kept.id, id);
  assert.equal(kept.verb, 'template.publish');
  const note = await page.$eval('#confirm-text', (e) => e.innerText);
  assert.match(note, /새로고침.*reload/s, 'the dialog says it was not confirmed before the reload');
  // Sent from the reopened dialog: control answers from the stored command.
  await page.click('#confirm-ok');
  const second = await dialogResult(page);
  assert.match(second, /이미 처리됨 already done/, `the second submit is a replay: ${second}`);
  // After the answer, still open: a reload brings it back once more, same id.
  await reloadToDialog(page, id);
  await page.click('#confirm-ok', { clickCount: 2 });
  assert.match(await dialogResult(page), /이미 처리됨 already done/);
  await closeDialog(page);
  await forgottenAfterReload(page, 'closed');
  // Exactly one command: stored once, received once, one new version.
  const cmds = await api(page, `/api/query/commands.list?command_id=${id}`);
  assert.equal(cmds.status, 200);
  assert.equal(cmds.body.commands.length, 1, 'one stored command');
  assert.equal(cmds.body.commands[0].verb, 'template.publish');
  const aud = await api(page, `/api/query/audit.list?command_id=${id}`);
  assert.equal(aud.body.audit.filter((a) => a.outcome === 'received').length, 1, 'received once in the audit log');
  // (An ACCEPTED publish becomes a version when notify takes it: wait for it.)
  let added = [];
  for (const end = Date.now() + 20000; Date.now() < end && !added.length; await sleep(500))
    added = (await templateVersions(page, 'PUSH')).filter((v) => !before.includes(v));
  await sleep(1000);
  added = (await templateVersions(page, 'PUSH')).filter((v) => !before.includes(v));
  assert.equal(added.length, 1, `one new PUSH version (${added.join(', ')})`);
  // Cancel forgets the command too: nothing comes back after a reload.
  const other = await openPublish(page, 'cancelled');
  assert.equal(await page.evaluate((k) => JSON.parse(sessionStorage.getItem(k)).id, PENDING_KEY), other);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('confirm').open, { timeout: 5000 });
  await forgottenAfterReload(page, 'cancelled with Escape');
  const none = await api(page, `/api/query/commands.list?command_id=${other}`);
  assert.equal(none.body.commands.length, 0, 'the cancelled command was never sent');
});

test('7. a viewer sees no action buttons, and a forged POST gets 403', async () => {
  const ctx = await browser.createBrowserContext();
  const v = await newPage(ctx);
  try {
    await login(v, env('BF_VIEWER'), env('BF_VIEWER_PW'));
    for (const [hash, sel] of [['#/overview', '.live'], [`#/run/${PERIOD}`, '#run-status dl'], [`#/notices/${PERIOD}`, '#notices-failures table'],
      ['#/templates', '#templates-list table'], ['#/audit', '#commands table'], [`#/bill/${billId}`, '#statement']]) {
      await go(v, hash, sel);
      await sleep(1200);
      const n = await v.$$eval('[data-verb], #publish-form, #retry-run, #retry-selected', (e) => e.length);
      assert.equal(n, 0, `no action on ${hash}`);
    }
    const me = await api(v, '/api/me');
    const forged = await api(v, '/api/command/dispatch.pause', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.body.csrf },
      body: JSON.stringify({ command_id: 'forged-by-viewer-1', args: {} })
    });
    assert.equal(forged.status, 403, 'the forged command is refused');
    const aud = await api(v, `/api/query/audit.list?actor=console/${env('BF_VIEWER')}`);
    assert.ok(aud.body.audit.some((a) => a.verb === 'dispatch.pause' && a.outcome === 'refused'), 'the refusal is audited');
    const cmds = await api(v, '/api/query/commands.list?command_id=forged-by-viewer-1');
    assert.equal(cmds.body.commands.length, 0, 'nothing stored');
  } finally {
    await ctx.close();
  }
});

test('8. a POST without the CSRF token gets 403', async () => {
  const none = await api(page, '/api/command/dispatch.pause', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ command_id: 'no-csrf-1', args: {} })
  });
  assert.equal(none.status, 403);
  assert.match(none.body.error, /CSRF/);
  const wrong = await api(page, '/api/command/dispatch.pause', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'wrong' },
    body: JSON.stringify({ command_id: 'no-csrf-2', args: {} })
  });
  assert.equal(wrong.status, 403);
  const out = await api(page, '/api/logout', { method: 'POST' });
  assert.equal(out.status, 403, 'logout needs the token too');
  const cmds = await api(page, '/api/query/commands.list?limit=100');
  assert.ok(!cmds.body.commands.some((c) => c.command_id.startsWith('no-csrf-')), 'nothing stored');
});

test('8b. a burst past the session\'s rate: the pages wait out 429 and every answer arrives', async () => {
  // console.session_rate is 20 a second with a burst of 60 (the stack's
  // defaults): 90 queries at once from the page's own api.js get some 429s,
  // which api.js waits out (Retry-After) and asks again.
  let limited = 0;
  const count = (res) => { if (res.status() === 429 && res.url().includes('/api/query/')) limited++; };
  page.on('response', count);
  const answered = await page.evaluate(async () => {
    const api = await import('/static/api.js');
    const all = await Promise.allSettled(Array.from({ length: 90 }, () => api.query('runs.list', { limit: 1 })));
    return all.map((r) => (r.status === 'fulfilled' ? 'ok' : `${r.reason.status} ${r.reason.message}`));
  });
  page.off('response', count);
  const failed = answered.filter((r) => r !== 'ok');
  assert.deepEqual(failed, [], 'every query answered in the end');
  assert.ok(limited > 0, 'the session was over its rate at least once (else the test shows nothing)');
  console.log(`# 90 queries at once: ${limited} answers 429, all 90 answered after waiting`);
});

// ---------------------------------------------------------------------------
// Every page at phone width and for its labels (docs/console.md
// "Accessibility"): no sideways scrolling at 390 px, every form control
// labelled, every button named, the keyboard focus visible.

const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true };

// In the page: what is too wide, unlabelled or nameless.
function pageCheck (phoneWidth) {
  const text = (e) => (e ? e.textContent.replace(/\s+/g, ' ').trim() : '');
  const byIds = (ids) => ids.split(/\s+/).map((i) => text(document.getElementById(i))).join(' ').trim();
  const aria = (e) => (e.getAttribute('aria-label') || '').trim() ||
    (e.getAttribute('aria-labelledby') ? byIds(e.getAttribute('aria-labelledby')) : '');
  const what = (e) => e.tagName.toLowerCase() + (e.id ? `#${e.id}` : '') +
    (e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : '') + (e.getAttribute('type') ? `[type=${e.getAttribute('type')}]` : '') +
    (typeof e.className === 'string' && e.className ? `.${e.className.trim().split(/\s+/).join('.')}` : '');
  const unlabelled = [];
  for (const e of document.querySelectorAll('input, select, textarea')) {
    if (e.type === 'hidden') continue;
    const label = [...(e.labels || [])].map(text).join(' ').trim();
    if (!label && !aria(e)) unlabelled.push(what(e));
  }
  const nameless = [];
  for (const b of document.querySelectorAll('button, [role="button"], input[type="submit"], input[type="button"], input[type="reset"]')) {
    const name = aria(b) || text(b) || (b.tagName === 'INPUT' ? (b.value || '').trim() : '') || (b.getAttribute('title') || '').trim();
    if (!name) nameless.push(what(b));
  }
  let focusRule = false;
  for (const sheet of document.styleSheets) {
    let rules = [];
    try { rules = [...sheet.cssRules]; } catch (err) { continue; }
    for (const r of rules) {
      // cssText: a shorthand with var() leaves its longhands empty here.
      if (r.selectorText && r.selectorText.includes(':focus-visible') &&
        /(^|;)\s*(outline|outline-style|box-shadow)\s*:\s*(?!none\b)[^;\s]/.test(r.style.cssText)) focusRule = true;
    }
  }
  // What sticks out on the right, outside a box that scrolls on its own.
  const wide = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > phoneWidth + 1 && !e.parentElement.closest('.scroll, dialog:not([open])')) wide.push(`${what(e)} (${Math.round(r.right)} px)`);
  }
  return {
    scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    innerWidth: window.innerWidth,
    wide: wide.slice(0, 6),
    unlabelled,
    nameless,
    focusRule
  };
}

// Checks the page as it is now; name says which page.
async function checkPage (p, name) {
  const r = await p.evaluate(pageCheck, PHONE.width);
  console.log(`${name} at ${PHONE.width} px: scrollWidth ${r.scrollWidth}, innerWidth ${r.innerWidth}`);
  assert.ok(r.scrollWidth <= PHONE.width && r.innerWidth <= PHONE.width,
    `${name}: no sideways scrolling at ${PHONE.width} px (scrollWidth ${r.scrollWidth}, innerWidth ${r.innerWidth}; too wide: ${r.wide.join(', ')})`);
  assert.deepEqual(r.unlabelled, [], `${name}: form controls without a label`);
  assert.deepEqual(r.nameless, [], `${name}: buttons without an accessible name`);
  assert.ok(r.focusRule, `${name}: a :focus-visible style with an outline`);
  // The keyboard's focus shows: Tab from the top of the content.
  const inDialog = await p.evaluate(() => document.getElementById('confirm').open);
  if (!inDialog) {
    await p.evaluate(() => { document.activeElement.blur(); document.getElementById('main').focus(); });
    await p.keyboard.press('Tab');
  } else {
    await p.keyboard.press('Tab');
  }
  const f = await p.evaluate(() => {
    const a = document.activeElement;
    const cs = getComputedStyle(a);
    return { what: a.tagName.toLowerCase() + (a.id ? `#${a.id}` : ''), visible: a.matches(':focus-visible'), style: cs.outlineStyle, width: parseFloat(cs.outlineWidth) };
  });
  assert.ok(f.what !== 'body' && f.visible && f.style !== 'none' && f.width >= 2,
    `${name}: the focused ${f.what} shows an outline (${f.style} ${f.width} px)`);
}

test('every page at phone width, with labelled controls and a visible focus', async () => {
  const bill = await api(page, `/api/query/bill.show?bill_id=${billId}`);
  assert.equal(bill.status, 200);
  const subscriberId = bill.body.bill.subscriber_id;
  const pages = [
    ['overview', '#/overview', 'main .grid section'],
    ['run', `#/run/${PERIOD}`, '#run-status dl'],
    ['notices', `#/notices/${PERIOD}`, '#notices-failures table'],
    ['subscriber lookup', '#/subscriber', '#find-form'],
    ['subscriber', `#/subscriber/${subscriberId}`, '#timeline .statement-link'],
    ['bill', `#/bill/${billId}`, '#statement tbody tr'],
    ['templates', '#/templates', '#templates-list table'],
    ['audit', '#/audit', '#commands table'],
    ['no such page', '#/no-such-page', 'main h1']
  ];
  const p = await newPage();
  try {
    await p.setViewport(PHONE);
    // Not the first page of the list: each step below must change the hash.
    await p.goto(`${URL}/#/no-such-page`, { waitUntil: 'domcontentloaded' });
    await p.waitForSelector('#who:not([hidden])', { timeout: 20000 });
    for (const [name, hash, sel] of pages) {
      // Emptied first: the selector can only match the new page.
      await p.evaluate(() => document.getElementById('main').replaceChildren());
      await go(p, hash, sel);
      await sleep(1200);
      await checkPage(p, name);
    }
    // The confirmation dialog, opened (and closed without sending).
    await go(p, `#/notices/${PERIOD}`, '#notices-failures table');
    await openDialog(p, '#retry-run');
    await checkPage(p, 'the confirmation dialog');
    await closeDialog(p);
  } finally {
    await p.close();
  }
  // The login page, in a browser context with no session.
  const ctx = await browser.createBrowserContext();
  try {
    const l = await newPage(ctx);
    await l.setViewport(PHONE);
    await l.goto(`${URL}/`, { waitUntil: 'domcontentloaded' });
    await l.waitForSelector('#login-form', { timeout: 20000 });
    await sleep(300);
    await checkPage(l, 'login');
  } finally {
    await ctx.close();
  }
});

test('screenshots of the remaining pages (1280 px and the overview at phone width)', async () => {
  await go(page, '#/audit', '#commands table');
  await shot(page, 'audit');
  await go(page, '#/overview', '.live');
  await page.waitForFunction(() => document.querySelector('main .grid section'), { timeout: 20000 });
  // The leader column: exactly one control process leads; none is left as "—".
  await page.waitForFunction(() => document.querySelector('[aria-label="services"] tbody tr'), { timeout: 20000 });
  const leaders = await page.$$eval('[aria-label="services"] table', (ts) => {
    const t = ts[0];
    const heads = [...t.querySelectorAll('thead th')].map((h) => h.textContent);
    const col = heads.findIndex((h) => /Leader/.test(h));
    return [...t.querySelectorAll('tbody tr')].map((tr) => ({
      service: tr.children[0].textContent, leader: col >= 0 ? tr.children[col].textContent : null }));
  });
  console.log(`overview leaders: ${JSON.stringify(leaders)}`);
  const controls = leaders.filter((r) => r.service === 'control');
  assert.ok(controls.length >= 1, 'control is listed among the services');
  assert.equal(controls.filter((r) => /leader/.test(r.leader)).length, 1, 'exactly one control leads');
  assert.ok(leaders.filter((r) => r.service !== 'notify').every((r) => r.leader && r.leader !== '—'), 'the leader column is filled for control and settle');
  await shot(page, 'overview');
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await sleep(800);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await shot(page, 'overview-phone');
  assert.ok(wide <= 400, `no sideways scrolling of the page at 390 px (${wide})`);
  await page.setViewport({ width: 1280, height: 900 });
});

test('9. log out: the session is gone', async () => {
  const cookie = (await page.cookies()).find((c) => c.name === 'bf_session');
  assert.ok(cookie);
  await page.click('#logout');
  await page.waitForSelector('#login-form', { timeout: 20000 });
  assert.equal((await api(page, '/api/me')).status, 401);
  // The old token is dead server-side, not only forgotten by the browser.
  await page.setCookie({ ...cookie });
  const again = await api(page, '/api/me');
  assert.equal(again.status, 401, 'the old session token is refused');
  await page.deleteCookie({ name: 'bf_session', url: URL });
});

test('no email or phone number of the dataset in any response of the session', async () => {
  // A body the browser dropped (a closed page, a stream cut short) may never
  // come: wait for the others, not for ever.
  await Promise.race([Promise.allSettled(pending), sleep(10000)]);
  pending = [];
  assert.ok(bodies.length > 50, `responses recorded (${bodies.length})`);
  assert.ok(bodies.some((b) => b.url.includes('(event)')), 'live events recorded');
  const scan = (list) => {
    const hits = [];
    for (const b of list) {
      const low = b.text.toLowerCase();
      for (const n of needles) if (low.includes(n.toLowerCase())) hits.push(b.url);
    }
    return hits;
  };
  // The scanner itself finds a contact put in a body (in another case, too).
  const probe = subscribers.find((s) => s.email);
  assert.equal(scan([{ url: 'probe', text: `{"email":"${probe.email.toUpperCase()}"}` }]).length, 1, 'the scanner finds a contact');
  const found = scan(bodies);
  // The URLs only: a contact is never printed, even in a failure.
  assert.deepEqual([...new Set(found)], [], 'contacts in clear in these responses');
  // No request URL carried one either (the lookup by phone of test 5 is a
  // POST with the phone in its body): the path of each offender only.
  const decode = (u) => { try { return decodeURIComponent(u.replace(/\+/g, ' ')); } catch (e) { return u; } };
  const inUrls = scan(urls.map((u) => ({ url: new globalThis.URL(u).pathname, text: `${u} ${decode(u)}` })));
  assert.ok(urls.some((u) => u.includes('/api/query/subscriber.find')), 'the lookup was recorded');
  assert.deepEqual([...new Set(inUrls)], [], 'contacts in request URLs');
  console.log(`scanned ${bodies.length} responses and events and ${urls.length} request URLs for ${needles.length} contact forms: none in clear`);
  assert.deepEqual(pageErrors, [], 'no script error in the pages');
});
