/*
 * Service levels and time: SLA clocks and plan badges (sla.js), per-chat
 * service data (chat-service.js), the service bar under the chat header
 * (chat-bar.js), time tracking (time-tracking.js) and time logged on tickets
 * (ticket-time.js).
 */
import { on } from '../shared/events.js';
import { selectedChat } from '../shared/state.js';
import { installSla, paintClocks } from './sla.js';
import { installChatService, forEachService, resetServices } from './chat-service.js';
import { installChatBar, renderTimer } from './chat-bar.js';
import { saveTimer } from './time-tracking.js';
import { installTicketTime } from './ticket-time.js';

const TICK_MS = 1000;

export { installChatBarCleanup } from './chat-bar.js';

export function installService() {
  installSla();
  installChatBar();
  installChatService();
  on('reset', resetServices);
  installTicketTime();

  // One clock for everything.
  let ticks = 0;
  setInterval(() => {
    const now = Date.now();
    paintClocks(now);
    const chat = selectedChat();
    if (chat) renderTimer(chat, now);
    if (++ticks % 5 === 0) {
      forEachService((st) => { if (st.timer && !st.timer.done && st.timer.since !== null) saveTimer(st); });
    }
  }, TICK_MS);
}
