/*
 * What the Chats view does with each WebSocket frame (docs/protocol.md).
 * These handlers run before any other view hears of the frame.
 */
import { el, insertOrdered } from '../shared/dom.js';
import { t, errorMessage, logServerError } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, formatClock, formatFull } from '../shared/format.js';
import { app } from '../shared/state.js';
import { conn, send, showConnected, errorContext } from '../shared/connection.js';
import { toast } from '../shared/toasts.js';
import { renderOperator } from '../app/navigation.js';
import { applyOperatorLanguage } from '../app/language.js';
import { updateTitle, flashTitle } from '../app/title.js';
import {
  upsertChat, addMessage, confirmOwn, markEnded, markVisitorRead, recountUnread,
  closeReason, visitorName
} from './model.js';
import { afterListChange, updateMessageEl } from './messages.js';
import { flushOutbox, transmit } from './outbox.js';
import { setVisitorTyping } from './typing.js';
import { chatIsVisible, maybeSendRead } from './read.js';
import { renderTab, renderTabsContainer, selectChat, selectFirstChat, removeChat } from './tabs.js';
import { renderSelected } from './chat-view.js';
import { renderStatus, recomputeLoad, onStatus } from './status.js';
import { onQueue } from './queue.js';

const HISTORY_PAGE = 500;

function onWelcome(f) {
  app.welcomes++;
  showConnected();

  if (f.operator && typeof f.operator === 'object') {
    // Chosen meanwhile (another window, another node): a reload speaks it.
    if (applyOperatorLanguage(f.operator.lang)) return;
    app.operator = f.operator;
    app.role = typeof f.operator.role === 'string' ? f.operator.role : null;
    if (typeof f.operator.capacity === 'number') app.capacity = f.operator.capacity;
    if (typeof f.operator.status === 'string') app.status = f.operator.status;
    // Not in the documented welcome, but use it when the server sends it;
    // otherwise derive the load from our chats until a status frame arrives.
    app.load = typeof f.operator.load === 'number' ? f.operator.load : null;
    renderOperator();
  }

  const listed = new Set();
  const chats = Array.isArray(f.chats) ? f.chats : [];
  chats.forEach((summary) => {
    const res = upsertChat(summary, { highlight: app.welcomes > 1 });
    if (!res) return;
    listed.add(res.chat.id);
    const known = conn.helloSessions && conn.helloSessions.has(res.chat.id);
    if (!known && !res.chat.ended) requestHistory(res.chat, res.chat.watermark);
    if (!res.chat.ended) send({ type: 'notes', session_id: res.chat.id });
    renderTab(res.chat);
  });
  // Chats we had open that the server no longer lists are not ours any more.
  app.chats.forEach((chat) => {
    if (!listed.has(chat.id) && !chat.ended) {
      markEnded(chat, t('chat.notAssigned'));
      renderTab(chat);
    }
  });

  if (f.queue) onQueue(f.queue);

  if (app.wantedStatus) {
    send({ type: 'status', status: app.wantedStatus });
    app.wantedStatus = null;
  }
  renderStatus();
  flushOutbox();

  if (!app.selectedId || !app.chats.has(app.selectedId)) selectFirstChat();
  else renderSelected();
  const selected = app.chats.get(app.selectedId);
  if (selected) maybeSendRead(selected);
  renderTabsContainer();
  updateTitle();
}

function onChatAssigned(f) {
  const res = upsertChat(f.chat, { highlight: true, forceHighlight: true });
  if (!res) return;
  const chat = res.chat;
  requestHistory(chat, chat.watermark);
  send({ type: 'notes', session_id: chat.id });
  renderTab(chat);
  renderTabsContainer();
  recomputeLoad();
  toast(t('chat.newChat', { name: visitorName(chat.visitor) }), 'info');
  flashTitle(t('title.newChat'));
  if (!app.selectedId || !app.chats.has(app.selectedId)) selectChat(chat.id);
  else if (chat.id === app.selectedId) renderSelected();
  updateTitle();
}

function onChatClosed(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  const reason = closeReason(f.by);
  if (!chat.ended) {
    markEnded(chat, reason);
  } else if (reason && chat.endedText !== closeReason('operator')) {
    chat.endedText = reason;
  }
  renderTab(chat);
  if (chat.id === app.selectedId) renderSelected();
  recomputeLoad();
}

function onChatRemoved(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  const key = f.reason === 'requeued' ? 'chat.removed.requeued'
    : f.reason === 'reassigned' ? 'chat.removed.reassigned' : 'chat.removed.taken';
  toast(t(key, { name: visitorName(chat.visitor) }), 'warn');
  removeChat(chat);
  recomputeLoad();
}

function onMessage(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  const isNew = addMessage(chat, f);
  if (isNew && f.from === 'visitor') {
    if (!chatIsVisible(chat)) flashTitle(t('title.newMessage'));
    maybeSendRead(chat);
  }
  renderTab(chat);
  updateTitle();
}

function onAck(f) {
  if (typeof f.client_msg_id !== 'string') return;
  const entry = app.outbox.get(f.client_msg_id);
  if (!entry) return;
  confirmOwn(entry.chat, entry.msg, f.seq, f.ts);
}

function onTyping(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat || f.from === 'operator') return;
  setVisitorTyping(chat, f.active === true);
}

function onRead(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat || typeof f.seq !== 'number') return;
  if (f.by === 'visitor') {
    markVisitorRead(chat, f.seq);
  } else if (f.by === 'operator') {
    // Read in another window of ours.
    if (f.seq > chat.readSentSeq) chat.readSentSeq = f.seq;
    if (f.seq > chat.opReadSeq) {
      chat.opReadSeq = f.seq;
      recountUnread(chat);
      renderTab(chat);
      updateTitle();
    }
  }
}

function requestHistory(chat, afterSeq) {
  if (!conn.ready) return;
  chat.historyPending = true;
  send({ type: 'history', session_id: chat.id, after_seq: afterSeq || 0, limit: HISTORY_PAGE });
}

function onHistory(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  const list = Array.isArray(f.messages) ? f.messages : [];
  let highest = 0;
  list.forEach((m) => {
    addMessage(chat, m);
    if (m && typeof m.seq === 'number' && m.seq > highest) highest = m.seq;
  });
  if (typeof f.last_seq === 'number' && f.last_seq > chat.serverLastSeq) chat.serverLastSeq = f.last_seq;
  if (list.length >= HISTORY_PAGE && highest > 0) {
    requestHistory(chat, highest);   // more to come
  } else {
    chat.historyPending = false;
  }
  recountUnread(chat);
  if (chat.id === app.selectedId) {
    afterListChange(chat, true);
    maybeSendRead(chat);
  }
  renderTab(chat);
  updateTitle();
}

// Operators-only notes (a supervisor's whispers) shown in the chat's list,
// after the last message sent before them. Never sent to the visitor.
function addNote(chat, n) {
  if (!n || typeof n.text !== 'string' || typeof n.ts !== 'number') return;
  const author = n.author && typeof n.author === 'object' ? n.author : {};
  const key = n.ts + '|' + str(author.id) + '|' + n.text;
  if (!chat.notes) chat.notes = new Set();
  if (chat.notes.has(key)) return;
  chat.notes.add(key);
  const bubble = el('div', { className: 'msg', testid: 'note', text: n.text });
  bubble.dataset.from = 'note';
  bubble.dataset.kind = str(n.kind, 'whisper');
  bubble.dataset.author = bubble.dataset.kind === 'whisper'
    ? t('note.whisperFrom', { name: str(author.name, t('note.aSupervisor')) })
    : t('note.internalFrom', { name: str(author.name, t('note.aColleague')) });
  bubble.dataset.time = formatClock(n.ts);
  bubble.title = formatFull(n.ts);
  const row = el('li', { className: 'msg-row from-note' }, bubble);
  let after = 0;
  chat.msgs.forEach((m) => {
    if (m.seq !== null && m.ts !== null && m.ts <= n.ts && m.seq > after) after = m.seq;
  });
  insertOrdered(chat.listEl, row, after + 0.5);
  afterListChange(chat, false);
  emit('note-row', { chat: chat, note: n, bubble: bubble, row: row });   // consult/ labels its kind
}

function onNote(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  addNote(chat, f);
  if (str(f.kind, 'whisper') !== 'whisper') return;   // other kinds: their view tells
  if (!chatIsVisible(chat)) flashTitle(t('title.whisper'));
  toast(t('note.whisperToast', {
    name: str(f.author && f.author.name, t('note.aSupervisor')), text: str(f.text)
  }), 'info');
}

function onNotes(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat || !Array.isArray(f.notes)) return;
  f.notes.forEach((n) => { addNote(chat, n); });
}

function onReplayDone(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  if (f.complete === false) requestHistory(chat, chat.watermark);
  if (chat.id === app.selectedId) maybeSendRead(chat);
}

function onVisitor(f) {
  const chat = app.chats.get(f.session_id);
  if (!chat) return;
  const v = Object.assign({}, chat.visitor);
  ['name', 'email', 'page_url', 'user_agent', 'customer_id', 'plan', 'lang'].forEach((k) => {
    if (k in f) v[k] = f[k];
  });
  if (typeof f.connected === 'boolean') v.connected = f.connected;
  chat.visitor = v;
  if (!v.connected) setVisitorTyping(chat, false);
  renderTab(chat);
  if (chat.id === app.selectedId) renderSelected();
}

function onError(f) {
  logServerError('error frame', f.code, f.message);
  const text = errorMessage(f.code, errorContext(f));
  // Right after a resume the server refuses the sessions from our hello that
  // are no longer ours; welcome already told us (they are marked ended).
  if (f.code === 'unknown_session' && !f.ref && Date.now() < conn.quietUntil) return;
  if (typeof f.ref === 'string' && app.outbox.has(f.ref)) {
    const entry = app.outbox.get(f.ref);
    if (f.code === 'rate_limited' || f.code === 'unavailable') {
      // Try again a little later, same client_msg_id.
      entry.msg.state = 'pending';
      updateMessageEl(entry.chat, entry.msg);
      setTimeout(() => {
        if (app.outbox.has(entry.msg.cmid) && entry.msg.state === 'pending') transmit(entry.chat, entry.msg);
      }, 2000 + Math.random() * 1000);
    } else {
      entry.msg.state = 'failed';
      app.outbox.delete(f.ref);
      updateMessageEl(entry.chat, entry.msg);
      if (f.code === 'chat_closed' && !entry.chat.ended) {
        markEnded(entry.chat, '');
        renderTab(entry.chat);
        if (entry.chat.id === app.selectedId) renderSelected();
      }
    }
  }
  toast(text, 'error');
}

/** Frame type -> handler (given to the connection by main.js). */
export const chatFrameHandlers = {
  welcome: onWelcome,
  chat_assigned: onChatAssigned,
  chat_closed: onChatClosed,
  chat_removed: onChatRemoved,
  message: onMessage,
  ack: onAck,
  typing: onTyping,
  read: onRead,
  history: onHistory,
  visitor: onVisitor,
  queue: onQueue,
  status: onStatus,
  replay_done: onReplayDone,
  note: onNote,
  notes: onNotes,
  error: onError,
  pong: () => {}
};
