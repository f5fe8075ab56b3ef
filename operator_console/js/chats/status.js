/*
 * "My status": online / away / offline, and the load (chats / capacity).
 */
import { $ } from '../shared/dom.js';
import { app } from '../shared/state.js';
import { sendReady } from '../shared/connection.js';

function activeChatCount() {
  let n = 0;
  app.chats.forEach((c) => { if (!c.ended) n++; });
  return n;
}

export function recomputeLoad() {
  // The server's status frames are authoritative; between them, count ours.
  app.load = activeChatCount();
  renderStatus();
}

export function renderStatus() {
  const select = $('status-select');
  const status = app.wantedStatus || app.status || 'offline';
  if (select.value !== status) select.value = status;
  $('status-dot').dataset.status = status;
  // The empty chat screen: "Set your status to Online" only when not online.
  $('chat-empty-online').hidden = status !== 'online';
  $('chat-empty-offline').hidden = status === 'online';
  const load = app.load === null ? activeChatCount() : app.load;
  $('load').textContent = load + ' / ' + (app.capacity || 0);
  const pct = app.capacity ? Math.min(100, Math.round(100 * load / app.capacity)) : 0;
  $('load-bar-fill').style.width = pct + '%';
  $('load-bar-fill').classList.toggle('is-full', app.capacity > 0 && load >= app.capacity);
}

/** The `status` frame. */
export function onStatus(f) {
  if (typeof f.status === 'string') app.status = f.status;
  if (typeof f.load === 'number') app.load = f.load;
  if (typeof f.capacity === 'number') app.capacity = f.capacity;
  renderStatus();
}

function onStatusChange() {
  const value = $('status-select').value;
  if (value !== 'online' && value !== 'away' && value !== 'offline') return;
  if (sendReady({ type: 'status', status: value })) {
    app.status = value;          // optimistic; the server's status frame confirms
    app.wantedStatus = null;
  } else {
    app.wantedStatus = value;    // sent after the next welcome
  }
  renderStatus();
}

export function initStatus() {
  $('status-select').addEventListener('change', onStatusChange);
}
