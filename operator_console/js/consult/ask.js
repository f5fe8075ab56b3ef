/*
 * In an own chat, "Consult…": the assigned operator asks a colleague
 * (3rd-level support first) on the chat's operators-only thread.
 */
import { $, el } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { selectedChat } from '../shared/state.js';
import {
  MAX_CHARS, loadOperators, fillColleagues, colleagueName, labelNote, Pending,
  sendConsult, checkText, enterSends
} from './colleagues.js';

export const ask = { form: null, chatId: null, threads: new Set() };

ask.pending = new Pending((p) => {
  if (!ask.form) return;
  ask.send.disabled = false;
  if (ask.chatId !== p.sessionId) return;
  ask.text.value = '';
  ask.status.textContent = p.target
    ? t('consult.ask.asked', { name: colleagueName(p.target) })
    : t('consult.ask.sentToThread');
  fillAskSelect();
  ask.select.value = '';   // follow-ups go to the thread
}, (p, why) => {
  if (!ask.form) return;
  ask.send.disabled = false;
  if (ask.chatId === p.sessionId) askError(t('consult.ask.notSent', { why: why }));
});

function buildAsk() {
  const view = $('chat-view');
  const actions = view && view.querySelector('.chat-header-actions');
  const slot = $('messages-slot');
  if (!actions || !slot) return false;
  ask.button = el('button', {
    type: 'button', className: 'btn btn-small', testid: 'consult-button', text: t('consult.ask.button'),
    title: t('consult.ask.button.title'),
    attrs: { 'aria-expanded': 'false' }
  });
  actions.insertBefore(ask.button, actions.firstChild);
  ask.select = el('select', { testid: 'consult-colleague', attrs: { 'aria-label': t('consult.ask.colleague.label') } });
  ask.text = el('textarea', {
    className: 'message-input consult-input', rows: 2, maxLength: MAX_CHARS, testid: 'consult-text',
    placeholder: t('consult.ask.text.placeholder'), attrs: { 'aria-label': t('consult.ask.text.label') }
  });
  ask.send = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'consult-send', text: t('consult.ask.send') });
  ask.cancel = el('button', { type: 'button', className: 'btn btn-small', testid: 'consult-cancel', text: t('consult.ask.close') });
  ask.status = el('span', { className: 'muted small consult-status', testid: 'consult-status', attrs: { 'aria-live': 'polite' } });
  ask.error = el('div', { className: 'inline-error consult-error', testid: 'consult-error', hidden: true, attrs: { role: 'alert' } });
  ask.form = el('form', { className: 'consult-form', testid: 'consult-form', hidden: true, noValidate: true },
    el('div', { className: 'consult-row' },
      el('span', { className: 'consult-label', text: t('consult.label') }),
      el('span', { className: 'consult-spacer' }),
      ask.cancel),
    el('div', { className: 'consult-row' },
      el('span', { className: 'svc-label', text: t('consult.ask.label') }), ask.select, ask.status),
    el('div', { className: 'consult-row' }, ask.text, ask.send),
    ask.error);
  view.insertBefore(ask.form, slot);
  ask.button.addEventListener('click', () => { showAsk(ask.form.hidden); });
  ask.cancel.addEventListener('click', () => { showAsk(false); });
  ask.form.addEventListener('submit', onAskSubmit);
  enterSends(ask.text, ask.form);
  return true;
}

function askError(text) {
  ask.error.textContent = text;
  ask.error.hidden = !text;
  if (text) ask.status.textContent = '';
}

function fillAskSelect() {
  const thread = ask.chatId && ask.threads.has(ask.chatId);
  fillColleagues(ask.select, thread ? t('consult.ask.toThread') : t('consult.ask.choose'));
}

export function showAsk(show) {
  if (!ask.form) return;
  const chat = selectedChat();
  if (show && (!chat || chat.ended)) show = false;
  ask.form.hidden = !show;
  ask.button.setAttribute('aria-expanded', show ? 'true' : 'false');
  askError('');
  if (!show) return;
  ask.chatId = chat.id;
  ask.status.textContent = t('consult.ask.loadingColleagues');
  fillAskSelect();
  loadOperators(true).then(() => {
    if (ask.form.hidden) return;
    ask.status.textContent = '';
    fillAskSelect();
  }, (err) => {
    ask.status.textContent = '';
    askError(t('consult.colleaguesFailed', { message: err.message }));
  });
  ask.text.focus();
}

function onAskSubmit(ev) {
  ev.preventDefault();
  const chat = selectedChat();
  if (!chat || chat.ended || ask.send.disabled) return;
  const text = ask.text.value.trim();
  const target = ask.select.value;
  let problem = checkText(text);
  if (!problem && !target && !ask.threads.has(chat.id)) problem = t('consult.ask.chooseColleague');
  if (problem) {
    askError(problem);
    return;
  }
  askError('');
  if (!sendConsult(ask.pending, chat.id, text, target)) {
    askError(t('chat.notConnected'));
    return;
  }
  ask.send.disabled = true;
  ask.status.textContent = t('consult.sending');
}

/** The selected chat changed (or ended): the button, and the form only for its chat. */
export function renderAsk(chat) {
  if (!ask.form && !buildAsk()) return;
  ask.button.hidden = !chat || chat.ended;
  if (!chat || chat.ended || chat.id !== ask.chatId) {
    if (!ask.form.hidden) showAsk(false);
    ask.text.value = '';
    ask.status.textContent = '';
  }
}

/** Consult notes in an own chat: the chat view draws them like whispers; say what they are. */
export function onNoteRow(p) {
  if (!p || !p.note || p.note.kind !== 'consult') return;
  labelNote(p.bubble, p.note);
  ask.threads.add(p.chat.id);
}

export function resetAsk() {
  ask.threads.clear();
  ask.pending.reset();
}
