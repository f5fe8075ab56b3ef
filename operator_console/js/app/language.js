/*
 * Which language the console speaks, and the language menus (login card and
 * top bar).
 *
 * The operator's choice is stored on the server with the account (PUT
 * /api/me/preferences) and comes back as `operator.lang` from POST /api/login
 * and in the `welcome` frame. Without one, the console follows the browser's
 * languages (shared/i18n.js browserLanguage()), else English. A choice made on
 * the login card is stored once the operator has signed in.
 *
 * The views build their controls once, in the language of the moment, so a
 * different language takes effect by loading the page again: the signed-in
 * session resumes from sessionStorage (app/session.js), the chats from the
 * server. This tab remembers the language in sessionStorage so that the
 * reloaded page starts in it at once.
 */
import { $, el, clear } from '../shared/dom.js';
import { t, LANGUAGES, findLanguage, browserLanguage, setLanguage, language } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { toast } from '../shared/toasts.js';

const LANG_KEY = 'chatserver:lang';              // the language of this tab
const CHOSEN_KEY = 'chatserver:lang-chosen';     // chosen on the login card, not stored yet
const USERNAME_KEY = 'chatserver:login-username'; // typed before a reload of the login card

function load(key) {
  try { return sessionStorage.getItem(key); } catch (e) { return null; }
}

/** Remember `value` (null: forget it) for this tab; false if the browser refuses. */
function save(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
    return load(key) === value;
  } catch (e) {
    return false;   // private mode: a reload would not keep the language, so none is done
  }
}

function reload() {
  window.location.reload();
}

/** At start: the language this tab spoke last, else the browser's. */
export function initLanguage() {
  const saved = findLanguage(load(LANG_KEY));
  setLanguage(saved ? saved.code : browserLanguage());
}

function fillMenu(select) {
  clear(select);
  LANGUAGES.forEach((lang) => {
    select.appendChild(el('option', { value: lang.code, text: lang.name, attrs: { lang: lang.code } }));
  });
  select.value = language();
}

/** On the login card: speak `code` at once (the account gets it after signing in). */
function chooseBeforeSignIn(code) {
  if (!findLanguage(code) || code === language() || !save(LANG_KEY, code)) return;
  save(CHOSEN_KEY, code);
  save(USERNAME_KEY, $('login-username').value);
  reload();
}

/** In the console: store `code` as the operator's language, then speak it. */
function chooseSignedIn(code) {
  const select = $('lang-select');
  if (!findLanguage(code) || code === language()) return;
  select.disabled = true;
  api('PUT', '/api/me/preferences', { lang: code }).then(() => {
    save(CHOSEN_KEY, null);
    if (save(LANG_KEY, code)) reload();
    else select.disabled = false;   // stored; this tab speaks it from the next sign-in
  }, (err) => {
    select.disabled = false;
    select.value = language();
    toast(t('lang.saveFailed', { message: err.message }), 'error');
  });
}

/** Fill and wire both language menus. */
export function initLanguageMenus() {
  const login = $('login-lang');
  const top = $('lang-select');
  fillMenu(login);
  fillMenu(top);
  login.addEventListener('change', () => { chooseBeforeSignIn(login.value); });
  top.addEventListener('change', () => { chooseSignedIn(top.value); });
  const username = load(USERNAME_KEY);
  if (username) {
    $('login-username').value = username;
    save(USERNAME_KEY, null);
  }
}

/**
 * The signed-in operator's stored language (`operator.lang`, or null): a
 * different one than spoken reloads the page in it (returns true then). With
 * none stored, a choice made on the login card is stored now.
 */
export function applyOperatorLanguage(lang) {
  const stored = findLanguage(lang);
  if (stored) {
    save(CHOSEN_KEY, null);
    if (save(LANG_KEY, stored.code) && stored.code !== language()) {
      reload();
      return true;
    }
    return false;
  }
  const chosen = findLanguage(load(CHOSEN_KEY));
  if (chosen) {
    api('PUT', '/api/me/preferences', { lang: chosen.code }).then(() => {
      save(CHOSEN_KEY, null);
    }, () => { /* stored at the next sign-in */ });
  }
  return false;
}

/** Logged out: the next operator starts from the browser's language. */
export function forgetLanguage() {
  save(LANG_KEY, null);
  save(CHOSEN_KEY, null);
  if (language() !== browserLanguage()) reload();
}
