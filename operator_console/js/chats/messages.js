/*
 * Drawing the messages of a chat.
 *
 * Each message is <li class="msg-row ..."><div data-testid="message">text</div></li>.
 * The bubble holds only the message text; time and delivery state are
 * drawn by CSS from data-* attributes, so textContent is exactly the text.
 * Rows are ordered by seq; own messages not yet acked stay at the end.
 */
import { el, insertOrdered } from '../shared/dom.js';
import { t, hasMessage, noticeText } from '../shared/i18n.js';
import { formatClock, formatFull } from '../shared/format.js';
import { app } from '../shared/state.js';
import { attachmentList } from '../shared/attachments.js';
import { openTicketView, ticketNumberOf } from '../tickets/ticket-view.js';
import { retryMessage } from './outbox.js';

/**
 * The text of a stored message: a system message's `notice` in the operator's
 * language (its English `text` for an unknown one); also used by the board's
 * and the consulted view's copies of a chat.
 */
export function messageText(m) {
  const text = typeof m.text === 'string' ? m.text : '';
  if (m.callback && m.from === 'visitor') {
    // A callback request: its first line (the server's English) in the operator's language.
    const times = typeof m.callback.preferred_times === 'string' ? m.callback.preferred_times : '';
    return t('callback.message', { phone: m.callback.phone }) + (times ? ' (' + times + ')' : '') +
      text.replace(/^.*/, '');
  }
  if (m.from === 'visitor' || m.from === 'operator') return text;
  const ticket = typeof m.ticket === 'string' ? m.ticket : '';
  if (m.event === 'escalated' && ticket && !m.notice && text.indexOf(ticket) < 0) {
    return t('message.escalated', { ticket: ticket });
  }
  return noticeText(m.notice, text);
}

export function renderMessage(chat, msg) {
  const from = msg.from === 'visitor' || msg.from === 'operator' ? msg.from : 'system';
  const text = messageText(msg);
  const bubble = el('div', { className: 'msg', testid: 'message', text: text });
  bubble.dataset.from = from;
  if (msg.event) bubble.dataset.event = msg.event;
  if (!text && msg.attachments && msg.attachments.length) bubble.classList.add('is-empty');
  const row = el('li', { className: 'msg-row from-' + from }, bubble);
  if (msg.attachments && msg.attachments.length) {
    // Attachment-only messages: the files first, the bubble below keeps time and state.
    row.insertBefore(attachmentList(msg.attachments), text ? null : bubble);
  }
  if (msg.event === 'escalated' && msg.ticket) {
    const number = ticketNumberOf(msg.ticket);
    const open = el('button', {
      type: 'button', className: 'link-button ticket-link', testid: 'ticket-link',
      text: t('message.openTicket', { ticket: msg.ticket })
    });
    open.addEventListener('click', () => { openTicketView(number); });
    row.appendChild(open);
  }
  msg.row = row;
  msg.bubble = bubble;
  if (from === 'operator' && msg.author && app.operator && msg.author !== app.operator.name) {
    bubble.dataset.author = msg.author;  // another operator (earlier in this chat)
  }
  if (from === 'operator') {
    bubble.addEventListener('click', () => {
      if (msg.state === 'failed') retryMessage(chat, msg);
    });
  }
  updateMessageEl(chat, msg);
  return row;
}

/** Time and delivery state of a drawn message (CSS shows them). */
export function updateMessageEl(chat, msg) {
  const b = msg.bubble;
  if (!b) return;
  if (msg.seq !== null) b.dataset.seq = String(msg.seq);
  else delete b.dataset.seq;
  b.dataset.time = msg.ts ? formatClock(msg.ts) : '';
  b.title = msg.ts ? formatFull(msg.ts) : '';
  if (msg.from === 'operator') {
    b.dataset.state = msg.state;
    b.dataset.stateLabel = hasMessage('message.state.' + msg.state) ? t('message.state.' + msg.state) : '';
    if (msg.cmid) b.dataset.clientMsgId = msg.cmid;
  }
}

/** Insert (or move) a message's row so that rows stay sorted by seq. */
export function placeRow(chat, msg) {
  insertOrdered(chat.listEl, msg.row, msg.seq === null ? Infinity : msg.seq);
}

/** Keep the selected chat scrolled to the end (if it was, or `forceBottom`). */
export function afterListChange(chat, forceBottom) {
  if (chat.id !== app.selectedId) return;
  if (forceBottom || chat.stickToBottom) {
    chat.listEl.scrollTop = chat.listEl.scrollHeight;
    chat.stickToBottom = true;
  }
}
