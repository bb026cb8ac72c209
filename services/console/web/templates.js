// Templates: every channel's versions (which is active, who published it),
// one version whole, a preview rendered for a chosen bill (contact masked),
// and publishing a new version (a command: checked by notify, audited, once
// per command id).

import { canAct, query } from './api.js';
import { el, clear, ko, table, when, section, badge, errorBox, field, kv, add } from './ui.js';
import { confirmCommand } from './dialog.js';

export function title () { return '템플릿 Templates'; }

const CHANNELS = ['EMAIL', 'SMS', 'PUSH'];

function s_channelSelect (id) {
  return el('select', { id }, CHANNELS.map((c) => el('option', { value: c }, c)));
}

function s_text (label, text) {
  return [el('h4', {}, ...label), el('pre.text', {}, text === null || text === undefined ? '—' : String(text))];
}

export function render (main) {
  const listBox = el('div', { id: 'templates-list' });
  const showBox = el('div', { id: 'template-show' });
  const pvChan = s_channelSelect('pv-channel');
  const pvVersion = el('input', { type: 'number', id: 'pv-version', min: '1', required: true, size: '4' });
  const pvBill = el('input', { type: 'number', id: 'pv-bill', min: '1', required: true, size: '12' });
  const pvForm = el('form.inline', { id: 'preview-form' }, field(ko('채널', 'Channel'), pvChan), field(ko('버전', 'Version'), pvVersion),
    field(ko('청구서 번호', 'Bill id'), pvBill), el('button', { type: 'submit', class: 'primary' }, ...ko('미리보기', 'Preview')));
  const pvBox = el('div', { id: 'preview', 'aria-live': 'polite' });
  add(main, el('h1', {}, ...ko('템플릿', 'Templates')),
    section(ko('버전', 'Versions'), listBox, showBox),
    section(ko('미리보기', 'Preview'), el('p.small.muted', {}, ...ko('고른 청구서로 렌더링합니다. 연락처는 가려집니다', 'Rendered for the chosen bill; the contact is masked')), pvForm, pvBox),
    canAct() ? section(ko('새 버전 게시', 'Publish a new version'), s_publishForm(() => load())) : null);

  const show = async (channel, version) => {
    add(clear(showBox), el('p.muted', {}, ...ko('불러오는 중…', 'Loading…')));
    try {
      const t = await query('template.show', { channel, version });
      add(clear(showBox), el('h3', {}, `${t.channel} v${t.version} `, t.active ? badge('ACTIVE 사용 중', 'good') : ''),
        kv([[ko('용도', 'Purpose'), t.purpose || '—'], [ko('게시', 'Published'), when(t.created_at)], [ko('게시자', 'By'), t.published_by || t.client || '—']]),
        s_text(ko('제목', 'Subject'), t.subject), s_text(ko('본문', 'Body'), t.body),
        s_text(ko('HTML 본문', 'HTML body (shown as text)'), t.body_html), s_text(ko('짧은 본문', 'Short body'), t.short_body));
      pvChan.value = t.channel;
      pvVersion.value = String(t.version);
    } catch (err) {
      add(clear(showBox), errorBox(err));
    }
  };
  const load = async () => {
    try {
      const doc = await query('templates.list', {});
      const rows = doc.templates || [];
      add(clear(listBox), table([
        { h: ['채널', 'Channel'], get: (t) => t.channel },
        { h: ['버전', 'Version'], cls: 'n', get: (t) => el('button', { type: 'button', class: 'link', 'data-channel': t.channel, 'data-version': String(t.version),
          onclick: () => show(t.channel, t.version) }, `v${t.version}`) },
        { h: ['사용 중', 'Active'], get: (t) => (t.active ? badge('ACTIVE', 'good') : '—') },
        { h: ['제목', 'Subject'], get: (t) => t.subject || '—' },
        { h: ['게시', 'Published'], get: (t) => when(t.created_at) },
        { h: ['게시자', 'By'], get: (t) => t.published_by || t.client || '—' }
      ], rows, { label: 'template versions', empty: ko('템플릿 없음', 'No template') }));
      const first = rows.find((t) => t.active) || rows[0];
      if (first && !pvVersion.value) { pvChan.value = first.channel; pvVersion.value = String(first.version); }
    } catch (err) {
      add(clear(listBox), errorBox(err));
    }
  };
  pvForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    add(clear(pvBox), el('p.muted', {}, ...ko('렌더링 중…', 'Rendering…')));
    try {
      const p = await query('template.preview', { channel: pvChan.value, version: pvVersion.value, bill_id: pvBill.value });
      add(clear(pvBox), 
        kv([[ko('채널', 'Channel'), p.channel], [ko('버전', 'Version'), String(p.version)], [ko('청구서', 'Bill'), el('a', { href: `#/bill/${p.bill_id}` }, String(p.bill_id))],
          [ko('발송 형식', 'Sent as'), p.sent_as || '—'], [ko('받는 사람', 'To'), el('span.masked', {}, p.to || '—')], [ko('항목 수', 'Lines'), String(p.lines)]]),
        s_text(ko('제목', 'Subject'), p.subject), s_text(ko('본문', 'Body'), p.body),
        p.body_html ? s_text(ko('HTML 본문', 'HTML body (shown as text)'), p.body_html) : null);
    } catch (err) {
      add(clear(pvBox), errorBox(err));
    }
  });
  load();
  return null;
}

function s_publishForm (reload) {
  const chan = s_channelSelect('pub-channel');
  const subject = el('input', { type: 'text', id: 'pub-subject', maxlength: '500', required: true });
  const body = el('textarea', { id: 'pub-body', rows: '8', required: true });
  const html = el('textarea', { id: 'pub-html', rows: '5' });
  const short = el('textarea', { id: 'pub-short', rows: '2' });
  const form = el('form.stack', { id: 'publish-form' },
    field(ko('채널', 'Channel'), chan),
    field(ko('제목', 'Subject'), subject),
    field(ko('본문', 'Body'), body, '{{name}} {{period_label}} {{total}} {{due_label}} {{#lines}}{{label}} {{amount}}{{/lines}} …'),
    field(ko('HTML 본문 (이메일에 필요)', 'HTML body (needed for EMAIL)'), html),
    field(ko('짧은 본문 (SMS에 필요)', 'Short body (needed for SMS)'), short),
    el('div.buttons', {}, el('button', { type: 'submit', class: 'primary', 'data-verb': 'template.publish' }, ...ko('게시', 'Publish'))));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const args = { channel: chan.value, subject: subject.value, body: body.value };
    if (html.value) args.body_html = html.value;
    if (short.value) args.short_body = short.value;
    confirmCommand({ verb: 'template.publish', args,
      text: ['notify가 검사한 뒤 이 채널의 다음 사용 버전이 됩니다', 'notify checks it, then it becomes the channel\'s next, active version'], onDone: reload });
  });
  return form;
}
