/*
 * Suggested articles beside the selected chat (in the visitor panel): a
 * knowledge base search (GET /api/kb/search, source=console, with the
 * operator's token, so agents-only articles come too and are marked) from
 * the visitor's last messages, asked again a moment after a new visitor
 * message; a newer question cancels the older request (AbortController).
 * Each suggestion inserts its link (title and URL) or its text (the
 * article fetched, its sanitised HTML read as plain text, kb/html.js) into
 * the reply composer in one click. Nothing here touches the chat messages'
 * own path: the search runs beside it.
 */
import { $, el, clear } from '../shared/dom.js';
import { t, tn } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, enc, safeHttpUrl } from '../shared/format.js';
import { app, selectedChat } from '../shared/state.js';
import { api, errorText } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { htmlText } from './html.js';
import { KB_LANGUAGES } from './list.js';

const DEBOUNCE_MS = 400;
const LIMIT = 4;
const MAX_QUERY = 200;       // characters of the visitor's words asked about
const RECENT = 3;            // the visitor's last messages
const MAX_REPLY = 4000;      // the composer's limit (chats/chat-view.js)

// key: what the list shows (chat, language, words); pending: what is asked for now.
const s = { root: null, list: null, live: null, key: '', pending: '', timer: null, ctrl: null };

function build() {
  const info = $('visitor-info');
  if (!info) return false;
  s.list = el('ul', { className: 'kb-suggest-list', testid: 'kb-suggestions' });
  s.live = el('div', { className: 'muted small kb-suggest-status', testid: 'kb-suggest-status', attrs: { role: 'status', 'aria-live': 'polite' } });
  s.root = el('section', { className: 'kb-suggest', testid: 'kb-suggest', hidden: true, attrs: { 'aria-labelledby': 'kb-suggest-title' } },
    el('h2', { className: 'section-title kb-suggest-title', id: 'kb-suggest-title', text: t('kb.suggest.title') }),
    s.live, s.list);
  info.parentNode.insertBefore(s.root, info.nextSibling);
  return true;
}

/** The words to search for: the visitor's last messages, the newest last, at most MAX_QUERY characters. */
export function visitorQuery(chat) {
  const texts = [];
  const seqs = Array.from(chat.msgs.keys()).sort((a, b) => b - a);
  for (let i = 0; i < seqs.length && texts.length < RECENT; i++) {
    const m = chat.msgs.get(seqs[i]);
    if (m && m.from === 'visitor' && typeof m.text === 'string' && m.text.trim()) texts.unshift(m.text.trim());
  }
  let q = texts.join(' ').replace(/\s+/g, ' ').trim();
  if (q.length > MAX_QUERY) {
    q = q.slice(q.length - MAX_QUERY);
    const space = q.indexOf(' ');
    if (space > 0 && space < 40) q = q.slice(space + 1);   // not half a word
  }
  return q;
}

function chatLang(chat) {
  const code = str(chat.visitor && chat.visitor.lang).toLowerCase().split('-')[0];
  return KB_LANGUAGES.indexOf(code) >= 0 ? code : '';
}

function cancel() {
  clearTimeout(s.timer);
  s.timer = null;
  s.pending = '';
  if (s.ctrl) s.ctrl.abort();
  s.ctrl = null;
}

function schedule(chat, now) {
  if (!s.root && !build()) return;
  if (!chat || chat.ended) {
    cancel();
    s.root.hidden = true;
    s.key = '';
    return;
  }
  s.root.hidden = false;
  const q = visitorQuery(chat);
  const lang = chatLang(chat);
  const key = chat.id + '\n' + lang + '\n' + q;
  if (key === s.key || key === s.pending) return;   // shown already, or on its way
  cancel();   // a newer question: the older request is dropped
  if (!q) {
    s.key = key;
    clear(s.list);
    s.live.textContent = t('kb.suggest.waiting');
    return;
  }
  s.pending = key;
  s.timer = setTimeout(() => { search(chat, q, lang, key); }, now ? 0 : DEBOUNCE_MS);
}

function search(chat, q, lang, key) {
  s.timer = null;
  const ctrl = new AbortController();
  s.ctrl = ctrl;
  let path = '/api/kb/search?source=console&limit=' + LIMIT + '&q=' + enc(q);
  if (lang) path += '&lang=' + enc(lang);
  api('GET', path, undefined, { signal: ctrl.signal }).then((r) => {
    if (ctrl.signal.aborted || app.selectedId !== chat.id) return;
    s.ctrl = null;
    s.pending = '';
    s.key = key;
    const results = r && Array.isArray(r.results) ? r.results.filter((a) => a && typeof a === 'object' && str(a.slug)) : [];
    render(results.slice(0, LIMIT));
  }).catch((err) => {
    if (ctrl.signal.aborted) return;
    s.ctrl = null;
    s.pending = '';
    clear(s.list);
    s.live.textContent = t('kb.suggest.failed', { message: errorText(err) });
  });
}

function render(results) {
  clear(s.list);
  s.live.textContent = results.length ? tn('kb.suggest.found', results.length) : t('kb.suggest.none');
  results.forEach((a) => {
    const title = str(a.title, t('kb.untitled'));
    const agents = a.visibility === 'agents';
    const name = el('span', { className: 'kb-suggest-name', text: title });
    const url = articleUrl(a);
    const head = url ? el('a', { className: 'kb-suggest-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, name) : name;
    const link = el('button', {
      type: 'button', className: 'btn btn-small', text: t('kb.suggest.insertLink'), testid: 'kb-insert-link',
      attrs: { 'aria-label': t('kb.suggest.insertLink.label', { title: title }) }
    });
    const text = el('button', {
      type: 'button', className: 'btn btn-small', text: t('kb.suggest.insertText'), testid: 'kb-insert-text',
      attrs: { 'aria-label': t('kb.suggest.insertText.label', { title: title }) }
    });
    // Agents-only articles have no public page: nothing to link the visitor to.
    link.disabled = !url;
    if (!url) link.title = t('kb.suggest.noLink');
    link.addEventListener('click', () => { if (url) insertIntoComposer(title + ': ' + url); });
    text.addEventListener('click', () => { insertArticleText(a, text); });
    const item = el('li', { className: 'kb-suggest-item', testid: 'kb-suggestion', dataset: { slug: str(a.slug), lang: str(a.lang), visibility: agents ? 'agents' : 'public' } },
      el('div', { className: 'kb-suggest-head' }, head,
        agents ? el('span', { className: 'kb-agents-badge', text: t('kb.visibility.agents'), testid: 'kb-agents-only' }) : null),
      str(a.snippet) ? el('div', { className: 'muted small kb-suggest-snippet', text: a.snippet }) : null,
      el('div', { className: 'kb-suggest-actions' }, link, text));
    if (str(a.lang)) name.setAttribute('lang', a.lang);
    s.list.appendChild(item);
  });
}

/** The article's public URL, absolute (the search answers with a path like /help/de/slug; null: agents only). */
function articleUrl(a) {
  const raw = str(a.url);
  if (!raw) return null;
  try {
    return safeHttpUrl(new URL(raw, window.location.origin).href);
  } catch (e) {
    return null;
  }
}

function insertArticleText(a, button) {
  button.disabled = true;
  const given = str(a.api_url);
  const path = (given.indexOf('/api/kb/articles/') === 0 ? given.split('?')[0]
    : '/api/kb/articles/' + enc(str(a.lang)) + '/' + enc(a.slug)) + '?source=console';
  api('GET', path).then((article) => {
    const text = htmlText(article && typeof article.html === 'string' ? article.html : '');
    if (text) insertIntoComposer(text);
  }).catch((err) => {
    toast(t('kb.suggest.textFailed', { message: errorText(err) }), 'error');
  }).then(() => { button.disabled = false; });
}

/** Put `text` at the caret of the reply composer (cut to what still fits). */
function insertIntoComposer(text) {
  const input = $('message-input');
  const chat = selectedChat();
  if (!input || input.disabled || !chat || chat.ended) return;
  input.focus();
  const end = typeof input.selectionEnd === 'number' ? input.selectionEnd : input.value.length;
  const start = typeof input.selectionStart === 'number' ? input.selectionStart : end;
  const room = MAX_REPLY - (input.value.length - (end - start));
  let piece = text;
  if (piece.length > room) {
    piece = room > 1 ? piece.slice(0, room - 1) + '\u2026' : '';
    toast(t('kb.suggest.cut'), 'warn');
  }
  if (!piece) return;
  const before = input.value.slice(0, start);
  const sep = before && !/\s$/.test(before) ? ' ' : '';
  input.setRangeText(sep.length + piece.length <= room ? sep + piece : piece, start, end, 'end');
  // The composer keeps the draft, the typing indicator and the counter from 'input'.
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

export function installKbSuggestions() {
  on('chat-selected', (chat) => { schedule(chat, true); });
  on('message', (f) => {
    if (f && f.from === 'visitor' && f.session_id === app.selectedId) schedule(selectedChat(), false);
  });
  on('history', (f) => {
    if (f && f.session_id === app.selectedId) schedule(selectedChat(), false);
  });
  on('reset', () => {
    cancel();
    s.key = '';
    if (s.root) s.root.hidden = true;
  });
}
