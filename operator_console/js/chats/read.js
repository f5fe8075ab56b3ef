/*
 * Read receipts: what the operator has on screen counts as read.
 */
import { app } from '../shared/state.js';
import { conn, sendReady } from '../shared/connection.js';
import { recountUnread } from './model.js';
import { renderTab } from './tabs.js';
import { updateTitle } from '../app/title.js';

export function chatIsVisible(chat) {
  return chat && chat.id === app.selectedId && app.view === 'chats' &&
    document.visibilityState === 'visible';
}

/**
 * The selected chat is on screen: everything in it counts as read, and the
 * server hears about the highest visitor seq (once connected).
 */
export function maybeSendRead(chat) {
  if (!chatIsVisible(chat)) return;
  if (chat.maxVisitorSeq > chat.opReadSeq) chat.opReadSeq = chat.maxVisitorSeq;
  if (chat.opReadSeq > chat.readSentSeq && !chat.ended && conn.ready) {
    if (sendReady({ type: 'read', session_id: chat.id, seq: chat.opReadSeq })) {
      chat.readSentSeq = chat.opReadSeq;
    }
  }
  if (chat.unread !== 0) recountUnread(chat);
  if (chat.isNew) chat.isNew = false;
  renderTab(chat);
  updateTitle();
}
