/*
 * The own chats: their state, and the stored messages in them (deduplicated
 * by seq, own messages matched by client_msg_id).
 */
import { el } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { app } from '../shared/state.js';
import { validAttachments } from '../shared/attachments.js';
import { renderMessage, updateMessageEl, placeRow, afterListChange } from './messages.js';
import { setVisitorTyping, stopOwnTyping } from './typing.js';
import { renderSelected } from './chat-view.js';

/** The text shown when a chat ended, by who closed it ('visitor', 'operator', 'system'). */
export function closeReason(by) {
  return by === 'visitor' || by === 'operator' || by === 'system' ? t('chat.closedBy.' + by) : '';
}

function createChat(summary) {
  const list = el('ol', { className: 'messages', attrs: { 'aria-label': t('chat.messages') } });
  const chat = {
    id: summary.session_id,
    state: summary.state || 'assigned',
    visitor: {},
    priority: 'normal',
    createdAt: null,
    assignedAt: null,
    serverLastSeq: 0,
    msgs: new Map(),        // seq -> msg
    byCmid: new Map(),      // client_msg_id -> msg (own messages)
    watermark: 0,           // highest seq with no gap below it
    maxSeq: 0,
    maxVisitorSeq: 0,
    opReadSeq: 0,           // highest seq this operator has read (locally)
    readSentSeq: 0,         // highest seq reported to the server as read
    visitorReadSeq: 0,      // highest seq the visitor has read
    unread: 0,
    ended: false,
    endedText: '',
    isNew: false,
    visitorTyping: false,
    visitorTypingTimer: null,
    typingActive: false,    // our own typing state for this chat
    lastTypingTrueAt: 0,
    typingIdleTimer: null,
    typingDeferTimer: null,
    draft: '',
    historyPending: false,
    stickToBottom: true,
    listEl: list,
    tabEl: null
  };
  list.addEventListener('scroll', () => {
    chat.stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  });
  return chat;
}

function applySummary(chat, s) {
  if (s.visitor && typeof s.visitor === 'object') {
    chat.visitor = Object.assign({}, chat.visitor, s.visitor);
  }
  // The visitor's language (hello/info), beside the visitor in the summary.
  if ('lang' in s) chat.visitor = Object.assign({}, chat.visitor, { lang: s.lang });
  if (typeof s.priority === 'string') chat.priority = s.priority;
  if (typeof s.created_at === 'number') chat.createdAt = s.created_at;
  if (typeof s.assigned_at === 'number') chat.assignedAt = s.assigned_at;
  if (typeof s.last_seq === 'number') chat.serverLastSeq = s.last_seq;
  if (typeof s.read_seq === 'number') {
    if (s.read_seq > chat.opReadSeq) chat.opReadSeq = s.read_seq;
    if (s.read_seq > chat.readSentSeq) chat.readSentSeq = s.read_seq;
  }
  if (typeof s.visitor_read_seq === 'number') markVisitorRead(chat, s.visitor_read_seq);
  if (typeof s.state === 'string') chat.state = s.state;
  if (chat.state === 'closed' && !chat.ended) markEnded(chat, closeReason('system'));
  recountUnread(chat);
}

/** Add or update a chat from a chat summary; returns {chat, created} or null. */
export function upsertChat(summary, opts) {
  if (!summary || typeof summary.session_id !== 'string') return null;
  let chat = app.chats.get(summary.session_id);
  let created = false;
  if (!chat) {
    chat = createChat(summary);
    app.chats.set(chat.id, chat);
    created = true;
  } else if (chat.ended && summary.state !== 'closed') {
    // A chat that came back to us (e.g. re-assigned after a requeue).
    chat.ended = false;
    chat.endedText = '';
  }
  applySummary(chat, summary);
  if (opts && opts.highlight && (created || opts.forceHighlight)) chat.isNew = true;
  return { chat: chat, created: created };
}

export function recountUnread(chat) {
  let n = 0;
  chat.msgs.forEach((m) => {
    if (m.from === 'visitor' && m.seq > chat.opReadSeq) n++;
  });
  chat.unread = n;
}

function advanceWatermark(chat) {
  while (chat.msgs.has(chat.watermark + 1)) chat.watermark++;
}

function ownState(chat, msg) {
  return msg.seq !== null && msg.seq <= chat.visitorReadSeq ? 'read' : 'stored';
}

/**
 * Handle a stored message (live, replayed or from history).
 * Returns true if it was new.
 */
export function addMessage(chat, m) {
  if (!m || typeof m.seq !== 'number' || m.seq < 1) return false;

  // Our own message coming back (replay/history) before or instead of its ack.
  if (m.from === 'operator' && typeof m.client_msg_id === 'string') {
    const mine = chat.byCmid.get(m.client_msg_id);
    if (mine && mine.seq === null) {
      confirmOwn(chat, mine, m.seq, m.ts);
      return false;
    }
  }

  // Dedupe by seq: a seq already shown is ignored.
  if (chat.msgs.has(m.seq)) return false;

  const msg = {
    seq: m.seq,
    from: (m.from === 'visitor' || m.from === 'operator') ? m.from : 'system',
    author: typeof m.author === 'string' ? m.author : '',
    text: typeof m.text === 'string' ? m.text : '',
    ts: typeof m.ts === 'number' ? m.ts : null,
    cmid: typeof m.client_msg_id === 'string' ? m.client_msg_id : null,
    event: typeof m.event === 'string' ? m.event : null,
    notice: m.notice && typeof m.notice === 'object' ? m.notice : null,
    callback: m.callback && typeof m.callback === 'object' && typeof m.callback.phone === 'string'
      ? m.callback : null,
    ticket: typeof m.ticket === 'string' ? m.ticket : null,
    attachments: validAttachments(m.attachments),
    state: null
  };
  if (msg.event === 'escalated' && msg.ticket) {
    chat.ticket = msg.ticket;
    if (chat.id === app.selectedId) renderSelected();
  }
  if (msg.from === 'operator') {
    msg.state = ownState(chat, msg);
    if (msg.cmid) chat.byCmid.set(msg.cmid, msg);
  }
  chat.msgs.set(msg.seq, msg);
  if (msg.seq > chat.maxSeq) chat.maxSeq = msg.seq;
  advanceWatermark(chat);

  renderMessage(chat, msg);
  placeRow(chat, msg);

  if (msg.from === 'visitor') {
    if (msg.seq > chat.maxVisitorSeq) chat.maxVisitorSeq = msg.seq;
    if (msg.seq > chat.opReadSeq) chat.unread++;
    setVisitorTyping(chat, false);
  }
  if (msg.from === 'system' && msg.event === 'closed') {
    if (!chat.ended) markEnded(chat, '');
  }
  afterListChange(chat, false);
  return true;
}

/** An own pending message got its seq (ack, or seen in a replay). */
export function confirmOwn(chat, msg, seq, ts) {
  app.outbox.delete(msg.cmid);
  if (typeof seq !== 'number') return;
  const existing = chat.msgs.get(seq);
  if (existing && existing !== msg) {
    // Already shown under that seq (without a client_msg_id): drop the copy.
    if (msg.row && msg.row.parentNode) msg.row.parentNode.removeChild(msg.row);
    return;
  }
  msg.seq = seq;
  if (typeof ts === 'number') msg.ts = ts;
  msg.state = ownState(chat, msg);
  chat.msgs.set(seq, msg);
  if (seq > chat.maxSeq) chat.maxSeq = seq;
  advanceWatermark(chat);
  updateMessageEl(chat, msg);
  placeRow(chat, msg);
  afterListChange(chat, false);
}

export function markVisitorRead(chat, seq) {
  if (typeof seq !== 'number' || seq <= chat.visitorReadSeq) return;
  chat.visitorReadSeq = seq;
  chat.msgs.forEach((msg) => {
    if (msg.from === 'operator' && msg.seq !== null && msg.seq <= seq && msg.state !== 'read') {
      msg.state = 'read';
      updateMessageEl(chat, msg);
    }
  });
}

/** The chat ended; `text` (translated) says why, '' keeps what was said before. */
export function markEnded(chat, text) {
  chat.ended = true;
  chat.state = 'closed';
  if (text || !chat.endedText) chat.endedText = text || '';
  setVisitorTyping(chat, false);
  stopOwnTyping(chat, false);
  emit('chat-ended', chat);
  // Own messages that never made it will not any more.
  chat.byCmid.forEach((msg) => {
    if (msg.seq === null && msg.state !== 'failed') {
      msg.state = 'failed';
      app.outbox.delete(msg.cmid);
      updateMessageEl(chat, msg);
    }
  });
}

/** Session id -> watermark of every open chat (the `sessions` of hello). */
export function openSessionWatermarks() {
  const sessions = {};
  app.chats.forEach((chat) => {
    if (!chat.ended) sessions[chat.id] = chat.watermark;
  });
  return sessions;
}

/** The socket is gone: messages in flight wait again, nobody is typing. */
export function connectionLost() {
  app.outbox.forEach((entry) => {
    if (entry.msg.state === 'sent') {
      entry.msg.state = 'pending';
      updateMessageEl(entry.chat, entry.msg);
    }
  });
  app.chats.forEach((chat) => {
    chat.typingActive = false;
    setVisitorTyping(chat, false);
  });
}

/** Signed out: drop every chat. */
export function forgetChats() {
  app.chats.forEach((chat) => {
    clearTimeout(chat.visitorTypingTimer);
    clearTimeout(chat.typingIdleTimer);
  });
  app.chats = new Map();
  app.outbox = new Map();
  app.selectedId = null;
  app.queue = { total: 0, entries: [] };
}

/** Display name of a visitor. */
export function visitorName(visitor) {
  const name = visitor && visitor.name;
  return typeof name === 'string' && name.length ? name : t('visitor.defaultName');
}

/** '' for normal chats, 'VIP' or 'Urgent'. */
export function priorityLabel(priority) {
  if (priority === 'vip') return t('chat.priority.vip');
  if (priority === 'urgent') return t('chat.priority.urgent');
  return '';
}
