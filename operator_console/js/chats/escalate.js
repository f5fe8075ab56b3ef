/*
 * Escalating a chat to a ticket (the dialog), and the ticket chip of a chat
 * that has one.
 */
import { $ } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { str } from '../shared/format.js';
import { app, selectedChat } from '../shared/state.js';
import { api, errorText } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { visitorName } from './model.js';
import { renderSelected } from './chat-view.js';
import { openTicketView, ticketNumberOf } from '../tickets/ticket-view.js';

const MAX_SUBJECT = 200;

function firstVisitorText(chat) {
  let first = null;
  chat.msgs.forEach((m) => {
    if (m.from === 'visitor' && m.text.trim() && (!first || m.seq < first.seq)) first = m;
  });
  return first ? first.text.replace(/\s+/g, ' ').trim() : '';
}

function onEscalateClick() {
  const chat = selectedChat();
  if (!chat || chat.ticket) return;
  let subject = firstVisitorText(chat) || t('escalate.defaultSubject', { name: visitorName(chat.visitor) });
  if (subject.length > MAX_SUBJECT) subject = subject.slice(0, MAX_SUBJECT - 1) + '\u2026';
  $('escalate-subject').value = subject;
  const deps = app.operator && Array.isArray(app.operator.departments) ? app.operator.departments : [];
  $('escalate-department').value = deps.indexOf('billing') >= 0 && deps.indexOf('technical') < 0 ? 'billing' : 'technical';
  $('escalate-priority').value = 'normal';
  $('escalate-level').value = '1';
  const err = $('escalate-error');
  err.hidden = true;
  err.textContent = '';
  $('escalate-submit').disabled = false;
  const dialog = $('escalate-dialog');
  dialog.dataset.sessionId = chat.id;
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
  $('escalate-subject').focus();
  $('escalate-subject').select();
}

export function closeEscalateDialog() {
  const dialog = $('escalate-dialog');
  if (typeof dialog.close === 'function') { if (dialog.open) dialog.close(); }
  else dialog.removeAttribute('open');
}

function onEscalateSubmit(ev) {
  ev.preventDefault();
  const dialog = $('escalate-dialog');
  const chat = app.chats.get(dialog.dataset.sessionId);
  const err = $('escalate-error');
  const subject = $('escalate-subject').value.trim();
  if (!subject) {
    err.textContent = t('escalate.noSubject');
    err.hidden = false;
    $('escalate-subject').focus();
    return;
  }
  if (!chat) {
    err.textContent = t('escalate.chatGone');
    err.hidden = false;
    return;
  }
  err.hidden = true;
  const submit = $('escalate-submit');
  submit.disabled = true;
  api('POST', '/api/sessions/' + encodeURIComponent(chat.id) + '/escalate', {
    subject: subject,
    department: $('escalate-department').value,
    priority: $('escalate-priority').value,
    level: Number($('escalate-level').value)
  }, { context: 'escalate' }).then((r) => {
    submit.disabled = false;
    closeEscalateDialog();
    const ticket = r && r.ticket;
    if (!ticket) return;
    const ref = str(ticket.ref, '#' + ticket.number);
    chat.ticket = ref;
    if (chat.id === app.selectedId) renderSelected();
    toast(t('escalate.created', { ref: ref }), 'info');
    openTicketView(ticket.number);
  }).catch((e) => {
    submit.disabled = false;
    err.textContent = errorText(e);
    err.hidden = false;
  });
}

export function initEscalate() {
  $('escalate-button').addEventListener('click', onEscalateClick);
  $('escalate-form').addEventListener('submit', onEscalateSubmit);
  $('escalate-cancel').addEventListener('click', closeEscalateDialog);
  $('chat-ticket').addEventListener('click', () => {
    const chat = selectedChat();
    if (chat && chat.ticket) openTicketView(ticketNumberOf(chat.ticket));
  });
}
