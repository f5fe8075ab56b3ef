/*
 * The selected chat: header, messages, composer, and the visitor panel.
 */
import { $, el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, formatFull, safeHttpUrl, languageName } from '../shared/format.js';
import { selectedChat } from '../shared/state.js';
import { sendReady } from '../shared/connection.js';
import { toast } from '../shared/toasts.js';
import { confirmDialog } from '../shared/confirm.js';
import { visitorName, priorityLabel, markEnded, closeReason } from './model.js';
import { renderTyping, stopOwnTyping, ownTypingInput } from './typing.js';
import { sendChatMessage } from './outbox.js';
import { renderTab, renderTabsContainer, removeChat } from './tabs.js';
import { recomputeLoad } from './status.js';

export const MAX_MESSAGE_CHARS = 4000;

/** Draw the selected chat (`switched`: it was just selected). */
export function renderSelected(switched) {
  const focused = document.activeElement;  // before anything is hidden or disabled
  const chat = selectedChat();
  const view = $('chat-view');
  $('chat-empty').hidden = !!chat;
  view.hidden = !chat;
  renderTabsContainer();
  if (!chat) {
    delete view.dataset.sessionId;
    clear($('messages-slot'));
    renderVisitor(null);
    renderTyping(null);
    emit('chat-selected', null);
    return;
  }
  view.dataset.sessionId = chat.id;
  const slot = $('messages-slot');
  if (slot.firstChild !== chat.listEl) {
    clear(slot);
    slot.appendChild(chat.listEl);
  }
  $('chat-title').textContent = visitorName(chat.visitor);
  const pr = $('chat-priority');
  const label = priorityLabel(chat.priority);
  pr.textContent = label;
  pr.hidden = !label;
  pr.dataset.priority = chat.priority;

  const ended = chat.ended;
  view.classList.toggle('is-ended', ended);
  $('chat-ended').hidden = !ended;
  $('chat-ended-reason').textContent = ended && chat.endedText ? t('chat.endedReason', { reason: chat.endedText }) : '';
  $('close-chat').hidden = ended;
  $('escalate-button').hidden = !!chat.ticket;
  const chip = $('chat-ticket');
  chip.hidden = !chat.ticket;
  chip.textContent = chat.ticket ? t('chat.ticketChip', { ticket: chat.ticket }) : '';
  const input = $('message-input');
  input.disabled = ended;
  $('send-button').disabled = ended;
  $('attach-button').disabled = ended;
  // The chat ended under the keyboard's focus (Close chat, the composer): the focus
  // goes to what is left to do, not to the page's start.
  if (ended && focused && view.contains(focused) && (focused.disabled || !focused.offsetParent)) {
    $('dismiss-chat').focus();
  }
  if (switched) {
    input.value = chat.draft || '';
    updateCharCount();
    if (chat.stickToBottom) chat.listEl.scrollTop = chat.listEl.scrollHeight;
    if (!ended) input.focus({ preventScroll: true });
  }
  renderTyping(chat);
  renderVisitor(chat);
  emit('chat-selected', chat);
}

function renderVisitor(chat) {
  $('visitor-none').hidden = !!chat;
  $('visitor-info').hidden = !chat;
  const presence = $('chat-presence');
  if (!chat) return;
  const v = chat.visitor || {};
  $('visitor-name').textContent = visitorName(v);
  $('visitor-email').textContent = str(v.email, '\u2014');
  const lang = str(v.lang);
  $('visitor-lang').textContent = lang ? languageName(lang) : '';
  $('visitor-lang').setAttribute('lang', lang);
  $('visitor-lang-label').hidden = $('visitor-lang-row').hidden = !lang;

  const connected = v.connected === true;
  const c = $('visitor-connected');
  c.textContent = connected ? t('visitor.connected') : t('visitor.disconnected');
  c.dataset.connected = connected ? 'true' : 'false';
  presence.textContent = connected ? t('visitor.connected') : t('visitor.disconnected');
  presence.dataset.connected = connected ? 'true' : 'false';

  // Page URL: always shown as text; a link only for http(s).
  const slot = $('visitor-page-slot');
  clear(slot);
  const raw = str(v.page_url);
  const safe = safeHttpUrl(raw);
  let page;
  if (safe) {
    page = el('a', { className: 'visitor-link', text: raw, title: raw });
    page.href = safe;
    page.target = '_blank';
    page.rel = 'noopener noreferrer';
  } else {
    page = el('span', { text: raw || '\u2014', title: raw });
  }
  page.setAttribute('data-testid', 'visitor-page');
  page.id = 'visitor-page';
  slot.appendChild(page);

  $('visitor-ua').textContent = str(v.user_agent, '\u2014');

  const customer = str(v.customer_id);
  const plan = str(v.plan);
  $('visitor-customer').textContent = customer;
  $('visitor-customer-label').hidden = $('visitor-customer-row').hidden = !customer;
  $('visitor-plan').textContent = plan;
  $('visitor-plan-label').hidden = $('visitor-plan-row').hidden = !plan;

  $('visitor-session').textContent = chat.id;
  $('visitor-started').textContent = chat.createdAt ? formatFull(chat.createdAt) : '\u2014';
}

export function updateCharCount() {
  const input = $('message-input');
  const n = input.value.length;
  const node = $('char-count');
  const show = n > MAX_MESSAGE_CHARS - 500;
  node.hidden = !show;
  node.textContent = show ? n + ' / ' + MAX_MESSAGE_CHARS : '';
}

// Composer ---------------------------------------------------------------

function onComposerInput() {
  const chat = selectedChat();
  if (!chat) return;
  const input = $('message-input');
  chat.draft = input.value;
  updateCharCount();
  ownTypingInput(chat, input.value);
}

function onComposerSubmit(ev) {
  if (ev) ev.preventDefault();
  const chat = selectedChat();
  if (!chat || chat.ended) return;
  const input = $('message-input');
  const text = input.value.trim();
  if (!text) return;
  if (text.length > MAX_MESSAGE_CHARS) {
    toast(t('composer.tooLong', { max: MAX_MESSAGE_CHARS }), 'error');
    return;
  }
  stopOwnTyping(chat, true);
  input.value = '';
  chat.draft = '';
  updateCharCount();
  sendChatMessage(chat, text);
  input.focus();
}

function onComposerKeydown(ev) {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    onComposerSubmit();
  }
}

// Closing and dismissing -------------------------------------------------

function onCloseChat() {
  const chat = selectedChat();
  if (!chat || chat.ended) return;
  confirmDialog(t('chat.closeConfirm.title'), t('chat.closeConfirm', { name: visitorName(chat.visitor) }),
    t('chat.closeConfirm.ok')).then((yes) => {
    if (yes && !chat.ended) closeChat(chat);
  });
}

function closeChat(chat) {
  if (!sendReady({ type: 'close_chat', session_id: chat.id })) {
    toast(t('chat.notConnected'), 'error');
    return;
  }
  markEnded(chat, closeReason('operator'));
  renderTab(chat);
  renderSelected();
  recomputeLoad();
}

function onDismissChat() {
  const chat = selectedChat();
  if (chat && chat.ended) removeChat(chat);
}

export function initChatView() {
  $('composer').addEventListener('submit', onComposerSubmit);
  const input = $('message-input');
  input.maxLength = MAX_MESSAGE_CHARS;
  input.addEventListener('keydown', onComposerKeydown);
  input.addEventListener('input', onComposerInput);
  $('close-chat').addEventListener('click', onCloseChat);
}

export function initDismiss() {
  $('dismiss-chat').addEventListener('click', onDismissChat);
}
