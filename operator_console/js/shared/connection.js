/*
 * The operator WebSocket (/ws/operator, docs/protocol.md): connect with
 * `hello`, reconnect with backoff, ping, and hand every frame to the console.
 *
 * What the connection needs from the chats is given by configureConnection()
 * (main.js): the sessions to resume, what to do when the socket is lost, the
 * frame handlers, and how to sign out when the server refuses the token.
 */
import { app } from './state.js';
import { emit } from './events.js';
import { t } from './i18n.js';
import { showBanner, hideBanner, setConnIndicator } from './banner.js';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const PING_INTERVAL_MS = 25000;
const DEAD_AFTER_MS = 60000;       // nothing received for this long: reconnect
const CONNECT_TIMEOUT_MS = 15000;  // open + welcome must happen within this
const QUIET_AFTER_WELCOME_MS = 3000;

export const conn = {
  ws: null,
  open: false,           // socket open
  ready: false,          // welcome received
  attempt: 0,
  reconnectTimer: null,
  pingTimer: null,
  lastRx: 0,
  helloSessions: null,   // sessions listed in the last hello
  quietUntil: 0,         // ignore unknown_session errors for resumed chats until then
  stopped: true,         // true: do not reconnect
  lastAction: null       // {type, at} of the last action frame sent (see errorContext)
};

// Frames sent on their own (not by the operator): an error soon after one of
// these is not about the operator's last action.
const PASSIVE_FRAMES = { hello: 1, ping: 1, typing: 1, read: 1, history: 1, notes: 1, board: 1 };
const ACTION_ERROR_MS = 10000;

const hooks = {
  helloSessions: () => ({}),   // session id -> watermark, sent in hello
  lost: () => {},              // the socket is gone (before any reconnect)
  refused: () => {},           // refused(message): sign out
  handlers: {}                 // frame type -> handler, run before the listeners
};

export function configureConnection(h) {
  Object.assign(hooks, h);
}

/** Send a frame if the socket is open. */
export function send(frame) {
  if (!conn.ws || !conn.open) return false;
  try {
    conn.ws.send(JSON.stringify(frame));
    if (!PASSIVE_FRAMES[frame.type]) conn.lastAction = { type: frame.type, at: Date.now() };
    return true;
  } catch (e) {
    return false;
  }
}

/**
 * What an error frame refused, as a context for errorMessage(): 'message'
 * for an own message (its `ref`), else the type of the action frame sent
 * just before ('transfer', 'consult', 'take_over', ...), else ''.
 */
export function errorContext(f) {
  if (typeof f.ref === 'string' && f.ref) return 'message';
  const last = conn.lastAction;
  return last && Date.now() - last.at < ACTION_ERROR_MS ? last.type : '';
}

/** Send a frame once the server welcomed us; false otherwise. */
export function sendReady(frame) {
  return conn.ready ? send(frame) : false;
}

function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return scheme + '//' + location.host + '/ws/operator';
}

function detachSocket(ws, code, reason) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  try {
    if (code) ws.close(code, reason);
    else ws.close();
  } catch (e) { /* already closed */ }
}

export function connect() {
  clearTimeout(conn.reconnectTimer);
  conn.reconnectTimer = null;
  if (!app.token) return;
  conn.stopped = false;
  if (conn.ws) {
    detachSocket(conn.ws);
    conn.ws = null;
  }
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (e) {
    scheduleReconnect();
    return;
  }
  conn.ws = ws;
  conn.open = false;
  conn.ready = false;
  setConnIndicator('connecting');

  ws.onopen = () => {
    if (conn.ws !== ws) return;
    conn.open = true;
    conn.lastRx = Date.now();
    const sessions = hooks.helloSessions();
    conn.helloSessions = new Set(Object.keys(sessions));
    send({ type: 'hello', token: app.token, sessions: sessions });
    startPing();
  };

  ws.onmessage = (ev) => {
    if (conn.ws !== ws) return;
    conn.lastRx = Date.now();
    if (typeof ev.data !== 'string') return;   // we never ask for msgpack
    let frame;
    try { frame = JSON.parse(ev.data); } catch (e) { return; }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    try {
      handleFrame(frame);
    } catch (err) {
      // A bug in one handler must not kill the connection.
      if (window.console) console.error('chatserver console: frame handler failed', frame.type, err);
    }
  };

  ws.onclose = (ev) => {
    if (conn.ws !== ws) return;
    onSocketGone(ev.code, ev.reason);
  };
  ws.onerror = () => { /* onclose follows */ };

  // A handshake that hangs (no welcome in time) counts as a failed attempt.
  setTimeout(() => {
    if (conn.ws === ws && !conn.ready) onSocketGone(0);
  }, CONNECT_TIMEOUT_MS);
}

function handleFrame(frame) {
  if (frame.type === 'welcome') {
    conn.ready = true;
    conn.attempt = 0;
    conn.quietUntil = Date.now() + QUIET_AFTER_WELCOME_MS;
  }
  const h = hooks.handlers[frame.type];
  if (h) h(frame);
  emit(frame.type, frame);
}

function onSocketGone(code) {
  const ws = conn.ws;
  conn.ws = null;
  conn.open = false;
  conn.ready = false;
  stopPing();
  if (ws) detachSocket(ws);
  hooks.lost();
  if (conn.stopped) return;

  if (code === 4001) {
    hooks.refused(t('conn.expired'));
    return;
  }
  if (code === 4003) {
    hooks.refused(t('conn.forbidden'));
    return;
  }
  if (code === 4004) {
    hooks.refused(t('conn.revoked'));   // the token was revoked (logout elsewhere, account changed)
    return;
  }
  if (code === 4008) {
    // Another window took over; fighting over the connection helps nobody.
    conn.stopped = true;
    setConnIndicator('offline');
    showBanner(t('conn.takenOver'), t('conn.useHere'), () => {
      conn.attempt = 0;
      connect();
    });
    return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  if (conn.stopped || !app.token) return;
  clearTimeout(conn.reconnectTimer);
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, conn.attempt));
  // "Equal jitter": between half the ceiling and the ceiling.
  const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
  conn.attempt++;
  setConnIndicator('offline');
  showBanner(t('conn.reconnecting'), t('conn.retryNow'), () => {
    connect();
  });
  conn.reconnectTimer = setTimeout(connect, delay);
}

/** Close the socket for good (logout). */
export function disconnect() {
  conn.stopped = true;
  clearTimeout(conn.reconnectTimer);
  conn.reconnectTimer = null;
  stopPing();
  const ws = conn.ws;
  conn.ws = null;
  conn.open = false;
  conn.ready = false;
  if (ws) detachSocket(ws, 1000, 'logout');
}

/** Forget what the last hello listed (sign out). */
export function forgetSessions() {
  conn.helloSessions = null;
}

/** The welcome arrived: the banner goes, the dot turns green. */
export function showConnected() {
  hideBanner();
  setConnIndicator('online');
}

function startPing() {
  stopPing();
  conn.pingTimer = setInterval(() => {
    if (!conn.open) return;
    if (Date.now() - conn.lastRx > DEAD_AFTER_MS) {
      onSocketGone(0);   // silent death (e.g. network switched): start over
      return;
    }
    if (conn.ready) send({ type: 'ping' });
  }, PING_INTERVAL_MS);
}

function stopPing() {
  clearInterval(conn.pingTimer);
  conn.pingTimer = null;
}

export function initConnection() {
  window.addEventListener('online', () => {
    // The network came back: do not wait for the backoff timer.
    if (app.token && !conn.ws && !conn.stopped) connect();
  });
}
