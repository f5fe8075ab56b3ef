/*
 * Service levels: live SLA clocks (first response; for tickets also
 * resolution) counting down every second to `due` (docs/http-api.md,
 * "Service levels"), plan badges (Free / Standard / VIP) and callback
 * requests (phone, times) on chat tabs, queue entries and the ticket inbox.
 */
import { el } from '../shared/dom.js';
import { t, hasMessage } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, formatFull, formatDuration, toMs } from '../shared/format.js';
import { serviceOf } from './chat-service.js';

// The server's own text for a callback request in the queue preview.
const CALLBACK_PREVIEW = 'Please call me back: ';

function ms(v) { return typeof v === 'number' && isFinite(v) ? toMs(v) : null; }

export function planName(p) {
  p = str(p);
  const key = 'plan.' + p.toLowerCase();
  if (p && hasMessage(key)) return t(key);
  return p ? p.charAt(0).toUpperCase() + p.slice(1) : '';
}

/** An SLA clock from the API: {due, warn, done} in ms, and its state. */
export function clockOf(c) {
  if (!c || typeof c !== 'object') return null;
  return { due: ms(c.due), warn: ms(c.warns_at), done: ms(c.done_at), state: str(c.state) };
}

function clockState(c, now) {
  if (c.done !== null) return c.due === null || c.done <= c.due ? 'met' : 'breached';
  if (c.due === null) return 'paused';
  if (now > c.due) return 'breached';
  if (c.warn !== null && now >= c.warn) return 'warning';
  return 'ok';
}

function clockText(c, which, state, now) {
  const resolution = which === 'resolution';
  if (state === 'met') return resolution ? t('sla.resolvedInTime') : t('sla.answeredInTime');
  if (state === 'paused') return t('sla.paused');
  if (c.done !== null) return resolution ? t('sla.resolvedLate') : t('sla.answeredLate');
  if (state === 'breached') return t('sla.overdue', { time: formatDuration(now - c.due) });
  return t('sla.left', { time: formatDuration(c.due - now) });
}

function paintClock(node, now) {
  const c = node._clock;
  if (!c) return;
  const state = clockState(c, now);
  const text = clockText(c, node.dataset.clock, state, now);
  const shown = node._label ? t('sla.labelled', { label: node._label, text: text }) : text;
  if (node.dataset.slaState !== state) node.dataset.slaState = state;
  if (node.textContent !== shown) node.textContent = shown;
}

/** A live clock: span.sla-clock[data-sla-state][data-clock]; `label` is translated. */
export function clockEl(c, which, label, testid) {
  const node = el('span', { className: 'sla-clock', testid: testid || 'sla-clock' });
  node.dataset.clock = which;
  node._clock = c;
  node._label = label || '';
  const what = which === 'resolution' ? 'resolution' : 'firstResponse';
  node.title = c.due !== null ? t('sla.title.due.' + what, { time: formatFull(c.due) })
    : c.done !== null ? t('sla.title.done.' + what, { time: formatFull(c.done) }) : t('sla.title.paused.' + what);
  paintClock(node, Date.now());
  return node;
}

/** Repaint every clock on the page. */
export function paintClocks(now) {
  const nodes = document.querySelectorAll('.sla-clock');
  for (let i = 0; i < nodes.length; i++) paintClock(nodes[i], now);
}

export function planBadge(plan, testid) {
  const key = str(plan).toLowerCase();
  return el('span', {
    className: 'plan-badge', testid: testid || 'plan-badge', text: planName(plan),
    title: t('plan.title', { plan: planName(plan) }), dataset: { plan: key }
  });
}

export function phoneIcon(testid, title) {
  const text = title || t('callback.request');
  return el('span', {
    className: 'svc-phone', testid: testid, text: '\u260E', title: text,
    attrs: { 'aria-label': text }
  });
}

/** "+49 … · mornings" */
export function callbackText(cb) {
  if (!cb) return '';
  let text = str(cb.phone);
  if (str(cb.preferred_times)) text += ' \u00b7 ' + cb.preferred_times;
  return text;
}

/** The clocks of a ticket (`short`: for the inbox rows). */
function ticketClocks(sla, short) {
  const out = [];
  if (!sla || typeof sla !== 'object') return out;
  const first = clockOf(sla.first_response);
  const resolution = clockOf(sla.resolution);
  if (first && (!short || first.done === null)) {
    out.push(clockEl(first, 'first_response', short ? t('sla.label.response') : t('sla.label.firstResponse'),
      short ? 'ticket-row-sla' : 'ticket-sla-first'));
  }
  if (resolution) {
    out.push(clockEl(resolution, 'resolution', t('sla.label.resolution'), short ? 'ticket-row-sla' : 'ticket-sla-resolution'));
  }
  return out;
}

/** Plan badge and clocks of the open ticket, into `box`. */
export function renderTicketSla(box, sla) {
  if (sla && str(sla.plan)) box.appendChild(planBadge(sla.plan, 'ticket-plan'));
  ticketClocks(sla, false).forEach((node) => { box.appendChild(node); });
}

export function installSla() {
  // Chat tabs: callback icon, plan, first-response clock.
  on('chat-tab', (p) => {
    const chat = p.chat;
    const tab = p.tab;
    const st = serviceOf(chat.id);
    if (!st) return;
    const name = tab.querySelector('.tab-name');
    const after = name ? name.nextSibling : null;
    const add = (node) => { tab.insertBefore(node, after); };
    tab.dataset.kind = st.kind;
    if (st.kind === 'callback') {
      add(phoneIcon('tab-callback', t('callback.requestWith', { text: callbackText(st.callback) })));
    }
    if (st.plan && !(st.plan === 'vip' && chat.priority === 'vip')) add(planBadge(st.plan, 'tab-plan'));
    if (st.first && !chat.ended) add(clockEl(st.first, 'first_response', '', 'sla-clock'));
  });

  // Queue entries: callback, plan, first-response clock.
  on('queue-item', (p) => {
    const e = p.entry;
    const item = p.item;
    const head = item.querySelector('.queue-head');
    const name = head && head.querySelector('.queue-name');
    const cb = e.callback && typeof e.callback === 'object' ? e.callback : null;
    // Queue entries may lack `kind`: a callback request's preview is the server's own text.
    const isCallback = e.kind === 'callback' || !!cb || str(e.preview).indexOf(CALLBACK_PREVIEW) === 0;
    const plan = str(e.plan, str(e.sla && e.sla.plan));
    if (isCallback) {
      item.dataset.kind = 'callback';
      if (head) head.insertBefore(phoneIcon('queue-callback-icon', t('callback.request')), name ? name.nextSibling : null);
    }
    if (plan && head) head.insertBefore(planBadge(plan, 'queue-plan'), name ? name.nextSibling : null);
    let line = null;
    if (cb) {
      line = el('div', { className: 'queue-svc' });
      line.appendChild(el('span', { className: 'queue-callback', testid: 'queue-callback', text: '\u260E ' + callbackText(cb) }));
    }
    const first = e.sla && typeof e.sla === 'object' ? clockOf(e.sla.first_response) : null;
    if (first && (first.due !== null || first.done !== null)) {
      line = line || el('div', { className: 'queue-svc' });
      line.appendChild(clockEl(first, 'first_response', t('sla.label.firstResponse')));
    }
    if (line) item.appendChild(line);
  });

  // Ticket inbox rows: plan and clocks.
  on('ticket-row', (p) => {
    const sla = p.ticket.sla;
    const meta = p.row.querySelector('.ticket-row-meta');
    if (!meta || !sla) return;
    if (str(sla.plan)) meta.appendChild(planBadge(sla.plan, 'ticket-row-plan'));
    ticketClocks(sla, true).forEach((node) => { meta.appendChild(node); });
  });
}
