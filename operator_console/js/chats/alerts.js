/*
 * Alerts, so that an agent never misses a chat: when a chat is assigned to me
 * or a visitor writes in a chat I am not looking at (another view, another
 * chat, or the console's tab hidden or in the background):
 *   - a desktop notification (Notification API); clicking it shows the chat.
 *     Permission is asked only from the bell in the top bar (a user gesture),
 *     never at login;
 *   - a short sound, made with WebAudio (no file), unless muted (the speaker
 *     in the top bar);
 *   - the unread count in the page title (app/title.js).
 *   - the unread count on the favicon (app/favicon.js).
 * The choices (bell, speaker, volume) are remembered in localStorage per
 * operator ('chatserver.alerts.<operator id>'), so agents sharing a browser
 * keep their own.
 */
import { $ } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { app } from '../shared/state.js';
import { toast } from '../shared/toasts.js';
import { chatIsVisible } from './read.js';
import { openChat } from './tabs.js';
import { visitorName } from './model.js';
import { serviceOf } from '../service/chat-service.js';

const STORE_KEY = 'chatserver.alerts';
const BODY_MAX = 140;

const prefs = { notify: null, sound: true, volume: 0.6 };   // notify null: not chosen yet
const DEFAULTS = { notify: null, sound: true, volume: 0.6 };
let storeKey = null;                              // set once the operator is known
const notifiedSeq = new Map();                    // chat id -> highest seq alerted
const slaWarned = new Set();                      // chat ids alerted for their SLA warning
let audio = null;

function operatorKey(op) {
  const id = op && (op.id !== undefined && op.id !== null ? op.id : op.username);
  return id !== undefined && id !== null && String(id) ? STORE_KEY + '.' + String(id) : null;
}

/** Load the settings of `op` (the welcome frame's operator); the defaults first. */
function loadPrefs(op) {
  Object.assign(prefs, DEFAULTS);
  storeKey = operatorKey(op);
  if (!storeKey) return;
  try {
    const saved = JSON.parse(window.localStorage.getItem(storeKey) || '{}');
    if (typeof saved.notify === 'boolean') prefs.notify = saved.notify;
    if (typeof saved.sound === 'boolean') prefs.sound = saved.sound;
    if (typeof saved.volume === 'number' && saved.volume >= 0 && saved.volume <= 1) prefs.volume = saved.volume;
  } catch (err) { /* storage blocked or garbled: the defaults */ }
}

function savePrefs() {
  if (!storeKey) return;
  try {
    window.localStorage.setItem(storeKey, JSON.stringify(prefs));
  } catch (err) { /* storage blocked: this page only */ }
}

function notifySupported() { return typeof window.Notification === 'function'; }

/** Desktop notifications are on: permission granted and not turned off here. */
function notifyOn() {
  return notifySupported() && window.Notification.permission === 'granted' && prefs.notify !== false;
}

function renderButtons() {
  const bell = $('alerts-notify');
  if (bell) {
    bell.hidden = !notifySupported();
    bell.setAttribute('aria-pressed', notifyOn() ? 'true' : 'false');
    bell.classList.toggle('is-blocked', notifySupported() && window.Notification.permission === 'denied');
  }
  const speaker = $('alerts-sound');
  if (speaker) speaker.setAttribute('aria-pressed', prefs.sound ? 'true' : 'false');
  const volume = $('alerts-volume');
  if (volume) {
    const pct = Math.round(prefs.volume * 100);
    volume.value = String(pct);
    volume.setAttribute('aria-valuetext', pct + ' %');
    volume.disabled = !prefs.sound;
  }
}

function onVolume(ev) {
  const pct = Number(ev.target.value);
  if (!isFinite(pct) || pct < 0 || pct > 100) return;
  prefs.volume = pct / 100;
  savePrefs();
  renderButtons();
}

function onBell() {
  if (!notifySupported()) return;
  const permission = window.Notification.permission;
  if (permission === 'denied') {
    toast(t('alerts.notify.blocked'), 'warn');
    return;
  }
  if (permission === 'granted') {
    prefs.notify = !notifyOn();
    savePrefs();
    renderButtons();
    return;
  }
  // Asked from this click, never on its own.
  Promise.resolve(window.Notification.requestPermission()).then((answer) => {
    prefs.notify = answer === 'granted';
    savePrefs();
    renderButtons();
    if (answer === 'denied') toast(t('alerts.notify.blocked'), 'warn');
  }, () => { renderButtons(); });
}

function onSpeaker() {
  prefs.sound = !prefs.sound;
  savePrefs();
  renderButtons();
  if (prefs.sound) beep();
}

function audioContext() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  if (!audio) {
    try { audio = new Ctx(); } catch (err) { return null; }
  }
  return audio;
}

/** Two short soft tones (about 0.3 s). Browsers only play once the page was clicked. */
function beep() {
  if (!prefs.sound || prefs.volume <= 0) return;
  const peak = Math.max(0.0002, 0.25 * prefs.volume);
  const ctx = audioContext();
  if (!ctx) return;
  if (ctx.state === 'suspended' && ctx.resume) ctx.resume().catch(() => {});
  const now = ctx.currentTime;
  [[880, 0], [1320, 0.14]].forEach(([freq, at]) => {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = 'sine';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + at);
    gain.gain.exponentialRampToValueAtTime(peak, now + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.13);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(now + at);
    osc.stop(now + at + 0.15);
  });
}

function lookingAt(chat) {
  return chatIsVisible(chat) && document.hasFocus();
}

function notify(chat, title, body) {
  if (!notifyOn()) return;
  let n;
  try {
    n = new window.Notification(title, { body: body, tag: 'chat-' + chat.id, lang: document.documentElement.lang || undefined });
  } catch (err) {
    return;   // e.g. a browser that only notifies from a service worker
  }
  n.onclick = () => {
    window.focus();
    openChat(chat.id);
    if (n.close) n.close();
  };
}

function alertFor(chat, title, body) {
  if (lookingAt(chat)) return;
  beep();
  notify(chat, title, body);
}

function clip(text) {
  const s = typeof text === 'string' ? text.trim() : '';
  return s.length > BODY_MAX ? s.slice(0, BODY_MAX - 1) + '\u2026' : s;
}

// Chats just assigned, until their history has been replayed: id -> {transfer}.
const arriving = new Map();

function onAssigned(f) {
  const id = f && f.chat && f.chat.session_id;
  const chat = id && app.chats.get(id);
  if (!chat) return;
  // What the visitor wrote before the assignment is announced by this alert,
  // given once the history is in (replay_done): a transfer is told by its notice.
  notifiedSeq.set(chat.id, Math.max(chat.serverLastSeq || 0, chat.maxSeq || 0));
  arriving.set(chat.id, { transfer: false });
}

function onReplayDone(f) {
  const id = f && f.session_id;
  const pending = id && arriving.get(id);
  if (!pending) return;
  arriving.delete(id);
  const chat = app.chats.get(id);
  if (!chat) return;
  const name = visitorName(chat.visitor);
  const title = pending.transfer ? t('alerts.transfer', { name: name }) : t('chat.newChat', { name: name });
  alertFor(chat, title, t('alerts.openHint'));
}

/** A system message in an arriving chat's history: the latest hand-over notice wins. */
function noteHistory(f) {
  const pending = arriving.get(f.session_id);
  if (!pending || f.from !== 'system') return;
  const code = f.notice && typeof f.notice.code === 'string' ? f.notice.code : '';
  if ((f.event === 'requeued' && f.transfer) || code.indexOf('transfer_') === 0) pending.transfer = true;
  else if (f.event === 'closed') pending.transfer = false;
}

function onMessage(f) {
  const chat = f && app.chats.get(f.session_id);
  if (chat && arriving.has(chat.id)) {
    noteHistory(f);
    const seq0 = typeof f.seq === 'number' ? f.seq : 0;
    if (seq0) notifiedSeq.set(chat.id, Math.max(notifiedSeq.get(chat.id) || 0, seq0));
    return;   // part of the history: announced with the chat
  }
  if (!chat || f.from !== 'visitor') return;
  const seq = typeof f.seq === 'number' ? f.seq : 0;
  if (seq && seq <= (notifiedSeq.get(chat.id) || 0)) return;   // a repeat
  if (seq) notifiedSeq.set(chat.id, seq);
  alertFor(chat, t('alerts.message', { name: visitorName(chat.visitor) }), clip(f.text) || t('alerts.openHint'));
}

/** Once per chat: its first-response clock passed its warning time, still unanswered. */
function checkSla() {
  const now = Date.now();
  app.chats.forEach((chat) => {
    if (slaWarned.has(chat.id)) return;
    const st = serviceOf(chat.id);
    const c = st && st.first;
    if (!c || c.done !== null || c.warn === null || now < c.warn) return;
    slaWarned.add(chat.id);
    alertFor(chat, t('alerts.slaWarning', { name: visitorName(chat.visitor) }), t('alerts.openHint'));
  });
}

/** Listen for new chats and messages; wire the bell, the speaker and the volume. */
export function installAlerts() {
  loadPrefs(app.operator);
  on('welcome', (f) => { loadPrefs((f && f.operator) || app.operator); renderButtons(); });
  const volume = $('alerts-volume');
  if (volume) {
    volume.addEventListener('input', onVolume);
    volume.addEventListener('change', onVolume);
  }
  const bell = $('alerts-notify');
  if (bell) bell.addEventListener('click', onBell);
  const speaker = $('alerts-sound');
  if (speaker) speaker.addEventListener('click', onSpeaker);
  // WebAudio may only start after a user gesture: prepare it on the first one.
  document.addEventListener('pointerdown', () => {
    const ctx = prefs.sound ? audioContext() : null;
    if (ctx && ctx.state === 'suspended' && ctx.resume) ctx.resume().catch(() => {});
  }, { once: true });
  on('chat_assigned', onAssigned);
  on('message', onMessage);
  on('replay_done', onReplayDone);
  setInterval(checkSla, 1000);
  on('reset', () => { notifiedSeq.clear(); slaWarned.clear(); arriving.clear(); loadPrefs(null); renderButtons(); });
  renderButtons();
}
