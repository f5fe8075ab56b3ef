/*
 * A tiny event bus between the views.
 *
 * Every WebSocket frame is emitted under its `type` after the chat view's own
 * handler ran (shared/connection.js). UI events, emitted after the console drew
 * something:
 *   'view' (id)                         a view was shown
 *   'reset' (null)                      signed out: forget everything
 *   'chat-tab' {chat, tab}              a chat tab was (re)drawn
 *   'chat-selected' (chat or null)      the selected chat was (re)drawn
 *   'chat-ended' (chat)                 a chat ended
 *   'chat-opening' (id)                 an own chat is about to be shown from elsewhere
 *   'queue-item' {entry, item}          a queue entry was drawn
 *   'note-row' {chat, note, bubble, row} a note was drawn in a chat
 *   'ticket-row' {ticket, row}          a row of the ticket inbox was drawn
 *   'ticket' {ticket, events, attachments}  the open ticket was drawn
 *   'ticket-reply-body' (body)          a ticket reply is about to be posted (may be extended)
 *   'ticket-reply-sent' {number, body}  a ticket reply was posted
 * Listeners run in the order they were added.
 */

const listeners = {};

/** Call fn(payload) for every event of `type`. */
export function on(type, fn) {
  (listeners[type] = listeners[type] || []).push(fn);
}

export function emit(type, payload) {
  (listeners[type] || []).forEach((fn) => {
    try {
      fn(payload);
    } catch (err) {
      if (window.console) console.error('chatserver console: listener failed', type, err);
    }
  });
}
