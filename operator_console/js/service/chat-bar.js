/*
 * The service bar under the chat header: plan, first-response clock,
 * callback details, the time-tracking timer, and the Transfer button (its
 * form is chats/transfer.js).
 */
import { el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str } from '../shared/format.js';
import { selectedChat } from '../shared/state.js';
import { toast } from '../shared/toasts.js';
import { createTransfer, showTransfer } from '../chats/transfer.js';
import { closeCanned } from '../chats/canned.js';
import { serviceOf, forgetService } from './chat-service.js';
import { clockEl, planBadge, phoneIcon } from './sla.js';
import { formatTimer, formatLogged, elapsed, toggleTimer, postTime, finishTimer } from './time-tracking.js';

let bar = null;
let shownId = null;   // the chat the bar shows

/** The session id of the chat the bar shows, or null. */
export function barChatId() {
  return shownId;
}

function buildBar() {
  const header = document.querySelector('#chat-view .chat-header');
  if (!header) return null;
  const b = {};
  b.root = el('div', { className: 'svc-bar', testid: 'chat-service-bar' });
  b.plan = el('span', { className: 'svc-slot' });
  b.sla = el('span', { className: 'svc-slot' });
  b.callback = el('span', { className: 'svc-callback', testid: 'callback-info', hidden: true });
  b.timerClock = el('span', { className: 'svc-timer-clock', testid: 'chat-timer-clock', text: '00:00', title: t('timer.title') });
  b.timerToggle = el('button', { type: 'button', className: 'btn btn-small', testid: 'timer-toggle', text: t('timer.pause') });
  b.timerLog = el('button', { type: 'button', className: 'btn btn-small', testid: 'timer-log', text: t('timer.log') });
  b.logged = el('span', { className: 'svc-logged muted small', testid: 'time-logged', attrs: { 'aria-live': 'polite' } });
  b.timer = el('span', { className: 'svc-timer', testid: 'chat-timer' },
    el('span', { className: 'svc-label', text: t('timer.label') }),
    b.timerClock, b.timerToggle, b.timerLog, b.logged);
  const transfer = createTransfer();
  b.transferButton = transfer.button;
  b.root.appendChild(b.plan);
  b.root.appendChild(b.sla);
  b.root.appendChild(b.callback);
  b.root.appendChild(el('span', { className: 'svc-spacer' }));
  b.root.appendChild(b.timer);
  b.root.appendChild(b.transferButton);
  header.parentNode.insertBefore(b.root, header.nextSibling);
  // The transfer form is shown under the bar.
  b.root.parentNode.insertBefore(transfer.form, b.root.nextSibling);

  b.timerToggle.addEventListener('click', onTimerToggle);
  b.timerLog.addEventListener('click', onTimerLog);
  return b;
}

/** Draw the bar for `chat` (null: no chat selected). */
export function renderBar(chat) {
  if (!bar) bar = buildBar();
  if (!bar) return;
  if (!chat) {
    shownId = null;
    showTransfer(false);
    return;
  }
  if (shownId !== chat.id) {
    shownId = chat.id;
    showTransfer(false);
    closeCanned();
  }
  const st = serviceOf(chat.id);
  clear(bar.plan);
  clear(bar.sla);
  if (st && st.plan) bar.plan.appendChild(planBadge(st.plan, 'plan-badge'));
  if (st && st.first) bar.sla.appendChild(clockEl(st.first, 'first_response', t('sla.label.firstResponse'), 'chat-sla'));
  const cb = st && st.kind === 'callback';
  bar.callback.hidden = !cb;
  clear(bar.callback);
  if (cb) {
    bar.callback.appendChild(phoneIcon('callback-icon', t('callback.request')));
    bar.callback.appendChild(el('span', { text: t('callback.callBack') }));
    bar.callback.appendChild(el('strong', { testid: 'callback-phone', text: str(st.callback && st.callback.phone, t('callback.noNumber')) }));
    if (st.callback && str(st.callback.preferred_times)) {
      bar.callback.appendChild(el('span', { testid: 'callback-times', text: ' \u00b7 ' + st.callback.preferred_times }));
    }
  }
  bar.transferButton.hidden = chat.ended;
  if (chat.ended) showTransfer(false);
  renderTimer(chat, Date.now());
}

/** The timer of `chat`, if the bar shows it. */
export function renderTimer(chat, now) {
  if (!bar || !chat || shownId !== chat.id) return;
  const st = serviceOf(chat.id);
  const tm = st && st.timer;
  bar.timer.hidden = !tm;
  if (!tm) return;
  bar.timerClock.textContent = formatTimer(elapsed(tm, now));
  bar.timer.dataset.running = tm.since !== null ? 'true' : 'false';
  bar.timerToggle.textContent = tm.since !== null ? t('timer.pause') : t('timer.resume');
  bar.timerToggle.hidden = tm.done;
  bar.timerLog.hidden = tm.done;
  bar.timerLog.disabled = tm.busy;
  bar.logged.textContent = tm.status;
}

function onTimerToggle() {
  const chat = selectedChat();
  const st = chat && serviceOf(chat.id);
  const tm = st && st.timer;
  if (!tm || tm.done) return;
  toggleTimer(st);
  renderTimer(chat, Date.now());
}

function onTimerLog() {
  const chat = selectedChat();
  const st = chat && serviceOf(chat.id);
  if (!st || !st.timer || st.timer.done) return;
  const p = postTime(st);
  renderTimer(chat, Date.now());
  p.then((sec) => {
    if (!sec && !st.timer.status) st.timer.status = t('time.nothingYet');
    const current = selectedChat();
    if (current) renderTimer(current, Date.now());
  });
}

export function installChatBar() {
  on('chat-selected', (chat) => { renderBar(chat); });

  on('chat_removed', (f) => {
    const st = serviceOf(f.session_id);
    const logged = st ? finishTimer(st, true) : null;
    if (logged) {
      logged.then((sec) => {
        if (sec) toast(t('time.loggedOnChat', { time: formatLogged(sec), name: st ? st.name : t('time.theVisitor') }), 'info');
      });
    }
  });

  on('chat-ended', (chat) => {
    const st = serviceOf(chat.id);
    if (st) finishTimer(st, false);
  });

  on('reset', () => {
    shownId = null;
    if (bar) showTransfer(false);
  });
}

/** After every other listener: the chat is gone. */
export function installChatBarCleanup() {
  on('chat_removed', (f) => {
    forgetService(f.session_id);
    if (shownId === f.session_id) shownId = null;
  });
}
