/*
 * Per-chat service data from the chat summaries (welcome, chat_assigned):
 * plan, first-response clock, kind (chat or callback), callback details,
 * department, level, and the chat's time-tracking timer.
 */
import { on } from '../shared/events.js';
import { str, toMs } from '../shared/format.js';
import { app, selectedChat } from '../shared/state.js';
import { visitorName } from '../chats/model.js';
import { renderTab } from '../chats/tabs.js';
import { clockOf } from './sla.js';
import { startTimer } from './time-tracking.js';
import { renderBar, barChatId } from './chat-bar.js';

const chats = new Map();   // session_id -> service state

/** The service state of chat `id`, or undefined. */
export function serviceOf(id) {
  return chats.get(id);
}

export function forEachService(fn) {
  chats.forEach(fn);
}

function noteSummary(s) {
  if (!s || typeof s.session_id !== 'string') return null;
  let st = chats.get(s.session_id);
  if (!st) {
    st = { id: s.session_id, timer: null, name: '' };
    chats.set(st.id, st);
  }
  const sla = s.sla && typeof s.sla === 'object' ? s.sla : {};
  st.plan = str(sla.plan, str(s.visitor && s.visitor.plan));
  st.first = clockOf(sla.first_response);
  if (st.first && st.first.due === null && st.first.done === null) st.first = null;  // no clock
  st.kind = str(s.kind, 'chat');
  st.callback = s.callback && typeof s.callback === 'object' ? s.callback : null;
  st.department = str(s.department);
  st.level = typeof s.level === 'number' ? s.level : 1;
  st.name = visitorName(s.visitor);
  return st;
}

function afterSummary(st, fresh) {
  const chat = app.chats.get(st.id);
  if (!chat) return;
  if (!chat.ended) startTimer(st, fresh);
  if (chat.tabEl) renderTab(chat);
  const selected = selectedChat();
  if (selected && selected.id === chat.id) renderBar(chat);
}

export function installChatService() {
  on('welcome', (f) => {
    (Array.isArray(f.chats) ? f.chats : []).forEach((s) => {
      const st = noteSummary(s);
      if (st) afterSummary(st, false);
    });
  });

  on('chat_assigned', (f) => {
    const st = noteSummary(f.chat);
    if (!st) return;
    const fresh = !st.timer || st.timer.done;
    afterSummary(st, fresh);
  });

  // The first own message of a chat answers it: its first-response clock stops.
  on('ack', (f) => {
    if (typeof f.client_msg_id !== 'string') return;
    app.chats.forEach((chat) => {
      if (!chat.byCmid || !chat.byCmid.has(f.client_msg_id)) return;
      const st = chats.get(chat.id);
      if (!st || !st.first || st.first.done !== null) return;
      st.first.done = typeof f.ts === 'number' ? toMs(f.ts) : Date.now();
      if (chat.tabEl) renderTab(chat);
      if (barChatId() === chat.id) renderBar(chat);
    });
  });
}

/** The chat left us: forget it (after the other listeners had their say). */
export function forgetService(id) {
  chats.delete(id);
}

export function resetServices() {
  chats.clear();
}
