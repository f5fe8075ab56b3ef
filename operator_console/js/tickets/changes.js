/*
 * Changing a ticket: state, priority (with a reason), level, department,
 * assignee.
 */
import { $ } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { str } from '../shared/format.js';
import { api, errorText } from '../shared/api.js';
import { tickets } from './state.js';
import { loadTickets } from './inbox.js';
import { openTicket, showTicketError, hideTicketError } from './ticket-view.js';

const CHANGE_CONTROLS = {
  state: 'ticket-state', priority: 'ticket-priority', level: 'ticket-level',
  department: 'ticket-department', assignee: 'ticket-assignee'
};

/** What the controls change against the ticket as shown. */
export function pendingChanges() {
  const cur = tickets.current;
  if (!cur) return {};
  const tk = cur.ticket;
  const changes = {};
  const state = $('ticket-state').value;
  if (state !== str(tk.state)) changes.state = state;
  const priority = $('ticket-priority').value;
  if (priority !== str(tk.priority)) changes.priority = priority;
  const level = Number($('ticket-level').value);
  if (level !== Number(tk.level)) changes.level = level;
  const dep = $('ticket-department').value;
  if (dep !== str(tk.department)) changes.department = dep;
  const aid = tk.assignee && typeof tk.assignee === 'object' ? str(tk.assignee.id) : str(tk.assignee);
  const chosen = $('ticket-assignee').value;
  if (chosen !== aid) changes.assignee = chosen || null;
  return changes;
}

/** Put unsaved control edits back after a re-render. */
export function restoreDraft(draft) {
  Object.keys(draft.changes).forEach((kind) => {
    const sel = $(CHANGE_CONTROLS[kind]);
    const v = draft.changes[kind];
    const value = v === null || v === undefined ? '' : String(v);
    const stored = sel.value;
    sel.value = value;
    if (sel.value !== value) sel.value = stored; // that choice is gone: keep the stored one
  });
  $('ticket-reason').value = draft.reason;
  updateChangeControls();
}

export function updateChangeControls() {
  const changes = pendingChanges();
  const priorityChanged = 'priority' in changes;
  $('ticket-reason-field').hidden = !priorityChanged;
  $('ticket-apply').disabled = Object.keys(changes).length === 0;
}

function onTicketChangesSubmit(ev) {
  ev.preventDefault();
  const number = tickets.number;
  const changes = pendingChanges();
  if (!Object.keys(changes).length || number === null) return;
  const reason = $('ticket-reason').value.trim();
  if ('priority' in changes && !reason) {
    showTicketError(t('ticket.reasonRequired'));
    $('ticket-reason').focus();
    return;
  }
  if (reason) changes.reason = reason;
  hideTicketError();
  $('ticket-apply').disabled = true;
  api('POST', '/api/tickets/' + encodeURIComponent(number) + '/changes', changes, { context: 'ticket' }).then(() => {
    if (tickets.number !== number) return;
    return openTicket(number, true).then(loadTickets);
  }).catch((err) => {
    if (tickets.number !== number) return;
    showTicketError(errorText(err));
    updateChangeControls();
  });
}

export function initChanges() {
  Object.keys(CHANGE_CONTROLS).forEach((kind) => {
    $(CHANGE_CONTROLS[kind]).addEventListener('change', updateChangeControls);
  });
  $('ticket-changes').addEventListener('submit', onTicketChangesSubmit);
}
