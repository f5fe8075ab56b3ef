/*
 * chatserver operator console: service levels and chat tools.
 *
 *  - SLA clocks (first response; for tickets also resolution) on chat tabs, queue
 *    entries, the chat header, the ticket inbox and the ticket view, counting
 *    down every second to `due` (docs/http-api.md, "Service levels");
 *  - plan badges (Free / Standard / VIP) and callback requests (phone, times);
 *  - transferring a chat to another level, department or colleague;
 *  - canned responses next to the composer (supervisors and admins add them);
 *  - the visitor context panel (customer, plan, past chats, tickets);
 *  - a time-tracking timer per chat, and "Log time" on tickets.
 *
 * Loaded after console.js and built on window.chatserverConsole (its helpers,
 * frame listeners and UI events). Same rules as console.js: text from the
 * network only ever goes into the page through textContent / createElement.
 */
(function () {
  'use strict';

  var C = window.chatserverConsole;
  if (!C || typeof C.on !== 'function' || typeof C.api !== 'function') return;

  var el = C.el;
  var clear = C.clear;
  var str = C.str;

  var TICK_MS = 1000;
  var TRANSFER_WAIT_MS = 10000;
  var CONTEXT_FRESH_MS = 60000;
  var TIMER_KEY = 'chatserver:timer:';

  var PLAN_NAMES = { free: 'Free', standard: 'Standard', vip: 'VIP' };
  var STATE_NAMES = {
    open: 'Open', in_progress: 'In progress', feedback_needed: 'Feedback needed',
    information: 'Information', answered: 'Answered', closed: 'Closed',
    new: 'New', waiting: 'Waiting', assigned: 'Assigned'
  };
  var TRANSFER_TARGETS = [
    { value: 'level:2', text: '2nd level support' },
    { value: 'level:3', text: '3rd level support' },
    { value: 'level:1', text: '1st level support' },
    { value: 'department:technical', text: 'Technical department' },
    { value: 'department:billing', text: 'Billing department' },
    { value: 'operator', text: 'A colleague (operator id)\u2026' }
  ];
  var CALLBACK_PREVIEW = 'Please call me back: ';

  function $(id) { return document.getElementById(id); }

  function enc(v) { return encodeURIComponent(String(v)); }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  function ms(v) { return typeof v === 'number' && isFinite(v) ? C.toMs(v) : null; }

  function planName(p) {
    p = str(p);
    return PLAN_NAMES[p.toLowerCase()] || (p ? p.charAt(0).toUpperCase() + p.slice(1) : '');
  }

  function stateName(s) { return STATE_NAMES[s] || str(s, '\u2014').replace(/_/g, ' '); }

  /** "3h 05m 12s", "12m 04s", "40s"; from one day on "2d 4h". */
  function formatDuration(msec) {
    var s = Math.max(0, Math.floor(msec / 1000));
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + pad2(m) + 'm ' + pad2(sec) + 's';
    if (m) return m + 'm ' + pad2(sec) + 's';
    return sec + 's';
  }

  /** Chat timer: "04:12", "1:02:03". */
  function formatTimer(msec) {
    var s = Math.max(0, Math.floor(msec / 1000));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    return (h ? h + ':' + pad2(m) : pad2(m)) + ':' + pad2(s % 60);
  }

  function formatLogged(seconds) {
    return seconds < 60 ? seconds + ' s' : Math.round(seconds / 60) + ' min';
  }

  function isSupervisor() {
    var role = C.role();
    return role === 'supervisor' || role === 'admin';
  }

  // ------------------------------------------------------------------
  // Per-chat state: SLA, kind, callback, department, level, timer
  // ------------------------------------------------------------------

  var chats = new Map();   // session_id -> svc state

  function clockOf(c) {
    if (!c || typeof c !== 'object') return null;
    return { due: ms(c.due), warn: ms(c.warns_at), done: ms(c.done_at), state: str(c.state) };
  }

  function noteSummary(s) {
    if (!s || typeof s.session_id !== 'string') return null;
    var st = chats.get(s.session_id);
    if (!st) {
      st = { id: s.session_id, timer: null, name: '' };
      chats.set(st.id, st);
    }
    var sla = s.sla && typeof s.sla === 'object' ? s.sla : {};
    st.plan = str(sla.plan, str(s.visitor && s.visitor.plan));
    st.first = clockOf(sla.first_response);
    if (st.first && st.first.due === null && st.first.done === null) st.first = null;  // no clock
    st.kind = str(s.kind, 'chat');
    st.callback = s.callback && typeof s.callback === 'object' ? s.callback : null;
    st.department = str(s.department);
    st.level = typeof s.level === 'number' ? s.level : 1;
    st.name = C.visitorName(s.visitor);
    return st;
  }

  // ------------------------------------------------------------------
  // SLA clocks
  // ------------------------------------------------------------------

  function clockState(c, now) {
    if (c.done !== null) return c.due === null || c.done <= c.due ? 'met' : 'breached';
    if (c.due === null) return 'paused';
    if (now > c.due) return 'breached';
    if (c.warn !== null && now >= c.warn) return 'warning';
    return 'ok';
  }

  function clockText(c, which, state, now) {
    var resolution = which === 'resolution';
    if (state === 'met') return resolution ? 'resolved in time' : 'answered in time';
    if (state === 'paused') return 'paused \u2014 waiting for customer';
    if (c.done !== null) return resolution ? 'resolved late' : 'answered late';
    if (state === 'breached') return 'overdue ' + formatDuration(now - c.due);
    return formatDuration(c.due - now) + ' left';
  }

  function paintClock(node, now) {
    var c = node._clock;
    if (!c) return;
    var state = clockState(c, now);
    var text = (node._label ? node._label + ': ' : '') + clockText(c, node.dataset.clock, state, now);
    if (node.dataset.slaState !== state) node.dataset.slaState = state;
    if (node.textContent !== text) node.textContent = text;
  }

  /** A live clock: span.sla-clock[data-sla-state][data-clock]. */
  function clockEl(c, which, label, testid) {
    var node = el('span', { className: 'sla-clock', testid: testid || 'sla-clock' });
    node.dataset.clock = which;
    node._clock = c;
    node._label = label || '';
    var what = which === 'resolution' ? 'Resolution' : 'First response';
    node.title = c.due !== null ? what + ' due ' + C.formatFull(c.due)
      : c.done !== null ? what + ' done ' + C.formatFull(c.done) : what + ': clock paused';
    paintClock(node, Date.now());
    return node;
  }

  function planBadge(plan, testid) {
    var key = str(plan).toLowerCase();
    return el('span', {
      className: 'plan-badge', testid: testid || 'plan-badge', text: planName(plan),
      title: 'Plan: ' + planName(plan), dataset: { plan: key }
    });
  }

  function phoneIcon(testid, title) {
    return el('span', {
      className: 'svc-phone', testid: testid, text: '\u260E', title: title || 'Callback request',
      attrs: { 'aria-label': title || 'Callback request' }
    });
  }

  function callbackText(cb) {
    if (!cb) return '';
    var text = str(cb.phone);
    if (str(cb.preferred_times)) text += ' \u00b7 ' + cb.preferred_times;
    return text;
  }

  // ------------------------------------------------------------------
  // Chat tabs and queue entries
  // ------------------------------------------------------------------

  C.on('chat-tab', function (p) {
    var chat = p.chat;
    var tab = p.tab;
    var st = chats.get(chat.id);
    if (!st) return;
    var name = tab.querySelector('.tab-name');
    var after = name ? name.nextSibling : null;
    var add = function (node) { tab.insertBefore(node, after); };
    tab.dataset.kind = st.kind;
    if (st.kind === 'callback') {
      add(phoneIcon('tab-callback', 'Callback request: ' + callbackText(st.callback)));
    }
    if (st.plan && !(st.plan === 'vip' && chat.priority === 'vip')) add(planBadge(st.plan, 'tab-plan'));
    if (st.first && !chat.ended) add(clockEl(st.first, 'first_response', '', 'sla-clock'));
  });

  C.on('queue-item', function (p) {
    var e = p.entry;
    var item = p.item;
    var head = item.querySelector('.queue-head');
    var name = head && head.querySelector('.queue-name');
    var cb = e.callback && typeof e.callback === 'object' ? e.callback : null;
    // Queue entries may lack `kind`: a callback request's preview is the server's own text.
    var isCallback = e.kind === 'callback' || !!cb || str(e.preview).indexOf(CALLBACK_PREVIEW) === 0;
    var plan = str(e.plan, str(e.sla && e.sla.plan));
    if (isCallback) {
      item.dataset.kind = 'callback';
      if (head) head.insertBefore(phoneIcon('queue-callback-icon', 'Callback request'), name ? name.nextSibling : null);
    }
    if (plan && head) head.insertBefore(planBadge(plan, 'queue-plan'), name ? name.nextSibling : null);
    var line = null;
    if (cb) {
      line = el('div', { className: 'queue-svc' });
      line.appendChild(el('span', { className: 'queue-callback', testid: 'queue-callback', text: '\u260E ' + callbackText(cb) }));
    }
    var first = e.sla && typeof e.sla === 'object' ? clockOf(e.sla.first_response) : null;
    if (first && (first.due !== null || first.done !== null)) {
      line = line || el('div', { className: 'queue-svc' });
      line.appendChild(clockEl(first, 'first_response', 'First response'));
    }
    if (line) item.appendChild(line);
  });

  // ------------------------------------------------------------------
  // The service bar under the chat header
  // ------------------------------------------------------------------

  var bar = null;
  var barChatId = null;

  function buildBar() {
    var header = document.querySelector('#chat-view .chat-header');
    if (!header) return null;
    var b = {};
    b.root = el('div', { className: 'svc-bar', testid: 'chat-service-bar' });
    b.plan = el('span', { className: 'svc-slot' });
    b.sla = el('span', { className: 'svc-slot' });
    b.callback = el('span', { className: 'svc-callback', testid: 'callback-info', hidden: true });
    b.timerClock = el('span', { className: 'svc-timer-clock', testid: 'chat-timer-clock', text: '00:00', title: 'Time worked on this chat' });
    b.timerToggle = el('button', { type: 'button', className: 'btn btn-small', testid: 'timer-toggle', text: 'Pause' });
    b.timerLog = el('button', { type: 'button', className: 'btn btn-small', testid: 'timer-log', text: 'Log time' });
    b.logged = el('span', { className: 'svc-logged muted small', testid: 'time-logged', attrs: { 'aria-live': 'polite' } });
    b.timer = el('span', { className: 'svc-timer', testid: 'chat-timer' },
      el('span', { className: 'svc-label', text: 'Time' }),
      b.timerClock, b.timerToggle, b.timerLog, b.logged);
    b.transferButton = el('button', { type: 'button', className: 'btn btn-small', testid: 'transfer-button', text: 'Transfer\u2026' });
    b.root.appendChild(b.plan);
    b.root.appendChild(b.sla);
    b.root.appendChild(b.callback);
    b.root.appendChild(el('span', { className: 'svc-spacer' }));
    b.root.appendChild(b.timer);
    b.root.appendChild(b.transferButton);
    header.parentNode.insertBefore(b.root, header.nextSibling);

    // Transfer form (shown under the bar).
    b.target = el('select', { testid: 'transfer-target', attrs: { 'aria-label': 'Transfer to' } });
    TRANSFER_TARGETS.forEach(function (t) { b.target.appendChild(el('option', { value: t.value, text: t.text })); });
    b.operatorId = el('input', {
      type: 'text', testid: 'transfer-operator', maxLength: 64, placeholder: 'Operator id (o_\u2026)', hidden: true,
      attrs: { 'aria-label': 'Operator id of the colleague', autocomplete: 'off', spellcheck: 'false' }
    });
    b.transferSubmit = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'transfer-submit', text: 'Transfer' });
    b.transferCancel = el('button', { type: 'button', className: 'btn btn-small', testid: 'transfer-cancel', text: 'Cancel' });
    b.transferError = el('div', { className: 'inline-error svc-error', testid: 'transfer-error', hidden: true, attrs: { role: 'alert' } });
    b.transferStatus = el('span', { className: 'muted small', testid: 'transfer-status' });
    b.transfer = el('form', { className: 'svc-transfer', testid: 'transfer-form', hidden: true, noValidate: true },
      el('span', { className: 'svc-label', text: 'Transfer to' }), b.target, b.operatorId,
      b.transferSubmit, b.transferCancel, b.transferStatus, b.transferError);
    b.root.parentNode.insertBefore(b.transfer, b.root.nextSibling);

    b.timerToggle.addEventListener('click', onTimerToggle);
    b.timerLog.addEventListener('click', onTimerLog);
    b.transferButton.addEventListener('click', function () { showTransfer(b.transfer.hidden); });
    b.transferCancel.addEventListener('click', function () { showTransfer(false); });
    b.target.addEventListener('change', function () {
      b.operatorId.hidden = b.target.value !== 'operator';
      if (!b.operatorId.hidden) b.operatorId.focus();
    });
    b.transfer.addEventListener('submit', onTransferSubmit);
    return b;
  }

  function renderBar(chat) {
    if (!bar) bar = buildBar();
    if (!bar) return;
    if (!chat) {
      barChatId = null;
      showTransfer(false);
      return;
    }
    if (barChatId !== chat.id) {
      barChatId = chat.id;
      showTransfer(false);
      closeCanned();
    }
    var st = chats.get(chat.id);
    clear(bar.plan);
    clear(bar.sla);
    if (st && st.plan) bar.plan.appendChild(planBadge(st.plan, 'plan-badge'));
    if (st && st.first) bar.sla.appendChild(clockEl(st.first, 'first_response', 'First response', 'chat-sla'));
    var cb = st && st.kind === 'callback';
    bar.callback.hidden = !cb;
    clear(bar.callback);
    if (cb) {
      bar.callback.appendChild(phoneIcon('callback-icon', 'Callback request'));
      bar.callback.appendChild(el('span', { text: 'Call back ' }));
      bar.callback.appendChild(el('strong', { testid: 'callback-phone', text: str(st.callback && st.callback.phone, '(no number)') }));
      if (st.callback && str(st.callback.preferred_times)) {
        bar.callback.appendChild(el('span', { testid: 'callback-times', text: ' \u00b7 ' + st.callback.preferred_times }));
      }
    }
    bar.transferButton.hidden = chat.ended;
    if (chat.ended) showTransfer(false);
    renderTimer(chat, Date.now());
  }

  C.on('chat-selected', function (chat) {
    renderBar(chat);
    renderCannedButton(chat);
    loadContext(chat, false);
  });

  // ------------------------------------------------------------------
  // Transfer
  // ------------------------------------------------------------------

  var transfer = { pending: null, timer: null };

  function showTransfer(on) {
    if (!bar) return;
    bar.transfer.hidden = !on;
    bar.transferError.hidden = true;
    bar.transferStatus.textContent = '';
    if (on) {
      bar.target.value = 'level:2';
      bar.operatorId.value = '';
      bar.operatorId.hidden = true;
      bar.transferSubmit.disabled = false;
      bar.target.focus();
    }
  }

  function transferError(text) {
    bar.transferError.textContent = text;
    bar.transferError.hidden = false;
    bar.transferStatus.textContent = '';
    bar.transferSubmit.disabled = false;
  }

  function onTransferSubmit(ev) {
    ev.preventDefault();
    var chat = C.selectedChat();
    if (!chat || chat.ended) return;
    var value = bar.target.value;
    var frame = { type: 'transfer', session_id: chat.id };
    var what = '';
    TRANSFER_TARGETS.forEach(function (t) { if (t.value === value) what = t.text; });
    if (value.indexOf('level:') === 0) {
      frame.level = Number(value.slice(6));
    } else if (value.indexOf('department:') === 0) {
      frame.department = value.slice(11);
    } else {
      var id = bar.operatorId.value.trim();
      if (!id) {
        transferError('Enter the operator id of the colleague');
        bar.operatorId.focus();
        return;
      }
      frame.operator_id = id;
      what = 'colleague ' + id;
    }
    bar.transferError.hidden = true;
    if (!C.send(frame)) {
      transferError('Not connected \u2014 try again when the connection is back');
      return;
    }
    transfer.pending = { sessionId: chat.id, at: Date.now(), what: what };
    bar.transferSubmit.disabled = true;
    bar.transferStatus.textContent = 'Transferring\u2026';
    clearTimeout(transfer.timer);
    transfer.timer = setTimeout(function () {
      if (transfer.pending && transfer.pending.sessionId === chat.id) {
        transfer.pending = null;
        if (barChatId === chat.id) transferError('No answer from the server \u2014 the chat is still yours');
      }
    }, TRANSFER_WAIT_MS);
  }

  C.on('error', function (f) {
    var p = transfer.pending;
    if (!p || f.ref || Date.now() - p.at > TRANSFER_WAIT_MS) return;
    transfer.pending = null;
    clearTimeout(transfer.timer);
    if (bar && barChatId === p.sessionId) {
      transferError('Transfer refused: ' + str(f.message, str(f.code, 'error')) + (f.code ? ' (' + f.code + ')' : ''));
    }
  });

  C.on('chat_removed', function (f) {
    var st = chats.get(f.session_id);
    var p = transfer.pending;
    var logged = st ? finishTimer(st, true) : null;
    if (p && p.sessionId === f.session_id) {
      transfer.pending = null;
      clearTimeout(transfer.timer);
      C.toast('Chat with ' + (st ? st.name : 'the visitor') + ' transferred to ' + p.what + '.', 'info');
    }
    if (logged) logged.then(function (sec) {
      if (sec) C.toast('Logged ' + formatLogged(sec) + ' on the chat with ' + (st ? st.name : 'the visitor') + '.', 'info');
    });
    chats.delete(f.session_id);
    if (barChatId === f.session_id) barChatId = null;
  });

  // ------------------------------------------------------------------
  // Time tracking
  // ------------------------------------------------------------------

  function loadTimer(id) {
    try {
      var v = JSON.parse(sessionStorage.getItem(TIMER_KEY + id) || 'null');
      if (v && typeof v.e === 'number') return v;
    } catch (e) { /* ignore */ }
    return null;
  }

  function saveTimer(st) {
    var t = st.timer;
    if (!t) return;
    try {
      if (t.done) sessionStorage.removeItem(TIMER_KEY + st.id);
      else sessionStorage.setItem(TIMER_KEY + st.id, JSON.stringify({ e: elapsed(t, Date.now()), r: t.since !== null, l: t.logged }));
    } catch (e) { /* private mode */ }
  }

  function startTimer(st, fresh) {
    if (st.timer && !fresh) return;
    var saved = fresh ? null : loadTimer(st.id);
    st.timer = {
      acc: saved ? saved.e : 0,
      since: saved && !saved.r ? null : Date.now(),
      logged: saved && typeof saved.l === 'number' ? saved.l : 0,
      done: false,
      busy: false,
      status: ''
    };
    saveTimer(st);
  }

  function elapsed(t, now) {
    return t.acc + (t.since !== null ? now - t.since : 0);
  }

  function renderTimer(chat, now) {
    if (!bar || !chat || barChatId !== chat.id) return;
    var st = chats.get(chat.id);
    var t = st && st.timer;
    bar.timer.hidden = !t;
    if (!t) return;
    bar.timerClock.textContent = formatTimer(elapsed(t, now));
    bar.timer.dataset.running = t.since !== null ? 'true' : 'false';
    bar.timerToggle.textContent = t.since !== null ? 'Pause' : 'Resume';
    bar.timerToggle.hidden = t.done;
    bar.timerLog.hidden = t.done;
    bar.timerLog.disabled = t.busy;
    bar.logged.textContent = t.status;
  }

  function onTimerToggle() {
    var chat = C.selectedChat();
    var st = chat && chats.get(chat.id);
    var t = st && st.timer;
    if (!t || t.done) return;
    var now = Date.now();
    if (t.since !== null) {
      t.acc += now - t.since;
      t.since = null;
    } else {
      t.since = now;
    }
    saveTimer(st);
    renderTimer(chat, now);
  }

  /** POST the time counted so far; resolves with the seconds logged (0: none). */
  function postTime(st) {
    var t = st.timer;
    var now = Date.now();
    var seconds = Math.round(elapsed(t, now) / 1000);
    if (seconds < 1 || t.busy) return Promise.resolve(0);
    seconds = Math.min(seconds, 86400);
    t.busy = true;
    var running = t.since !== null;
    // What is posted is taken off the counter; it runs on for what comes.
    t.acc = 0;
    t.since = running ? now : null;
    return C.api('POST', '/api/sessions/' + enc(st.id) + '/time', { seconds: seconds }).then(function () {
      t.busy = false;
      t.logged += seconds;
      t.status = 'Logged ' + formatLogged(t.logged);
      saveTimer(st);
      return seconds;
    }, function (err) {
      t.busy = false;
      t.acc += seconds * 1000;   // keep it for the next try
      t.status = 'Not logged: ' + err.message;
      saveTimer(st);
      C.toast('Could not log the time: ' + err.message, 'error');
      return 0;
    });
  }

  function onTimerLog() {
    var chat = C.selectedChat();
    var st = chat && chats.get(chat.id);
    if (!st || !st.timer || st.timer.done) return;
    var p = postTime(st);
    renderTimer(chat, Date.now());
    p.then(function (sec) {
      if (!sec && !st.timer.status) st.timer.status = 'Nothing to log yet';
      var current = C.selectedChat();
      if (current) renderTimer(current, Date.now());
    });
  }

  /** The chat ended (or was taken away): stop its timer and log what it counted. */
  function finishTimer(st, quiet) {
    var t = st.timer;
    if (!t || t.done) return null;
    var now = Date.now();
    if (t.since !== null) {
      t.acc += now - t.since;
      t.since = null;
    }
    t.done = true;
    var p = postTime(st).then(function (sec) {
      if (!t.status) t.status = t.logged ? 'Logged ' + formatLogged(t.logged) : '';
      saveTimer(st);
      var current = C.selectedChat();
      if (current && current.id === st.id) renderTimer(current, Date.now());
      return sec;
    });
    try { sessionStorage.removeItem(TIMER_KEY + st.id); } catch (e) { /* ignore */ }
    if (!quiet) {
      p.then(function (sec) {
        if (sec) C.toast('Logged ' + formatLogged(t.logged) + ' on the chat with ' + st.name + '.', 'info');
      });
    }
    return p;
  }

  C.on('chat-ended', function (chat) {
    var st = chats.get(chat.id);
    if (st) finishTimer(st, false);
  });

  // ------------------------------------------------------------------
  // Frames: chat summaries, first responses
  // ------------------------------------------------------------------

  function afterSummary(st, fresh) {
    var chat = C.chats().get(st.id);
    if (!chat) return;
    if (!chat.ended) startTimer(st, fresh);
    C.renderTab(chat);
    var selected = C.selectedChat();
    if (selected && selected.id === chat.id) renderBar(chat);
  }

  C.on('welcome', function (f) {
    (Array.isArray(f.chats) ? f.chats : []).forEach(function (s) {
      var st = noteSummary(s);
      if (st) afterSummary(st, false);
    });
  });

  C.on('chat_assigned', function (f) {
    var st = noteSummary(f.chat);
    if (!st) return;
    var fresh = !st.timer || st.timer.done;
    afterSummary(st, fresh);
  });

  C.on('ack', function (f) {
    if (typeof f.client_msg_id !== 'string') return;
    C.chats().forEach(function (chat) {
      if (!chat.byCmid || !chat.byCmid.has(f.client_msg_id)) return;
      var st = chats.get(chat.id);
      if (!st || !st.first || st.first.done !== null) return;
      st.first.done = typeof f.ts === 'number' ? C.toMs(f.ts) : Date.now();
      C.renderTab(chat);
      if (barChatId === chat.id) renderBar(chat);
    });
  });

  C.on('reset', function () {
    chats.clear();
    transfer.pending = null;
    barChatId = null;
    if (bar) showTransfer(false);
    closeCanned();
    ctx.id = null;
    ctx.seq++;
    if (ctx.root) ctx.root.hidden = true;
    ticketBox.number = null;
  });

  // ------------------------------------------------------------------
  // Canned responses
  // ------------------------------------------------------------------

  var canned = { button: null, menu: null, list: null, form: null, seq: 0 };

  function buildCanned() {
    var composer = $('composer');
    var input = $('message-input');
    if (!composer || !input) return false;
    canned.button = el('button', {
      type: 'button', className: 'btn btn-icon svc-canned-button', testid: 'canned-button', text: '\u2261',
      title: 'Canned responses', attrs: { 'aria-label': 'Canned responses', 'aria-haspopup': 'true', 'aria-expanded': 'false' }
    });
    composer.insertBefore(canned.button, input);
    canned.list = el('ul', { className: 'svc-canned-list', testid: 'canned-list' });
    canned.status = el('div', { className: 'muted small svc-canned-status', testid: 'canned-status' });
    canned.title = el('input', { type: 'text', testid: 'canned-title', maxLength: 100, placeholder: 'Title', attrs: { 'aria-label': 'Title' } });
    canned.text = el('textarea', {
      testid: 'canned-text', maxLength: 4000, rows: 3,
      placeholder: 'Text \u2014 placeholders: {visitor_name} {operator_name} {customer_id} {plan} {ticket}',
      attrs: { 'aria-label': 'Text' }
    });
    canned.department = el('select', { testid: 'canned-department', attrs: { 'aria-label': 'Department' } },
      el('option', { value: '', text: 'All departments' }),
      el('option', { value: 'technical', text: 'Technical' }),
      el('option', { value: 'billing', text: 'Billing' }));
    canned.save = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'canned-save', text: 'Add' });
    canned.error = el('div', { className: 'inline-error svc-error', testid: 'canned-error', hidden: true, attrs: { role: 'alert' } });
    canned.form = el('form', { className: 'svc-canned-form', testid: 'canned-form', noValidate: true },
      el('div', { className: 'svc-label', text: 'New canned response' }),
      canned.title, canned.text, el('div', { className: 'svc-row' }, canned.department, canned.save), canned.error);
    canned.menu = el('div', { className: 'svc-canned', testid: 'canned-menu', hidden: true, attrs: { role: 'dialog', 'aria-label': 'Canned responses' } },
      el('div', { className: 'section-title', text: 'Canned responses' }), canned.status, canned.list, canned.form);
    composer.appendChild(canned.menu);

    canned.button.addEventListener('click', function () {
      if (canned.menu.hidden) openCanned();
      else closeCanned();
    });
    canned.form.addEventListener('submit', onCannedAdd);
    canned.menu.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape') { closeCanned(); canned.button.focus(); }
    });
    document.addEventListener('mousedown', function (ev) {
      if (canned.menu.hidden) return;
      if (canned.menu.contains(ev.target) || canned.button.contains(ev.target)) return;
      closeCanned();
    });
    return true;
  }

  function renderCannedButton(chat) {
    if (!canned.button && !buildCanned()) return;
    canned.button.disabled = !chat || chat.ended;
    if (!chat || chat.ended) closeCanned();
  }

  function closeCanned() {
    if (!canned.menu) return;
    canned.menu.hidden = true;
    canned.button.setAttribute('aria-expanded', 'false');
    canned.seq++;
  }

  function openCanned() {
    var chat = C.selectedChat();
    if (!chat || chat.ended) return;
    canned.menu.hidden = false;
    canned.button.setAttribute('aria-expanded', 'true');
    canned.form.hidden = !isSupervisor();
    canned.error.hidden = true;
    loadCanned(chat);
  }

  function loadCanned(chat) {
    var seq = ++canned.seq;
    var st = chats.get(chat.id);
    clear(canned.list);
    canned.status.textContent = 'Loading\u2026';
    var q = '/api/canned?session_id=' + enc(chat.id) + (st && st.department ? '&department=' + enc(st.department) : '');
    C.api('GET', q).then(function (r) {
      if (seq !== canned.seq) return;
      var items = r && Array.isArray(r.canned) ? r.canned : [];
      canned.status.textContent = items.length ? '' : 'No canned responses yet';
      items.forEach(function (item) {
        if (!item || typeof item !== 'object') return;
        var text = str(item.rendered, str(item.text));
        var btn = el('button', {
          type: 'button', className: 'svc-canned-item', testid: 'canned-item', title: text
        }, el('span', { className: 'svc-canned-title', text: str(item.title, '(untitled)') }),
        el('span', { className: 'svc-canned-preview', text: text }));
        if (item.department) btn.dataset.department = String(item.department);
        btn.addEventListener('click', function () {
          insertIntoComposer(text);
          closeCanned();
        });
        canned.list.appendChild(el('li', null, btn));
      });
      var first = canned.list.querySelector('button');
      if (first) first.focus();
    }).catch(function (err) {
      if (seq !== canned.seq) return;
      canned.status.textContent = 'Could not load canned responses: ' + err.message;
    });
  }

  function insertIntoComposer(text) {
    var input = $('message-input');
    if (!input || input.disabled) return;
    input.focus();
    var start = typeof input.selectionStart === 'number' ? input.selectionStart : input.value.length;
    var end = typeof input.selectionEnd === 'number' ? input.selectionEnd : start;
    input.setRangeText(text, start, end, 'end');
    // The console keeps the draft, the typing indicator and the counter from 'input'.
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }

  function onCannedAdd(ev) {
    ev.preventDefault();
    var title = canned.title.value.trim();
    var text = canned.text.value.trim();
    if (!title || !text) {
      canned.error.textContent = 'Enter a title and a text';
      canned.error.hidden = false;
      return;
    }
    var body = { title: title, text: text };
    if (canned.department.value) body.department = canned.department.value;
    canned.save.disabled = true;
    canned.error.hidden = true;
    C.api('POST', '/api/canned', body).then(function () {
      canned.save.disabled = false;
      canned.title.value = '';
      canned.text.value = '';
      C.toast('Canned response \u201c' + title + '\u201d added', 'info');
      var chat = C.selectedChat();
      if (chat && !canned.menu.hidden) loadCanned(chat);
    }).catch(function (err) {
      canned.save.disabled = false;
      canned.error.textContent = err.message + (err.status ? ' (' + err.status + ')' : '');
      canned.error.hidden = false;
    });
  }

  // ------------------------------------------------------------------
  // Visitor context panel
  // ------------------------------------------------------------------

  var ctx = { root: null, body: null, id: null, at: 0, seq: 0 };

  function buildContext() {
    var info = $('visitor-info');
    if (!info) return false;
    ctx.body = el('div', { className: 'svc-context-body' });
    ctx.refresh = el('button', { type: 'button', className: 'link-button small', testid: 'context-refresh', text: 'Refresh' });
    ctx.root = el('section', { className: 'svc-context', testid: 'context-panel', hidden: true },
      el('div', { className: 'section-title section-title-row' }, el('span', { text: 'Customer context' }), ctx.refresh),
      ctx.body);
    info.parentNode.insertBefore(ctx.root, info.nextSibling);
    ctx.refresh.addEventListener('click', function () { loadContext(C.selectedChat(), true); });
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
    var first = ctx.id !== chat.id;
    ctx.id = chat.id;
    ctx.at = Date.now();
    var seq = ++ctx.seq;
    if (first) {
      clear(ctx.body);
      ctx.body.appendChild(el('div', { className: 'muted small', text: 'Loading\u2026' }));
    }
    C.api('GET', '/api/sessions/' + enc(chat.id) + '/context').then(function (r) {
      if (seq === ctx.seq) renderContext(r || {});
    }).catch(function (err) {
      if (seq !== ctx.seq) return;
      ctx.at = 0;
      clear(ctx.body);
      ctx.body.appendChild(el('div', { className: 'inline-error svc-error', testid: 'context-error', text: 'Could not load the context: ' + err.message }));
    });
  }

  function dlRow(dl, label, node) {
    dl.appendChild(el('dt', { text: label }));
    dl.appendChild(el('dd', null, node));
  }

  function renderContext(r) {
    clear(ctx.body);
    var dl = el('dl', { className: 'visitor-info svc-context-info' });
    var customer = r.customer && typeof r.customer === 'object' ? r.customer : null;
    var number = str(r.customer_id);
    var who = el('span', { testid: 'context-customer', className: 'break', text: number || '\u2014 (not identified)' });
    dlRow(dl, 'Customer number', who);
    if (customer && str(customer.name)) dlRow(dl, 'Customer', el('span', { className: 'break', testid: 'context-customer-name', text: customer.name }));
    if (customer && str(customer.contract)) dlRow(dl, 'Contract', el('span', { className: 'break', text: customer.contract }));

    var plan = r.plan && typeof r.plan === 'object' ? r.plan : {};
    var planBox = el('span', { className: 'svc-context-plan', testid: 'context-plan' });
    planBox.dataset.plan = str(plan.name).toLowerCase();
    planBox.dataset.phone = plan.phone ? 'true' : 'false';
    planBox.dataset.personalContact = plan.personal_contact ? 'true' : 'false';
    planBox.appendChild(planBadge(plan.name, 'context-plan-badge'));
    var flags = [
      (plan.phone ? '\u2713' : '\u2717') + ' phone support',
      (plan.personal_contact ? '\u2713' : '\u2717') + ' personal contact'
    ];
    if (typeof plan.first_response_hours === 'number') flags.push('first response within ' + plan.first_response_hours + ' h');
    planBox.appendChild(el('span', { className: 'svc-flags small', text: flags.join(' \u00b7 ') }));
    dlRow(dl, 'Plan', planBox);
    ctx.body.appendChild(dl);

    var past = Array.isArray(r.past_chats) ? r.past_chats : [];
    ctx.body.appendChild(el('div', { className: 'svc-subtitle', text: 'Past chats (' + past.length + ')' }));
    var pastList = el('ul', { className: 'svc-context-list', testid: 'context-past-chats' });
    past.forEach(function (p) {
      if (!p || typeof p !== 'object') return;
      var when = typeof p.created_at === 'number' ? C.formatFull(C.toMs(p.created_at)) : '';
      var bits = [when, stateName(p.state)];
      if (p.kind === 'callback') bits.push('callback');
      pastList.appendChild(el('li', { testid: 'context-past-chat', text: bits.filter(Boolean).join(' \u00b7 '), dataset: { sessionId: str(p.session_id) } }));
    });
    if (!past.length) pastList.appendChild(el('li', { className: 'muted', text: 'None' }));
    ctx.body.appendChild(pastList);

    var tks = Array.isArray(r.tickets) ? r.tickets : [];
    ctx.body.appendChild(el('div', { className: 'svc-subtitle', text: 'Tickets (' + tks.length + ')' }));
    var tkList = el('ul', { className: 'svc-context-list', testid: 'context-tickets' });
    tks.forEach(function (t) {
      if (!t || typeof t !== 'object') return;
      var btn = el('button', { type: 'button', className: 'link-button svc-context-ticket', testid: 'context-ticket' },
        el('strong', { text: str(t.ref, '#' + t.number) + ' ' }),
        el('span', { text: str(t.subject, '(no subject)') }),
        el('span', { className: 'muted', text: ' \u00b7 ' + stateName(t.state) }));
      if (typeof t.number === 'number') {
        btn.dataset.number = String(t.number);
        btn.addEventListener('click', function () { C.openTicketView(t.number); });
      } else {
        btn.disabled = true;
      }
      tkList.appendChild(el('li', null, btn));
    });
    if (!tks.length) tkList.appendChild(el('li', { className: 'muted', text: 'None' }));
    ctx.body.appendChild(tkList);
  }

  // ------------------------------------------------------------------
  // Tickets: clocks in the inbox and the ticket view, logging time
  // ------------------------------------------------------------------

  function ticketClocks(sla, short) {
    var out = [];
    if (!sla || typeof sla !== 'object') return out;
    var first = clockOf(sla.first_response);
    var resolution = clockOf(sla.resolution);
    if (first && (!short || first.done === null)) {
      out.push(clockEl(first, 'first_response', short ? 'Response' : 'First response', short ? 'ticket-row-sla' : 'ticket-sla-first'));
    }
    if (resolution) out.push(clockEl(resolution, 'resolution', 'Resolution', short ? 'ticket-row-sla' : 'ticket-sla-resolution'));
    return out;
  }

  C.on('ticket-row', function (p) {
    var sla = p.ticket.sla;
    var meta = p.row.querySelector('.ticket-row-meta');
    if (!meta || !sla) return;
    if (str(sla.plan)) meta.appendChild(planBadge(sla.plan, 'ticket-row-plan'));
    ticketClocks(sla, true).forEach(function (node) { meta.appendChild(node); });
  });

  var ticketBox = { root: null, number: null };

  function buildTicketBox() {
    var meta = document.querySelector('#ticket-view .ticket-meta');
    if (!meta) return false;
    var b = ticketBox;
    b.sla = el('div', { className: 'svc-ticket-sla', testid: 'ticket-sla' });
    b.minutes = el('input', {
      type: 'number', testid: 'ticket-time-minutes', min: '1', max: '1440', step: '1', placeholder: 'min',
      attrs: { 'aria-label': 'Minutes worked' }
    });
    b.note = el('input', { type: 'text', testid: 'ticket-time-note', maxLength: 300, placeholder: 'Note (optional)', attrs: { 'aria-label': 'Note' } });
    b.submit = el('button', { type: 'submit', className: 'btn btn-small', testid: 'ticket-time-submit', text: 'Log time' });
    b.status = el('span', { className: 'muted small', testid: 'ticket-time-status', attrs: { 'aria-live': 'polite' } });
    b.form = el('form', { className: 'svc-ticket-time', testid: 'ticket-time-form', noValidate: true },
      el('span', { className: 'svc-label', text: 'Time' }), b.minutes, el('span', { className: 'muted small', text: 'min' }),
      b.note, b.submit, b.status);
    b.root = el('div', { className: 'svc-ticket' }, b.sla, b.form);
    meta.parentNode.insertBefore(b.root, meta.nextSibling);
    b.form.addEventListener('submit', onTicketTime);
    return true;
  }

  C.on('ticket', function (cur) {
    if (!cur || !cur.ticket) return;
    if (!ticketBox.root && !buildTicketBox()) return;
    var t = cur.ticket;
    if (ticketBox.number !== t.number) {
      ticketBox.number = t.number;
      ticketBox.minutes.value = '';
      ticketBox.note.value = '';
      ticketBox.status.textContent = '';
    }
    clear(ticketBox.sla);
    if (t.sla && str(t.sla.plan)) ticketBox.sla.appendChild(planBadge(t.sla.plan, 'ticket-plan'));
    ticketClocks(t.sla, false).forEach(function (node) { ticketBox.sla.appendChild(node); });
    decorateTimeEvents(cur.events);
  });

  /** Time entries are internal events of kind "time": say how much. */
  function decorateTimeEvents(events) {
    var byN = new Map();
    (events || []).forEach(function (e) { if (e && e.kind === 'time') byN.set(e.n, e); });
    if (!byN.size) return;
    var items = document.querySelectorAll('#ticket-events [data-kind="time"]');
    for (var i = 0; i < items.length; i++) {
      var ev = byN.get(Number(items[i].dataset.n));
      if (!ev || items[i]._svc) continue;
      items[i]._svc = true;
      var body = ev.body && typeof ev.body === 'object' ? ev.body : {};
      var kind = items[i].querySelector('.tev-kind');
      if (kind) kind.textContent = 'Time logged (internal)';
      var seconds = Number(body.seconds) || 0;
      items[i].appendChild(el('div', {
        className: 'tev-text', testid: 'ticket-time-entry',
        text: formatLogged(seconds) + (str(body.note) ? ' \u2014 ' + body.note : '')
      }));
    }
  }

  function onTicketTime(ev) {
    ev.preventDefault();
    var b = ticketBox;
    var number = b.number;
    var minutes = Number(b.minutes.value);
    if (!(minutes > 0) || minutes > 1440) {
      b.status.textContent = 'Enter the minutes worked (1\u20131440)';
      b.minutes.focus();
      return;
    }
    var body = { minutes: minutes };
    if (b.note.value.trim()) body.note = b.note.value.trim();
    b.submit.disabled = true;
    b.status.textContent = 'Saving\u2026';
    C.api('POST', '/api/tickets/' + enc(number) + '/time', body).then(function (r) {
      b.submit.disabled = false;
      if (b.number !== number) return;
      var seconds = r && typeof r.seconds === 'number' ? r.seconds : Math.round(minutes * 60);
      b.minutes.value = '';
      b.note.value = '';
      b.status.textContent = 'Logged ' + formatLogged(seconds);
      C.openTicketView(number);
    }).catch(function (err) {
      b.submit.disabled = false;
      if (b.number === number) b.status.textContent = 'Not logged: ' + err.message;
    });
  }

  // ------------------------------------------------------------------
  // One clock for everything
  // ------------------------------------------------------------------

  var ticks = 0;
  setInterval(function () {
    var now = Date.now();
    var nodes = document.querySelectorAll('.sla-clock');
    for (var i = 0; i < nodes.length; i++) paintClock(nodes[i], now);
    var chat = C.selectedChat();
    if (chat) renderTimer(chat, now);
    if (++ticks % 5 === 0) {
      chats.forEach(function (st) { if (st.timer && !st.timer.done && st.timer.since !== null) saveTimer(st); });
    }
  }, TICK_MS);

  // Chats already on screen (the console may have started before this file ran).
  C.chats().forEach(function (chat) { C.renderTab(chat); });
  renderCannedButton(C.selectedChat());
})();
