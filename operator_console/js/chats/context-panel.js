/*
 * The visitor's customer context under the visitor panel: customer, plan,
 * past chats and tickets (GET /api/sessions/{id}/context).
 */
import { $, el, clear } from '../shared/dom.js';
import { t, hasMessage } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, enc, formatFull, toMs } from '../shared/format.js';
import { selectedChat } from '../shared/state.js';
import { api } from '../shared/api.js';
import { planBadge } from '../service/sla.js';
import { openTicketView } from '../tickets/ticket-view.js';

const CONTEXT_FRESH_MS = 60000;

const ctx = { root: null, body: null, id: null, at: 0, seq: 0 };

/** A ticket or chat state for people: "In progress", "Waiting". */
export function stateName(s) {
  if (hasMessage('ticket.state.' + s)) return t('ticket.state.' + s);
  if (hasMessage('chat.state.' + s)) return t('chat.state.' + s);
  return str(s, '\u2014').replace(/_/g, ' ');
}

function buildContext() {
  const info = $('visitor-info');
  if (!info) return false;
  ctx.body = el('div', { className: 'svc-context-body' });
  ctx.refresh = el('button', { type: 'button', className: 'link-button small', testid: 'context-refresh', text: t('context.refresh') });
  ctx.root = el('section', { className: 'svc-context', testid: 'context-panel', hidden: true },
    el('div', { className: 'section-title section-title-row' }, el('span', { text: t('context.title') }), ctx.refresh),
    ctx.body);
  info.parentNode.insertBefore(ctx.root, info.nextSibling);
  ctx.refresh.addEventListener('click', () => { loadContext(selectedChat(), true); });
  return true;
}

function loadContext(chat, force) {
  if (!ctx.root && !buildContext()) return;
  if (!chat) {
    ctx.root.hidden = true;
    ctx.id = null;
    ctx.seq++;
    return;
  }
  ctx.root.hidden = false;
  if (!force && ctx.id === chat.id && Date.now() - ctx.at < CONTEXT_FRESH_MS) return;
  const first = ctx.id !== chat.id;
  ctx.id = chat.id;
  ctx.at = Date.now();
  const seq = ++ctx.seq;
  if (first) {
    clear(ctx.body);
    ctx.body.appendChild(el('div', { className: 'muted small', text: t('common.loading') }));
  }
  api('GET', '/api/sessions/' + enc(chat.id) + '/context').then((r) => {
    if (seq === ctx.seq) renderContext(r || {});
  }).catch((err) => {
    if (seq !== ctx.seq) return;
    ctx.at = 0;
    clear(ctx.body);
    ctx.body.appendChild(el('div', {
      className: 'inline-error svc-error', testid: 'context-error', text: t('context.loadFailed', { message: err.message })
    }));
  });
}

function dlRow(dl, label, node) {
  dl.appendChild(el('dt', { text: label }));
  dl.appendChild(el('dd', null, node));
}

function renderContext(r) {
  clear(ctx.body);
  const dl = el('dl', { className: 'visitor-info svc-context-info' });
  const customer = r.customer && typeof r.customer === 'object' ? r.customer : null;
  const number = str(r.customer_id);
  const who = el('span', { testid: 'context-customer', className: 'break', text: number || t('context.notIdentified') });
  dlRow(dl, t('context.customerNumber'), who);
  if (customer && str(customer.name)) {
    dlRow(dl, t('context.customer'), el('span', { className: 'break', testid: 'context-customer-name', text: customer.name }));
  }
  if (customer && str(customer.contract)) dlRow(dl, t('context.contract'), el('span', { className: 'break', text: customer.contract }));

  const plan = r.plan && typeof r.plan === 'object' ? r.plan : {};
  const planBox = el('span', { className: 'svc-context-plan', testid: 'context-plan' });
  planBox.dataset.plan = str(plan.name).toLowerCase();
  planBox.dataset.phone = plan.phone ? 'true' : 'false';
  planBox.dataset.personalContact = plan.personal_contact ? 'true' : 'false';
  planBox.appendChild(planBadge(plan.name, 'context-plan-badge'));
  const flags = [
    (plan.phone ? '\u2713' : '\u2717') + ' ' + t('context.plan.phone'),
    (plan.personal_contact ? '\u2713' : '\u2717') + ' ' + t('context.plan.personalContact')
  ];
  if (typeof plan.first_response_hours === 'number') {
    flags.push(t('context.plan.firstResponse', { hours: plan.first_response_hours }));
  }
  planBox.appendChild(el('span', { className: 'svc-flags small', text: flags.join(' \u00b7 ') }));
  dlRow(dl, t('context.plan'), planBox);
  ctx.body.appendChild(dl);

  const past = Array.isArray(r.past_chats) ? r.past_chats : [];
  ctx.body.appendChild(el('div', { className: 'svc-subtitle', text: t('context.pastChats', { n: past.length }) }));
  const pastList = el('ul', { className: 'svc-context-list', testid: 'context-past-chats' });
  past.forEach((p) => {
    if (!p || typeof p !== 'object') return;
    const when = typeof p.created_at === 'number' ? formatFull(toMs(p.created_at)) : '';
    const bits = [when, stateName(p.state)];
    if (p.kind === 'callback') bits.push(t('context.callback'));
    pastList.appendChild(el('li', {
      testid: 'context-past-chat', text: bits.filter(Boolean).join(' \u00b7 '), dataset: { sessionId: str(p.session_id) }
    }));
  });
  if (!past.length) pastList.appendChild(el('li', { className: 'muted', text: t('context.none') }));
  ctx.body.appendChild(pastList);

  const tks = Array.isArray(r.tickets) ? r.tickets : [];
  ctx.body.appendChild(el('div', { className: 'svc-subtitle', text: t('context.tickets', { n: tks.length }) }));
  const tkList = el('ul', { className: 'svc-context-list', testid: 'context-tickets' });
  tks.forEach((tk) => {
    if (!tk || typeof tk !== 'object') return;
    const btn = el('button', { type: 'button', className: 'link-button svc-context-ticket', testid: 'context-ticket' },
      el('strong', { text: str(tk.ref, '#' + tk.number) + ' ' }),
      el('span', { text: str(tk.subject, t('ticket.noSubject')) }),
      el('span', { className: 'muted', text: ' \u00b7 ' + stateName(tk.state) }));
    if (typeof tk.number === 'number') {
      btn.dataset.number = String(tk.number);
      btn.addEventListener('click', () => { openTicketView(tk.number); });
    } else {
      btn.disabled = true;
    }
    tkList.appendChild(el('li', null, btn));
  });
  if (!tks.length) tkList.appendChild(el('li', { className: 'muted', text: t('context.none') }));
  ctx.body.appendChild(tkList);
}

export function installContextPanel() {
  on('chat-selected', (chat) => { loadContext(chat, false); });
  on('reset', () => {
    ctx.id = null;
    ctx.seq++;
    if (ctx.root) ctx.root.hidden = true;
  });
}
