/*
 * Time tracking: a timer per own chat (kept in sessionStorage across
 * reloads), logged to the chat with POST /api/sessions/{id}/time when asked
 * or when the chat ends.
 */
import { t } from '../shared/i18n.js';
import { pad2, enc, formatUnit } from '../shared/format.js';
import { selectedChat } from '../shared/state.js';
import { api } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { renderTimer } from './chat-bar.js';

const TIMER_KEY = 'chatserver:timer:';

/** Chat timer: "04:12", "1:02:03". */
export function formatTimer(msec) {
  const s = Math.max(0, Math.floor(msec / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return (h ? h + ':' + pad2(m) : pad2(m)) + ':' + pad2(s % 60);
}

/** "40 sec", "12 min" (Intl, in the console's language) */
export function formatLogged(seconds) {
  return seconds < 60 ? formatUnit(seconds, 'second') : formatUnit(Math.round(seconds / 60), 'minute');
}

function loadTimer(id) {
  try {
    const v = JSON.parse(sessionStorage.getItem(TIMER_KEY + id) || 'null');
    if (v && typeof v.e === 'number') return v;
  } catch (e) { /* ignore */ }
  return null;
}

export function saveTimer(st) {
  const tm = st.timer;
  if (!tm) return;
  try {
    if (tm.done) sessionStorage.removeItem(TIMER_KEY + st.id);
    else sessionStorage.setItem(TIMER_KEY + st.id, JSON.stringify({ e: elapsed(tm, Date.now()), r: tm.since !== null, l: tm.logged }));
  } catch (e) { /* private mode */ }
}

/** Start the chat's timer (`fresh`: from zero, else resume a saved one). */
export function startTimer(st, fresh) {
  if (st.timer && !fresh) return;
  const saved = fresh ? null : loadTimer(st.id);
  st.timer = {
    acc: saved ? saved.e : 0,
    since: saved && !saved.r ? null : Date.now(),
    logged: saved && typeof saved.l === 'number' ? saved.l : 0,
    done: false,
    busy: false,
    status: ''
  };
  saveTimer(st);
}

export function elapsed(tm, now) {
  return tm.acc + (tm.since !== null ? now - tm.since : 0);
}

/** Pause or resume. */
export function toggleTimer(st) {
  const tm = st.timer;
  const now = Date.now();
  if (tm.since !== null) {
    tm.acc += now - tm.since;
    tm.since = null;
  } else {
    tm.since = now;
  }
  saveTimer(st);
}

/** POST the time counted so far; resolves with the seconds logged (0: none). */
export function postTime(st) {
  const tm = st.timer;
  const now = Date.now();
  let seconds = Math.round(elapsed(tm, now) / 1000);
  if (seconds < 1 || tm.busy) return Promise.resolve(0);
  seconds = Math.min(seconds, 86400);
  tm.busy = true;
  const running = tm.since !== null;
  // What is posted is taken off the counter; it runs on for what comes.
  tm.acc = 0;
  tm.since = running ? now : null;
  return api('POST', '/api/sessions/' + enc(st.id) + '/time', { seconds: seconds }, { context: 'time' }).then(() => {
    tm.busy = false;
    tm.logged += seconds;
    tm.status = t('time.logged', { time: formatLogged(tm.logged) });
    saveTimer(st);
    return seconds;
  }, (err) => {
    tm.busy = false;
    tm.acc += seconds * 1000;   // keep it for the next try
    tm.status = t('time.notLogged', { message: err.message });
    saveTimer(st);
    toast(t('time.logFailed', { message: err.message }), 'error');
    return 0;
  });
}

/** The chat ended (or was taken away): stop its timer and log what it counted. */
export function finishTimer(st, quiet) {
  const tm = st.timer;
  if (!tm || tm.done) return null;
  const now = Date.now();
  if (tm.since !== null) {
    tm.acc += now - tm.since;
    tm.since = null;
  }
  tm.done = true;
  const p = postTime(st).then((sec) => {
    if (!tm.status) tm.status = tm.logged ? t('time.logged', { time: formatLogged(tm.logged) }) : '';
    saveTimer(st);
    const current = selectedChat();
    if (current && current.id === st.id) renderTimer(current, Date.now());
    return sec;
  });
  try { sessionStorage.removeItem(TIMER_KEY + st.id); } catch (e) { /* ignore */ }
  if (!quiet) {
    p.then((sec) => {
      if (sec) toast(t('time.loggedOnChat', { time: formatLogged(tm.logged), name: st.name }), 'info');
    });
  }
  return p;
}
