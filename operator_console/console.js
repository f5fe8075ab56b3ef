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

  // Views shown in the top navigation. Only "chats" exists today; the
  // supervisor board and ticket inbox slot in here (roles: null = everyone).
  var VIEWS = [
    { id: 'chats', title: 'Chats', element: 'view-chats', roles: null }
  ];

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
    var bubble = el('div', { className: 'msg', testid: 'message', text: msg.text });
    bubble.dataset.from = from;
    var row = el('li', { className: 'msg-row from-' + from }, bubble);
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
      state: null
    };
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

  function sendChatMessage(chat, text) {
    var msg = {
      seq: null,
      from: 'operator',
      author: app.operator ? app.operator.name : '',
      text: text,
      ts: Date.now(),
      cmid: newClientMsgId(),
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
    var ok = sendReady({
      type: 'message', session_id: chat.id, client_msg_id: msg.cmid, text: msg.text
    });
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
    error: onError,
    pong: function () {}
  };

  function handleFrame(frame) {
    var h = handlers[frame.type];
    if (h) h(frame);
  }

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
    var why = f.reason === 'requeued' ? 'was returned to the queue' : 'was taken from you';
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
    var input = $('message-input');
    input.disabled = ended;
    $('send-button').disabled = ended;
    if (switched) {
      input.value = chat.draft || '';
      updateCharCount();
      if (chat.stickToBottom) chat.listEl.scrollTop = chat.listEl.scrollHeight;
      if (!ended) input.focus({ preventScroll: true });
    }
    renderTyping(chat);
    renderVisitor(chat);
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
    hideBanner();
    stopFlash();
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
