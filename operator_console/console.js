/*
 * chatserver operator console.
 *
 * Plain, dependency-free JavaScript. Speaks the operator side of the wire
 * protocol (docs/protocol.md): POST /api/login, then the WebSocket
 * /ws/operator.
 *
 * Security rule for this file: text that comes from the network (visitor
 * names, messages, URLs, user agents, error messages, ...) is only ever put
 * into the page with textContent / createTextNode / setAttribute on data-*
 * or title attributes. innerHTML and friends are never used.
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------
  // Constants
  // ------------------------------------------------------------------

  var TOKEN_KEY = 'chatserver:op-token';
  var MAX_MESSAGE_CHARS = 4000;
  var TYPING_THROTTLE_MS = 2000;   // at most one typing:true frame per 2 s
  var TYPING_IDLE_MS = 3000;       // typing:false after 3 s without input
  var REMOTE_TYPING_TIMEOUT_MS = 10000; // hide "is typing" if no update
  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 15000;
  var PING_INTERVAL_MS = 25000;
  var DEAD_AFTER_MS = 60000;       // nothing received for this long: reconnect
  var CONNECT_TIMEOUT_MS = 15000;  // open + welcome must happen within this
  var HISTORY_PAGE = 500;
  var TOAST_MS = 6000;
  var BASE_TITLE = 'chatserver console';

  var STATE_LABELS = {
    pending: 'Waiting for connection',
    sent: 'Sending…',
    stored: 'Delivered',
    read: 'Read',
    failed: 'Not sent — click to retry'
  };

  var CLOSE_REASONS = {
    visitor: 'The visitor ended the chat',
    operator: 'You ended the chat',
    system: 'The chat was closed'
  };

  // Views shown in the top navigation (roles: null = everyone).
  var VIEWS = [
    { id: 'chats', title: 'Chats', element: 'view-chats', roles: null },
    { id: 'tickets', title: 'Tickets', element: 'view-tickets', roles: null },
    { id: 'board', title: 'Board', element: 'view-board', roles: ['supervisor', 'admin'] }
  ];

  var TICKET_REFRESH_MS = 15000;
  var IMAGE_TYPES = { 'image/png': 1, 'image/jpeg': 1, 'image/gif': 1, 'image/webp': 1 };
  var STATE_NAMES = {
    open: 'Open', in_progress: 'In progress', feedback_needed: 'Feedback needed',
    information: 'Information', answered: 'Answered', closed: 'Closed'
  };
  var PRIORITY_NAMES = { critical: 'Critical', high: 'High', normal: 'Normal', low: 'Low' };
  var DEPARTMENT_NAMES = { technical: 'Technical', billing: 'Billing' };
  var CHANGE_LABELS = {
    state: 'State', priority: 'Priority', level: 'Level', department: 'Department', assignee: 'Assignee'
  };
  var EVENT_LABELS = {
    created: 'Ticket created', transcript: 'Chat', reply: 'Reply', note: 'Internal note \u2014 not visible to the customer',
    mail_in: 'E-mail received'
  };

  // ------------------------------------------------------------------
  // Small helpers
  // ------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  /**
   * Create an element. `props` may contain:
   *   className, text (textContent), testid, title, dataset {k: v},
   *   attrs {name: value} (setAttribute; never use for href/src/on*),
   *   and any other simple DOM property (type, hidden, tabIndex, ...).
   * Children may be nodes or strings (strings become text nodes).
   */
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === undefined || value === null) return;
        if (key === 'text') node.textContent = String(value);
        else if (key === 'testid') node.setAttribute('data-testid', value);
        else if (key === 'dataset') {
          Object.keys(value).forEach(function (k) { node.dataset[k] = String(value[k]); });
        } else if (key === 'attrs') {
          Object.keys(value).forEach(function (k) { node.setAttribute(k, String(value[k])); });
        } else node[key] = value;
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function str(value, fallback) {
    return (typeof value === 'string' && value.length) ? value : (fallback || '');
  }

  function newClientMsgId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      return 'c_' + window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return 'c_' + Array.prototype.map.call(bytes, function (b) {
      return ('0' + b.toString(16)).slice(-2);
    }).join('');
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  function formatClock(ts) {
    var d = new Date(ts);
    if (isNaN(d.getTime())) return '';
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  function formatFull(ts) {
    var d = new Date(ts);
    return isNaN(d.getTime()) ? '' : d.toLocaleString();
  }

  /** "45 s", "3 min", "1 h 5 min" */
  function formatWaiting(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min';
    var h = Math.floor(m / 60);
    return h + ' h ' + (m % 60) + ' min';
  }

  /** Return the URL if it is absolute http(s), else null. */
  function safeHttpUrl(raw) {
    if (typeof raw !== 'string' || !raw) return null;
    try {
      var u = new URL(raw);
      if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
    } catch (e) { /* not a URL */ }
    return null;
  }

  function visitorName(visitor) {
    return str(visitor && visitor.name, 'Visitor');
  }

  function priorityLabel(priority) {
    if (priority === 'vip') return 'VIP';
    if (priority === 'urgent') return 'Urgent';
    return '';
  }

  // ------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------

  var app = {
    token: null,
    operator: null,
    role: null,
    view: 'chats',
    status: null,          // last status reported by the server
    load: null,            // from status frames (null: derive from chats)
    capacity: 0,
    wantedStatus: null,    // chosen while disconnected, sent after welcome
    chats: new Map(),      // session_id -> chat (tab order = insertion order)
    selectedId: null,
    queue: { total: 0, entries: [] },
    outbox: new Map(),     // client_msg_id -> {chat, msg}: own messages not acked
    welcomes: 0            // how many welcomes this page has seen
  };

  var conn = {
    ws: null,
    open: false,           // socket open
    ready: false,          // welcome received
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    lastRx: 0,
    helloSessions: null,   // sessions listed in the last hello
    quietUntil: 0,         // ignore unknown_session errors for resumed chats until then
    stopped: true          // true: do not reconnect
  };

  // ------------------------------------------------------------------
  // Chat model
  // ------------------------------------------------------------------

  function createChat(summary) {
    var list = el('ol', { className: 'messages', attrs: { 'aria-label': 'Messages' } });
    var chat = {
      id: summary.session_id,
      state: summary.state || 'assigned',
      visitor: {},
      priority: 'normal',
      createdAt: null,
      assignedAt: null,
      serverLastSeq: 0,
      msgs: new Map(),        // seq -> msg
      byCmid: new Map(),      // client_msg_id -> msg (own messages)
      watermark: 0,           // highest seq with no gap below it
      maxSeq: 0,
      maxVisitorSeq: 0,
      opReadSeq: 0,           // highest seq this operator has read (locally)
      readSentSeq: 0,         // highest seq reported to the server as read
      visitorReadSeq: 0,      // highest seq the visitor has read
      unread: 0,
      ended: false,
      endedText: '',
      isNew: false,
      visitorTyping: false,
      visitorTypingTimer: null,
      typingActive: false,    // our own typing state for this chat
      lastTypingTrueAt: 0,
      typingIdleTimer: null,
      typingDeferTimer: null,
      draft: '',
      historyPending: false,
      stickToBottom: true,
      listEl: list,
      tabEl: null
    };
    list.addEventListener('scroll', function () {
      chat.stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    });
    return chat;
  }

  function applySummary(chat, s) {
    if (s.visitor && typeof s.visitor === 'object') {
      chat.visitor = Object.assign({}, chat.visitor, s.visitor);
    }
    if (typeof s.priority === 'string') chat.priority = s.priority;
    if (typeof s.created_at === 'number') chat.createdAt = s.created_at;
    if (typeof s.assigned_at === 'number') chat.assignedAt = s.assigned_at;
    if (typeof s.last_seq === 'number') chat.serverLastSeq = s.last_seq;
    if (typeof s.read_seq === 'number') {
      if (s.read_seq > chat.opReadSeq) chat.opReadSeq = s.read_seq;
      if (s.read_seq > chat.readSentSeq) chat.readSentSeq = s.read_seq;
    }
    if (typeof s.visitor_read_seq === 'number') markVisitorRead(chat, s.visitor_read_seq);
    if (typeof s.state === 'string') chat.state = s.state;
    if (chat.state === 'closed' && !chat.ended) markEnded(chat, CLOSE_REASONS.system);
    recountUnread(chat);
  }

  function upsertChat(summary, opts) {
    if (!summary || typeof summary.session_id !== 'string') return null;
    var chat = app.chats.get(summary.session_id);
    var created = false;
    if (!chat) {
      chat = createChat(summary);
      app.chats.set(chat.id, chat);
      created = true;
    } else if (chat.ended && summary.state !== 'closed') {
      // A chat that came back to us (e.g. re-assigned after a requeue).
      chat.ended = false;
      chat.endedText = '';
    }
    applySummary(chat, summary);
    if (opts && opts.highlight && (created || opts.forceHighlight)) chat.isNew = true;
    return { chat: chat, created: created };
  }

  function recountUnread(chat) {
    var n = 0;
    chat.msgs.forEach(function (m) {
      if (m.from === 'visitor' && m.seq > chat.opReadSeq) n++;
    });
    chat.unread = n;
  }

  function advanceWatermark(chat) {
    while (chat.msgs.has(chat.watermark + 1)) chat.watermark++;
  }

  function ownState(chat, msg) {
    return msg.seq !== null && msg.seq <= chat.visitorReadSeq ? 'read' : 'stored';
  }

  // ------------------------------------------------------------------
  // Message rendering
  //
  // Each message is <li class="msg-row ..."><div data-testid="message">text</div></li>.
  // The bubble holds only the message text; time and delivery state are
  // drawn by CSS from data-* attributes, so textContent is exactly the text.
  // Rows are ordered by seq; own messages not yet acked stay at the end.
  // ------------------------------------------------------------------

  function renderMessage(chat, msg) {
    var from = msg.from === 'visitor' || msg.from === 'operator' ? msg.from : 'system';
    var text = msg.text;
    if (msg.event === 'escalated' && msg.ticket && text.indexOf(msg.ticket) < 0) {
      text = 'Chat escalated to ticket ' + msg.ticket;
    }
    var bubble = el('div', { className: 'msg', testid: 'message', text: text });
    bubble.dataset.from = from;
    if (msg.event) bubble.dataset.event = msg.event;
    if (!text && msg.attachments && msg.attachments.length) bubble.classList.add('is-empty');
    var row = el('li', { className: 'msg-row from-' + from }, bubble);
    if (msg.attachments && msg.attachments.length) {
      // Attachment-only messages: the files first, the bubble below keeps time and state.
      row.insertBefore(attachmentList(msg.attachments), text ? null : bubble);
    }
    if (msg.event === 'escalated' && msg.ticket) {
      var number = ticketNumberOf(msg.ticket);
      var open = el('button', {
        type: 'button', className: 'link-button ticket-link', testid: 'ticket-link', text: 'Open ticket ' + msg.ticket
      });
      open.addEventListener('click', function () { openTicketView(number); });
      row.appendChild(open);
    }
    msg.row = row;
    msg.bubble = bubble;
    if (from === 'operator' && msg.author && app.operator && msg.author !== app.operator.name) {
      bubble.dataset.author = msg.author;  // another operator (earlier in this chat)
    }
    if (from === 'operator') {
      bubble.addEventListener('click', function () {
        if (msg.state === 'failed') retryMessage(chat, msg);
      });
    }
    updateMessageEl(chat, msg);
    return row;
  }

  function updateMessageEl(chat, msg) {
    var b = msg.bubble;
    if (!b) return;
    if (msg.seq !== null) b.dataset.seq = String(msg.seq);
    else delete b.dataset.seq;
    var time = msg.ts ? formatClock(msg.ts) : '';
    b.dataset.time = time;
    b.title = msg.ts ? formatFull(msg.ts) : '';
    if (msg.from === 'operator') {
      b.dataset.state = msg.state;
      b.dataset.stateLabel = STATE_LABELS[msg.state] || '';
      if (msg.cmid) b.dataset.clientMsgId = msg.cmid;
    }
  }

  function orderOf(msg) {
    return msg.seq === null ? Infinity : msg.seq;
  }

  /** Insert (or move) a row so that rows stay sorted by their order key. */
  function placeRow(chat, msg) {
    var list = chat.listEl;
    var key = orderOf(msg);
    var before = null;
    for (var node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (node === msg.row) continue;
      if (node._order > key) before = node;
      else break;
    }
    msg.row._order = key;
    if (msg.row.parentNode === list && msg.row.nextElementSibling === before) return;
    list.insertBefore(msg.row, before);
  }

  function afterListChange(chat, forceBottom) {
    if (chat.id !== app.selectedId) return;
    if (forceBottom || chat.stickToBottom) {
      chat.listEl.scrollTop = chat.listEl.scrollHeight;
      chat.stickToBottom = true;
    }
  }

  /**
   * Handle a stored message (live, replayed or from history).
   * Returns true if it was new.
   */
  function addMessage(chat, m) {
    if (!m || typeof m.seq !== 'number' || m.seq < 1) return false;

    // Our own message coming back (replay/history) before or instead of its ack.
    if (m.from === 'operator' && typeof m.client_msg_id === 'string') {
      var mine = chat.byCmid.get(m.client_msg_id);
      if (mine && mine.seq === null) {
        confirmOwn(chat, mine, m.seq, m.ts);
        return false;
      }
    }

    // Dedupe by seq: a seq already shown is ignored.
    if (chat.msgs.has(m.seq)) return false;

    var msg = {
      seq: m.seq,
      from: (m.from === 'visitor' || m.from === 'operator') ? m.from : 'system',
      author: typeof m.author === 'string' ? m.author : '',
      text: typeof m.text === 'string' ? m.text : '',
      ts: typeof m.ts === 'number' ? m.ts : null,
      cmid: typeof m.client_msg_id === 'string' ? m.client_msg_id : null,
      event: typeof m.event === 'string' ? m.event : null,
      ticket: typeof m.ticket === 'string' ? m.ticket : null,
      attachments: validAttachments(m.attachments),
      state: null
    };
    if (msg.event === 'escalated' && msg.ticket) {
      chat.ticket = msg.ticket;
      if (chat.id === app.selectedId) renderSelected();
    }
    if (msg.from === 'operator') {
      msg.state = ownState(chat, msg);
      if (msg.cmid) chat.byCmid.set(msg.cmid, msg);
    }
    chat.msgs.set(msg.seq, msg);
    if (msg.seq > chat.maxSeq) chat.maxSeq = msg.seq;
    advanceWatermark(chat);

    renderMessage(chat, msg);
    placeRow(chat, msg);

    if (msg.from === 'visitor') {
      if (msg.seq > chat.maxVisitorSeq) chat.maxVisitorSeq = msg.seq;
      if (msg.seq > chat.opReadSeq) chat.unread++;
      setVisitorTyping(chat, false);
    }
    if (msg.from === 'system' && msg.event === 'closed') {
      if (!chat.ended) markEnded(chat, '');
    }
    afterListChange(chat, false);
    return true;
  }

  /** An own pending message got its seq (ack, or seen in a replay). */
  function confirmOwn(chat, msg, seq, ts) {
    app.outbox.delete(msg.cmid);
    if (typeof seq !== 'number') return;
    var existing = chat.msgs.get(seq);
    if (existing && existing !== msg) {
      // Already shown under that seq (without a client_msg_id): drop the copy.
      if (msg.row && msg.row.parentNode) msg.row.parentNode.removeChild(msg.row);
      return;
    }
    msg.seq = seq;
    if (typeof ts === 'number') msg.ts = ts;
    msg.state = ownState(chat, msg);
    chat.msgs.set(seq, msg);
    if (seq > chat.maxSeq) chat.maxSeq = seq;
    advanceWatermark(chat);
    updateMessageEl(chat, msg);
    placeRow(chat, msg);
    afterListChange(chat, false);
  }

  function markVisitorRead(chat, seq) {
    if (typeof seq !== 'number' || seq <= chat.visitorReadSeq) return;
    chat.visitorReadSeq = seq;
    chat.msgs.forEach(function (msg) {
      if (msg.from === 'operator' && msg.seq !== null && msg.seq <= seq && msg.state !== 'read') {
        msg.state = 'read';
        updateMessageEl(chat, msg);
      }
    });
  }

  function markEnded(chat, text) {
    chat.ended = true;
    chat.state = 'closed';
    if (text || !chat.endedText) chat.endedText = text || '';
    setVisitorTyping(chat, false);
    stopOwnTyping(chat, false);
    emit('chat-ended', chat);
    // Own messages that never made it will not any more.
    chat.byCmid.forEach(function (msg) {
      if (msg.seq === null && msg.state !== 'failed') {
        msg.state = 'failed';
        app.outbox.delete(msg.cmid);
        updateMessageEl(chat, msg);
      }
    });
  }

  // ------------------------------------------------------------------
  // Sending
  // ------------------------------------------------------------------

  function send(frame) {
    if (!conn.ws || !conn.open) return false;
    try {
      conn.ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }

  function sendReady(frame) {
    return conn.ready ? send(frame) : false;
  }

  function sendChatMessage(chat, text, attachments) {
    var msg = {
      seq: null,
      from: 'operator',
      author: app.operator ? app.operator.name : '',
      text: text,
      ts: Date.now(),
      cmid: newClientMsgId(),
      attachments: attachments || [],
      state: 'pending'
    };
    chat.byCmid.set(msg.cmid, msg);
    app.outbox.set(msg.cmid, { chat: chat, msg: msg });
    renderMessage(chat, msg);
    placeRow(chat, msg);
    transmit(chat, msg);
    afterListChange(chat, true);
  }

  function transmit(chat, msg) {
    var frame = { type: 'message', session_id: chat.id, client_msg_id: msg.cmid, text: msg.text };
    if (msg.attachments && msg.attachments.length) {
      frame.attachments = msg.attachments.map(function (a) { return a.id; });
    }
    var ok = sendReady(frame);
    msg.state = ok ? 'sent' : 'pending';
    updateMessageEl(chat, msg);
  }

  function retryMessage(chat, msg) {
    if (chat.ended || msg.seq !== null) return;
    app.outbox.set(msg.cmid, { chat: chat, msg: msg });
    transmit(chat, msg);
  }

  /** After (re)connecting: resend every own message that was not acked. */
  function flushOutbox() {
    app.outbox.forEach(function (entry) {
      if (entry.msg.state === 'failed') return;
      if (entry.chat.ended || !app.chats.has(entry.chat.id)) return;
      transmit(entry.chat, entry.msg);
    });
  }

  // Own typing indicator -----------------------------------------------

  function onComposerInput(chat) {
    var input = $('message-input');
    chat.draft = input.value;
    updateCharCount();
    if (chat.ended) return;
    if (!input.value.trim()) {
      stopOwnTyping(chat, true);
      return;
    }
    sendTypingTrue(chat);
    clearTimeout(chat.typingIdleTimer);
    chat.typingIdleTimer = setTimeout(function () { stopOwnTyping(chat, true); }, TYPING_IDLE_MS);
  }

  /**
   * typing:true at most once per TYPING_THROTTLE_MS. When the window is
   * closed, send it once it opens if the operator is still typing then.
   */
  function sendTypingTrue(chat) {
    var wait = chat.lastTypingTrueAt + TYPING_THROTTLE_MS - Date.now();
    if (wait > 0) {
      if (!chat.typingActive && !chat.typingDeferTimer) {
        chat.typingDeferTimer = setTimeout(function () {
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

  function stopOwnTyping(chat, notify) {
    clearTimeout(chat.typingIdleTimer);
    chat.typingIdleTimer = null;
    clearTimeout(chat.typingDeferTimer);
    chat.typingDeferTimer = null;
    if (chat.typingActive && notify) {
      sendReady({ type: 'typing', session_id: chat.id, active: false });
    }
    chat.typingActive = false;
  }

  // Remote typing indicator --------------------------------------------

  function setVisitorTyping(chat, active) {
    clearTimeout(chat.visitorTypingTimer);
    chat.visitorTypingTimer = null;
    chat.visitorTyping = !!active;
    if (active) {
      chat.visitorTypingTimer = setTimeout(function () {
        setVisitorTyping(chat, false);
      }, REMOTE_TYPING_TIMEOUT_MS);
    }
    if (chat.tabEl) chat.tabEl.classList.toggle('is-typing', chat.visitorTyping);
    if (chat.id === app.selectedId) renderTyping(chat);
  }

  function renderTyping(chat) {
    var node = $('typing');
    var on = !!(chat && chat.visitorTyping && !chat.ended);
    node.textContent = on ? 'Visitor is typing…' : '';
    node.hidden = !on;
  }

  // Read receipts --------------------------------------------------------

  function chatIsVisible(chat) {
    return chat && chat.id === app.selectedId && app.view === 'chats' &&
      document.visibilityState === 'visible';
  }

  /**
   * The selected chat is on screen: everything in it counts as read, and the
   * server hears about the highest visitor seq (once connected).
   */
  function maybeSendRead(chat) {
    if (!chatIsVisible(chat)) return;
    if (chat.maxVisitorSeq > chat.opReadSeq) chat.opReadSeq = chat.maxVisitorSeq;
    if (chat.opReadSeq > chat.readSentSeq && !chat.ended && conn.ready) {
      if (sendReady({ type: 'read', session_id: chat.id, seq: chat.opReadSeq })) {
        chat.readSentSeq = chat.opReadSeq;
      }
    }
    if (chat.unread !== 0) recountUnread(chat);
    if (chat.isNew) chat.isNew = false;
    renderTab(chat);
    updateTitle();
  }

  // ------------------------------------------------------------------
  // WebSocket connection
  // ------------------------------------------------------------------

  function wsUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.host + '/ws/operator';
  }

  function connect() {
    clearTimeout(conn.reconnectTimer);
    conn.reconnectTimer = null;
    if (!app.token) return;
    conn.stopped = false;
    if (conn.ws) {
      var old = conn.ws;
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(); } catch (e) { /* ignore */ }
      conn.ws = null;
    }
    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    conn.open = false;
    conn.ready = false;
    setConnIndicator('connecting');

    ws.onopen = function () {
      if (conn.ws !== ws) return;
      conn.open = true;
      conn.lastRx = Date.now();
      var sessions = {};
      app.chats.forEach(function (chat) {
        if (!chat.ended) sessions[chat.id] = chat.watermark;
      });
      conn.helloSessions = new Set(Object.keys(sessions));
      send({ type: 'hello', token: app.token, sessions: sessions });
      startPing();
    };

    ws.onmessage = function (ev) {
      if (conn.ws !== ws) return;
      conn.lastRx = Date.now();
      if (typeof ev.data !== 'string') return;   // we never ask for msgpack
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
      try {
        handleFrame(frame);
      } catch (err) {
        // A bug in one handler must not kill the connection.
        if (window.console) console.error('chatserver console: frame handler failed', frame.type, err);
      }
    };

    ws.onclose = function (ev) {
      if (conn.ws !== ws) return;
      onSocketGone(ev.code, ev.reason);
    };
    ws.onerror = function () { /* onclose follows */ };

    // A handshake that hangs (no welcome in time) counts as a failed attempt.
    setTimeout(function () {
      if (conn.ws === ws && !conn.ready) onSocketGone(0);
    }, CONNECT_TIMEOUT_MS);
  }

  function onSocketGone(code) {
    var ws = conn.ws;
    conn.ws = null;
    conn.open = false;
    conn.ready = false;
    stopPing();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch (e) { /* already closed */ }
    }
    // Own messages in flight go back to "pending"; they are resent after welcome.
    app.outbox.forEach(function (entry) {
      if (entry.msg.state === 'sent') {
        entry.msg.state = 'pending';
        updateMessageEl(entry.chat, entry.msg);
      }
    });
    app.chats.forEach(function (chat) {
      chat.typingActive = false;
      setVisitorTyping(chat, false);
    });
    if (conn.stopped) return;

    if (code === 4001) {
      signOut('Your session has expired. Please sign in again.');
      return;
    }
    if (code === 4003) {
      signOut('This account is not allowed to use the operator console.');
      return;
    }
    if (code === 4008) {
      // Another window took over; fighting over the connection helps nobody.
      conn.stopped = true;
      setConnIndicator('offline');
      showBanner('This console was opened in another window.', 'Use here', function () {
        conn.attempt = 0;
        connect();
      });
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (conn.stopped || !app.token) return;
    clearTimeout(conn.reconnectTimer);
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, conn.attempt));
    // "Equal jitter": between half the ceiling and the ceiling.
    var delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    conn.attempt++;
    setConnIndicator('offline');
    showBanner('Reconnecting…', 'Retry now', function () {
      connect();
    });
    conn.reconnectTimer = setTimeout(connect, delay);
  }

  function disconnect() {
    conn.stopped = true;
    clearTimeout(conn.reconnectTimer);
    conn.reconnectTimer = null;
    stopPing();
    var ws = conn.ws;
    conn.ws = null;
    conn.open = false;
    conn.ready = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, 'logout'); } catch (e) { /* ignore */ }
    }
  }

  function startPing() {
    stopPing();
    conn.pingTimer = setInterval(function () {
      if (!conn.open) return;
      if (Date.now() - conn.lastRx > DEAD_AFTER_MS) {
        onSocketGone(0);   // silent death (e.g. network switched): start over
        return;
      }
      if (conn.ready) send({ type: 'ping' });
    }, PING_INTERVAL_MS);
  }

  function stopPing() {
    clearInterval(conn.pingTimer);
    conn.pingTimer = null;
  }

  // ------------------------------------------------------------------
  // Incoming frames
  // ------------------------------------------------------------------

  var handlers = {
    welcome: onWelcome,
    chat_assigned: onChatAssigned,
    chat_closed: onChatClosed,
    chat_removed: onChatRemoved,
    message: onMessage,
    ack: onAck,
    typing: onTyping,
    read: onRead,
    history: onHistory,
    visitor: onVisitor,
    queue: onQueue,
    status: onStatus,
    replay_done: onReplayDone,
    note: onNote,
    notes: onNotes,
    error: onError,
    pong: function () {}
  };

  function handleFrame(frame) {
    var h = handlers[frame.type];
    if (h) h(frame);
    emit(frame.type, frame);
  }

  // ------------------------------------------------------------------
  // Extensions (board.js): they see every frame and view change, and use
  // the helpers below. Listeners are called after the console's own handler.
  // ------------------------------------------------------------------

  var listeners = {};

  function emit(type, payload) {
    (listeners[type] || []).forEach(function (fn) {
      try {
        fn(payload);
      } catch (err) {
        if (window.console) console.error('chatserver console: listener failed', type, err);
      }
    });
  }

  window.chatserverConsole = {
    /** fn(frame) for every frame of `type`; also 'view' (id) and 'reset'. */
    on: function (type, fn) { (listeners[type] = listeners[type] || []).push(fn); },
    send: function (frame) { return sendReady(frame); },
    el: el,
    clear: clear,
    str: str,
    formatClock: formatClock,
    formatWaiting: formatWaiting,
    toast: function (text, kind) { toast(text, kind); },
    showView: function (id) { showView(id); },
    openChat: function (id) {
      if (!app.chats.has(id)) return false;
      showView('chats');
      selectChat(id);
      return true;
    },
    operator: function () { return app.operator; },
    role: function () { return app.role; },
    view: function () { return app.view; }
  };

  // For service.js (SLA clocks, transfer, canned responses, context, timers). It also
  // listens to the UI events 'chat-tab' {chat, tab}, 'chat-selected' (chat or null),
  // 'chat-ended' (chat), 'queue-item' {entry, item}, 'ticket-row' {ticket, row} and
  // 'ticket' ({ticket, events, attachments}), emitted after the console drew them.
  // consult.js also uses 'note-row' {chat, note, bubble, row} (a note drawn in a chat),
  // 'ticket-reply-body' (the reply body before it is posted; may be extended) and
  // 'ticket-reply-sent' {number, body}.
  Object.assign(window.chatserverConsole, {
    api: api,
    chats: function () { return app.chats; },
    selectedChat: function () { return app.chats.get(app.selectedId) || null; },
    renderTab: function (chat) { if (chat && chat.tabEl) renderTab(chat); },
    openTicketView: function (number) { openTicketView(number); },
    formatFull: formatFull,
    toMs: toMs,
    visitorName: visitorName
  });

  function onWelcome(f) {
    conn.ready = true;
    conn.attempt = 0;
    conn.quietUntil = Date.now() + 3000;
    app.welcomes++;
    hideBanner();
    setConnIndicator('online');

    if (f.operator && typeof f.operator === 'object') {
      app.operator = f.operator;
      app.role = typeof f.operator.role === 'string' ? f.operator.role : null;
      if (typeof f.operator.capacity === 'number') app.capacity = f.operator.capacity;
      if (typeof f.operator.status === 'string') app.status = f.operator.status;
      // Not in the documented welcome, but use it when the server sends it;
      // otherwise derive the load from our chats until a status frame arrives.
      app.load = typeof f.operator.load === 'number' ? f.operator.load : null;
      renderOperator();
    }

    var listed = new Set();
    var chats = Array.isArray(f.chats) ? f.chats : [];
    chats.forEach(function (summary) {
      var res = upsertChat(summary, { highlight: app.welcomes > 1 });
      if (!res) return;
      listed.add(res.chat.id);
      var known = conn.helloSessions && conn.helloSessions.has(res.chat.id);
      if (!known && !res.chat.ended) requestHistory(res.chat, res.chat.watermark);
      if (!res.chat.ended) send({ type: 'notes', session_id: res.chat.id });
      renderTab(res.chat);
    });
    // Chats we had open that the server no longer lists are not ours any more.
    app.chats.forEach(function (chat) {
      if (!listed.has(chat.id) && !chat.ended) {
        markEnded(chat, 'This chat is no longer assigned to you');
        renderTab(chat);
      }
    });

    if (f.queue) onQueue(f.queue);

    if (app.wantedStatus) {
      send({ type: 'status', status: app.wantedStatus });
      app.wantedStatus = null;
    }
    renderStatus();
    flushOutbox();

    if (!app.selectedId || !app.chats.has(app.selectedId)) selectFirstChat();
    else renderSelected();
    var selected = app.chats.get(app.selectedId);
    if (selected) maybeSendRead(selected);
    renderTabsContainer();
    updateTitle();
  }

  function onChatAssigned(f) {
    var res = upsertChat(f.chat, { highlight: true, forceHighlight: true });
    if (!res) return;
    var chat = res.chat;
    requestHistory(chat, chat.watermark);
    send({ type: 'notes', session_id: chat.id });
    renderTab(chat);
    renderTabsContainer();
    recomputeLoad();
    toast('New chat from ' + visitorName(chat.visitor), 'info');
    flashTitle('New chat');
    if (!app.selectedId || !app.chats.has(app.selectedId)) selectChat(chat.id);
    else if (chat.id === app.selectedId) renderSelected();
    updateTitle();
  }

  function onChatClosed(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    var reason = CLOSE_REASONS[f.by] || '';
    if (!chat.ended) {
      markEnded(chat, reason);
    } else if (reason && chat.endedText !== CLOSE_REASONS.operator) {
      chat.endedText = reason;
    }
    renderTab(chat);
    if (chat.id === app.selectedId) renderSelected();
    recomputeLoad();
  }

  function onChatRemoved(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    var why = f.reason === 'requeued' ? 'was returned to the queue'
      : f.reason === 'reassigned' ? 'was handed over by a supervisor' : 'was taken from you';
    toast('Chat with ' + visitorName(chat.visitor) + ' ' + why + '.', 'warn');
    removeChat(chat);
    recomputeLoad();
  }

  function onMessage(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    var isNew = addMessage(chat, f);
    if (isNew && f.from === 'visitor') {
      if (!chatIsVisible(chat)) flashTitle('New message');
      maybeSendRead(chat);
    }
    renderTab(chat);
    updateTitle();
  }

  function onAck(f) {
    if (typeof f.client_msg_id !== 'string') return;
    var entry = app.outbox.get(f.client_msg_id);
    if (!entry) return;
    confirmOwn(entry.chat, entry.msg, f.seq, f.ts);
  }

  function onTyping(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat || f.from === 'operator') return;
    setVisitorTyping(chat, f.active === true);
  }

  function onRead(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat || typeof f.seq !== 'number') return;
    if (f.by === 'visitor') {
      markVisitorRead(chat, f.seq);
    } else if (f.by === 'operator') {
      // Read in another window of ours.
      if (f.seq > chat.readSentSeq) chat.readSentSeq = f.seq;
      if (f.seq > chat.opReadSeq) {
        chat.opReadSeq = f.seq;
        recountUnread(chat);
        renderTab(chat);
        updateTitle();
      }
    }
  }

  function requestHistory(chat, afterSeq) {
    if (!conn.ready) return;
    chat.historyPending = true;
    send({ type: 'history', session_id: chat.id, after_seq: afterSeq || 0, limit: HISTORY_PAGE });
  }

  function onHistory(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    var list = Array.isArray(f.messages) ? f.messages : [];
    var highest = 0;
    list.forEach(function (m) {
      addMessage(chat, m);
      if (m && typeof m.seq === 'number' && m.seq > highest) highest = m.seq;
    });
    if (typeof f.last_seq === 'number' && f.last_seq > chat.serverLastSeq) chat.serverLastSeq = f.last_seq;
    if (list.length >= HISTORY_PAGE && highest > 0) {
      requestHistory(chat, highest);   // more to come
    } else {
      chat.historyPending = false;
    }
    recountUnread(chat);
    if (chat.id === app.selectedId) {
      afterListChange(chat, true);
      maybeSendRead(chat);
    }
    renderTab(chat);
    updateTitle();
  }

  // Operators-only notes (a supervisor's whispers) shown in the chat's list,
  // after the last message sent before them. Never sent to the visitor.
  function addNote(chat, n) {
    if (!n || typeof n.text !== 'string' || typeof n.ts !== 'number') return;
    var author = n.author && typeof n.author === 'object' ? n.author : {};
    var key = n.ts + '|' + str(author.id) + '|' + n.text;
    if (!chat.notes) chat.notes = new Set();
    if (chat.notes.has(key)) return;
    chat.notes.add(key);
    var bubble = el('div', { className: 'msg', testid: 'note', text: n.text });
    bubble.dataset.from = 'note';
    bubble.dataset.kind = str(n.kind, 'whisper');
    bubble.dataset.author = bubble.dataset.kind === 'whisper'
      ? 'Whisper from ' + str(author.name, 'a supervisor') + ' \u00b7 not shown to the visitor'
      : str(author.name, 'A colleague') + ' \u00b7 internal, not shown to the visitor';
    bubble.dataset.time = formatClock(n.ts);
    bubble.title = formatFull(n.ts);
    var row = el('li', { className: 'msg-row from-note' }, bubble);
    var after = 0;
    chat.msgs.forEach(function (m) {
      if (m.seq !== null && m.ts !== null && m.ts <= n.ts && m.seq > after) after = m.seq;
    });
    placeRow(chat, { row: row, seq: after + 0.5 });
    afterListChange(chat, false);
    emit('note-row', { chat: chat, note: n, bubble: bubble, row: row });   // consult.js labels its kind
  }

  function onNote(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    addNote(chat, f);
    if (str(f.kind, 'whisper') !== 'whisper') return;   // other kinds: their extension tells
    if (!chatIsVisible(chat)) flashTitle('Whisper');
    toast('Whisper from ' + str(f.author && f.author.name, 'a supervisor') + ': ' + str(f.text), 'info');
  }

  function onNotes(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat || !Array.isArray(f.notes)) return;
    f.notes.forEach(function (n) { addNote(chat, n); });
  }

  function onReplayDone(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    if (f.complete === false) requestHistory(chat, chat.watermark);
    if (chat.id === app.selectedId) maybeSendRead(chat);
  }

  function onVisitor(f) {
    var chat = app.chats.get(f.session_id);
    if (!chat) return;
    var v = Object.assign({}, chat.visitor);
    ['name', 'email', 'page_url', 'user_agent', 'customer_id', 'plan'].forEach(function (k) {
      if (k in f) v[k] = f[k];
    });
    if (typeof f.connected === 'boolean') v.connected = f.connected;
    chat.visitor = v;
    if (!v.connected) setVisitorTyping(chat, false);
    renderTab(chat);
    if (chat.id === app.selectedId) renderSelected();
  }

  function onQueue(f) {
    app.queue = {
      total: typeof f.total === 'number' ? f.total : (Array.isArray(f.entries) ? f.entries.length : 0),
      entries: Array.isArray(f.entries) ? f.entries : []
    };
    renderQueue();
  }

  function onStatus(f) {
    if (typeof f.status === 'string') app.status = f.status;
    if (typeof f.load === 'number') app.load = f.load;
    if (typeof f.capacity === 'number') app.capacity = f.capacity;
    renderStatus();
  }

  function onError(f) {
    var text = str(f.message, str(f.code, 'Error'));
    // Right after a resume the server refuses the sessions from our hello that
    // are no longer ours; welcome already told us (they are marked ended).
    if (f.code === 'unknown_session' && !f.ref && Date.now() < conn.quietUntil) return;
    if (typeof f.ref === 'string' && app.outbox.has(f.ref)) {
      var entry = app.outbox.get(f.ref);
      if (f.code === 'rate_limited' || f.code === 'unavailable') {
        // Try again a little later, same client_msg_id.
        entry.msg.state = 'pending';
        updateMessageEl(entry.chat, entry.msg);
        setTimeout(function () {
          if (app.outbox.has(entry.msg.cmid) && entry.msg.state === 'pending') transmit(entry.chat, entry.msg);
        }, 2000 + Math.random() * 1000);
      } else {
        entry.msg.state = 'failed';
        app.outbox.delete(f.ref);
        updateMessageEl(entry.chat, entry.msg);
        if (f.code === 'chat_closed' && !entry.chat.ended) {
          markEnded(entry.chat, '');
          renderTab(entry.chat);
          if (entry.chat.id === app.selectedId) renderSelected();
        }
      }
    }
    toast(text, 'error');
  }

  // ------------------------------------------------------------------
  // Rendering: operator, status, queue
  // ------------------------------------------------------------------

  function renderOperator() {
    var op = app.operator || {};
    $('op-name').textContent = str(op.name, str(op.username, ''));
    var role = $('op-role');
    role.textContent = app.role || '';
    role.hidden = !app.role;
    renderNav();
  }

  function renderNav() {
    var nav = $('main-nav');
    clear(nav);
    VIEWS.forEach(function (view) {
      if (view.roles && view.roles.indexOf(app.role) < 0) return;
      var btn = el('button', {
        type: 'button',
        className: 'nav-item' + (app.view === view.id ? ' is-active' : ''),
        text: view.title,
        testid: 'nav-' + view.id
      });
      if (view.id === 'chats') {
        var total = totalUnread();
        if (total > 0) btn.appendChild(el('span', { className: 'badge', text: String(total) }));
      }
      btn.addEventListener('click', function () { showView(view.id); });
      nav.appendChild(btn);
    });
  }

  function showView(id) {
    app.view = id;
    VIEWS.forEach(function (view) {
      var node = $(view.element);
      if (node) node.hidden = view.id !== id;
    });
    renderNav();
    var chat = app.chats.get(app.selectedId);
    if (chat) maybeSendRead(chat);
    if (id === 'tickets') loadTickets();
    emit('view', id);
  }

  function activeChatCount() {
    var n = 0;
    app.chats.forEach(function (c) { if (!c.ended) n++; });
    return n;
  }

  function recomputeLoad() {
    // The server's status frames are authoritative; between them, count ours.
    app.load = activeChatCount();
    renderStatus();
  }

  function renderStatus() {
    var select = $('status-select');
    var status = app.wantedStatus || app.status || 'offline';
    if (select.value !== status) select.value = status;
    $('status-dot').dataset.status = status;
    var load = app.load === null ? activeChatCount() : app.load;
    $('load').textContent = load + ' / ' + (app.capacity || 0);
    var pct = app.capacity ? Math.min(100, Math.round(100 * load / app.capacity)) : 0;
    $('load-bar-fill').style.width = pct + '%';
    $('load-bar-fill').classList.toggle('is-full', app.capacity > 0 && load >= app.capacity);
  }

  function renderQueue() {
    var list = $('queue');
    clear(list);
    var entries = app.queue.entries;
    entries.forEach(function (e, i) {
      if (!e || typeof e !== 'object') return;
      var priority = typeof e.priority === 'string' ? e.priority : 'normal';
      var position = typeof e.position === 'number' ? e.position : i + 1;
      var head = el('div', { className: 'queue-head' },
        el('span', { className: 'queue-pos', text: '#' + position }),
        el('span', { className: 'queue-name', text: str(e.name, 'Visitor') })
      );
      var label = priorityLabel(priority);
      if (label) {
        head.appendChild(el('span', {
          className: 'priority-badge', text: label, dataset: { priority: priority }
        }));
      }
      if (e.requeued === true) {
        head.appendChild(el('span', { className: 'requeued-tag', text: 'requeued', title: 'Returned to the queue' }));
      }
      var wait = el('span', { className: 'queue-wait', testid: 'queue-wait' });
      if (typeof e.waiting_since === 'number') wait.dataset.since = String(e.waiting_since);
      head.appendChild(wait);
      var item = el('li', { className: 'queue-item', testid: 'queue-item' }, head);
      item.dataset.sessionId = str(e.session_id);
      item.dataset.priority = priority;
      var preview = str(e.preview);
      if (preview) {
        item.appendChild(el('div', { className: 'queue-preview', text: preview, title: preview }));
      }
      list.appendChild(item);
      emit('queue-item', { entry: e, item: item });
    });
    $('queue-total').textContent = String(app.queue.total);
    $('queue-empty').hidden = app.queue.total > 0 || entries.length > 0;
    var more = app.queue.total - entries.length;
    $('queue-more').hidden = more <= 0;
    $('queue-more').textContent = more > 0 ? '+ ' + more + ' more waiting' : '';
    tickQueue();
  }

  function tickQueue() {
    var now = Date.now();
    var nodes = document.querySelectorAll('#queue .queue-wait');
    for (var i = 0; i < nodes.length; i++) {
      var since = Number(nodes[i].dataset.since);
      nodes[i].textContent = since ? formatWaiting(now - since) : '';
    }
  }

  // ------------------------------------------------------------------
  // Rendering: tabs and the selected chat
  // ------------------------------------------------------------------

  function tabLabel(chat) {
    var name = str(chat.visitor && chat.visitor.name);
    if (name) return name;
    return 'Visitor ' + chat.id.slice(-4);
  }

  function renderTab(chat) {
    var tab = chat.tabEl;
    if (!tab) {
      tab = el('div', { className: 'chat-tab', testid: 'chat-tab', tabIndex: 0, attrs: { role: 'tab' } });
      tab.dataset.sessionId = chat.id;
      tab.addEventListener('click', function (ev) {
        if (ev.target && ev.target.classList && ev.target.classList.contains('tab-dismiss')) return;
        selectChat(chat.id);
      });
      tab.addEventListener('keydown', function (ev) {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); selectChat(chat.id); }
      });
      chat.tabEl = tab;
      $('chat-tabs').appendChild(tab);
    }
    clear(tab);
    tab.appendChild(el('span', { className: 'tab-dot', attrs: { 'aria-hidden': 'true' } }));
    tab.appendChild(el('span', { className: 'tab-name', text: tabLabel(chat) }));
    if (chat.priority === 'vip' || chat.priority === 'urgent') {
      tab.appendChild(el('span', {
        className: 'priority-badge small', text: priorityLabel(chat.priority), dataset: { priority: chat.priority }
      }));
    }
    if (chat.unread > 0) {
      tab.appendChild(el('span', { className: 'badge', testid: 'chat-tab-unread', text: String(chat.unread) }));
    }
    if (chat.ended) {
      tab.appendChild(el('span', { className: 'tab-ended', text: 'Chat ended' }));
      var dismiss = el('button', {
        type: 'button', className: 'tab-dismiss', text: '×', title: 'Dismiss', attrs: { 'aria-label': 'Dismiss chat' }
      });
      dismiss.addEventListener('click', function (ev) {
        ev.stopPropagation();
        removeChat(chat);
      });
      tab.appendChild(dismiss);
    }
    tab.title = tabLabel(chat) + (chat.ended ? ' (ended)' : '');
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

  function renderTabsContainer() {
    var any = app.chats.size > 0;
    $('chat-tabs').hidden = !any;
    renderNav();
  }

  function selectFirstChat() {
    var first = null;
    app.chats.forEach(function (c) { if (!first) first = c; });
    selectChat(first ? first.id : null);
  }

  function selectChat(id) {
    var prev = app.chats.get(app.selectedId);
    if (prev && prev.id !== id) {
      prev.draft = $('message-input').value;
    }
    app.selectedId = id && app.chats.has(id) ? id : null;
    app.chats.forEach(function (c) { renderTab(c); });
    renderSelected(true);
    var chat = app.chats.get(app.selectedId);
    if (chat) maybeSendRead(chat);
    updateTitle();
  }

  function renderSelected(switched) {
    var chat = app.chats.get(app.selectedId);
    var view = $('chat-view');
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
    var slot = $('messages-slot');
    if (slot.firstChild !== chat.listEl) {
      clear(slot);
      slot.appendChild(chat.listEl);
    }
    $('chat-title').textContent = visitorName(chat.visitor);
    var pr = $('chat-priority');
    var label = priorityLabel(chat.priority);
    pr.textContent = label;
    pr.hidden = !label;
    pr.dataset.priority = chat.priority;

    var ended = chat.ended;
    view.classList.toggle('is-ended', ended);
    $('chat-ended').hidden = !ended;
    $('chat-ended-reason').textContent = ended && chat.endedText ? '\u2014 ' + chat.endedText : '';
    $('close-chat').hidden = ended;
    $('escalate-button').hidden = !!chat.ticket;
    var chip = $('chat-ticket');
    chip.hidden = !chat.ticket;
    chip.textContent = chat.ticket ? 'Ticket ' + chat.ticket : '';
    var input = $('message-input');
    input.disabled = ended;
    $('send-button').disabled = ended;
    $('attach-button').disabled = ended;
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
    var presence = $('chat-presence');
    if (!chat) return;
    var v = chat.visitor || {};
    $('visitor-name').textContent = visitorName(v);
    $('visitor-email').textContent = str(v.email, '—');

    var connected = v.connected === true;
    var c = $('visitor-connected');
    c.textContent = connected ? 'Connected' : 'Disconnected';
    c.dataset.connected = connected ? 'true' : 'false';
    presence.textContent = connected ? 'Connected' : 'Disconnected';
    presence.dataset.connected = connected ? 'true' : 'false';

    // Page URL: always shown as text; a link only for http(s).
    var slot = $('visitor-page-slot');
    clear(slot);
    var raw = str(v.page_url);
    var safe = safeHttpUrl(raw);
    var page;
    if (safe) {
      page = el('a', { className: 'visitor-link', text: raw, title: raw });
      page.href = safe;
      page.target = '_blank';
      page.rel = 'noopener noreferrer';
    } else {
      page = el('span', { text: raw || '—', title: raw });
    }
    page.setAttribute('data-testid', 'visitor-page');
    page.id = 'visitor-page';
    slot.appendChild(page);

    $('visitor-ua').textContent = str(v.user_agent, '—');

    var customer = str(v.customer_id);
    var plan = str(v.plan);
    $('visitor-customer').textContent = customer;
    $('visitor-customer-label').hidden = $('visitor-customer-row').hidden = !customer;
    $('visitor-plan').textContent = plan;
    $('visitor-plan-label').hidden = $('visitor-plan-row').hidden = !plan;

    $('visitor-session').textContent = chat.id;
    $('visitor-started').textContent = chat.createdAt ? formatFull(chat.createdAt) : '—';
  }

  function removeChat(chat) {
    stopOwnTyping(chat, false);
    clearTimeout(chat.visitorTypingTimer);
    chat.byCmid.forEach(function (msg) { app.outbox.delete(msg.cmid); });
    if (chat.tabEl && chat.tabEl.parentNode) chat.tabEl.parentNode.removeChild(chat.tabEl);
    app.chats.delete(chat.id);
    if (app.selectedId === chat.id) selectFirstChat();
    else renderTabsContainer();
    updateTitle();
  }

  function updateCharCount() {
    var input = $('message-input');
    var n = input.value.length;
    var node = $('char-count');
    var show = n > MAX_MESSAGE_CHARS - 500;
    node.hidden = !show;
    node.textContent = show ? n + ' / ' + MAX_MESSAGE_CHARS : '';
  }

  // ------------------------------------------------------------------
  // Title, banner, toasts
  // ------------------------------------------------------------------

  var titleFlash = { timer: null, text: '', on: false };

  function totalUnread() {
    var n = 0;
    app.chats.forEach(function (c) { n += c.unread; });
    return n;
  }

  function baseTitle() {
    var n = totalUnread();
    return (n > 0 ? '(' + n + ') ' : '') + BASE_TITLE;
  }

  function updateTitle() {
    if (!titleFlash.timer) document.title = baseTitle();
    renderNav();
  }

  function pageIsAttended() {
    return document.visibilityState === 'visible' && document.hasFocus();
  }

  function flashTitle(text) {
    if (pageIsAttended()) return;
    titleFlash.text = text;
    if (titleFlash.timer) return;
    titleFlash.on = false;
    titleFlash.timer = setInterval(function () {
      titleFlash.on = !titleFlash.on;
      var n = totalUnread();
      document.title = titleFlash.on
        ? (n > 0 ? '(' + n + ') ' : '') + '\u2605 ' + titleFlash.text + ' \u2014 ' + BASE_TITLE
        : baseTitle();
    }, 1000);
  }

  function stopFlash() {
    if (titleFlash.timer) clearInterval(titleFlash.timer);
    titleFlash.timer = null;
    document.title = baseTitle();
  }

  var bannerAction = null;

  function showBanner(text, actionLabel, action) {
    var banner = $('connection-banner');
    $('connection-banner-text').textContent = text;
    var btn = $('connection-banner-action');
    bannerAction = action || null;
    btn.textContent = actionLabel || '';
    btn.hidden = !actionLabel;
    banner.hidden = false;
  }

  function hideBanner() {
    $('connection-banner').hidden = true;
    bannerAction = null;
  }

  function setConnIndicator(state) {
    var dot = $('conn-dot');
    dot.dataset.state = state;
    dot.title = state === 'online' ? 'Connected' : state === 'connecting' ? 'Connecting' : 'Disconnected';
  }

  function toast(text, kind) {
    var box = $('toasts');
    var node = el('div', { className: 'toast toast-' + (kind || 'info'), testid: 'toast', text: text, attrs: { role: kind === 'error' ? 'alert' : 'status' } });
    var remove = function () { if (node.parentNode) node.parentNode.removeChild(node); };
    node.addEventListener('click', remove);
    box.appendChild(node);
    while (box.childNodes.length > 5) box.removeChild(box.firstChild);
    setTimeout(remove, TOAST_MS);
  }

  // ------------------------------------------------------------------
  // Login / logout
  // ------------------------------------------------------------------

  function showLogin(message) {
    $('app').hidden = true;
    $('login-view').hidden = false;
    var err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('login-submit').disabled = false;
    $('login-password').value = '';
    var user = $('login-username');
    (user.value ? $('login-password') : user).focus();
    document.title = BASE_TITLE;
  }

  function showApp() {
    $('login-view').hidden = true;
    $('app').hidden = false;
    renderOperator();
    renderStatus();
    renderQueue();
    renderSelected();
    showView(app.view);
    setConnIndicator('connecting');
    showBanner('Connecting…');
  }

  function onLoginSubmit(ev) {
    ev.preventDefault();
    var username = $('login-username').value.trim();
    var password = $('login-password').value;
    var err = $('login-error');
    if (!username || !password) {
      err.textContent = 'Enter your username and password';
      err.hidden = false;
      return;
    }
    err.hidden = true;
    err.textContent = '';
    var submit = $('login-submit');
    submit.disabled = true;
    fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ username: username, password: password })
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        return { status: res.status, body: body };
      });
    }).then(function (r) {
      submit.disabled = false;
      if (r.status === 200 && r.body && typeof r.body.token === 'string') {
        startSession(r.body.token, r.body.operator);
        return;
      }
      var message;
      if (r.status === 401) message = 'Wrong username or password';
      else if (r.status === 400) message = 'The server did not accept the request';
      else if (r.status === 429) message = 'Too many attempts, try again in a moment';
      else message = 'Sign-in failed (HTTP ' + r.status + ')';
      err.textContent = message;
      err.hidden = false;
      $('login-password').select();
    }).catch(function () {
      submit.disabled = false;
      err.textContent = 'Cannot reach the server';
      err.hidden = false;
    });
  }

  function startSession(token, operator) {
    app.token = token;
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
    if (operator && typeof operator === 'object') {
      app.operator = operator;
      app.role = typeof operator.role === 'string' ? operator.role : null;
      if (typeof operator.capacity === 'number') app.capacity = operator.capacity;
      if (typeof operator.status === 'string') app.status = operator.status;
    }
    $('login-password').value = '';
    showApp();
    conn.attempt = 0;
    connect();
  }

  function resetState() {
    app.chats.forEach(function (chat) {
      clearTimeout(chat.visitorTypingTimer);
      clearTimeout(chat.typingIdleTimer);
    });
    app.chats = new Map();
    app.outbox = new Map();
    app.selectedId = null;
    app.queue = { total: 0, entries: [] };
    app.operator = null;
    app.role = null;
    app.status = null;
    app.load = null;
    app.capacity = 0;
    app.wantedStatus = null;
    app.welcomes = 0;
    conn.helloSessions = null;
    clear($('chat-tabs'));
    clear($('messages-slot'));
    clear($('queue'));
    resetTickets();
    app.view = 'chats';
    hideBanner();
    stopFlash();
    emit('reset', null);
  }

  /** Forget the token and go back to the login form. */
  function signOut(message) {
    var username = app.operator && typeof app.operator.username === 'string' ? app.operator.username : '';
    if (username && !$('login-username').value) $('login-username').value = username;
    disconnect();
    app.token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    resetState();
    showLogin(message);
  }

  function onLogout() {
    // Stateless tokens: the server-side call is a courtesy, the token is
    // simply forgotten here.
    try {
      fetch('/api/logout', { method: 'POST', credentials: 'same-origin', keepalive: true }).catch(function () {});
    } catch (e) { /* ignore */ }
    signOut('');
  }

  // ------------------------------------------------------------------
  // HTTP API (docs/http-api.md): attachments and tickets
  // ------------------------------------------------------------------

  /**
   * fetch with the operator token. Resolves with the parsed JSON body (or a
   * Blob with {blob: true}); rejects with an Error whose message is the
   * server's `message` and which carries `status` and `code`.
   */
  function api(method, path, body, opts) {
    var headers = { Authorization: 'Bearer ' + app.token };
    var init = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      if (res.ok) return opts && opts.blob ? res.blob() : res.json();
      return res.json().catch(function () { return null; }).then(function (b) {
        var message = b && typeof b.message === 'string' && b.message ? b.message
          : 'The server answered HTTP ' + res.status;
        var err = new Error(message);
        err.status = res.status;
        err.code = b && typeof b.error === 'string' ? b.error : '';
        throw err;
      });
    }, function () {
      var err = new Error('Cannot reach the server');
      err.status = 0;
      throw err;
    });
  }

  function validAttachments(list) {
    if (!Array.isArray(list)) return [];
    return list.filter(function (a) { return a && typeof a === 'object' && typeof a.id === 'string'; });
  }

  function formatSize(n) {
    n = Number(n) || 0;
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return Math.ceil(n / 1024) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }

  function attachmentUrl(id, inline) {
    return '/api/attachments/' + encodeURIComponent(id) + (inline ? '?inline=1' : '');
  }

  var previews = new Map();   // attachment id -> Promise of a blob: URL

  function previewUrl(id) {
    if (!previews.has(id)) {
      var p = api('GET', attachmentUrl(id, true), undefined, { blob: true }).then(function (blob) {
        return URL.createObjectURL(blob);
      });
      p.catch(function () { previews.delete(id); });
      previews.set(id, p);
    }
    return previews.get(id);
  }

  function downloadAttachment(a) {
    api('GET', attachmentUrl(a.id, false), undefined, { blob: true }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var link = el('a', { download: str(a.filename, 'attachment') });
      link.href = url;
      link.hidden = true;
      document.body.appendChild(link);
      link.click();
      link.parentNode.removeChild(link);
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    }).catch(function (err) {
      toast('Download failed: ' + err.message, 'error');
    });
  }

  /** Attachment chips: a download button each, a small preview for images. */
  function attachmentList(list) {
    var box = el('div', { className: 'attachments', testid: 'attachments' });
    validAttachments(list).forEach(function (a) {
      var name = str(a.filename, 'attachment');
      var item = el('div', { className: 'attachment', testid: 'attachment', dataset: { id: a.id } });
      if (IMAGE_TYPES[a.content_type]) {
        var img = el('img', { className: 'attachment-preview', alt: name, testid: 'attachment-preview' });
        img.addEventListener('click', function () { downloadAttachment(a); });
        previewUrl(a.id).then(function (url) { img.src = url; }, function () {
          if (img.parentNode) img.parentNode.removeChild(img);
        });
        item.appendChild(img);
      }
      var btn = el('button', {
        type: 'button', className: 'attachment-link', testid: 'attachment-download',
        text: name, title: 'Download ' + name
      });
      btn.addEventListener('click', function () { downloadAttachment(a); });
      item.appendChild(btn);
      item.appendChild(el('span', { className: 'attachment-size', text: formatSize(a.size) }));
      box.appendChild(item);
    });
    return box;
  }

  function uploadError(err, filename) {
    var why = err.status === 413 ? 'the file is too large'
      : err.status === 415 ? 'this file type is not allowed'
        : err.message;
    var text = 'Upload of \u201c' + filename + '\u201d failed: ' + why;
    if ((err.status === 413 || err.status === 415) && err.message) text += ' (' + err.message + ')';
    return text;
  }

  /** Upload one file; `fields` are extra form fields (session_id or ticket). */
  function uploadFile(file, fields) {
    var form = new FormData();
    form.append('file', file, file.name);
    Object.keys(fields).forEach(function (k) { form.append(k, String(fields[k])); });
    return api('POST', '/api/attachments', form);
  }

  // Chat composer: the paperclip --------------------------------------------

  function onChatFileChosen() {
    var input = $('file-input');
    var file = input.files && input.files[0];
    input.value = '';
    var chat = app.chats.get(app.selectedId);
    if (!file || !chat || chat.ended) return;
    var btn = $('attach-button');
    btn.disabled = true;
    btn.classList.add('is-busy');
    uploadFile(file, { session_id: chat.id }).then(function (att) {
      var text = '';
      if (chat.id === app.selectedId) {
        text = $('message-input').value.trim();
        if (text.length > MAX_MESSAGE_CHARS) text = '';
        if (text) {
          $('message-input').value = '';
          chat.draft = '';
          updateCharCount();
        }
      }
      sendChatMessage(chat, text, [att]);
    }).catch(function (err) {
      toast(uploadError(err, file.name), 'error');
    }).then(function () {
      btn.classList.remove('is-busy');
      var current = app.chats.get(app.selectedId);
      btn.disabled = !current || current.ended;
    });
  }

  // Escalation ---------------------------------------------------------------

  function ticketNumberOf(ref) {
    var n = parseInt(String(ref).replace(/[^0-9]/g, ''), 10);
    return isNaN(n) ? null : n;
  }

  function firstVisitorText(chat) {
    var first = null;
    chat.msgs.forEach(function (m) {
      if (m.from === 'visitor' && m.text.trim() && (!first || m.seq < first.seq)) first = m;
    });
    return first ? first.text.replace(/\s+/g, ' ').trim() : '';
  }

  function onEscalateClick() {
    var chat = app.chats.get(app.selectedId);
    if (!chat || chat.ticket) return;
    var subject = firstVisitorText(chat) || ('Chat with ' + visitorName(chat.visitor));
    if (subject.length > 200) subject = subject.slice(0, 199) + '\u2026';
    $('escalate-subject').value = subject;
    var deps = app.operator && Array.isArray(app.operator.departments) ? app.operator.departments : [];
    $('escalate-department').value = deps.indexOf('billing') >= 0 && deps.indexOf('technical') < 0 ? 'billing' : 'technical';
    $('escalate-priority').value = 'normal';
    $('escalate-level').value = '1';
    var err = $('escalate-error');
    err.hidden = true;
    err.textContent = '';
    $('escalate-submit').disabled = false;
    var dialog = $('escalate-dialog');
    dialog.dataset.sessionId = chat.id;
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    $('escalate-subject').focus();
    $('escalate-subject').select();
  }

  function closeEscalateDialog() {
    var dialog = $('escalate-dialog');
    if (typeof dialog.close === 'function') { if (dialog.open) dialog.close(); }
    else dialog.removeAttribute('open');
  }

  function onEscalateSubmit(ev) {
    ev.preventDefault();
    var dialog = $('escalate-dialog');
    var chat = app.chats.get(dialog.dataset.sessionId);
    var err = $('escalate-error');
    var subject = $('escalate-subject').value.trim();
    if (!subject) {
      err.textContent = 'Enter a subject';
      err.hidden = false;
      $('escalate-subject').focus();
      return;
    }
    if (!chat) {
      err.textContent = 'This chat is no longer open';
      err.hidden = false;
      return;
    }
    err.hidden = true;
    var submit = $('escalate-submit');
    submit.disabled = true;
    api('POST', '/api/sessions/' + encodeURIComponent(chat.id) + '/escalate', {
      subject: subject,
      department: $('escalate-department').value,
      priority: $('escalate-priority').value,
      level: Number($('escalate-level').value)
    }).then(function (r) {
      submit.disabled = false;
      closeEscalateDialog();
      var t = r && r.ticket;
      if (!t) return;
      var ref = str(t.ref, '#' + t.number);
      chat.ticket = ref;
      if (chat.id === app.selectedId) renderSelected();
      toast('Ticket ' + ref + ' created', 'info');
      openTicketView(t.number);
    }).catch(function (e) {
      submit.disabled = false;
      err.textContent = e.message + (e.status ? ' (' + e.status + ')' : '');
      err.hidden = false;
    });
  }

  // Ticket inbox -------------------------------------------------------------

  var tickets = {
    list: [],
    total: 0,
    loading: false,
    again: false,          // filters changed while loading: load once more
    timer: null,
    current: null,         // {ticket, events, attachments} of the open ticket
    number: null,          // number of the open ticket
    seq: 0,                // guards against late answers for another ticket
    pendingFiles: [],      // uploaded for the reply being written
    uploading: 0
  };

  function resetTickets() {
    clearInterval(tickets.timer);
    tickets.timer = null;
    tickets.list = [];
    tickets.total = 0;
    tickets.current = null;
    tickets.number = null;
    tickets.seq++;
    tickets.pendingFiles = [];
    previews.forEach(function (p) {
      p.then(function (url) { URL.revokeObjectURL(url); }, function () {});
    });
    previews.clear();
    clear($('ticket-list'));
    clear($('ticket-events'));
    clear($('ticket-reply-files'));
    $('ticket-reply-input').value = '';
    $('ticket-view').hidden = true;
    $('ticket-none').hidden = false;
    closeEscalateDialog();
  }

  function label(map, value) {
    return map[value] || str(value === null || value === undefined ? '' : String(value), '\u2014');
  }

  function toMs(ts) {
    if (typeof ts !== 'number') return null;
    return ts < 1e11 ? ts * 1000 : ts;   // the ticket API uses seconds, frames milliseconds
  }

  var operatorNames = new Map();   // operator id -> name, from tickets and events seen

  function noteOperator(p) {
    if (p && typeof p === 'object' && typeof p.id === 'string' && str(p.name)) operatorNames.set(p.id, p.name);
  }

  /** A display name for {id, name} or an operator id. */
  function personName(p) {
    if (p === null || p === undefined || p === '') return '';
    if (typeof p === 'object') return str(p.name, str(p.id, ''));
    var s = String(p);
    if (operatorNames.has(s)) return operatorNames.get(s);
    if (app.operator && s === app.operator.id) return str(app.operator.name, s);
    return s;
  }

  function assigneeName(a) {
    if (!a) return 'Unassigned';
    if (app.operator && typeof a === 'object' && a.id === app.operator.id) return personName(a) + ' (me)';
    if (app.operator && a === app.operator.id) return str(app.operator.name, 'me') + ' (me)';
    return personName(a) || 'Unassigned';
  }

  function ticketQuery() {
    var q = [];
    var add = function (k, v) { if (v) q.push(k + '=' + encodeURIComponent(v)); };
    add('state', $('tf-state').value);
    add('department', $('tf-department').value);
    add('level', $('tf-level').value);
    add('assignee', $('tf-assignee').value);
    q.push('limit=200');
    return '/api/tickets?' + q.join('&');
  }

  function loadTickets() {
    if (!app.token) return;
    if (tickets.loading) { tickets.again = true; return; }
    tickets.loading = true;
    tickets.again = false;
    $('ticket-list-status').textContent = 'Loading\u2026';
    $('ticket-refresh').disabled = true;
    api('GET', ticketQuery()).then(function (r) {
      tickets.list = r && Array.isArray(r.tickets) ? r.tickets : [];
      tickets.total = r && typeof r.total === 'number' ? r.total : tickets.list.length;
      $('ticket-list-error').hidden = true;
      $('ticket-list-status').textContent = 'Updated ' + formatClock(Date.now());
      renderTicketList();
    }).catch(function (err) {
      var box = $('ticket-list-error');
      box.textContent = 'Could not load tickets: ' + err.message;
      box.hidden = false;
      $('ticket-list-status').textContent = '';
    }).then(function () {
      tickets.loading = false;
      $('ticket-refresh').disabled = false;
      if (tickets.again) loadTickets();
    });
  }

  function renderTicketList() {
    var list = $('ticket-list');
    clear(list);
    var now = Date.now();
    tickets.list.forEach(function (t) {
      if (!t || typeof t !== 'object' || typeof t.number !== 'number') return;
      var ref = str(t.ref, '#' + t.number);
      var priority = str(t.priority, 'normal');
      noteOperator(t.assignee);
      var row = el('li', {
        className: 'ticket-row' + (t.number === tickets.number ? ' is-selected' : ''),
        testid: 'ticket-row', tabIndex: 0,
        dataset: { number: t.number, priority: priority, state: str(t.state) }
      },
      el('div', { className: 'ticket-row-top' },
        el('span', { className: 'ticket-row-ref', testid: 'ticket-row-ref', text: ref }),
        el('span', { className: 'tprio', testid: 'ticket-row-priority', text: label(PRIORITY_NAMES, priority), dataset: { priority: priority } }),
        el('span', { className: 'ticket-row-subject', testid: 'ticket-row-subject', text: str(t.subject, '(no subject)'), title: str(t.subject) })
      ),
      el('div', { className: 'ticket-row-meta' },
        el('span', { className: 'state-badge', testid: 'ticket-row-state', text: label(STATE_NAMES, t.state), dataset: { state: str(t.state) } }),
        el('span', { testid: 'ticket-row-department', text: label(DEPARTMENT_NAMES, t.department) }),
        el('span', { testid: 'ticket-row-level', text: 'L' + (t.level === undefined ? '?' : t.level) }),
        el('span', { className: 'ticket-row-assignee', testid: 'ticket-row-assignee', text: assigneeName(t.assignee) }),
        el('span', {
          className: 'ticket-row-age', testid: 'ticket-row-age',
          text: t.created_at ? formatWaiting(now - toMs(t.created_at)) : '',
          title: t.created_at ? 'Created ' + formatFull(toMs(t.created_at)) : ''
        })
      ));
      var open = function () { openTicket(t.number); };
      row.addEventListener('click', open);
      row.addEventListener('keydown', function (ev) {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); }
      });
      list.appendChild(row);
      emit('ticket-row', { ticket: t, row: row });
    });
    $('ticket-total').textContent = String(tickets.total);
    $('ticket-total-label').textContent = tickets.total === 1 ? 'ticket' : 'tickets';
    $('ticket-list-empty').hidden = tickets.list.length > 0;
  }

  function tickTicketsView() {
    if (app.view === 'tickets' && app.token && document.visibilityState === 'visible') loadTickets();
  }

  // One ticket ---------------------------------------------------------------

  /** Switch to the Tickets view with this ticket open. */
  function openTicketView(number) {
    if (number === null || number === undefined) return;
    tickets.number = number;
    if (app.view !== 'tickets') showView('tickets');
    else loadTickets();
    openTicket(number);
  }

  function openTicket(number, keepDraft) {
    var switched = tickets.number !== number || !tickets.current;
    tickets.number = number;
    var seq = ++tickets.seq;
    if (switched && !keepDraft) {
      $('ticket-reply-input').value = '';
      tickets.pendingFiles = [];
      renderPendingFiles();
      hideTicketError();
    }
    var rows = document.querySelectorAll('#ticket-list .ticket-row');
    for (var i = 0; i < rows.length; i++) {
      rows[i].classList.toggle('is-selected', Number(rows[i].dataset.number) === number);
    }
    return api('GET', '/api/tickets/' + encodeURIComponent(number)).then(function (r) {
      if (seq !== tickets.seq) return;
      // A reload of the open ticket keeps the operator's unsaved edits of its
      // controls (measured against the ticket as it was shown).
      var draft = switched ? null : { changes: pendingChanges(), reason: $('ticket-reason').value };
      tickets.current = {
        ticket: r && r.ticket ? r.ticket : {},
        events: r && Array.isArray(r.events) ? r.events : [],
        attachments: r && Array.isArray(r.attachments) ? r.attachments : []
      };
      renderTicket(switched);
      if (draft) restoreDraft(draft);
    }).catch(function (err) {
      if (seq !== tickets.seq) return;
      $('ticket-none').hidden = true;
      $('ticket-view').hidden = false;
      showTicketError('Could not load ticket ' + number + ': ' + err.message);
    });
  }

  function showTicketError(text) {
    var box = $('ticket-error');
    box.textContent = text;
    box.hidden = false;
  }

  function hideTicketError() {
    var box = $('ticket-error');
    box.hidden = true;
    box.textContent = '';
  }

  function renderTicket(switched) {
    var cur = tickets.current;
    var t = cur.ticket;
    $('ticket-none').hidden = true;
    var view = $('ticket-view');
    view.hidden = false;
    view.dataset.number = String(t.number);
    var ref = str(t.ref, '#' + t.number);
    $('ticket-ref').textContent = ref;
    $('ticket-subject').textContent = str(t.subject, '(no subject)');
    var sb = $('ticket-state-badge');
    sb.textContent = label(STATE_NAMES, t.state);
    sb.dataset.state = str(t.state);
    var pb = $('ticket-priority-badge');
    pb.textContent = label(PRIORITY_NAMES, t.priority);
    pb.dataset.priority = str(t.priority);
    var req = t.requester && typeof t.requester === 'object' ? t.requester : {};
    var who = [str(req.name), str(req.email) ? '<' + req.email + '>' : '', str(req.customer_id) ? '(customer ' + req.customer_id + ')' : '']
      .filter(Boolean).join(' ');
    $('ticket-requester').textContent = who || '\u2014';
    $('ticket-channel').textContent = str(t.channel, '\u2014');
    $('ticket-created').textContent = t.created_at ? formatFull(toMs(t.created_at)) : '\u2014';
    var chatLink = $('ticket-chat-link');
    chatLink.hidden = !(t.session_id && app.chats.has(t.session_id));

    // Controls reflect the ticket as stored.
    $('ticket-state').value = str(t.state, 'open');
    $('ticket-priority').value = str(t.priority, 'normal');
    $('ticket-level').value = String(t.level || 1);
    $('ticket-department').value = str(t.department, 'technical');
    var sel = $('ticket-assignee');
    clear(sel);
    sel.appendChild(el('option', { value: '', text: 'Unassigned' }));
    var me = app.operator && app.operator.id;
    if (me) sel.appendChild(el('option', { value: me, text: 'Me (' + str(app.operator.name, 'me') + ')' }));
    var aid = t.assignee && typeof t.assignee === 'object' ? str(t.assignee.id) : str(t.assignee);
    if (aid && aid !== me) sel.appendChild(el('option', { value: aid, text: personName(t.assignee) || aid }));
    sel.value = aid;
    $('ticket-reason').value = '';
    updateChangeControls();

    noteOperator(t.assignee);
    cur.events.forEach(function (ev) {
      if (ev && ev.actor && ev.actor.type === 'operator') noteOperator(ev.actor);
    });
    var list = $('ticket-events');
    clear(list);
    cur.events.forEach(function (ev) {
      if (ev && typeof ev === 'object') list.appendChild(renderTicketEvent(ev));
    });
    var files = validAttachments(cur.attachments);
    $('ticket-files').hidden = files.length === 0;
    var fbox = $('ticket-attachments');
    clear(fbox);
    if (files.length) fbox.appendChild(attachmentList(files));
    if (switched) $('ticket-scroll').scrollTop = $('ticket-scroll').scrollHeight;
    emit('ticket', cur);
  }

  function changeValue(kind, v) {
    if (v === null || v === undefined || v === '') return kind === 'assignee' ? 'nobody' : '\u2014';
    if (kind === 'state') return label(STATE_NAMES, v).toLowerCase();
    if (kind === 'priority') return String(v);
    if (kind === 'department') return String(v);
    if (kind === 'assignee') return personName(v);
    return String(v);
  }

  function renderTicketEvent(ev) {
    var kind = str(ev.kind, 'event');
    var body = ev.body && typeof ev.body === 'object' ? ev.body : {};
    var actor = ev.actor && typeof ev.actor === 'object' ? ev.actor : {};
    var internal = ev.internal === true || kind === 'note';
    var ts = toMs(ev.ts);
    var item = el('li', {
      className: 'tev tev-' + kind + (internal ? ' is-note' : ''),
      testid: 'ticket-event',
      dataset: { kind: kind, internal: internal ? 'true' : 'false' }
    });
    if (typeof ev.n === 'number') item.dataset.n = String(ev.n);
    var actorName = personName(actor) || (actor.type === 'system' ? 'System' : '');

    if (CHANGE_LABELS[kind]) {
      item.classList.add('tev-change');
      var line = CHANGE_LABELS[kind] + ' ' + changeValue(kind, body.from) + ' \u2192 ' + changeValue(kind, body.to);
      if (str(body.reason)) line += ' \u2014 reason: ' + body.reason;
      item.appendChild(el('span', { className: 'tev-line', testid: 'ticket-event-text', text: line }));
      item.appendChild(el('span', {
        className: 'tev-by', text: (actorName ? actorName + ' \u00b7 ' : '') + (ts ? formatFull(ts) : '')
      }));
      return item;
    }

    var head = el('div', { className: 'tev-head' });
    var title = EVENT_LABELS[kind] || kind;
    var author = actorName;
    if (kind === 'transcript') {
      author = str(body.author, body.from === 'visitor' ? 'Visitor' : body.from === 'system' ? 'System' : 'Operator');
      item.dataset.from = str(body.from);
      title = 'Chat \u00b7 ' + (body.from === 'visitor' ? 'visitor' : body.from === 'system' ? 'system' : 'operator');
      if (typeof body.ts === 'number') ts = toMs(body.ts);
    } else if (kind === 'reply') {
      title = actor.type === 'operator' ? 'Public reply' : 'Reply from the customer';
    }
    head.appendChild(el('span', { className: 'tev-kind', testid: internal ? 'note-label' : 'event-label', text: internal ? EVENT_LABELS.note : title }));
    if (author) head.appendChild(el('span', { className: 'tev-author', text: author }));
    if (ts) head.appendChild(el('span', { className: 'tev-time', text: formatFull(ts) }));
    item.appendChild(head);

    var text = str(body.text);
    if (kind === 'created') {
      var bits = [];
      if (body.channel) bits.push('via ' + body.channel);
      if (body.priority) bits.push('priority ' + body.priority);
      if (body.department) bits.push(label(DEPARTMENT_NAMES, body.department).toLowerCase());
      if (body.level) bits.push('level ' + body.level);
      if (bits.length) item.appendChild(el('div', { className: 'tev-sub', text: bits.join(' \u00b7 ') }));
      if (str(body.reason)) item.appendChild(el('div', { className: 'tev-sub', text: 'Reason: ' + body.reason }));
    }
    if (kind === 'mail_in' && (str(body.from) || str(body.subject))) {
      item.appendChild(el('div', {
        className: 'tev-sub', text: [str(body.from) ? 'From ' + body.from : '', str(body.subject)].filter(Boolean).join(' \u2014 ')
      }));
    }
    if (text) item.appendChild(el('div', { className: 'tev-text', testid: 'ticket-event-text', text: text }));
    var atts = validAttachments(body.attachments);
    if (atts.length) item.appendChild(attachmentList(atts));
    return item;
  }

  // Changes ------------------------------------------------------------------

  function pendingChanges() {
    var cur = tickets.current;
    if (!cur) return {};
    var t = cur.ticket;
    var changes = {};
    var state = $('ticket-state').value;
    if (state !== str(t.state)) changes.state = state;
    var priority = $('ticket-priority').value;
    if (priority !== str(t.priority)) changes.priority = priority;
    var level = Number($('ticket-level').value);
    if (level !== Number(t.level)) changes.level = level;
    var dep = $('ticket-department').value;
    if (dep !== str(t.department)) changes.department = dep;
    var aid = t.assignee && typeof t.assignee === 'object' ? str(t.assignee.id) : str(t.assignee);
    var chosen = $('ticket-assignee').value;
    if (chosen !== aid) changes.assignee = chosen || null;
    return changes;
  }

  var CHANGE_CONTROLS = {
    state: 'ticket-state', priority: 'ticket-priority', level: 'ticket-level',
    department: 'ticket-department', assignee: 'ticket-assignee'
  };

  /** Put unsaved control edits back after a re-render. */
  function restoreDraft(draft) {
    Object.keys(draft.changes).forEach(function (kind) {
      var sel = $(CHANGE_CONTROLS[kind]);
      var v = draft.changes[kind];
      var value = v === null || v === undefined ? '' : String(v);
      var stored = sel.value;
      sel.value = value;
      if (sel.value !== value) sel.value = stored; // that choice is gone: keep the stored one
    });
    $('ticket-reason').value = draft.reason;
    updateChangeControls();
  }

  function updateChangeControls() {
    var changes = pendingChanges();
    var priorityChanged = 'priority' in changes;
    $('ticket-reason-field').hidden = !priorityChanged;
    $('ticket-apply').disabled = Object.keys(changes).length === 0;
  }

  function onTicketChangesSubmit(ev) {
    ev.preventDefault();
    var number = tickets.number;
    var changes = pendingChanges();
    if (!Object.keys(changes).length || number === null) return;
    var reason = $('ticket-reason').value.trim();
    if ('priority' in changes && !reason) {
      showTicketError('A reason is required to change the priority');
      $('ticket-reason').focus();
      return;
    }
    if (reason) changes.reason = reason;
    hideTicketError();
    $('ticket-apply').disabled = true;
    api('POST', '/api/tickets/' + encodeURIComponent(number) + '/changes', changes).then(function () {
      if (tickets.number !== number) return;
      return openTicket(number, true).then(loadTickets);
    }).catch(function (err) {
      if (tickets.number !== number) return;
      showTicketError(err.message + (err.status ? ' (' + err.status + ')' : ''));
      updateChangeControls();
    });
  }

  // Replies ------------------------------------------------------------------

  function replyMode() {
    var checked = document.querySelector('#ticket-reply input[name="reply-mode"]:checked');
    return checked && checked.value === 'internal' ? 'internal' : 'public';
  }

  function onReplyModeChange() {
    var mode = replyMode();
    var form = $('ticket-reply');
    form.dataset.mode = mode;
    $('reply-mode-hint').textContent = mode === 'internal'
      ? 'Internal note \u2014 not visible to the customer' : 'Mailed to the requester';
    $('ticket-reply-input').placeholder = mode === 'internal'
      ? 'Write an internal note for your colleagues\u2026' : 'Write a reply to the customer\u2026';
    $('ticket-reply-send').textContent = mode === 'internal' ? 'Add note' : 'Send reply';
  }

  function renderPendingFiles() {
    var box = $('ticket-reply-files');
    clear(box);
    tickets.pendingFiles.forEach(function (a, i) {
      var chip = el('span', { className: 'pending-file', testid: 'pending-file' },
        el('span', { text: str(a.filename, 'attachment') + ' (' + formatSize(a.size) + ')' }));
      var remove = el('button', { type: 'button', className: 'tab-dismiss', text: '\u00d7', title: 'Remove', attrs: { 'aria-label': 'Remove attachment' } });
      remove.addEventListener('click', function () {
        tickets.pendingFiles.splice(i, 1);
        renderPendingFiles();
      });
      chip.appendChild(remove);
      box.appendChild(chip);
    });
    if (tickets.uploading) box.appendChild(el('span', { className: 'muted small', text: 'Uploading\u2026' }));
  }

  function onTicketFileChosen() {
    var input = $('ticket-file-input');
    var file = input.files && input.files[0];
    input.value = '';
    var number = tickets.number;
    if (!file || number === null) return;
    tickets.uploading++;
    renderPendingFiles();
    hideTicketError();
    uploadFile(file, { ticket: number }).then(function (att) {
      if (tickets.number === number) tickets.pendingFiles.push(att);
    }).catch(function (err) {
      if (tickets.number === number) showTicketError(uploadError(err, file.name));
    }).then(function () {
      tickets.uploading--;
      renderPendingFiles();
    });
  }

  function onTicketReplySubmit(ev) {
    ev.preventDefault();
    var number = tickets.number;
    if (number === null) return;
    var input = $('ticket-reply-input');
    var text = input.value.trim();
    var files = tickets.pendingFiles.slice();
    if (!text && !files.length) return;
    if (tickets.uploading) {
      showTicketError('Wait until the upload has finished');
      return;
    }
    var internal = replyMode() === 'internal';
    var send = $('ticket-reply-send');
    send.disabled = true;
    hideTicketError();
    var body = { text: text, internal: internal, attachments: files.map(function (a) { return a.id; }) };
    emit('ticket-reply-body', body);   // extensions may add fields (consult.js: consult)
    api('POST', '/api/tickets/' + encodeURIComponent(number) + '/replies', body).then(function () {
      send.disabled = false;
      emit('ticket-reply-sent', { number: number, body: body });
      if (tickets.number !== number) return;
      input.value = '';
      tickets.pendingFiles = [];
      renderPendingFiles();
      return openTicket(number, true).then(function () {
        $('ticket-scroll').scrollTop = $('ticket-scroll').scrollHeight;
        loadTickets();
      });
    }).catch(function (err) {
      send.disabled = false;
      if (tickets.number === number) showTicketError(err.message + (err.status ? ' (' + err.status + ')' : ''));
    });
  }

  function initAttachmentsAndTickets() {
    $('attach-button').addEventListener('click', function () { $('file-input').click(); });
    $('file-input').addEventListener('change', onChatFileChosen);
    $('escalate-button').addEventListener('click', onEscalateClick);
    $('escalate-form').addEventListener('submit', onEscalateSubmit);
    $('escalate-cancel').addEventListener('click', closeEscalateDialog);
    $('chat-ticket').addEventListener('click', function () {
      var chat = app.chats.get(app.selectedId);
      if (chat && chat.ticket) openTicketView(ticketNumberOf(chat.ticket));
    });
    $('ticket-filters').addEventListener('submit', function (ev) {
      // Refresh: the list, and the open ticket (its reply draft stays).
      ev.preventDefault();
      loadTickets();
      if (tickets.number !== null && tickets.current) openTicket(tickets.number, true);
    });
    ['tf-state', 'tf-department', 'tf-level', 'tf-assignee'].forEach(function (id) {
      $(id).addEventListener('change', loadTickets);
    });
    Object.keys(CHANGE_CONTROLS).forEach(function (kind) {
      $(CHANGE_CONTROLS[kind]).addEventListener('change', updateChangeControls);
    });
    $('ticket-changes').addEventListener('submit', onTicketChangesSubmit);
    $('ticket-reply').addEventListener('submit', onTicketReplySubmit);
    $('ticket-reply-input').addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); onTicketReplySubmit(ev); }
    });
    var modes = document.querySelectorAll('#ticket-reply input[name="reply-mode"]');
    for (var i = 0; i < modes.length; i++) modes[i].addEventListener('change', onReplyModeChange);
    $('ticket-attach').addEventListener('click', function () { $('ticket-file-input').click(); });
    $('ticket-file-input').addEventListener('change', onTicketFileChosen);
    $('ticket-chat-link').addEventListener('click', function () {
      var t = tickets.current && tickets.current.ticket;
      if (t && t.session_id && app.chats.has(t.session_id)) {
        showView('chats');
        selectChat(t.session_id);
      }
    });
    setInterval(tickTicketsView, TICKET_REFRESH_MS);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') tickTicketsView();
    });
  }

  // ------------------------------------------------------------------
  // Wiring
  // ------------------------------------------------------------------

  function onStatusChange() {
    var value = $('status-select').value;
    if (value !== 'online' && value !== 'away' && value !== 'offline') return;
    if (sendReady({ type: 'status', status: value })) {
      app.status = value;          // optimistic; the server's status frame confirms
      app.wantedStatus = null;
    } else {
      app.wantedStatus = value;    // sent after the next welcome
    }
    renderStatus();
  }

  function onComposerSubmit(ev) {
    if (ev) ev.preventDefault();
    var chat = app.chats.get(app.selectedId);
    if (!chat || chat.ended) return;
    var input = $('message-input');
    var text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_MESSAGE_CHARS) {
      toast('Message is too long (max ' + MAX_MESSAGE_CHARS + ' characters)', 'error');
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

  function onCloseChat() {
    var chat = app.chats.get(app.selectedId);
    if (!chat || chat.ended) return;
    if (!window.confirm('Close the chat with ' + visitorName(chat.visitor) + '?')) return;
    if (!sendReady({ type: 'close_chat', session_id: chat.id })) {
      toast('Not connected — try again when the connection is back', 'error');
      return;
    }
    markEnded(chat, CLOSE_REASONS.operator);
    renderTab(chat);
    renderSelected();
    recomputeLoad();
  }

  function onDismissChat() {
    var chat = app.chats.get(app.selectedId);
    if (chat && chat.ended) removeChat(chat);
  }

  function onVisibilityChange() {
    if (document.visibilityState === 'visible') {
      stopFlash();
      var chat = app.chats.get(app.selectedId);
      if (chat) maybeSendRead(chat);
    }
  }

  function init() {
    $('login-form').addEventListener('submit', onLoginSubmit);
    $('logout').addEventListener('click', onLogout);
    $('status-select').addEventListener('change', onStatusChange);
    $('composer').addEventListener('submit', onComposerSubmit);
    var input = $('message-input');
    input.maxLength = MAX_MESSAGE_CHARS;
    input.addEventListener('keydown', onComposerKeydown);
    input.addEventListener('input', function () {
      var chat = app.chats.get(app.selectedId);
      if (chat) onComposerInput(chat);
    });
    $('close-chat').addEventListener('click', onCloseChat);
    initAttachmentsAndTickets();
    $('dismiss-chat').addEventListener('click', onDismissChat);
    $('connection-banner-action').addEventListener('click', function () {
      if (bannerAction) bannerAction();
    });
    document.addEventListener('visibilitychange', onVisibilityChange);
    window.addEventListener('focus', function () {
      stopFlash();
      var chat = app.chats.get(app.selectedId);
      if (chat) maybeSendRead(chat);
    });
    window.addEventListener('online', function () {
      // The network came back: do not wait for the backoff timer.
      if (app.token && !conn.ws && !conn.stopped) connect();
    });
    setInterval(tickQueue, 1000);

    var saved = null;
    try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    if (saved) {
      app.token = saved;
      showApp();
      connect();
    } else {
      showLogin('');
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
