/*
 * Tickets: in the internal-note mode a "Consult colleague" select adds
 * `consult` to the reply body; note events that consulted someone say so.
 */
import { el } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str } from '../shared/format.js';
import { loadOperators, fillColleagues } from './colleagues.js';

const tk = { select: null, number: null };

function buildTicketConsult() {
  const actions = document.querySelector('#ticket-reply .reply-actions');
  const spacer = actions && actions.querySelector('.topbar-spacer');
  if (!actions) return false;
  tk.select = el('select', { testid: 'ticket-consult', attrs: { 'aria-label': t('consult.ticket.label') } },
    el('option', { value: '', text: t('consult.ticket.noOne') }));
  tk.field = el('label', { className: 'ticket-consult' },
    el('span', { className: 'svc-label', text: t('consult.ticket.label') }), tk.select);
  actions.insertBefore(tk.field, spacer || null);
  return true;
}

function refreshTicketConsult(force) {
  loadOperators(force).then(() => {
    if (tk.select) fillColleagues(tk.select, t('consult.ticket.noOne'));
  }, () => { /* the select keeps "No one" */ });
}

/** Note events that consulted a colleague: "Consulted: Name". */
function decorateConsultEvents(events) {
  const byN = new Map();
  (events || []).forEach((e) => {
    const body = e && e.body && typeof e.body === 'object' ? e.body : null;
    if (body && body.consult && typeof e.n === 'number') byN.set(e.n, body.consult);
  });
  if (!byN.size) return;
  const items = document.querySelectorAll('#ticket-events [data-testid="ticket-event"]');
  for (let i = 0; i < items.length; i++) {
    const consult = byN.get(Number(items[i].dataset.n));
    if (!consult || items[i]._consult) continue;
    items[i]._consult = true;
    const name = typeof consult === 'object'
      ? str(consult.name, str(consult.id, t('consult.aColleague'))) : str(consult, t('consult.aColleague'));
    items[i].dataset.consult = typeof consult === 'object' ? str(consult.id) : str(consult);
    const line = el('div', { className: 'tev-consult', testid: 'ticket-event-consult', text: t('consult.ticket.consulted', { name: name }) });
    const head = items[i].querySelector('.tev-head');
    items[i].insertBefore(line, head ? head.nextSibling : items[i].firstChild);
  }
}

export function installTicketConsult() {
  on('ticket', (cur) => {
    if (!cur || !cur.ticket) return;
    if (!tk.select && !buildTicketConsult()) return;
    if (tk.number !== cur.ticket.number) {
      tk.number = cur.ticket.number;
      tk.select.value = '';
      refreshTicketConsult(false);
    }
    decorateConsultEvents(cur.events);
  });

  on('ticket-reply-body', (body) => {
    if (!tk.select || !body.internal || !tk.select.value) return;
    body.consult = tk.select.value;
  });

  on('ticket-reply-sent', (p) => {
    if (tk.select && p && p.body && p.body.consult) tk.select.value = '';
  });
}

export function resetTicketConsult() {
  tk.number = null;
}
