/*
 * Answering a ticket: a public reply (mailed to the requester) or an
 * internal note, with attachments.
 */
import { $, el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, formatSize } from '../shared/format.js';
import { api, errorText } from '../shared/api.js';
import { uploadFile, uploadError } from '../shared/attachments.js';
import { tickets } from './state.js';
import { loadTickets } from './inbox.js';
import { openTicket, showTicketError, hideTicketError } from './ticket-view.js';

function replyMode() {
  const checked = document.querySelector('#ticket-reply input[name="reply-mode"]:checked');
  return checked && checked.value === 'internal' ? 'internal' : 'public';
}

function onReplyModeChange() {
  const mode = replyMode();
  const form = $('ticket-reply');
  form.dataset.mode = mode;
  $('reply-mode-hint').textContent = t('reply.hint.' + mode);
  $('ticket-reply-input').placeholder = t('reply.placeholder.' + mode);
  $('ticket-reply-send').textContent = t('reply.send.' + mode);
}

export function renderPendingFiles() {
  const box = $('ticket-reply-files');
  clear(box);
  tickets.pendingFiles.forEach((a, i) => {
    const chip = el('span', { className: 'pending-file', testid: 'pending-file' },
      el('span', { text: t('reply.file', { name: str(a.filename, t('attachment.defaultName')), size: formatSize(a.size) }) }));
    const remove = el('button', {
      type: 'button', className: 'tab-dismiss', text: '\u00d7', title: t('reply.file.remove'),
      attrs: { 'aria-label': t('reply.file.remove.label') }
    });
    remove.addEventListener('click', () => {
      tickets.pendingFiles.splice(i, 1);
      renderPendingFiles();
    });
    chip.appendChild(remove);
    box.appendChild(chip);
  });
  if (tickets.uploading) box.appendChild(el('span', { className: 'muted small', text: t('reply.uploading') }));
}

function onTicketFileChosen() {
  const input = $('ticket-file-input');
  const file = input.files && input.files[0];
  input.value = '';
  const number = tickets.number;
  if (!file || number === null) return;
  tickets.uploading++;
  renderPendingFiles();
  hideTicketError();
  uploadFile(file, { ticket: number }).then((att) => {
    if (tickets.number === number) tickets.pendingFiles.push(att);
  }).catch((err) => {
    if (tickets.number === number) showTicketError(uploadError(err, file.name));
  }).then(() => {
    tickets.uploading--;
    renderPendingFiles();
  });
}

function onTicketReplySubmit(ev) {
  ev.preventDefault();
  const number = tickets.number;
  if (number === null) return;
  const input = $('ticket-reply-input');
  const text = input.value.trim();
  const files = tickets.pendingFiles.slice();
  if (!text && !files.length) return;
  if (tickets.uploading) {
    showTicketError(t('reply.waitUpload'));
    return;
  }
  const internal = replyMode() === 'internal';
  const send = $('ticket-reply-send');
  send.disabled = true;
  hideTicketError();
  const body = { text: text, internal: internal, attachments: files.map((a) => a.id) };
  emit('ticket-reply-body', body);   // other views may add fields (consult/: consult)
  api('POST', '/api/tickets/' + encodeURIComponent(number) + '/replies', body).then(() => {
    send.disabled = false;
    emit('ticket-reply-sent', { number: number, body: body });
    if (tickets.number !== number) return;
    input.value = '';
    tickets.pendingFiles = [];
    renderPendingFiles();
    return openTicket(number, true).then(() => {
      $('ticket-scroll').scrollTop = $('ticket-scroll').scrollHeight;
      loadTickets();
    });
  }).catch((err) => {
    send.disabled = false;
    if (tickets.number === number) showTicketError(errorText(err));
  });
}

export function initReply() {
  $('ticket-reply').addEventListener('submit', onTicketReplySubmit);
  $('ticket-reply-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); onTicketReplySubmit(ev); }
  });
  const modes = document.querySelectorAll('#ticket-reply input[name="reply-mode"]');
  for (let i = 0; i < modes.length; i++) modes[i].addEventListener('change', onReplyModeChange);
  $('ticket-attach').addEventListener('click', () => { $('ticket-file-input').click(); });
  $('ticket-file-input').addEventListener('change', onTicketFileChosen);
}
