/*
 * Transferring the selected chat to another level, department or colleague
 * (a `transfer` frame). The button sits in the service bar
 * (service/chat-bar.js); the form opens under it.
 */
import { el } from '../shared/dom.js';
import { t, errorMessage } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { app, selectedChat } from '../shared/state.js';
import { send } from '../shared/connection.js';
import { toast } from '../shared/toasts.js';
import { barChatId } from '../service/chat-bar.js';
import { serviceOf } from '../service/chat-service.js';
import { loadOperators } from '../consult/colleagues.js';
import { createColleaguePicker } from './transfer-picker.js';

const TRANSFER_WAIT_MS = 10000;
const TRANSFER_TARGETS = [
  { value: 'level:2', key: 'transfer.target.level2' },
  { value: 'level:3', key: 'transfer.target.level3' },
  { value: 'level:1', key: 'transfer.target.level1' },
  { value: 'department:technical', key: 'transfer.target.technical' },
  { value: 'department:billing', key: 'transfer.target.billing' },
  { value: 'operator', key: 'transfer.target.operator' }
];

let ui = null;
const transfer = { pending: null, timer: null };

/** The Transfer button and its form (placed by the service bar). */
export function createTransfer() {
  const f = {};
  f.button = el('button', { type: 'button', className: 'btn btn-small', testid: 'transfer-button', text: t('transfer.button') });
  f.target = el('select', { testid: 'transfer-target', attrs: { 'aria-label': t('transfer.to') } });
  TRANSFER_TARGETS.forEach((tg) => { f.target.appendChild(el('option', { value: tg.value, text: t(tg.key) })); });
  f.picker = createColleaguePicker();
  f.operatorId = f.picker.input;
  f.submit = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'transfer-submit', text: t('transfer.submit') });
  f.cancel = el('button', { type: 'button', className: 'btn btn-small', testid: 'transfer-cancel', text: t('common.cancel') });
  f.error = el('div', { className: 'inline-error svc-error', testid: 'transfer-error', hidden: true, attrs: { role: 'alert' } });
  f.status = el('span', { className: 'muted small', testid: 'transfer-status' });
  // Nobody online for the target: said once, the next submit goes ahead anyway.
  f.warn = el('div', { className: 'inline-error svc-error', testid: 'transfer-warning', hidden: true, attrs: { role: 'alert' } });
  f.form = el('form', { className: 'svc-transfer', testid: 'transfer-form', hidden: true, noValidate: true },
    el('span', { className: 'svc-label', text: t('transfer.to') }), f.target, f.picker.wrap,
    f.submit, f.cancel, f.status, f.warn, f.error);

  f.button.addEventListener('click', () => { showTransfer(f.form.hidden); });
  f.cancel.addEventListener('click', () => { showTransfer(false); });
  f.target.addEventListener('change', () => {
    unwarn();
    f.picker.show(f.target.value === 'operator');
  });
  f.form.addEventListener('submit', onTransferSubmit);
  ui = f;
  return { button: f.button, form: f.form };
}

export function showTransfer(show) {
  if (!ui) return;
  ui.form.hidden = !show;
  ui.error.hidden = true;
  ui.status.textContent = '';
  unwarn();
  if (show) {
    ui.target.value = 'level:2';
    ui.picker.show(false);
    ui.submit.disabled = false;
    ui.target.focus();
  }
}

function transferError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
  ui.status.textContent = '';
  ui.submit.disabled = false;
}

function onTransferSubmit(ev) {
  ev.preventDefault();
  const chat = selectedChat();
  if (!chat || chat.ended) return;
  const value = ui.target.value;
  const frame = { type: 'transfer', session_id: chat.id };
  let what = '';
  TRANSFER_TARGETS.forEach((tg) => { if (tg.value === value) what = t(tg.key); });
  if (value.indexOf('level:') === 0) {
    frame.level = Number(value.slice(6));
  } else if (value.indexOf('department:') === 0) {
    frame.department = value.slice(11);
  } else {
    const who = ui.picker.choice();
    if (!who) {
      transferError(t('transfer.operator.missing'));
      ui.operatorId.focus();
      return;
    }
    frame.operator_id = who.id;
    what = t('transfer.colleague', { name: who.name || who.id });
  }
  ui.error.hidden = true;
  const key = JSON.stringify(frame);
  if (ui.warned === key) {
    sendTransfer(chat, frame, what);
    return;
  }
  ui.submit.disabled = true;
  nobodyOnline(frame, chat).then((none) => {
    ui.submit.disabled = false;
    if (!none) {
      sendTransfer(chat, frame, what);
      return;
    }
    ui.warned = key;
    ui.warn.textContent = t('transfer.nobodyOnline');
    ui.warn.hidden = false;
    ui.submit.textContent = t('transfer.anyway');
  });
}

function unwarn() {
  ui.warned = null;
  ui.warn.hidden = true;
  ui.submit.textContent = t('transfer.submit');
}

/** Whether nobody (but me) who could take the chat at the target is online. An
 * unknown colleague is left to the server to refuse; a failed lookup warns nobody. */
function nobodyOnline(frame, chat) {
  const me = app.operator && app.operator.id;
  const st = serviceOf(chat.id) || {};
  const level = frame.level || st.level || 1;
  const dept = frame.department || st.department || null;
  return loadOperators(true).then((list) => {
    if (frame.operator_id) {
      const o = list.find((x) => x.id === frame.operator_id);
      return !!o && o.status !== 'online';
    }
    return !list.some((o) => o.id !== me && o.status === 'online' &&
      (o.levels || [1]).indexOf(level) >= 0 &&
      (!dept || !(o.departments || []).length || o.departments.indexOf(dept) >= 0));
  }, () => false);
}

function sendTransfer(chat, frame, what) {
  unwarn();
  if (!send(frame)) {
    transferError(t('chat.notConnected'));
    return;
  }
  const st = serviceOf(chat.id);
  transfer.pending = { sessionId: chat.id, at: Date.now(), what: what, name: st ? st.name : null };
  ui.submit.disabled = true;
  ui.status.textContent = t('transfer.sending');
  clearTimeout(transfer.timer);
  transfer.timer = setTimeout(() => {
    if (transfer.pending && transfer.pending.sessionId === chat.id) {
      transfer.pending = null;
      if (barChatId() === chat.id) transferError(t('transfer.noAnswer'));
    }
  }, TRANSFER_WAIT_MS);
}

export function installTransfer() {
  // A refusal comes as an error frame without `ref`, soon after.
  on('error', (f) => {
    const p = transfer.pending;
    if (!p || f.ref || Date.now() - p.at > TRANSFER_WAIT_MS) return;
    transfer.pending = null;
    clearTimeout(transfer.timer);
    if (ui && barChatId() === p.sessionId) {
      transferError(t('transfer.refused', { message: errorMessage(f.code, 'transfer') }));
    }
  });

  // Done: the chat left us.
  on('chat_removed', (f) => {
    const p = transfer.pending;
    if (p && p.sessionId === f.session_id) {
      transfer.pending = null;
      clearTimeout(transfer.timer);
      const st = serviceOf(f.session_id);
      const name = st ? st.name : p.name;
      toast(t('transfer.done', { name: name || t('time.theVisitor'), what: p.what }), 'info');
    }
  });

  on('reset', () => {
    transfer.pending = null;
  });
}
