/*
 * Consulted: a colleague asked me about their chat (`consulted`). A read-only
 * tab of that chat opens (history, live messages, the notes thread) with a
 * note composer that answers with `consult` frames; there is no message
 * composer, nothing reaches the visitor.
 */
import { $, el, clear, insertOrdered } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { str, formatClock, formatFull } from '../shared/format.js';
import { app, selectedChat } from '../shared/state.js';
import { send } from '../shared/connection.js';
import { toast } from '../shared/toasts.js';
import { showView } from '../app/navigation.js';
import { messageText } from '../chats/messages.js';
import {
  MAX_CHARS, me, person, isMine, loadOperators, fillColleagues, colleagueName, whoLine,
  labelNote, Pending, sendConsult, checkText, enterSends
} from './colleagues.js';

const consults = new Map();   // session_id -> consult (tab order = insertion order)
let ui = null;
let active = null;            // session id of the consult shown, or null

export const reply = new Pending((p) => {
  if (!ui) return;
  ui.send.disabled = false;
  const c = consults.get(p.sessionId);
  if (c) c.draft = '';
  if (active === p.sessionId) {
    ui.input.value = '';
    ui.colleague.value = '';
    ui.status.textContent = p.target ? t('consult.reply.asked', { name: colleagueName(p.target) }) : '';
  }
}, (p, why) => {
  if (!ui) return;
  ui.send.disabled = false;
  if (active === p.sessionId) replyError(t('consult.reply.notSent', { why: why }));
});

function buildView() {
  const chatView = $('chat-view');
  const tabs = $('chat-tabs');
  const info = $('visitor-info');
  if (!chatView || !tabs || !info) return false;
  ui = {};
  ui.strip = el('div', {
    className: 'chat-tabs consult-tabs', testid: 'consult-tabs', hidden: true,
    attrs: { role: 'tablist', 'aria-label': t('consult.tabs.label') }
  }, el('span', { className: 'consult-strip-label', text: t('consult.tabs.title') }));
  tabs.parentNode.insertBefore(ui.strip, tabs.nextSibling);

  ui.title = el('span', { className: 'chat-title', testid: 'consult-title' });
  ui.meta = el('span', { className: 'muted small', testid: 'consult-meta' });
  ui.close = el('button', { type: 'button', className: 'btn btn-small', testid: 'consult-close', text: t('consult.view.close') });
  ui.slot = el('div', { className: 'messages-slot', testid: 'consult-messages' });
  ui.refresh = el('button', { type: 'button', className: 'link-button', testid: 'consult-refresh', text: t('consult.view.refresh') });
  ui.stale = el('div', { className: 'consult-stale', testid: 'consult-stale', hidden: true },
    el('span', { text: t('consult.view.stale') }),
    ui.refresh);
  ui.ended = el('div', { className: 'chat-ended', testid: 'consult-ended', hidden: true },
    el('span', { className: 'chat-ended-label' }, el('strong', { text: t('chat.ended') }),
      el('span', { className: 'muted', text: t('consult.view.endedReadOnly') })));
  ui.input = el('textarea', {
    className: 'message-input consult-input', rows: 2, maxLength: MAX_CHARS, testid: 'consult-note-input',
    placeholder: t('consult.view.input.placeholder'), attrs: { 'aria-label': t('consult.view.input.label') }
  });
  ui.colleague = el('select', { testid: 'consult-note-colleague', attrs: { 'aria-label': t('consult.view.colleague.label') } },
    el('option', { value: '', text: t('consult.view.toThread') }));
  ui.send = el('button', { type: 'submit', className: 'btn btn-primary', testid: 'consult-note-send', text: t('consult.view.send') });
  ui.status = el('span', { className: 'muted small', testid: 'consult-note-status', attrs: { 'aria-live': 'polite' } });
  ui.error = el('div', { className: 'inline-error consult-error', testid: 'consult-note-error', hidden: true, attrs: { role: 'alert' } });
  ui.form = el('form', { className: 'consult-composer', testid: 'consult-composer', noValidate: true },
    el('div', { className: 'consult-row' },
      el('span', { className: 'consult-label', text: t('consult.label') }),
      el('span', { className: 'consult-spacer' }), ui.status),
    el('div', { className: 'consult-row' }, ui.input,
      el('div', { className: 'consult-side-controls' }, ui.colleague, ui.send)),
    ui.error);
  ui.view = el('section', {
    id: 'consult-view', className: 'chat-view consult-view', testid: 'consult-view', attrs: { role: 'tabpanel' }
  },
  el('header', { className: 'chat-header' },
    el('div', { className: 'chat-header-main' }, ui.title,
      el('span', { className: 'watch-badge consult-badge', text: t('consult.view.badge') }), ui.meta),
    el('div', { className: 'chat-header-actions' }, ui.close)),
  ui.stale, ui.slot, ui.ended, ui.form);
  chatView.parentNode.insertBefore(ui.view, chatView.nextSibling);

  ui.sideInfo = el('dl', { className: 'visitor-info' });
  ui.side = el('section', { className: 'consult-side', testid: 'consult-side' },
    el('div', { className: 'section-title', text: t('consult.side.title') }),
    ui.sideInfo);
  info.parentNode.appendChild(ui.side);

  ui.close.addEventListener('click', () => { if (active) closeConsult(active); });
  ui.refresh.addEventListener('click', () => { if (active) send({ type: 'notes', session_id: active }); });
  ui.form.addEventListener('submit', onReplySubmit);
  ui.input.addEventListener('input', () => {
    const c = consults.get(active);
    if (c) c.draft = ui.input.value;
  });
  enterSends(ui.input, ui.form);

  // Back to an own chat: a click on one of the own chats' tabs (not on its ×).
  const leaveOnTab = (ev) => {
    const target = ev.target;
    if (!active || !target || !target.closest) return;
    if (ev.type === 'keydown' && ev.key !== 'Enter' && ev.key !== ' ') return;
    if (target.closest('.chat-tab') && !target.closest('.tab-dismiss')) leave();
  };
  tabs.addEventListener('click', leaveOnTab, true);
  tabs.addEventListener('keydown', leaveOnTab, true);
  const link = $('ticket-chat-link');
  if (link) link.addEventListener('click', () => { leave(); }, true);
  return true;
}

function createConsult(id) {
  const c = {
    id: id,
    summary: {},
    operator: null,
    by: null,
    msgs: new Map(),     // seq -> {ts}
    notes: new Set(),    // ts|author id|text
    ended: false,
    live: true,
    closed: false,       // the tab was closed (frames are still kept)
    unread: 0,
    draft: '',
    list: el('ol', { className: 'messages consult-messages', attrs: { 'aria-label': t('watch.messages') } }),
    tab: null
  };
  consults.set(id, c);
  return c;
}

function visitorOf(c) { return person(c.summary.visitor); }

function renderTab(c) {
  if (!ui) return;
  let tab = c.tab;
  if (!tab) {
    tab = el('div', { className: 'chat-tab consult-tab', testid: 'consult-tab', tabIndex: 0, attrs: { role: 'tab' } });
    tab.dataset.sessionId = c.id;
    tab.addEventListener('click', (ev) => {
      if (ev.target && ev.target.closest && ev.target.closest('.tab-dismiss')) return;
      activate(c.id);
    });
    tab.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); activate(c.id); }
    });
    c.tab = tab;
    ui.strip.appendChild(tab);
  }
  clear(tab);
  const name = str(visitorOf(c).name, t('tab.anonymous', { id: c.id.slice(-4) }));
  tab.appendChild(el('span', { className: 'consult-tab-mark', text: '?', attrs: { 'aria-hidden': 'true' } }));
  tab.appendChild(el('span', { className: 'tab-name', text: name }));
  if (c.unread > 0) tab.appendChild(el('span', { className: 'badge', testid: 'consult-tab-unread', text: String(c.unread) }));
  if (c.ended) tab.appendChild(el('span', { className: 'tab-ended', text: t('chat.ended') }));
  const dismiss = el('button', {
    type: 'button', className: 'tab-dismiss', testid: 'consult-tab-close', text: '\u00d7', title: t('consult.tab.close.title'),
    attrs: { 'aria-label': t('consult.tab.close.label') }
  });
  dismiss.addEventListener('click', (ev) => {
    ev.stopPropagation();
    closeConsult(c.id);
  });
  tab.appendChild(dismiss);
  tab.title = t('consult.tab.title', { by: str(person(c.by).name, t('consult.aColleague')), name: name });
  tab.hidden = c.closed;
  tab.classList.toggle('is-selected', active === c.id);
  tab.classList.toggle('is-ended', c.ended);
  tab.classList.toggle('is-new', c.unread > 0 && active !== c.id);
  tab.setAttribute('aria-selected', active === c.id ? 'true' : 'false');
  let open = 0;
  consults.forEach((x) => { if (!x.closed) open++; });
  ui.strip.hidden = open === 0;
}

function renderTabs() {
  consults.forEach(renderTab);
}

function renderView() {
  const c = consults.get(active);
  if (!ui || !c) return;
  if (ui.slot.firstChild !== c.list) {
    clear(ui.slot);
    ui.slot.appendChild(c.list);
  }
  ui.view.dataset.sessionId = c.id;
  const v = visitorOf(c);
  ui.title.textContent = str(v.name, t('visitor.defaultName'));
  const bits = [];
  if (c.operator) bits.push(t('watch.with', { name: str(c.operator.name, t('watch.anOperator')) }));
  else if (c.summary.state === 'waiting') bits.push(t('watch.waiting'));
  if (c.by) bits.push(t('consult.view.askedBy', { name: str(c.by.name, t('consult.aColleague')) }));
  ui.meta.textContent = bits.join(' \u00b7 ');
  ui.ended.hidden = !c.ended;
  ui.stale.hidden = c.live || c.ended;
  ui.input.disabled = c.ended;
  ui.send.disabled = c.ended || !!(reply.item && reply.item.sessionId === c.id);
  ui.colleague.disabled = c.ended;

  clear(ui.sideInfo);
  const row = (label, value, testid) => {
    ui.sideInfo.appendChild(el('dt', { text: label }));
    ui.sideInfo.appendChild(el('dd', null, el('span', { className: 'break', testid: testid || null, text: value })));
  };
  row(t('consult.side.name'), str(v.name, t('visitor.defaultName')), 'consult-visitor-name');
  row(t('consult.side.email'), str(v.email, '\u2014'));
  row(t('consult.side.page'), str(v.page_url, '\u2014'));
  row(t('consult.side.operator'), c.operator ? str(c.operator.name, '\u2014') : '\u2014');
  row(t('consult.side.askedBy'), c.by ? str(c.by.name, '\u2014') : '\u2014');
  row(t('consult.side.chat'), c.id);
}

/** Show a consultation (`quiet`: without switching to the Chats view). */
function activate(id, quiet) {
  const c = consults.get(id);
  if (!c || !ui) return;
  if (active && active !== id) saveDraft();
  const switched = active !== id;
  active = id;
  c.closed = false;
  c.unread = 0;
  if (!quiet && app.view !== 'chats') showView('chats');
  $('view-chats').classList.add('is-consulting');
  renderTabs();
  renderView();
  if (switched) {
    ui.input.value = c.draft || '';
    ui.status.textContent = '';
    replyError('');
    c.list.scrollTop = c.list.scrollHeight;
    if (!c.ended && app.view === 'chats') ui.input.focus({ preventScroll: true });
    loadOperators(false).then(() => {
      fillColleagues(ui.colleague, t('consult.view.toThread'));
    }, () => { /* only the thread, then */ });
  }
}

function saveDraft() {
  const c = consults.get(active);
  if (c && ui) c.draft = ui.input.value;
}

/** Back to the own chats. */
export function leave() {
  if (!active) return;
  saveDraft();
  active = null;
  const view = $('view-chats');
  if (view) view.classList.remove('is-consulting');
  renderTabs();
}

/** Close the tab. Frames keep coming (nothing unsubscribes), so the chat is kept
 *  quietly; a new question for me opens it again. An ended chat is dropped. */
function closeConsult(id) {
  const c = consults.get(id);
  if (!c) return;
  if (active === id) leave();
  if (c.ended) {
    if (c.tab && c.tab.parentNode) c.tab.parentNode.removeChild(c.tab);
    consults.delete(id);
  } else {
    c.closed = true;
  }
  renderTabs();
  if (ui && !consults.size) ui.strip.hidden = true;
}

function placeRow(c, row, order) {
  const stick = c.list.scrollHeight - c.list.scrollTop - c.list.clientHeight < 40;
  insertOrdered(c.list, row, order);
  if (stick || active !== c.id) c.list.scrollTop = c.list.scrollHeight;
}

function addMessage(c, m) {
  if (typeof m.seq !== 'number' || c.msgs.has(m.seq)) return;
  c.msgs.set(m.seq, { ts: typeof m.ts === 'number' ? m.ts : null });
  const from = m.from === 'visitor' || m.from === 'operator' ? m.from : 'system';
  const text = messageText(m);
  const bubble = el('div', { className: 'msg', testid: 'consult-message', text: text });
  bubble.dataset.from = from;
  bubble.dataset.seq = String(m.seq);
  bubble.dataset.time = typeof m.ts === 'number' ? formatClock(m.ts) : '';
  if (typeof m.ts === 'number') bubble.title = formatFull(m.ts);
  if (typeof m.event === 'string') bubble.dataset.event = m.event;
  if (from === 'operator') {
    bubble.dataset.author = str(m.author, t('watch.operator'));
    bubble.dataset.state = 'stored';
  }
  const atts = Array.isArray(m.attachments) ? m.attachments.filter((a) => a && typeof a.filename === 'string') : [];
  const row = el('li', { className: 'msg-row from-' + from }, bubble);
  if (atts.length) {
    row.appendChild(el('div', {
      className: 'muted small consult-files',
      text: t('consult.attachments', { names: atts.map((a) => a.filename).join(', ') })
    }));
  }
  placeRow(c, row, m.seq);
  if (from === 'system' && (m.event === 'assigned' || m.event === 'reassigned') && m.author) {
    c.operator = { id: '', name: m.author };
  }
  if (from === 'system' && m.event === 'closed') c.ended = true;
  if (active === c.id) renderView();
}

function addNote(c, n) {
  if (!n || typeof n.text !== 'string') return false;
  const author = person(n.author);
  const key = n.ts + '|' + str(author.id) + '|' + n.text;
  if (c.notes.has(key)) return false;
  c.notes.add(key);
  const bubble = el('div', { className: 'msg', testid: 'consult-note', text: n.text });
  bubble.dataset.from = 'note';
  if (n.kind === 'consult') {
    labelNote(bubble, n);
  } else {
    bubble.dataset.kind = str(n.kind, 'whisper');
    bubble.dataset.author = t('note.whisperFrom', { name: str(author.name, t('note.aSupervisor')) });
  }
  if (typeof n.ts === 'number') {
    bubble.dataset.time = formatClock(n.ts);
    bubble.title = formatFull(n.ts);
  }
  let after = 0;
  c.msgs.forEach((m, seq) => {
    if (m.ts !== null && typeof n.ts === 'number' && m.ts <= n.ts && seq > after) after = seq;
  });
  placeRow(c, el('li', { className: 'msg-row from-note' }, bubble), after + 0.5);
  return true;
}

function replyError(text) {
  if (!ui) return;
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

function onReplySubmit(ev) {
  ev.preventDefault();
  const c = consults.get(active);
  if (!c || c.ended || ui.send.disabled) return;
  const text = ui.input.value.trim();
  const problem = checkText(text);
  if (problem) {
    replyError(problem);
    return;
  }
  replyError('');
  if (!sendConsult(reply, c.id, text, ui.colleague.value)) {
    replyError(t('chat.notConnected'));
    return;
  }
  ui.send.disabled = true;
  ui.status.textContent = t('consult.sending');
}

function notify(text) {
  toast(text, 'info');
}

// Frames ---------------------------------------------------------------

export function onConsulted(f) {
  const summary = f.chat && typeof f.chat === 'object' ? f.chat : null;
  if (!summary || typeof summary.session_id !== 'string') return;
  const id = summary.session_id;
  const by = f.by && typeof f.by === 'object' ? f.by : null;
  const byName = str(by && by.name, t('note.aColleague'));
  const own = app.chats.get(id);
  if (own && !own.ended) {
    notify(t('consult.toast.onOwnChat', { name: byName }));
    return;
  }
  if (!ui && !buildView()) return;
  const c = consults.get(id) || createConsult(id);
  c.summary = summary;
  c.operator = f.operator && typeof f.operator === 'object' ? f.operator : null;
  c.by = by;
  c.ended = summary.state === 'closed';
  c.live = true;
  c.closed = false;
  const name = str(person(summary.visitor).name, t('consult.aVisitor'));
  notify(t('consult.toast.asks', { name: byName, visitor: name }));
  // Show it at once unless the operator is busy with an own chat or another
  // consultation (then the tab is highlighted); never switch views for it.
  if (!active && !selectedChat()) activate(id, true);
  else if (active === id) renderView();
  else c.unread++;
  renderTab(c);
}

export function onMessage(f) {
  const c = consults.get(f.session_id);
  if (!c || app.chats.has(f.session_id)) return;
  const wasEnded = c.ended;
  addMessage(c, f);
  if (c.ended !== wasEnded) renderTab(c);
}

export function onNotes(f) {
  const c = consults.get(f.session_id);
  if (!c || !Array.isArray(f.notes)) return;
  f.notes.forEach((n) => { addNote(c, n); });
}

/** A note on a chat I was consulted on (the own chats are the chat view's). */
export function onNote(f) {
  const own = app.chats.get(f.session_id);
  if (own) {
    if (f.kind === 'consult' && !isMine(f)) {
      notify(t('consult.toast.note', { who: whoLine(f), text: str(f.text) }));
    }
    return;
  }
  const c = consults.get(f.session_id);
  if (!c) return;
  if (!addNote(c, f)) return;
  const forMe = f.to && typeof f.to === 'object' && f.to.id === me().id;
  if (forMe && c.closed) c.closed = false;
  if (!isMine(f) && active !== c.id) {
    c.unread++;
    if (forMe || !c.closed) notify(t('consult.toast.note', { who: whoLine(f), text: str(f.text) }));
  }
  renderTab(c);
}

export function onChatClosed(f) {
  const c = consults.get(f.session_id);
  if (!c || c.ended) return;
  c.ended = true;
  renderTab(c);
  if (active === c.id) renderView();
}

/** The consulted chat became mine: it opens as an own chat. */
export function onChatAssigned(f) {
  const id = f.chat && f.chat.session_id;
  const c = id && consults.get(id);
  if (!c) return;
  if (active === id) leave();
  if (c.tab && c.tab.parentNode) c.tab.parentNode.removeChild(c.tab);
  consults.delete(id);
  renderTabs();
  if (ui && !consults.size) ui.strip.hidden = true;
}

/** A new connection is nobody's watcher: the thread can be fetched again,
 *  the chat's messages do not arrive live any more. */
export function onWelcome() {
  consults.forEach((c) => {
    if (c.ended) return;
    c.live = false;
    send({ type: 'notes', session_id: c.id });
    renderTab(c);
  });
  if (active) renderView();
  reply.reset();
  if (ui) ui.send.disabled = false;
}

export function resetConsulted() {
  leave();
  consults.forEach((c) => { if (c.tab && c.tab.parentNode) c.tab.parentNode.removeChild(c.tab); });
  consults.clear();
  if (ui) ui.strip.hidden = true;
  reply.reset();
}
