/*
 * The tabs of the own chats, and which one is selected.
 */
import { $, el, clear } from '../shared/dom.js';
import { t, language } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, languageName } from '../shared/format.js';
import { app } from '../shared/state.js';
import { priorityLabel } from './model.js';
import { stopOwnTyping } from './typing.js';
import { maybeSendRead } from './read.js';
import { renderSelected } from './chat-view.js';
import { renderNav, showView } from '../app/navigation.js';
import { updateTitle } from '../app/title.js';

function tabLabel(chat) {
  const name = str(chat.visitor && chat.visitor.name);
  if (name) return name;
  return t('tab.anonymous', { id: chat.id.slice(-4) });
}

export function renderTab(chat) {
  let tab = chat.tabEl;
  if (!tab) {
    tab = el('div', { className: 'chat-tab', testid: 'chat-tab', tabIndex: 0, attrs: { role: 'tab' } });
    tab.dataset.sessionId = chat.id;
    tab.addEventListener('click', (ev) => {
      if (ev.target && ev.target.classList && ev.target.classList.contains('tab-dismiss')) return;
      selectChat(chat.id);
    });
    tab.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); selectChat(chat.id); }
    });
    chat.tabEl = tab;
    $('chat-tabs').appendChild(tab);
  }
  clear(tab);
  tab.appendChild(el('span', { className: 'tab-dot', attrs: { 'aria-hidden': 'true' } }));
  tab.appendChild(el('span', { className: 'tab-name', text: tabLabel(chat) }));
  // The visitor writes another language than the console's: say which, before the answer.
  const lang = str(chat.visitor && chat.visitor.lang);
  if (lang && lang !== language()) {
    tab.appendChild(el('span', {
      className: 'lang-badge', testid: 'tab-lang', text: lang.toUpperCase(),
      title: t('visitor.lang.title', { lang: languageName(lang) })
    }));
  }
  if (chat.priority === 'vip' || chat.priority === 'urgent') {
    tab.appendChild(el('span', {
      className: 'priority-badge small', text: priorityLabel(chat.priority), dataset: { priority: chat.priority }
    }));
    if (!chat.broughtForward && !chat.ended) {
      chat.broughtForward = true;
      bringForward(tab);
    }
  }
  if (chat.unread > 0) {
    tab.appendChild(el('span', { className: 'badge', testid: 'chat-tab-unread', text: String(chat.unread) }));
  }
  if (chat.ended) {
    tab.appendChild(el('span', { className: 'tab-ended', text: t('chat.ended') }));
    const dismiss = el('button', {
      type: 'button', className: 'tab-dismiss', text: '\u00d7', title: t('tab.dismiss'),
      attrs: { 'aria-label': t('tab.dismiss.label') }
    });
    dismiss.addEventListener('click', (ev) => {
      ev.stopPropagation();
      removeChat(chat);
    });
    tab.appendChild(dismiss);
  }
  tab.title = chat.ended ? t('tab.title.ended', { name: tabLabel(chat) }) : tabLabel(chat);
  tab.classList.toggle('is-selected', chat.id === app.selectedId);
  tab.classList.toggle('is-new', chat.isNew);
  tab.classList.toggle('is-ended', chat.ended);
  tab.classList.toggle('is-unread', chat.unread > 0);
  tab.classList.toggle('is-typing', chat.visitorTyping);
  tab.classList.toggle('is-offline', chat.visitor && chat.visitor.connected === false);
  tab.setAttribute('aria-selected', chat.id === app.selectedId ? 'true' : 'false');
  tab.dataset.ended = chat.ended ? 'true' : 'false';
  emit('chat-tab', { chat: chat, tab: tab });
}

/** An urgent or VIP chat's tab: moved before the ordinary tabs (after the other
 * urgent/VIP ones) and scrolled into view, never left clipped at the right edge. */
function bringForward(tab) {
  const strip = $('chat-tabs');
  let before = null;
  for (let n = strip.firstElementChild; n; n = n.nextElementSibling) {
    if (n !== tab && !n.dataset.forward) { before = n; break; }
  }
  tab.dataset.forward = 'true';
  if (before && before !== tab) strip.insertBefore(tab, before);
  // After the strip is shown (renderTabsContainer) and laid out.
  requestAnimationFrame(() => { tab.scrollIntoView({ block: 'nearest', inline: 'nearest' }); });
}

export function renderTabsContainer() {
  const any = app.chats.size > 0;
  $('chat-tabs').hidden = !any;
  renderNav();
}

export function selectFirstChat() {
  let first = null;
  app.chats.forEach((c) => { if (!first) first = c; });
  selectChat(first ? first.id : null);
}

export function selectChat(id) {
  const prev = app.chats.get(app.selectedId);
  if (prev && prev.id !== id) {
    prev.draft = $('message-input').value;
  }
  app.selectedId = id && app.chats.has(id) ? id : null;
  app.chats.forEach((c) => { renderTab(c); });
  renderSelected(true);
  const chat = app.chats.get(app.selectedId);
  if (chat) maybeSendRead(chat);
  updateTitle();
}

/** Show an own chat from elsewhere (board, ticket); false if it is not ours. */
export function openChat(id) {
  if (!app.chats.has(id)) return false;
  emit('chat-opening', id);
  showView('chats');
  selectChat(id);
  return true;
}

export function removeChat(chat) {
  stopOwnTyping(chat, false);
  clearTimeout(chat.visitorTypingTimer);
  chat.byCmid.forEach((msg) => { app.outbox.delete(msg.cmid); });
  if (chat.tabEl && chat.tabEl.parentNode) chat.tabEl.parentNode.removeChild(chat.tabEl);
  app.chats.delete(chat.id);
  if (app.selectedId === chat.id) selectFirstChat();
  else renderTabsContainer();
  updateTitle();
}
