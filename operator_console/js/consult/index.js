/*
 * Consulting a colleague internally ("3rd level"):
 *  - ask.js: in an own chat, "Consult…" asks a colleague (a `consult` frame);
 *    consult notes appear in the chat like whispers, labelled as internal;
 *  - consulted.js: a consulted colleague gets `consulted` and a read-only tab
 *    of that chat with a note composer;
 *  - ticket-consult.js: an internal ticket note can consult a colleague.
 */
import { on } from '../shared/events.js';
import { selectedChat } from '../shared/state.js';
import { forgetOperators } from './colleagues.js';
import { ask, renderAsk, onNoteRow, showAsk, resetAsk } from './ask.js';
import {
  reply, leave, onConsulted, onMessage, onNotes, onNote, onChatClosed, onChatAssigned,
  onWelcome, resetConsulted
} from './consulted.js';
import { installTicketConsult, resetTicketConsult } from './ticket-consult.js';

export function installConsult() {
  on('chat-selected', renderAsk);
  on('chat-ended', (chat) => {
    const selected = selectedChat();
    if (selected && selected.id === chat.id) renderAsk(chat);
  });
  on('note-row', onNoteRow);

  on('consulted', onConsulted);
  on('message', onMessage);
  on('notes', onNotes);
  on('note', (f) => {
    reply.note(f);
    ask.pending.note(f);
    onNote(f);
  });
  on('chat_closed', onChatClosed);
  on('chat_assigned', onChatAssigned);
  on('error', (f) => {
    reply.error(f);
    ask.pending.error(f);
  });
  on('welcome', () => {
    onWelcome();
    ask.pending.reset();
    if (ask.send) ask.send.disabled = false;
  });

  // Whoever opens an own chat from elsewhere (board, ticket) leaves the consult view.
  on('chat-opening', () => { leave(); });

  on('reset', () => {
    resetConsulted();
    resetAsk();
    forgetOperators();
    if (ask.form) showAsk(false);
    resetTicketConsult();
  });

  installTicketConsult();

  // The consult button is there before any chat is selected.
  renderAsk(selectedChat());
}
