/*
 * The Tickets view: the inbox (inbox.js), one ticket (ticket-view.js), its
 * changes (changes.js) and replies (reply.js).
 */
import { initInbox, initInboxRefresh } from './inbox.js';
import { initChanges } from './changes.js';
import { initReply } from './reply.js';
import { initTicketView } from './ticket-view.js';

export function initTickets() {
  initInbox();
  initChanges();
  initReply();
  initTicketView();
  initInboxRefresh();
}
