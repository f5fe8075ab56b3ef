/*
 * The Tickets view's state, display names of states, priorities and
 * departments, and the names of the operators seen on tickets.
 */
import { t, hasMessage } from '../shared/i18n.js';
import { str } from '../shared/format.js';
import { app } from '../shared/state.js';

export const tickets = {
  list: [],
  total: 0,
  loading: false,
  again: false,          // filters changed while loading: load once more
  timer: null,
  current: null,         // {ticket, events, attachments} of the open ticket
  number: null,          // number of the open ticket
  seq: 0,                // guards against late answers for another ticket
  pendingFiles: [],      // uploaded for the reply being written
  uploading: 0
};

/**
 * The display name of `value` in the message family `prefix`
 * ('ticket.state', 'ticket.priority', 'department'), else the value itself.
 */
export function label(prefix, value) {
  const key = prefix + '.' + value;
  if (value !== null && value !== undefined && value !== '' && hasMessage(key)) return t(key);
  return str(value === null || value === undefined ? '' : String(value), '\u2014');
}

const operatorNames = new Map();   // operator id -> name, from tickets and events seen

export function noteOperator(p) {
  if (p && typeof p === 'object' && typeof p.id === 'string' && str(p.name)) operatorNames.set(p.id, p.name);
}

/** A display name for {id, name} or an operator id. */
export function personName(p) {
  if (p === null || p === undefined || p === '') return '';
  if (typeof p === 'object') return str(p.name, str(p.id, ''));
  const s = String(p);
  if (operatorNames.has(s)) return operatorNames.get(s);
  if (app.operator && s === app.operator.id) return str(app.operator.name, s);
  return s;
}

export function assigneeName(a) {
  if (!a) return t('ticket.unassigned');
  if (app.operator && typeof a === 'object' && a.id === app.operator.id) return t('ticket.assignee.mine', { name: personName(a) });
  if (app.operator && a === app.operator.id) return t('ticket.assignee.mine', { name: str(app.operator.name, t('ticket.assignee.me')) });
  return personName(a) || t('ticket.unassigned');
}
