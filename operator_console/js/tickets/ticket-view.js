/*
 * One ticket: header, controls, history (events) and attachments.
 */
import { $, el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, formatFull, toMs, languageName } from '../shared/format.js';
import { app } from '../shared/state.js';
import { api } from '../shared/api.js';
import { validAttachments, attachmentList } from '../shared/attachments.js';
import { showView } from '../app/navigation.js';
import { selectChat } from '../chats/tabs.js';
import { tickets, label, noteOperator, personName } from './state.js';
import { loadTickets } from './inbox.js';
import { pendingChanges, restoreDraft, updateChangeControls } from './changes.js';
import { renderPendingFiles } from './reply.js';

/** "T-0042" / "#42" -> 42 (null if there is no number). */
export function ticketNumberOf(ref) {
  const n = parseInt(String(ref).replace(/[^0-9]/g, ''), 10);
  return isNaN(n) ? null : n;
}

/** Switch to the Tickets view with this ticket open. */
export function openTicketView(number) {
  if (number === null || number === undefined) return;
  tickets.number = number;
  if (app.view !== 'tickets') showView('tickets');
  else loadTickets();
  openTicket(number);
}

/** Load and draw ticket `number` (`keepDraft`: keep the reply being written). */
export function openTicket(number, keepDraft) {
  const switched = tickets.number !== number || !tickets.current;
  tickets.number = number;
  const seq = ++tickets.seq;
  if (switched && !keepDraft) {
    $('ticket-reply-input').value = '';
    tickets.pendingFiles = [];
    renderPendingFiles();
    hideTicketError();
  }
  const rows = document.querySelectorAll('#ticket-list .ticket-row');
  for (let i = 0; i < rows.length; i++) {
    rows[i].classList.toggle('is-selected', Number(rows[i].dataset.number) === number);
  }
  return api('GET', '/api/tickets/' + encodeURIComponent(number)).then((r) => {
    if (seq !== tickets.seq) return;
    // A reload of the open ticket keeps the operator's unsaved edits of its
    // controls (measured against the ticket as it was shown).
    const draft = switched ? null : { changes: pendingChanges(), reason: $('ticket-reason').value };
    tickets.current = {
      ticket: r && r.ticket ? r.ticket : {},
      events: r && Array.isArray(r.events) ? r.events : [],
      attachments: r && Array.isArray(r.attachments) ? r.attachments : []
    };
    renderTicket(switched);
    if (draft) restoreDraft(draft);
  }).catch((err) => {
    if (seq !== tickets.seq) return;
    $('ticket-none').hidden = true;
    $('ticket-view').hidden = false;
    showTicketError(t('ticket.loadFailed', { number: number, message: err.message }));
  });
}

export function showTicketError(text) {
  const box = $('ticket-error');
  box.textContent = text;
  box.hidden = false;
}

export function hideTicketError() {
  const box = $('ticket-error');
  box.hidden = true;
  box.textContent = '';
}

function requesterText(req) {
  return [
    str(req.name),
    str(req.email) ? t('ticket.requester.email', { email: req.email }) : '',
    str(req.customer_id) ? t('ticket.requester.customer', { id: req.customer_id }) : ''
  ].filter(Boolean).join(' ');
}

function renderTicket(switched) {
  const cur = tickets.current;
  const tk = cur.ticket;
  $('ticket-none').hidden = true;
  const view = $('ticket-view');
  view.hidden = false;
  view.dataset.number = String(tk.number);
  $('ticket-ref').textContent = str(tk.ref, '#' + tk.number);
  $('ticket-subject').textContent = str(tk.subject, t('ticket.noSubject'));
  const sb = $('ticket-state-badge');
  sb.textContent = label('ticket.state', tk.state);
  sb.dataset.state = str(tk.state);
  const pb = $('ticket-priority-badge');
  pb.textContent = label('ticket.priority', tk.priority);
  pb.dataset.priority = str(tk.priority);
  const req = tk.requester && typeof tk.requester === 'object' ? tk.requester : {};
  $('ticket-requester').textContent = requesterText(req) || '\u2014';
  $('ticket-channel').textContent = label('ticket.channel', tk.channel);
  $('ticket-created').textContent = tk.created_at ? formatFull(toMs(tk.created_at)) : '\u2014';
  $('ticket-lang').textContent = str(tk.lang) ? languageName(tk.lang) : '';
  $('ticket-lang-meta').hidden = !str(tk.lang);
  const chatLink = $('ticket-chat-link');
  chatLink.hidden = !(tk.session_id && app.chats.has(tk.session_id));

  // Controls reflect the ticket as stored.
  $('ticket-state').value = str(tk.state, 'open');
  $('ticket-priority').value = str(tk.priority, 'normal');
  $('ticket-level').value = String(tk.level || 1);
  $('ticket-department').value = str(tk.department, 'technical');
  const sel = $('ticket-assignee');
  clear(sel);
  sel.appendChild(el('option', { value: '', text: t('ticket.unassigned') }));
  const me = app.operator && app.operator.id;
  if (me) sel.appendChild(el('option', { value: me, text: t('ticket.assignee.meOption', { name: str(app.operator.name, t('ticket.assignee.me')) }) }));
  const aid = tk.assignee && typeof tk.assignee === 'object' ? str(tk.assignee.id) : str(tk.assignee);
  if (aid && aid !== me) sel.appendChild(el('option', { value: aid, text: personName(tk.assignee) || aid }));
  sel.value = aid;
  $('ticket-reason').value = '';
  updateChangeControls();

  noteOperator(tk.assignee);
  cur.events.forEach((ev) => {
    if (ev && ev.actor && ev.actor.type === 'operator') noteOperator(ev.actor);
  });
  const list = $('ticket-events');
  clear(list);
  cur.events.forEach((ev) => {
    if (ev && typeof ev === 'object') list.appendChild(renderTicketEvent(ev));
  });
  const files = validAttachments(cur.attachments);
  $('ticket-files').hidden = files.length === 0;
  const fbox = $('ticket-attachments');
  clear(fbox);
  if (files.length) fbox.appendChild(attachmentList(files));
  if (switched) $('ticket-scroll').scrollTop = $('ticket-scroll').scrollHeight;
  emit('ticket', cur);
}

// The display name families of the values a change event names.
const CHANGE_LABELS = { state: 'ticket.state', priority: 'ticket.priority', department: 'department' };

function changeValue(kind, v) {
  if (v === null || v === undefined || v === '') return kind === 'assignee' ? t('ticket.change.nobody') : '\u2014';
  if (CHANGE_LABELS[kind]) return label(CHANGE_LABELS[kind], v);
  if (kind === 'assignee') return personName(v);
  return String(v);
}

const CHANGE_KINDS = { state: 1, priority: 1, level: 1, department: 1, assignee: 1 };
const EVENT_KINDS = { created: 1, transcript: 1, reply: 1, note: 1, mail_in: 1 };

function transcriptSide(from) {
  return from === 'visitor' || from === 'system' ? from : 'operator';
}

function renderTicketEvent(ev) {
  const kind = str(ev.kind, 'event');
  const body = ev.body && typeof ev.body === 'object' ? ev.body : {};
  const actor = ev.actor && typeof ev.actor === 'object' ? ev.actor : {};
  const internal = ev.internal === true || kind === 'note';
  let ts = toMs(ev.ts);
  const item = el('li', {
    className: 'tev tev-' + kind + (internal ? ' is-note' : ''),
    testid: 'ticket-event',
    dataset: { kind: kind, internal: internal ? 'true' : 'false' }
  });
  if (typeof ev.n === 'number') item.dataset.n = String(ev.n);
  const actorName = personName(actor) || (actor.type === 'system' ? t('ticket.actor.system') : '');

  if (CHANGE_KINDS[kind] === 1) {
    item.classList.add('tev-change');
    let line = t('ticket.change.line', {
      what: t('ticket.change.' + kind), from: changeValue(kind, body.from), to: changeValue(kind, body.to)
    });
    if (str(body.reason)) line += t('ticket.change.reason', { reason: body.reason });
    item.appendChild(el('span', { className: 'tev-line', testid: 'ticket-event-text', text: line }));
    item.appendChild(el('span', {
      className: 'tev-by', text: (actorName ? actorName + ' \u00b7 ' : '') + (ts ? formatFull(ts) : '')
    }));
    return item;
  }

  const head = el('div', { className: 'tev-head' });
  let title = EVENT_KINDS[kind] === 1 ? t('ticket.event.' + kind) : t('ticket.event.other');
  let author = actorName;
  if (kind === 'transcript') {
    const side = transcriptSide(body.from);
    author = str(body.author, t('ticket.transcript.author.' + side));
    item.dataset.from = str(body.from);
    title = t('ticket.transcript.title.' + side);
    if (typeof body.ts === 'number') ts = toMs(body.ts);
  } else if (kind === 'reply') {
    title = actor.type === 'operator' ? t('ticket.event.publicReply') : t('ticket.event.customerReply');
  }
  head.appendChild(el('span', {
    className: 'tev-kind', testid: internal ? 'note-label' : 'event-label', text: internal ? t('ticket.event.note') : title
  }));
  if (author) head.appendChild(el('span', { className: 'tev-author', text: author }));
  if (ts) head.appendChild(el('span', { className: 'tev-time', text: formatFull(ts) }));
  item.appendChild(head);

  const text = str(body.text);
  if (kind === 'created') {
    const bits = [];
    if (body.channel) bits.push(t('ticket.created.via', { channel: label('ticket.channel', body.channel) }));
    if (body.priority) bits.push(t('ticket.created.priority', { priority: label('ticket.priority', body.priority) }));
    if (body.department) bits.push(label('department', body.department));
    if (body.level) bits.push(t('ticket.created.level', { level: body.level }));
    if (bits.length) item.appendChild(el('div', { className: 'tev-sub', text: bits.join(' \u00b7 ') }));
    if (str(body.reason)) item.appendChild(el('div', { className: 'tev-sub', text: t('ticket.created.reason', { reason: body.reason }) }));
  }
  if (kind === 'mail_in' && (str(body.from) || str(body.subject))) {
    item.appendChild(el('div', {
      className: 'tev-sub',
      text: [str(body.from) ? t('ticket.mail.from', { from: body.from }) : '', str(body.subject)].filter(Boolean).join(' \u2014 ')
    }));
  }
  if (text) item.appendChild(el('div', { className: 'tev-text', testid: 'ticket-event-text', text: text }));
  const atts = validAttachments(body.attachments);
  if (atts.length) item.appendChild(attachmentList(atts));
  return item;
}

export function initTicketView() {
  $('ticket-chat-link').addEventListener('click', () => {
    const tk = tickets.current && tickets.current.ticket;
    if (tk && tk.session_id && app.chats.has(tk.session_id)) {
      showView('chats');
      selectChat(tk.session_id);
    }
  });
}
