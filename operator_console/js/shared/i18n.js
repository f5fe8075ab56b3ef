/*
 * Every user-visible string of the console goes through t():
 *
 *   t('chat.newChat', { name: 'Anna' })  ->  'New chat from Anna'
 *
 * Messages are keyed by stable ids; `{name}` is a placeholder filled from
 * `params` (placeholders without a param stay as they are, values are not
 * scanned again). The catalogs, one per language, are in shared/i18n/ and
 * listed in shared/i18n/languages.js; setLanguage() picks one (app/language.js
 * decides which: the operator's choice stored on the server, else the
 * browser's languages, else English). A key missing in a catalog falls back
 * to English.
 *
 * Strings in index.html carry data-i18n (text), data-i18n-title,
 * data-i18n-placeholder and data-i18n-aria-label keys; translatePage() fills
 * them. Text around markup is a data-i18n-template: the message's
 * {placeholders} are the element's children marked data-slot="placeholder",
 * put where the language wants them. The HTML keeps the English text for the
 * first paint.
 *
 * Server errors and chat notices are said through the catalogs too:
 * errorMessage() (never the server's code or message) and noticeText().
 */
import { LANGUAGES } from './i18n/languages.js';

export { LANGUAGES };

const FALLBACK = LANGUAGES[0];
let current = FALLBACK;
let messages = current.messages;

const has = (table, key) => Object.prototype.hasOwnProperty.call(table, key);

/** The language entry of `code` ('de', 'de-CH', 'DE'), or null. */
export function findLanguage(code) {
  if (typeof code !== 'string' || !code) return null;
  const base = code.toLowerCase().split('-')[0];
  return LANGUAGES.find((l) => l.code === base) || null;
}

/** The first of the browser's languages the console speaks, else the fallback's code. */
export function browserLanguage() {
  const wanted = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language];
  for (let i = 0; i < wanted.length; i++) {
    const lang = findLanguage(wanted[i]);
    if (lang) return lang.code;
  }
  return FALLBACK.code;
}

/** Speak `code` from now on (unknown codes: the fallback); returns the code used. */
export function setLanguage(code) {
  current = findLanguage(code) || FALLBACK;
  messages = current.messages;
  document.documentElement.lang = current.code;
  return current.code;
}

/** The code of the language spoken ('de'). */
export function language() { return current.code; }

/** The Intl locale of the language spoken ('de-CH'). */
export function locale() { return current.locale; }

/** The message `key` with its `{placeholders}` filled from `params`. */
export function t(key, params) {
  const text = has(messages, key) ? messages[key] : has(FALLBACK.messages, key) ? FALLBACK.messages[key] : key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    (has(params, name) ? String(params[name]) : whole));
}

/**
 * The message for the count `n`: `key.one`, `key.other` (or whatever plural
 * categories the language has, Intl.PluralRules), with `n` among the params.
 */
export function tn(key, n, params) {
  const form = key + '.' + new Intl.PluralRules(current.locale).select(n);
  return t(hasMessage(form) ? form : key + '.other', Object.assign({ n: n }, params));
}

/** Whether there is a message `key` (for keys built from server values). */
export function hasMessage(key) {
  return has(messages, key) || has(FALLBACK.messages, key);
}

/**
 * What to tell the operator about a refusal with `code` (errors.py, the HTTP
 * API): the sentence for `context` ('transfer', 'ticket', ...) if there is
 * one, else the code's, else the generic one. Never the code itself.
 */
export function errorMessage(code, context) {
  if (typeof code === 'string' && code) {
    if (context && hasMessage('error.' + context + '.' + code)) return t('error.' + context + '.' + code);
    if (hasMessage('error.' + code)) return t('error.' + code);
  }
  return t('error.generic');
}

/** The server's own words about an error go to the debug log, never on screen. */
export function logServerError(where, code, message) {
  if (window.console && console.debug) console.debug('chatserver console:', where, code || '', message || '');
}

/**
 * A server-written chat event: its `notice` {code, params} in the operator's
 * language, or `fallback` (the server's English text) for an unknown code.
 */
export function noticeText(notice, fallback) {
  if (!notice || typeof notice !== 'object' || typeof notice.code !== 'string') return fallback;
  const key = 'notice.' + notice.code;
  if (!hasMessage(key)) return fallback;
  const params = Object.assign({}, notice.params && typeof notice.params === 'object' ? notice.params : {});
  if (has(params, 'level') && hasMessage('level.ordinal.' + params.level)) params.level = t('level.ordinal.' + params.level);
  return t(key, params);
}

const ATTRIBUTES = [
  ['i18nTitle', 'title'],
  ['i18nPlaceholder', 'placeholder'],
  ['i18nAriaLabel', 'aria-label']
];

/** `node`'s text from a template message; its data-slot children go into the placeholders. */
function fillTemplate(node, text) {
  const slots = {};
  Array.prototype.forEach.call(node.children, (child) => {
    if (child.dataset.slot) slots[child.dataset.slot] = child;
  });
  while (node.firstChild) node.removeChild(node.firstChild);
  text.split(/(\{\w+\})/).forEach((part) => {
    const slot = /^\{(\w+)\}$/.exec(part);
    if (slot && slots[slot[1]]) node.appendChild(slots[slot[1]]);
    else if (part) node.appendChild(document.createTextNode(part));
  });
}

/** Fill the data-i18n* marked strings of the page (or of `root`). */
export function translatePage(root) {
  root.querySelectorAll('[data-i18n]').forEach((node) => {
    node.textContent = t(node.dataset.i18n);
  });
  root.querySelectorAll('[data-i18n-template]').forEach((node) => {
    fillTemplate(node, t(node.dataset.i18nTemplate));
  });
  ATTRIBUTES.forEach(([data, attr]) => {
    const name = 'data-' + data.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    root.querySelectorAll('[' + name + ']').forEach((node) => {
      node.setAttribute(attr, t(node.dataset[data]));
    });
  });
}
