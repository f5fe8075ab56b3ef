/*
 * The Chats view: the own chats (model.js, messages.js, outbox.js,
 * typing.js, read.js), their tabs (tabs.js) and the selected chat
 * (chat-view.js), the queue and my status (queue.js, status.js), and the
 * tools around the composer: attachments (attach.js), escalation to a
 * ticket (escalate.js), transfer (transfer.js), canned responses
 * (canned.js) and the customer context (context-panel.js); alerts (sound,
 * desktop notifications) for chats not looked at (alerts.js).
 * frames.js handles the WebSocket frames.
 */
import { selectedChat } from '../shared/state.js';
import { stopFlash } from '../app/title.js';
import { maybeSendRead } from './read.js';
import { initStatus } from './status.js';
import { initQueue } from './queue.js';
import { initChatView, initDismiss } from './chat-view.js';
import { initAttach } from './attach.js';
import { initEscalate } from './escalate.js';

export { chatFrameHandlers } from './frames.js';
export { openSessionWatermarks, connectionLost } from './model.js';
export { installTransfer } from './transfer.js';
export { installCanned } from './canned.js';
export { installContextPanel } from './context-panel.js';
export { installAlerts } from './alerts.js';

function readSelected() {
  const chat = selectedChat();
  if (chat) maybeSendRead(chat);
}

/** Wire the Chats view's own controls. */
export function initChats() {
  initStatus();
  initChatView();
  initAttach();
  initEscalate();
  initDismiss();
}

/** Read receipts and the title when the page is looked at again; the queue clock. */
export function initChatAttention() {
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      stopFlash();
      readSelected();
    }
  });
  window.addEventListener('focus', () => {
    stopFlash();
    readSelected();
  });
  initQueue();
}
