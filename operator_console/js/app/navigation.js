/*
 * The top bar: the operator's name and role, and the navigation with one
 * entry per view (Chats, Tickets, the Board and the Knowledge base for
 * supervisors and admins, and the Team for admins).
 */
import { $, el, clear } from '../shared/dom.js';
import { t, hasMessage } from '../shared/i18n.js';
import { str } from '../shared/format.js';
import { emit } from '../shared/events.js';
import { app, selectedChat } from '../shared/state.js';
import { maybeSendRead } from '../chats/read.js';
import { loadTickets } from '../tickets/inbox.js';
import { totalUnread } from './title.js';

// Views shown in the top navigation (roles: null = everyone).
const VIEWS = [
  { id: 'chats', key: 'nav.chats', element: 'view-chats', roles: null },
  { id: 'tickets', key: 'nav.tickets', element: 'view-tickets', roles: null },
  { id: 'board', key: 'nav.board', element: 'view-board', roles: ['supervisor', 'admin'] },
  { id: 'kb', key: 'nav.kb', element: 'view-kb', roles: ['supervisor', 'admin'] },
  { id: 'team', key: 'nav.team', element: 'view-team', roles: ['admin'] }
];

/** The operator's name and role badge, and the navigation. */
export function renderOperator() {
  const op = app.operator || {};
  $('op-name').textContent = str(op.name, str(op.username, ''));
  const role = $('op-role');
  role.textContent = app.role ? roleName(app.role) : '';
  role.hidden = !app.role;
  renderNav();
}

/** 'supervisor' -> its display name (unknown roles as they are). */
export function roleName(role) {
  return hasMessage('role.' + role) ? t('role.' + role) : String(role);
}

export function renderNav() {
  const nav = $('main-nav');
  clear(nav);
  VIEWS.forEach((view) => {
    if (view.roles && view.roles.indexOf(app.role) < 0) return;
    const btn = el('button', {
      type: 'button',
      className: 'nav-item' + (app.view === view.id ? ' is-active' : ''),
      text: t(view.key),
      testid: 'nav-' + view.id
    });
    if (view.id === 'chats') {
      const total = totalUnread();
      if (total > 0) btn.appendChild(el('span', { className: 'badge', text: String(total) }));
    }
    btn.addEventListener('click', () => { showView(view.id); });
    nav.appendChild(btn);
  });
}

/** Show the view `id` ('chats', 'tickets', 'board', 'kb' or 'team'). */
export function showView(id) {
  app.view = id;
  VIEWS.forEach((view) => {
    const node = $(view.element);
    if (node) node.hidden = view.id !== id;
  });
  renderNav();
  const chat = selectedChat();
  if (chat) maybeSendRead(chat);
  if (id === 'tickets') loadTickets();
  emit('view', id);
}
