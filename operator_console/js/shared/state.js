/*
 * The console's state: who is signed in, which view is shown, and the own
 * chats (chats/ keeps them up to date; other views read them).
 */

export const TOKEN_KEY = 'chatserver:op-token';

export const app = {
  token: null,
  operator: null,
  role: null,
  view: 'chats',
  status: null,          // last status reported by the server
  load: null,            // from status frames (null: derive from chats)
  capacity: 0,
  wantedStatus: null,    // chosen while disconnected, sent after welcome
  chats: new Map(),      // session_id -> chat (tab order = insertion order)
  selectedId: null,
  queue: { total: 0, entries: [] },
  outbox: new Map(),     // client_msg_id -> {chat, msg}: own messages not acked
  welcomes: 0            // how many welcomes this page has seen
};

/** The chat shown in the Chats view, or null. */
export function selectedChat() {
  return app.chats.get(app.selectedId) || null;
}

export function isSupervisor() {
  return app.role === 'supervisor' || app.role === 'admin';
}
