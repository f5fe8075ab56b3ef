/*
 * The open ticket's service levels (plan, clocks) and "Log time" on it
 * (POST /api/tickets/{n}/time); logged time entries in its history.
 */
import { el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, enc } from '../shared/format.js';
import { api } from '../shared/api.js';
import { openTicketView } from '../tickets/ticket-view.js';
import { renderTicketSla } from './sla.js';
import { formatLogged } from './time-tracking.js';

const MAX_MINUTES = 1440;

const ticketBox = { root: null, number: null };

function buildTicketBox() {
  const meta = document.querySelector('#ticket-view .ticket-meta');
  if (!meta) return false;
  const b = ticketBox;
  b.sla = el('div', { className: 'svc-ticket-sla', testid: 'ticket-sla' });
  b.minutes = el('input', {
    type: 'number', testid: 'ticket-time-minutes', min: '1', max: String(MAX_MINUTES), step: '1', placeholder: t('ticketTime.min'),
    attrs: { 'aria-label': t('ticketTime.minutes.label') }
  });
  b.note = el('input', {
    type: 'text', testid: 'ticket-time-note', maxLength: 300, placeholder: t('ticketTime.note.placeholder'),
    attrs: { 'aria-label': t('ticketTime.note.label') }
  });
  b.submit = el('button', { type: 'submit', className: 'btn btn-small', testid: 'ticket-time-submit', text: t('timer.log') });
  b.status = el('span', { className: 'muted small', testid: 'ticket-time-status', attrs: { 'aria-live': 'polite' } });
  b.form = el('form', { className: 'svc-ticket-time', testid: 'ticket-time-form', noValidate: true },
    el('span', { className: 'svc-label', text: t('timer.label') }), b.minutes, el('span', { className: 'muted small', text: t('ticketTime.min') }),
    b.note, b.submit, b.status);
  b.root = el('div', { className: 'svc-ticket' }, b.sla, b.form);
  meta.parentNode.insertBefore(b.root, meta.nextSibling);
  b.form.addEventListener('submit', onTicketTime);
  return true;
}

/** Time entries are internal events of kind "time": say how much. */
function decorateTimeEvents(events) {
  const byN = new Map();
  (events || []).forEach((e) => { if (e && e.kind === 'time') byN.set(e.n, e); });
  if (!byN.size) return;
  const items = document.querySelectorAll('#ticket-events [data-kind="time"]');
  for (let i = 0; i < items.length; i++) {
    const ev = byN.get(Number(items[i].dataset.n));
    if (!ev || items[i]._svc) continue;
    items[i]._svc = true;
    const body = ev.body && typeof ev.body === 'object' ? ev.body : {};
    const kind = items[i].querySelector('.tev-kind');
    if (kind) kind.textContent = t('ticketTime.eventLabel');
    const seconds = Number(body.seconds) || 0;
    items[i].appendChild(el('div', {
      className: 'tev-text', testid: 'ticket-time-entry',
      text: str(body.note) ? t('ticketTime.entryWithNote', { time: formatLogged(seconds), note: body.note }) : formatLogged(seconds)
    }));
  }
}

function onTicketTime(ev) {
  ev.preventDefault();
  const b = ticketBox;
  const number = b.number;
  const minutes = Number(b.minutes.value);
  if (!(minutes > 0) || minutes > MAX_MINUTES) {
    b.status.textContent = t('ticketTime.invalid');
    b.minutes.focus();
    return;
  }
  const body = { minutes: minutes };
  if (b.note.value.trim()) body.note = b.note.value.trim();
  b.submit.disabled = true;
  b.status.textContent = t('ticketTime.saving');
  api('POST', '/api/tickets/' + enc(number) + '/time', body, { context: 'time' }).then((r) => {
    b.submit.disabled = false;
    if (b.number !== number) return;
    const seconds = r && typeof r.seconds === 'number' ? r.seconds : Math.round(minutes * 60);
    b.minutes.value = '';
    b.note.value = '';
    b.status.textContent = t('time.logged', { time: formatLogged(seconds) });
    openTicketView(number);
  }).catch((err) => {
    b.submit.disabled = false;
    if (b.number === number) b.status.textContent = t('time.notLogged', { message: err.message });
  });
}

export function installTicketTime() {
  on('ticket', (cur) => {
    if (!cur || !cur.ticket) return;
    if (!ticketBox.root && !buildTicketBox()) return;
    const tk = cur.ticket;
    if (ticketBox.number !== tk.number) {
      ticketBox.number = tk.number;
      ticketBox.minutes.value = '';
      ticketBox.note.value = '';
      ticketBox.status.textContent = '';
    }
    clear(ticketBox.sla);
    renderTicketSla(ticketBox.sla, tk.sla);
    decorateTimeEvents(cur.events);
  });
  on('reset', () => { ticketBox.number = null; });
}
