/*
 * Typing indicators: ours (typing frames, throttled) and the visitor's.
 */
import { $ } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { app } from '../shared/state.js';
import { sendReady } from '../shared/connection.js';

const TYPING_THROTTLE_MS = 2000;   // at most one typing:true frame per 2 s
const TYPING_IDLE_MS = 3000;       // typing:false after 3 s without input
const REMOTE_TYPING_TIMEOUT_MS = 10000; // hide "is typing" if no update

/** The composer changed: typing:true now and then, typing:false when idle or empty. */
export function ownTypingInput(chat, value) {
  if (chat.ended) return;
  if (!value.trim()) {
    stopOwnTyping(chat, true);
    return;
  }
  sendTypingTrue(chat);
  clearTimeout(chat.typingIdleTimer);
  chat.typingIdleTimer = setTimeout(() => { stopOwnTyping(chat, true); }, TYPING_IDLE_MS);
}

/**
 * typing:true at most once per TYPING_THROTTLE_MS. When the window is
 * closed, send it once it opens if the operator is still typing then.
 */
function sendTypingTrue(chat) {
  const wait = chat.lastTypingTrueAt + TYPING_THROTTLE_MS - Date.now();
  if (wait > 0) {
    if (!chat.typingActive && !chat.typingDeferTimer) {
      chat.typingDeferTimer = setTimeout(() => {
        chat.typingDeferTimer = null;
        if (chat.typingIdleTimer && !chat.ended) sendTypingTrue(chat);
      }, wait);
    }
    return;
  }
  if (sendReady({ type: 'typing', session_id: chat.id, active: true })) {
    chat.lastTypingTrueAt = Date.now();
    chat.typingActive = true;
  }
}

export function stopOwnTyping(chat, notify) {
  clearTimeout(chat.typingIdleTimer);
  chat.typingIdleTimer = null;
  clearTimeout(chat.typingDeferTimer);
  chat.typingDeferTimer = null;
  if (chat.typingActive && notify) {
    sendReady({ type: 'typing', session_id: chat.id, active: false });
  }
  chat.typingActive = false;
}

export function setVisitorTyping(chat, active) {
  clearTimeout(chat.visitorTypingTimer);
  chat.visitorTypingTimer = null;
  chat.visitorTyping = !!active;
  if (active) {
    chat.visitorTypingTimer = setTimeout(() => {
      setVisitorTyping(chat, false);
    }, REMOTE_TYPING_TIMEOUT_MS);
  }
  if (chat.tabEl) chat.tabEl.classList.toggle('is-typing', chat.visitorTyping);
  if (chat.id === app.selectedId) renderTyping(chat);
}

export function renderTyping(chat) {
  const node = $('typing');
  const on = !!(chat && chat.visitorTyping && !chat.ended);
  node.textContent = on ? t('chat.visitorTyping') : '';
  node.hidden = !on;
}
