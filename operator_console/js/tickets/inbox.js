/*
 * The ticket inbox: filters, the list (refreshed every 15 s while shown).
 */
import { $, el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, formatClock, formatFull, formatWaiting, toMs } from '../shared/format.js';
import { app } from '../shared/state.js';
import { api } from '../shared/api.js';
import { tickets, label, noteOperator, assigneeName } from './state.js';
import { openTicket } from './ticket-view.js';

const TICKET_REFRESH_MS = 15000;

/** Signed out: forget the tickets. */
export function resetTickets() {
  clearInterval(tickets.timer);
  tickets.timer = null;
  tickets.list = [];
  tickets.total = 0;
  tickets.current = null;
  tickets.number = null;
  tickets.seq++;
  tickets.pendingFiles = [];
  clear($('ticket-list'));
  clear($('ticket-events'));
  clear($('ticket-reply-files'));
  $('ticket-reply-input').value = '';
  $('ticket-view').hidden = true;
  $('ticket-none').hidden = false;
}

function ticketQuery() {
  const q = [];
  const add = (k, v) => { if (v) q.push(k + '=' + encodeURIComponent(v)); };
  add('state', $('tf-state').value);
  add('department', $('tf-department').value);
  add('level', $('tf-level').value);
  add('assignee', $('tf-assignee').value);
  q.push('limit=200');
  return '/api/tickets?' + q.join('&');
}

export function loadTickets() {
  if (!app.token) return;
  if (tickets.loading) { tickets.again = true; return; }
  tickets.loading = true;
  tickets.again = false;
  $('ticket-list-status').textContent = t('common.loading');
  $('ticket-refresh').disabled = true;
  api('GET', ticketQuery()).then((r) => {
    tickets.list = r && Array.isArray(r.tickets) ? r.tickets : [];
    tickets.total = r && typeof r.total === 'number' ? r.total : tickets.list.length;
    $('ticket-list-error').hidden = true;
    $('ticket-list-status').textContent = t('tickets.updated', { time: formatClock(Date.now()) });
    renderTicketList();
  }).catch((err) => {
    const box = $('ticket-list-error');
    box.textContent = t('tickets.loadFailed', { message: err.message });
    box.hidden = false;
    $('ticket-list-status').textContent = '';
  }).then(() => {
    tickets.loading = false;
    $('ticket-refresh').disabled = false;
    if (tickets.again) loadTickets();
  });
}

function renderTicketList() {
  const list = $('ticket-list');
  clear(list);
  const now = Date.now();
  tickets.list.forEach((tk) => {
    if (!tk || typeof tk !== 'object' || typeof tk.number !== 'number') return;
    const ref = str(tk.ref, '#' + tk.number);
    const priority = str(tk.priority, 'normal');
    noteOperator(tk.assignee);
    const row = el('li', {
      className: 'ticket-row' + (tk.number === tickets.number ? ' is-selected' : ''),
      testid: 'ticket-row', tabIndex: 0,
      dataset: { number: tk.number, priority: priority, state: str(tk.state) }
    },
    el('div', { className: 'ticket-row-top' },
      el('span', { className: 'ticket-row-ref', testid: 'ticket-row-ref', text: ref }),
      el('span', { className: 'tprio', testid: 'ticket-row-priority', text: label('ticket.priority', priority), dataset: { priority: priority } }),
      el('span', { className: 'ticket-row-subject', testid: 'ticket-row-subject', text: str(tk.subject, t('ticket.noSubject')), title: str(tk.subject) })
    ),
    el('div', { className: 'ticket-row-meta' },
      el('span', { className: 'state-badge', testid: 'ticket-row-state', text: label('ticket.state', tk.state), dataset: { state: str(tk.state) } }),
      el('span', { testid: 'ticket-row-department', text: label('department', tk.department) }),
      el('span', { testid: 'ticket-row-level', text: t('ticket.levelShort', { level: tk.level === undefined ? '?' : tk.level }) }),
      el('span', { className: 'ticket-row-assignee', testid: 'ticket-row-assignee', text: assigneeName(tk.assignee) }),
      el('span', {
        className: 'ticket-row-age', testid: 'ticket-row-age',
        text: tk.created_at ? formatWaiting(now - toMs(tk.created_at)) : '',
        title: tk.created_at ? t('ticket.createdAt', { time: formatFull(toMs(tk.created_at)) }) : ''
      })
    ));
    const open = () => { openTicket(tk.number); };
    row.addEventListener('click', open);
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); }
    });
    list.appendChild(row);
    emit('ticket-row', { ticket: tk, row: row });
  });
  $('ticket-total').textContent = String(tickets.total);
  $('ticket-total-label').textContent = tickets.total === 1 ? t('tickets.count.one') : t('tickets.count.other');
  $('ticket-list-empty').hidden = tickets.list.length > 0;
}

function tickTicketsView() {
  if (app.view === 'tickets' && app.token && document.visibilityState === 'visible') loadTickets();
}

export function initInbox() {
  $('ticket-filters').addEventListener('submit', (ev) => {
    // Refresh: the list, and the open ticket (its reply draft stays).
    ev.preventDefault();
    loadTickets();
    if (tickets.number !== null && tickets.current) openTicket(tickets.number, true);
  });
  ['tf-state', 'tf-department', 'tf-level', 'tf-assignee'].forEach((id) => {
    $(id).addEventListener('change', loadTickets);
  });
}

export function initInboxRefresh() {
  setInterval(tickTicketsView, TICKET_REFRESH_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') tickTicketsView();
  });
}
