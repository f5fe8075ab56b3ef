/*
 * chatserver operator console — entry point (loaded by index.html as
 * <script type="module">; no bundler).
 *
 * Speaks the operator side of the wire protocol (docs/protocol.md):
 * POST /api/login, then the WebSocket /ws/operator.
 *
 * Where things live:
 *   shared/   DOM and format helpers, t() strings (i18n.js and the
 *             catalogs in i18n/), HTTP API, WebSocket connection, events
 *             between views, toasts, banner, the confirm dialog
 *   app/      sign in/out, the console's language, top bar and navigation,
 *             page title
 *   chats/    the Chats view (own chats, queue, composer, transfer, canned
 *             responses, customer context, escalation)
 *   tickets/  the Tickets view
 *   board/    the supervisor board and its charts
 *   service/  service levels (SLA clocks, plans), the chat service bar and
 *             time tracking
 *   consult/  consulting a colleague
 *   team/     the Team page (admins): operator accounts
 *   kb/       the Knowledge base page (supervisors, admins) and the
 *             suggested articles beside a chat
 *
 * Security rule for every module: text that comes from the network is only
 * ever put into the page with textContent / createTextNode / setAttribute on
 * data-* or title attributes. innerHTML and friends are never used.
 */
import { translatePage } from './shared/i18n.js';
import { configureConnection, initConnection } from './shared/connection.js';
import { initBanner } from './shared/banner.js';
import { initConfirm } from './shared/confirm.js';
import { initLanguage, initLanguageMenus } from './app/language.js';
import { initSession, signOut, start } from './app/session.js';
import {
  chatFrameHandlers, openSessionWatermarks, connectionLost,
  initChats, initChatAttention,
  installTransfer, installCanned, installContextPanel, installAlerts
} from './chats/index.js';
import { initTickets } from './tickets/index.js';
import { installBoard } from './board/board.js';
import { installService, installChatBarCleanup } from './service/index.js';
import { installConsult } from './consult/index.js';
import { installTeam } from './team/index.js';
import { installKb } from './kb/index.js';
import { installKbSuggestions } from './kb/suggest.js';

// The language first: everything below draws in it.
initLanguage();
translatePage(document);
initLanguageMenus();

configureConnection({
  helloSessions: openSessionWatermarks,
  lost: connectionLost,
  refused: signOut,
  handlers: chatFrameHandlers
});

// The views that follow frames and UI events, in this order (listeners run
// in the order they were added).
installBoard();
installService();
installCanned();
installTransfer();
installContextPanel();
installKbSuggestions();     // after the context panel: sits above it
installChatBarCleanup();   // forgets a removed chat's service data, after the others
installConsult();
installTeam();
installKb();
installAlerts();

// The page's own controls.
initSession();
initChats();
initTickets();
initBanner();
initConfirm();
initChatAttention();
initConnection();

start();
