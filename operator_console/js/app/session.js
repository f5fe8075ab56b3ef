/*
 * Signing in and out: the login form, the saved token, and starting or
 * resetting the console.
 */
import { $, clear } from '../shared/dom.js';
import { t, hasMessage, logServerError } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { app, TOKEN_KEY } from '../shared/state.js';
import { postLogin, postLogout } from '../shared/api.js';
import { connect, disconnect, conn, forgetSessions } from '../shared/connection.js';
import { showBanner, hideBanner, setConnIndicator } from '../shared/banner.js';
import { renderOperator, showView } from './navigation.js';
import { stopFlash } from './title.js';
import { renderStatus } from '../chats/status.js';
import { renderQueue } from '../chats/queue.js';
import { renderSelected } from '../chats/chat-view.js';
import { forgetChats } from '../chats/model.js';
import { resetTickets } from '../tickets/inbox.js';
import { closeEscalateDialog } from '../chats/escalate.js';
import { forgetPreviews } from '../shared/attachments.js';
import { cancelConfirm } from '../shared/confirm.js';
import { applyOperatorLanguage, forgetLanguage } from './language.js';

function showLogin(message) {
  $('app').hidden = true;
  $('login-view').hidden = false;
  const err = $('login-error');
  err.textContent = message || '';
  err.hidden = !message;
  $('login-submit').disabled = false;
  $('login-password').value = '';
  const user = $('login-username');
  (user.value ? $('login-password') : user).focus();
  document.title = t('app.title');
}

function showApp() {
  $('login-view').hidden = true;
  $('app').hidden = false;
  renderOperator();
  renderStatus();
  renderQueue();
  renderSelected();
  showView(app.view);
  setConnIndicator('connecting');
  showBanner(t('conn.connecting.banner'));
}

// The sign-in refusals (POST /api/login) in the operator's words.
const LOGIN_ERRORS = { invalid_credentials: 'login.wrong', bad_request: 'login.badRequest' };

function loginFailure(r) {
  const code = r.body && typeof r.body.error === 'string' ? r.body.error : '';
  logServerError('login ' + r.status, code, r.body && r.body.message);
  if (LOGIN_ERRORS[code]) return t(LOGIN_ERRORS[code]);
  if (code && hasMessage('error.' + code)) return t('error.' + code);
  if (r.status === 401) return t('login.wrong');
  if (r.status === 400) return t('login.badRequest');
  if (r.status === 429) return t('login.tooMany');
  return t('login.failed');
}

function onLoginSubmit(ev) {
  ev.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const err = $('login-error');
  if (!username || !password) {
    err.textContent = t('login.missing');
    err.hidden = false;
    return;
  }
  err.hidden = true;
  err.textContent = '';
  const submit = $('login-submit');
  submit.disabled = true;
  postLogin(username, password).then((r) => {
    submit.disabled = false;
    if (r.status === 200 && r.body && typeof r.body.token === 'string') {
      startSession(r.body.token, r.body.operator);
      return;
    }
    err.textContent = loginFailure(r);
    err.hidden = false;
    $('login-password').select();
  }).catch(() => {
    submit.disabled = false;
    err.textContent = t('login.unreachable');
    err.hidden = false;
  });
}

function startSession(token, operator) {
  app.token = token;
  try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
  if (operator && typeof operator === 'object') {
    // The operator's own language: a reload speaks it (and resumes the session).
    if (applyOperatorLanguage(operator.lang)) return;
    app.operator = operator;
    app.role = typeof operator.role === 'string' ? operator.role : null;
    if (typeof operator.capacity === 'number') app.capacity = operator.capacity;
    if (typeof operator.status === 'string') app.status = operator.status;
  }
  $('login-password').value = '';
  showApp();
  conn.attempt = 0;
  connect();
}

function resetState() {
  forgetChats();
  app.operator = null;
  app.role = null;
  app.status = null;
  app.load = null;
  app.capacity = 0;
  app.wantedStatus = null;
  app.welcomes = 0;
  forgetSessions();
  clear($('chat-tabs'));
  clear($('messages-slot'));
  clear($('queue'));
  resetTickets();
  forgetPreviews();
  closeEscalateDialog();
  cancelConfirm();
  app.view = 'chats';
  hideBanner();
  stopFlash();
  emit('reset', null);
}

/** Forget the token and go back to the login form (with `message`, if any). */
export function signOut(message) {
  const username = app.operator && typeof app.operator.username === 'string' ? app.operator.username : '';
  if (username && !$('login-username').value) $('login-username').value = username;
  disconnect();
  app.token = null;
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  resetState();
  showLogin(message);
}

function onLogout() {
  // The server revokes the token; it is forgotten here either way.
  postLogout();
  signOut('');
  forgetLanguage();
}

/** Wire the login form and the logout button. */
export function initSession() {
  $('login-form').addEventListener('submit', onLoginSubmit);
  // index.html ships the button disabled, so that a click before this script ran
  // cannot submit the form natively (a reload that loses what was typed).
  $('login-submit').disabled = false;
  $('logout').addEventListener('click', onLogout);
}

/** Resume a saved session, or show the login form. */
export function start() {
  let saved = null;
  try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  if (saved) {
    app.token = saved;
    showApp();
    connect();
  } else {
    showLogin('');
  }
}
