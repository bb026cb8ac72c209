// The console's single page: session, hash routing, and the page modules.
//   #/login  #/overview  #/run/PERIOD  #/notices[/PERIOD]  #/subscriber[/ID]
//   #/bill/ID  #/templates  #/audit

import { session, me, login, logout, ApiError } from './api.js';
import { el, clear, ko, field, errorBox, add } from './ui.js';
import { resumePending, dropPending } from './dialog.js';
import * as overview from './overview.js';
import * as run from './run.js';
import * as notices from './notices.js';
import * as subscriber from './subscriber.js';
import * as templates from './templates.js';
import * as audit from './audit.js';

const PAGES = {
  overview, run, notices, subscriber, templates, audit,
  bill: { render: subscriber.renderBill, title: subscriber.billTitle }
};

let s_cleanup = null;
let s_afterLogin = '#/overview';

function s_route () {
  const parts = (location.hash || '#/overview').replace(/^#\/?/, '').split('/');
  return { name: parts[0] || 'overview', arg: parts.slice(1).map(decodeURIComponent).join('/') };
}

function s_chrome (loggedIn) {
  document.getElementById('nav').hidden = !loggedIn;
  document.getElementById('who').hidden = !loggedIn;
  const who = document.getElementById('who-name');
  clear(who);
  if (loggedIn) {
    add(who, session.name, ' ', el('span', { class: `badge role-${session.role}` },
      session.role === 'operator' ? '운영자 operator' : '조회자 viewer'));
  }
  document.body.classList.toggle('viewer', loggedIn && session.role !== 'operator');
}

function s_teardown () {
  if (s_cleanup) {
    try { s_cleanup(); } catch (e) { /* the page is gone anyway */ }
  }
  s_cleanup = null;
}

function s_renderLogin (main) {
  s_chrome(false);
  document.title = '로그인 Log in — 빌플로우 콘솔';
  const name = el('input', { type: 'text', name: 'name', autocomplete: 'username', required: true, maxlength: '64' });
  const pw = el('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = el('div', { role: 'alert', id: 'login-error' });
  const btn = el('button', { type: 'submit', class: 'primary', id: 'login-submit' }, ...ko('로그인', 'Log in'));
  const form = el('form.card.login', { id: 'login-form' },
    el('h1', {}, ...ko('로그인', 'Log in')),
    field(ko('이름', 'Name'), name),
    field(ko('비밀번호', 'Password'), pw),
    msg,
    el('div.buttons', {}, btn));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    btn.disabled = true;
    clear(msg);
    try {
      await login(name.value.trim(), pw.value);
      pw.value = '';
      location.hash = s_afterLogin === '#/login' ? '#/overview' : s_afterLogin;
      s_render();
    } catch (err) {
      if (err instanceof ApiError && err.status === 429)
        add(msg, el('p.error', {}, ko('시도가 너무 많습니다. 잠시 후 다시 하세요', 'Too many attempts: try again later'),
          err.retryAfter ? ` (${err.retryAfter} s)` : ''));
      else if (err instanceof ApiError && err.status === 401)
        add(msg, el('p.error', {}, ko('이름 또는 비밀번호가 틀립니다', 'Wrong name or password')));
      else add(msg, errorBox(err));
    } finally {
      btn.disabled = false;
    }
  });
  add(clear(main), form);
  name.focus();
}

async function s_render () {
  s_teardown();
  const main = document.getElementById('main');
  const route = s_route();
  if (!session.name) {
    let who = null;
    try { who = await me(); } catch (err) { add(clear(main), errorBox(err)); return; }
    if (!who) {
      if (route.name !== 'login') s_afterLogin = location.hash || '#/overview';
      if (route.name !== 'login') history.replaceState(null, '', '#/login');
      s_renderLogin(main);
      return;
    }
  }
  if (route.name === 'login') { location.replace('#/overview'); return; }
  s_chrome(true);
  const page = PAGES[route.name];
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.route === (route.name === 'bill' ? 'subscriber' : route.name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(main);
  if (!page) {
    add(main, el('h1', {}, ...ko('없는 페이지', 'No such page')), el('p', {}, el('a', { href: '#/overview' }, ...ko('개요로', 'To the overview'))));
    return;
  }
  document.title = `${page.title ? page.title(route.arg) : route.name} — 빌플로우 콘솔 billflow console`;
  try {
    s_cleanup = page.render(main, route.arg) || null;
  } catch (err) {
    add(main, errorBox(err));
  }
  // A command whose dialog was open when the tab was reloaded comes back,
  // same id; once answered and closed, the page is drawn again to show it.
  resumePending(() => s_render());
}

window.addEventListener('hashchange', s_render);
window.addEventListener('bf-logged-out', () => {
  if (s_route().name !== 'login') {
    s_afterLogin = location.hash;
    s_teardown();
    location.hash = '#/login';
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  s_teardown();
  dropPending();
  try { await logout(); } catch (err) { /* the session is dropped here anyway */ }
  s_afterLogin = '#/overview';
  location.hash = '#/login';
  s_render();
});

document.getElementById('skip').addEventListener('click', (ev) => {
  ev.preventDefault();     // the hash is the router's: focus the content instead
  document.getElementById('main').focus();
});

s_render();
