/*
 * Sending own messages: each gets a client_msg_id, waits in the outbox until
 * the server acks it, and is sent again after a reconnect.
 */
import { app } from '../shared/state.js';
import { sendReady } from '../shared/connection.js';
import { renderMessage, updateMessageEl, placeRow, afterListChange } from './messages.js';

function newClientMsgId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') {
    return 'c_' + window.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return 'c_' + Array.prototype.map.call(bytes, (b) => ('0' + b.toString(16)).slice(-2)).join('');
}

export function sendChatMessage(chat, text, attachments) {
  const msg = {
    seq: null,
    from: 'operator',
    author: app.operator ? app.operator.name : '',
    text: text,
    ts: Date.now(),
    cmid: newClientMsgId(),
    attachments: attachments || [],
    state: 'pending'
  };
  chat.byCmid.set(msg.cmid, msg);
  app.outbox.set(msg.cmid, { chat: chat, msg: msg });
  renderMessage(chat, msg);
  placeRow(chat, msg);
  transmit(chat, msg);
  afterListChange(chat, true);
}

export function transmit(chat, msg) {
  const frame = { type: 'message', session_id: chat.id, client_msg_id: msg.cmid, text: msg.text };
  if (msg.attachments && msg.attachments.length) {
    frame.attachments = msg.attachments.map((a) => a.id);
  }
  const ok = sendReady(frame);
  msg.state = ok ? 'sent' : 'pending';
  updateMessageEl(chat, msg);
}

export function retryMessage(chat, msg) {
  if (chat.ended || msg.seq !== null) return;
  app.outbox.set(msg.cmid, { chat: chat, msg: msg });
  transmit(chat, msg);
}

/** After (re)connecting: resend every own message that was not acked. */
export function flushOutbox() {
  app.outbox.forEach((entry) => {
    if (entry.msg.state === 'failed') return;
    if (entry.chat.ended || !app.chats.has(entry.chat.id)) return;
    transmit(entry.chat, entry.msg);
  });
}
