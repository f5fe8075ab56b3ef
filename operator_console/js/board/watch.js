/*
 * Watching a chat from the board: read-only messages and notes, whisper to
 * its operator, take it over or reassign it.
 */
import { el, clear, setText, insertOrdered } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, formatClock } from '../shared/format.js';
import { send } from '../shared/connection.js';
import { toast } from '../shared/toasts.js';
import { openChat } from '../chats/tabs.js';
import { messageText } from '../chats/messages.js';
import { stateName } from '../chats/context-panel.js';
import { board } from './state.js';

const MAX_WHISPER = 4000;

function viewRoot() { return document.getElementById('view-board'); }

/** The watch panel (built with the board). */
export function buildWatch() {
  const w = {};
  w.title = el('span', { className: 'chat-title', testid: 'watch-title' });
  w.meta = el('div', { className: 'small muted', testid: 'watch-operator' });
  w.messages = el('ol', {
    className: 'messages watch-messages', testid: 'watch-messages', attrs: { 'aria-label': t('watch.messages') }
  });
  w.takeOver = el('button', { type: 'button', className: 'btn btn-small btn-primary', text: t('watch.takeOver'), testid: 'take-over' });
  w.unwatch = el('button', { type: 'button', className: 'btn btn-small', text: t('watch.stop'), testid: 'unwatch' });
  w.reassignSelect = el('select', { testid: 'reassign-select', attrs: { 'aria-label': t('watch.reassignTo') } });
  w.reassign = el('button', { type: 'button', className: 'btn btn-small', text: t('watch.reassign'), testid: 'reassign-button' });
  w.whisper = el('textarea', {
    className: 'message-input', rows: 2, maxLength: MAX_WHISPER, testid: 'whisper-input',
    placeholder: t('watch.whisper.placeholder'), attrs: { 'aria-label': t('watch.whisper.label') }
  });
  w.whisperSend = el('button', { type: 'submit', className: 'btn btn-primary btn-small', text: t('watch.whisper.send'), testid: 'whisper-send' });
  const form = el('form', { className: 'whisper-form' }, w.whisper, w.whisperSend);
  w.node = el('aside', { className: 'board-watch panel', testid: 'board-watch', hidden: true },
    el('header', { className: 'watch-header' },
      el('div', null, w.title, el('span', { className: 'watch-badge', text: t('watch.readOnly') })),
      w.meta,
      el('div', { className: 'watch-actions' }, w.takeOver, w.unwatch),
      el('div', { className: 'watch-actions' }, w.reassignSelect, w.reassign)),
    w.messages,
    form);
  w.takeOver.addEventListener('click', () => {
    if (!board.watch) return;
    board.takingOver = board.watch.id;
    send({ type: 'take_over', session_id: board.watch.id });
  });
  w.unwatch.addEventListener('click', () => { stopWatching(true); });
  w.reassign.addEventListener('click', () => {
    const target = w.reassignSelect.value;
    if (!board.watch || !target) return;
    send({ type: 'reassign', session_id: board.watch.id, operator_id: target });
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = w.whisper.value.trim();
    if (!board.watch || !text) return;
    if (send({ type: 'whisper', session_id: board.watch.id, text: text })) w.whisper.value = '';
  });
  w.whisper.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  return w;
}

export function startWatching(sessionId) {
  if (board.watch && board.watch.id !== sessionId) {
    send({ type: 'unwatch', session_id: board.watch.id });
  }
  board.watch = { id: sessionId, summary: null, operator: null, seqs: new Set(), notes: new Set() };
  const w = board.dom.watch;
  clear(w.messages);
  setText(w.title, t('common.loading'));
  setText(w.meta, '');
  w.node.hidden = false;
  viewRoot().classList.add('is-watching');
  send({ type: 'watch', session_id: sessionId });
  renderReassignChoices();
}

function stopWatching(tell) {
  if (!board.watch) return;
  if (tell) send({ type: 'unwatch', session_id: board.watch.id });
  board.watch = null;
  if (board.dom) {
    board.dom.watch.node.hidden = true;
    clear(board.dom.watch.messages);
  }
  viewRoot().classList.remove('is-watching');
}

function renderWatchHeader() {
  const w = board.dom.watch;
  const watch = board.watch;
  const v = (watch.summary && watch.summary.visitor) || {};
  setText(w.title, str(v.name, t('visitor.defaultName')));
  const state = watch.summary ? watch.summary.state : '';
  setText(w.meta, watch.operator
    ? t('watch.with', { name: str(watch.operator.name, t('watch.anOperator')) })
    : (state === 'waiting' ? t('watch.waiting') : stateName(state)));
}

/** The colleagues the watched chat can go to: online, with room. */
export function renderReassignChoices() {
  if (!board.dom || !board.state) return;
  const select = board.dom.watch.reassignSelect;
  const current = board.watch && board.watch.operator ? board.watch.operator.id : null;
  const keep = select.value;
  clear(select);
  select.appendChild(el('option', { value: '', text: t('watch.reassignChoose') }));
  (board.state.operators || []).forEach((r) => {
    if (r.status !== 'online' || r.load >= r.capacity || r.id === current) return;
    select.appendChild(el('option', { value: r.id, text: t('watch.reassignOption', { name: r.name, load: r.load, capacity: r.capacity }) }));
  });
  select.value = keep;
  if (select.value !== keep) select.value = '';
}

function addWatchRow(row, order) {
  const list = board.dom.watch.messages;
  insertOrdered(list, row, order);
  list.scrollTop = list.scrollHeight;
}

function addWatchMessage(m) {
  const watch = board.watch;
  if (typeof m.seq !== 'number' || watch.seqs.has(m.seq)) return;
  watch.seqs.add(m.seq);
  const from = m.from === 'visitor' || m.from === 'operator' ? m.from : 'system';
  const bubble = el('div', { className: 'msg', testid: 'watch-message', text: messageText(m) });
  bubble.dataset.from = from;
  bubble.dataset.time = typeof m.ts === 'number' ? formatClock(m.ts) : '';
  bubble.dataset.seq = String(m.seq);
  if (from === 'operator') {
    bubble.dataset.author = str(m.author, t('watch.operator'));
    bubble.dataset.state = 'stored';
  }
  if (from === 'system' && (m.event === 'assigned' || m.event === 'reassigned') && m.author) {
    board.watch.operator = { id: '', name: m.author };
    renderWatchHeader();
  }
  addWatchRow(el('li', { className: 'msg-row from-' + from }, bubble), m.seq);
}

function addWatchNote(n) {
  const watch = board.watch;
  const author = n.author && typeof n.author === 'object' ? n.author : {};
  const key = n.ts + '|' + str(author.id) + '|' + str(n.text);
  if (watch.notes.has(key)) return;
  watch.notes.add(key);
  const bubble = el('div', { className: 'msg', testid: 'watch-note', text: str(n.text) });
  bubble.dataset.from = 'note';
  bubble.dataset.author = t('watch.whisperFrom', { name: str(author.name, t('note.aSupervisor')) });
  bubble.dataset.time = typeof n.ts === 'number' ? formatClock(n.ts) : '';
  let after = 0;
  board.dom.watch.messages.querySelectorAll('[data-seq]').forEach((b) => {
    const seq = Number(b.dataset.seq);
    if (seq > after) after = seq;
  });
  addWatchRow(el('li', { className: 'msg-row from-note' }, bubble), after + 0.5);
}

/** A new connection watches nothing: watch again what was open. */
export function rewatch() {
  if (board.watch) {
    const id = board.watch.id;
    board.watch = null;
    if (board.dom) startWatching(id);
  }
}

export function installWatch() {
  on('watching', (f) => {
    if (!board.watch || !f.chat || f.chat.session_id !== board.watch.id) return;
    board.watch.summary = f.chat;
    board.watch.operator = f.operator || null;
    renderWatchHeader();
    renderReassignChoices();
  });

  on('message', (f) => {
    if (board.watch && f.session_id === board.watch.id) addWatchMessage(f);
  });

  on('note', (f) => {
    if (board.watch && f.session_id === board.watch.id) addWatchNote(f);
  });

  on('notes', (f) => {
    if (board.watch && f.session_id === board.watch.id && Array.isArray(f.notes)) {
      f.notes.forEach(addWatchNote);
    }
  });

  on('reassigned', (f) => {
    const name = f.operator ? str(f.operator.name, t('watch.theOperator')) : t('watch.theOperator');
    toast(t('watch.handedOver', { name: name }), 'info');
    if (board.watch && board.watch.id === f.session_id) {
      board.watch.operator = f.operator;
      renderWatchHeader();
      renderReassignChoices();
    }
  });

  on('chat_assigned', (f) => {
    // A take over from the board: go to the chat.
    const id = f.chat && f.chat.session_id;
    if (!id || id !== board.takingOver) return;
    board.takingOver = null;
    if (board.watch && board.watch.id === id) stopWatching(false);
    openChat(id);
  });

  on('error', (f) => {
    if (board.takingOver && (f.code === 'invalid_state' || f.code === 'chat_closed' || f.code === 'unknown_session')) {
      board.takingOver = null;
    }
    if (board.watch && (f.code === 'unknown_session' || f.code === 'chat_closed') && board.dom &&
        board.dom.watch.title.textContent === t('common.loading')) {
      stopWatching(false);
    }
  });
}
