/*
 * chatserver console: the supervisor board (role supervisor or admin).
 *
 * The server pushes the board over the operator WebSocket: one `board` frame
 * (the whole snapshot) after welcome, then `board_patch` frames with only what
 * changed (docs/protocol.md). This file keeps a copy, applies the patches and
 * redraws; from it a supervisor watches any live chat read-only, whispers to
 * its operator, takes it over or reassigns it.
 *
 * Same security rule as console.js: network text goes into the page only via
 * textContent / createTextNode / data-* attributes; no innerHTML.
 */
(function () {
  'use strict';

  var C = window.chatserverConsole;
  var charts = window.chatserverCharts;
  if (!C || !charts) return;
  var el = C.el;
  var clear = C.clear;
  var str = C.str;

  var STATUS_ORDER = { online: 0, away: 1, offline: 2 };
  var STATUS_LABELS = { online: 'Online', away: 'Away', offline: 'Offline' };
  var DEPARTMENTS = { technical: 'Technical', billing: 'Billing' };

  var board = {
    state: null,          // the snapshot, patched
    rev: -1,
    range: 'day',         // counters and times: 'hour' or 'day'
    hideOffline: true,
    dom: null,            // built once, on the first snapshot
    rows: new Map(),      // operator id -> {tr, key}
    order: '',            // operator ids in table order, joined
    waiting: [],          // from the operators' `queue` frames
    watch: null,          // the chat being watched
    takingOver: null      // session id of a take_over in flight
  };

  // ------------------------------------------------------------ patches
  function sortOperators(rows) {
    return rows.sort(function (a, b) {
      var s = (STATUS_ORDER[a.status] || 3) - (STATUS_ORDER[b.status] || 3);
      if (s) return s;
      var n = a.name.toLowerCase().localeCompare(b.name.toLowerCase());
      return n || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    });
  }

  /** The same as chatserver.board.apply_patch. */
  function applyPatch(state, patch) {
    var out = Object.assign({}, state, patch.set || {});
    if ('ts' in patch) out.ts = patch.ts;
    if (patch.operators) {
      var rows = new Map();
      (state.operators || []).forEach(function (r) { rows.set(r.id, r); });
      patch.operators.remove.forEach(function (id) { rows.delete(id); });
      patch.operators.upsert.forEach(function (r) { rows.set(r.id, r); });
      out.operators = sortOperators(Array.from(rows.values()));
    }
    if (patch.history) {
      var points = new Map();
      (state.history || []).forEach(function (p) { points.set(p.t, p); });
      patch.history.points.forEach(function (p) { points.set(p.t, p); });
      var since = patch.history.since;
      out.history = Array.from(points.keys()).sort(function (a, b) { return a - b; })
        .filter(function (t) { return since !== null && t >= since; })
        .map(function (t) { return points.get(t); });
    }
    return out;
  }

  // ------------------------------------------------------------ helpers
  function seconds(v) {
    if (typeof v !== 'number') return '\u2014';
    return C.formatWaiting(v * 1000);
  }

  function since(ms) {
    return typeof ms === 'number' ? C.formatWaiting(Date.now() - ms) : '\u2014';
  }

  function tile(label, testid, extraTestid) {
    var value = el('div', { className: 'tile-value', testid: testid, text: '\u2014' });
    var sub = el('div', { className: 'tile-sub muted small', testid: extraTestid || null });
    return { node: el('div', { className: 'tile' }, el('div', { className: 'tile-label', text: label }), value, sub), value: value, sub: sub };
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function operatorName(id) {
    var rows = (board.state && board.state.operators) || [];
    for (var i = 0; i < rows.length; i++) if (rows[i].id === id) return rows[i].name;
    return 'Operator';
  }

  // ------------------------------------------------------------ DOM
  function build() {
    var root = document.getElementById('view-board');
    clear(root);
    var d = {};
    d.tiles = {
      staff: tile('Operators online', 'board-online', 'board-staff-detail'),
      load: tile('Load', 'board-load'),
      queue: tile('Waiting', 'board-queue-total', 'board-longest-wait'),
      started: tile('Chats started', 'board-started', 'board-outcomes'),
      wait: tile('Wait (avg / p90)', 'board-wait'),
      first: tile('First response (avg / p90)', 'board-first-response'),
      sla: tile('SLA at risk / breached', 'board-sla', 'board-sla-detail'),
      csat: tile('CSAT', 'board-csat')
    };
    d.loadBar = el('div', { className: 'load-bar tile-bar' }, d.loadFill = el('div', { className: 'load-bar-fill' }));
    d.tiles.load.node.appendChild(d.loadBar);

    d.rangeHour = el('button', { type: 'button', className: 'seg', text: 'This hour', testid: 'board-range-hour' });
    d.rangeDay = el('button', { type: 'button', className: 'seg', text: 'Today', testid: 'board-range-day' });
    d.rangeHour.addEventListener('click', function () { board.range = 'hour'; render(); });
    d.rangeDay.addEventListener('click', function () { board.range = 'day'; render(); });
    d.window = el('span', { className: 'muted small', testid: 'board-window' });

    d.queueChart = el('div', { className: 'chart-slot' });
    d.loadChart = el('div', { className: 'chart-slot' });
    d.byDept = el('tbody');
    d.byLevel = el('tbody');
    d.byPriority = el('div', { className: 'small muted', testid: 'board-by-priority' });
    d.waitingList = el('ol', { className: 'board-waiting', testid: 'board-waiting' });
    d.waitingEmpty = el('div', { className: 'queue-empty', text: 'Nobody is waiting' });

    d.hideOffline = el('input', { type: 'checkbox', checked: board.hideOffline, testid: 'board-hide-offline' });
    d.hideOffline.addEventListener('change', function () {
      board.hideOffline = d.hideOffline.checked;
      board.order = '';
      renderOperators();
    });
    d.operators = el('tbody', { testid: 'board-operators' });

    var main = el('div', { className: 'board-main' },
      el('div', { className: 'board-toolbar' },
        el('div', { className: 'seg-group', attrs: { role: 'group', 'aria-label': 'Period' } }, d.rangeHour, d.rangeDay),
        d.window),
      el('div', { className: 'board-tiles' },
        d.tiles.staff.node, d.tiles.load.node, d.tiles.queue.node, d.tiles.started.node,
        d.tiles.wait.node, d.tiles.first.node, d.tiles.sla.node, d.tiles.csat.node),
      el('div', { className: 'board-cards' },
        el('section', { className: 'card card-wide' },
          el('div', { className: 'section-title', text: 'Queue length and longest wait \u2014 last 6 hours' }),
          el('div', { className: 'chart-legend small' },
            el('span', { className: 'legend legend-queue', text: 'Waiting chats (left axis)' }),
            el('span', { className: 'legend legend-wait', text: 'Longest wait (right axis)' })),
          d.queueChart),
        el('section', { className: 'card' },
          el('div', { className: 'section-title', text: 'Load per operator' }),
          d.loadChart),
        el('section', { className: 'card' },
          el('div', { className: 'section-title', text: 'Waiting now' }),
          el('table', { className: 'mini-table' },
            el('thead', null, el('tr', null, el('th', { text: 'Department' }), el('th', { text: 'Waiting' }), el('th', { text: 'Longest' }))),
            d.byDept),
          el('table', { className: 'mini-table' },
            el('thead', null, el('tr', null, el('th', { text: 'Level' }), el('th', { text: 'Waiting' }), el('th', { text: 'Longest' }))),
            d.byLevel),
          d.byPriority),
        el('section', { className: 'card' },
          el('div', { className: 'section-title', text: 'Waiting chats' }),
          d.waitingList, d.waitingEmpty)),
      el('section', { className: 'card card-full' },
        el('div', { className: 'section-title section-title-row' },
          el('span', { text: 'Operators' }),
          el('label', { className: 'small muted check' }, d.hideOffline, ' Hide offline')),
        el('table', { className: 'board-table' },
          el('thead', null, el('tr', null,
            el('th', { text: 'Operator' }), el('th', { text: 'Status' }),
            el('th', { text: 'Load' }), el('th', { text: 'Current chats' }))),
          d.operators)));

    d.watch = buildWatch();
    root.appendChild(main);
    root.appendChild(d.watch.node);
    board.dom = d;
    board.rows = new Map();
    board.order = '';
    renderWaiting();
  }

  function buildWatch() {
    var w = {};
    w.title = el('span', { className: 'chat-title', testid: 'watch-title' });
    w.meta = el('div', { className: 'small muted', testid: 'watch-operator' });
    w.messages = el('ol', { className: 'messages watch-messages', testid: 'watch-messages', attrs: { 'aria-label': 'Messages (read-only)' } });
    w.takeOver = el('button', { type: 'button', className: 'btn btn-small btn-primary', text: 'Take over', testid: 'take-over' });
    w.unwatch = el('button', { type: 'button', className: 'btn btn-small', text: 'Stop watching', testid: 'unwatch' });
    w.reassignSelect = el('select', { testid: 'reassign-select', attrs: { 'aria-label': 'Reassign to' } });
    w.reassign = el('button', { type: 'button', className: 'btn btn-small', text: 'Reassign', testid: 'reassign-button' });
    w.whisper = el('textarea', {
      className: 'message-input', rows: 2, maxLength: 4000, testid: 'whisper-input',
      placeholder: 'Whisper to the operator\u2026 (the visitor never sees it)', attrs: { 'aria-label': 'Whisper' }
    });
    w.whisperSend = el('button', { type: 'submit', className: 'btn btn-primary btn-small', text: 'Whisper', testid: 'whisper-send' });
    var form = el('form', { className: 'whisper-form' }, w.whisper, w.whisperSend);
    w.node = el('aside', { className: 'board-watch panel', testid: 'board-watch', hidden: true },
      el('header', { className: 'watch-header' },
        el('div', null, w.title, el('span', { className: 'watch-badge', text: 'read-only' })),
        w.meta,
        el('div', { className: 'watch-actions' }, w.takeOver, w.unwatch),
        el('div', { className: 'watch-actions' }, w.reassignSelect, w.reassign)),
      w.messages,
      form);
    w.takeOver.addEventListener('click', function () {
      if (!board.watch) return;
      board.takingOver = board.watch.id;
      C.send({ type: 'take_over', session_id: board.watch.id });
    });
    w.unwatch.addEventListener('click', function () { stopWatching(true); });
    w.reassign.addEventListener('click', function () {
      var target = w.reassignSelect.value;
      if (!board.watch || !target) return;
      C.send({ type: 'reassign', session_id: board.watch.id, operator_id: target });
    });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var text = w.whisper.value.trim();
      if (!board.watch || !text) return;
      if (C.send({ type: 'whisper', session_id: board.watch.id, text: text })) w.whisper.value = '';
    });
    w.whisper.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    return w;
  }

  // ------------------------------------------------------------ render
  function render() {
    var s = board.state;
    if (!s) return;
    if (!board.dom) build();
    var d = board.dom;
    var t = d.tiles;
    var staff = s.staff || {};
    setText(t.staff.value, String(staff.online || 0));
    setText(t.staff.sub, (staff.away || 0) + ' away \u00b7 ' + (staff.offline || 0) + ' offline');
    setText(t.load.value, (staff.load || 0) + ' / ' + (staff.capacity || 0));
    var pct = staff.capacity ? Math.min(100, Math.round(100 * staff.load / staff.capacity)) : 0;
    d.loadFill.style.width = pct + '%';
    d.loadFill.classList.toggle('is-full', staff.capacity > 0 && staff.load >= staff.capacity);
    var q = s.queue || {};
    setText(t.queue.value, String(q.total || 0));
    tick();
    d.rangeHour.classList.toggle('is-active', board.range === 'hour');
    d.rangeDay.classList.toggle('is-active', board.range === 'day');
    var counts = (s.counts || {})[board.range] || {};
    setText(t.started.value, String(counts.started || 0));
    setText(t.started.sub, (counts.answered || 0) + ' answered \u00b7 ' + (counts.missed || 0) + ' missed \u00b7 ' + (counts.escalated || 0) + ' escalated');
    t.started.sub.dataset.answered = String(counts.answered || 0);
    t.started.sub.dataset.missed = String(counts.missed || 0);
    t.started.sub.dataset.escalated = String(counts.escalated || 0);
    var times = (s.times || {})[board.range] || {};
    var wait = times.wait || {};
    var first = times.first_response || {};
    setText(t.wait.value, seconds(wait.avg) + ' / ' + seconds(wait.p90));
    setText(t.wait.sub, (wait.n || 0) + ' chats');
    setText(t.first.value, seconds(first.avg) + ' / ' + seconds(first.p90));
    setText(t.first.sub, (first.n || 0) + ' chats');
    var sla = s.sla || {};
    setText(t.sla.value, (sla.at_risk || 0) + ' / ' + (sla.breached || 0));
    t.sla.node.classList.toggle('is-bad', (sla.breached || 0) + (sla.chats_breached || 0) > 0);
    t.sla.node.classList.toggle('is-warn', (sla.at_risk || 0) + (sla.chats_at_risk || 0) > 0);
    var today = sla.breaches_today || {};
    var breachesToday = Object.keys(today).reduce(function (n, k) { return n + today[k]; }, 0);
    setText(t.sla.sub, 'tickets \u00b7 chats ' + (sla.chats_at_risk || 0) + ' / ' + (sla.chats_breached || 0) + ' \u00b7 ' + breachesToday + ' breaches today');
    setText(t.csat.value, s.csat ? String(s.csat.avg) : '\u2014');
    setText(t.csat.sub, s.csat ? s.csat.n + ' ratings today' : 'no ratings yet');
    var w = s.window || {};
    setText(d.window, board.range === 'hour'
      ? 'since ' + C.formatClock(w.hour_start) + ' (' + str(w.tz) + ')'
      : 'since midnight (' + str(w.tz) + ')');

    renderBreakdowns(q);
    renderOperators();
    renderReassignChoices();
    if (C.view() === 'board') renderCharts();
  }

  function renderBreakdowns(q) {
    var d = board.dom;
    clear(d.byDept);
    (q.by_department || []).forEach(function (r) {
      d.byDept.appendChild(el('tr', null,
        el('td', { text: r.department ? (DEPARTMENTS[r.department] || r.department) : 'Any' }),
        el('td', { text: String(r.total) }),
        el('td', { className: 'ticking', dataset: { since: r.oldest_since }, text: since(r.oldest_since) })));
    });
    if (!(q.by_department || []).length) d.byDept.appendChild(el('tr', null, el('td', { className: 'muted', text: 'Nobody is waiting', colSpan: 3 })));
    clear(d.byLevel);
    (q.by_level || []).forEach(function (r) {
      d.byLevel.appendChild(el('tr', null,
        el('td', { text: r.level + '. level' }),
        el('td', { text: String(r.total) }),
        el('td', { className: 'ticking', dataset: { since: r.oldest_since }, text: since(r.oldest_since) })));
    });
    var p = q.by_priority || {};
    setText(d.byPriority, 'Urgent ' + (p.urgent || 0) + ' \u00b7 VIP ' + (p.vip || 0) + ' \u00b7 Normal ' + (p.normal || 0));
  }

  function renderCharts() {
    var s = board.state;
    var d = board.dom;
    if (!s || !d) return;
    var history = s.history || [];
    charts.line(d.queueChart, {
      testid: 'chart-queue',
      title: 'Queue length and longest wait',
      height: 170,
      series: [
        { name: 'Waiting', className: 'series-queue', points: history.map(function (p) { return [p.t, p.queue]; }) },
        { name: 'Longest wait', className: 'series-wait', points: history.map(function (p) { return [p.t, p.wait]; }) }
      ]
    });
    var working = (s.operators || []).filter(function (r) { return r.status !== 'offline' || r.load > 0; });
    charts.bars(d.loadChart, {
      testid: 'chart-load',
      title: 'Load per operator',
      empty: 'Nobody online',
      rows: working.slice(0, 60).map(function (r) {
        return { label: r.name, value: r.load, max: r.capacity, className: 'status-' + r.status };
      })
    });
  }

  function chatChip(c) {
    var chip = el('button', {
      type: 'button', className: 'chat-chip', testid: 'board-chat',
      dataset: { sessionId: c.session_id, since: c.since },
      title: 'Watch this chat'
    }, el('span', { className: 'chip-name', text: str(c.visitor, 'Visitor') }),
       el('span', { className: 'chip-age ticking', dataset: { since: c.since }, text: since(c.since) }));
    chip.addEventListener('click', function () {
      if (!C.openChat(c.session_id)) startWatching(c.session_id);  // own chats open as usual
    });
    return chip;
  }

  function operatorRow(r) {
    var pct = r.capacity ? Math.min(100, Math.round(100 * r.load / r.capacity)) : 0;
    var chats = el('div', { className: 'chip-list' });
    (r.chats || []).forEach(function (c) { chats.appendChild(chatChip(c)); });
    return el('tr', { testid: 'board-operator', dataset: { operatorId: r.id, status: r.status, name: r.name } },
      el('td', null,
        el('span', { className: 'op-cell-name', text: r.name }),
        r.role !== 'operator' ? el('span', { className: 'role-tag', text: r.role }) : null),
      el('td', null,
        el('span', { className: 'status-dot', dataset: { status: r.status } }),
        el('span', { testid: 'board-operator-status', text: ' ' + (STATUS_LABELS[r.status] || r.status) })),
      el('td', { className: 'load-cell' },
        el('span', { testid: 'board-operator-load', text: r.load + ' / ' + r.capacity }),
        el('div', { className: 'load-bar' },
          el('div', { className: 'load-bar-fill' + (r.load >= r.capacity ? ' is-full' : ''), style: 'width: ' + pct + '%' }))),
      el('td', null, chats));
  }

  function renderOperators() {
    var s = board.state;
    var body = board.dom.operators;
    var shown = (s.operators || []).filter(function (r) {
      return !(board.hideOffline && r.status === 'offline' && !(r.chats || []).length);
    });
    var seen = new Set();
    shown.forEach(function (r) {
      seen.add(r.id);
      var key = JSON.stringify(r);
      var entry = board.rows.get(r.id);
      if (entry && entry.key === key) return;
      var tr = operatorRow(r);
      if (entry && entry.tr.parentNode) entry.tr.parentNode.replaceChild(tr, entry.tr);
      board.rows.set(r.id, { tr: tr, key: key });
    });
    board.rows.forEach(function (entry, id) {
      if (!seen.has(id)) {
        if (entry.tr.parentNode) entry.tr.parentNode.removeChild(entry.tr);
        board.rows.delete(id);
      }
    });
    var order = shown.map(function (r) { return r.id; }).join(' ');
    if (order !== board.order) {
      shown.forEach(function (r) { body.appendChild(board.rows.get(r.id).tr); });
      board.order = order;
    } else {
      shown.forEach(function (r) {
        var tr = board.rows.get(r.id).tr;
        if (!tr.parentNode) body.appendChild(tr);
      });
    }
  }

  function renderWaiting() {
    if (!board.dom) return;
    var list = board.dom.waitingList;
    clear(list);
    board.waiting.slice(0, 20).forEach(function (e) {
      var watch = el('button', { type: 'button', className: 'btn btn-small', text: 'Watch', testid: 'waiting-watch' });
      var take = el('button', { type: 'button', className: 'btn btn-small', text: 'Take', testid: 'waiting-take-over' });
      watch.addEventListener('click', function () { startWatching(e.session_id); });
      take.addEventListener('click', function () {
        board.takingOver = e.session_id;
        C.send({ type: 'take_over', session_id: e.session_id });
      });
      list.appendChild(el('li', { className: 'waiting-item', testid: 'board-waiting-item', dataset: { sessionId: e.session_id } },
        el('span', { className: 'queue-name', text: str(e.name, 'Visitor') }),
        el('span', { className: 'queue-wait ticking', dataset: { since: e.waiting_since }, text: since(e.waiting_since) }),
        watch, take));
    });
    board.dom.waitingEmpty.hidden = board.waiting.length > 0;
  }

  /** Waiting times grow by the second; nothing is sent for that. */
  function tick() {
    if (!board.dom || !board.state) return;
    var q = board.state.queue || {};
    setText(board.dom.tiles.queue.sub, q.total ? 'longest ' + since(q.oldest_since) : 'nobody waiting');
    board.dom.tiles.queue.sub.dataset.since = q.oldest_since === null || q.oldest_since === undefined ? '' : String(q.oldest_since);
    if (C.view() !== 'board') return;
    var nodes = document.querySelectorAll('#view-board .ticking');
    for (var i = 0; i < nodes.length; i++) {
      var ms = Number(nodes[i].dataset.since);
      if (ms) setText(nodes[i], C.formatWaiting(Date.now() - ms));
    }
  }

  // ------------------------------------------------------------ watching
  function startWatching(sessionId) {
    if (board.watch && board.watch.id !== sessionId) {
      C.send({ type: 'unwatch', session_id: board.watch.id });
    }
    board.watch = { id: sessionId, summary: null, operator: null, seqs: new Set(), notes: new Set() };
    var w = board.dom.watch;
    clear(w.messages);
    setText(w.title, 'Loading\u2026');
    setText(w.meta, '');
    w.node.hidden = false;
    document.getElementById('view-board').classList.add('is-watching');
    C.send({ type: 'watch', session_id: sessionId });
    renderReassignChoices();
  }

  function stopWatching(tell) {
    if (!board.watch) return;
    if (tell) C.send({ type: 'unwatch', session_id: board.watch.id });
    board.watch = null;
    if (board.dom) {
      board.dom.watch.node.hidden = true;
      clear(board.dom.watch.messages);
    }
    document.getElementById('view-board').classList.remove('is-watching');
  }

  function renderWatchHeader() {
    var w = board.dom.watch;
    var watch = board.watch;
    var v = (watch.summary && watch.summary.visitor) || {};
    setText(w.title, str(v.name, 'Visitor'));
    var state = watch.summary ? watch.summary.state : '';
    setText(w.meta, watch.operator ? 'With ' + str(watch.operator.name, 'an operator') : (state === 'waiting' ? 'Waiting in the queue' : state));
  }

  function renderReassignChoices() {
    if (!board.dom || !board.state) return;
    var select = board.dom.watch.reassignSelect;
    var current = board.watch && board.watch.operator ? board.watch.operator.id : null;
    var keep = select.value;
    clear(select);
    select.appendChild(el('option', { value: '', text: 'Reassign to\u2026' }));
    (board.state.operators || []).forEach(function (r) {
      if (r.status !== 'online' || r.load >= r.capacity || r.id === current) return;
      select.appendChild(el('option', { value: r.id, text: r.name + ' (' + r.load + '/' + r.capacity + ')' }));
    });
    select.value = keep;
    if (select.value !== keep) select.value = '';
  }

  function addWatchRow(row, order) {
    var list = board.dom.watch.messages;
    row._order = order;
    var before = null;
    for (var node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (node._order > order) before = node;
      else break;
    }
    list.insertBefore(row, before);
    list.scrollTop = list.scrollHeight;
  }

  function addWatchMessage(m) {
    var watch = board.watch;
    if (typeof m.seq !== 'number' || watch.seqs.has(m.seq)) return;
    watch.seqs.add(m.seq);
    var from = m.from === 'visitor' || m.from === 'operator' ? m.from : 'system';
    var bubble = el('div', { className: 'msg', testid: 'watch-message', text: str(m.text) });
    bubble.dataset.from = from;
    bubble.dataset.time = typeof m.ts === 'number' ? C.formatClock(m.ts) : '';
    bubble.dataset.seq = String(m.seq);
    if (from === 'operator') {
      bubble.dataset.author = str(m.author, 'Operator');
      bubble.dataset.state = 'stored';
    }
    if (from === 'system' && (m.event === 'assigned' || m.event === 'reassigned') && m.author) {
      board.watch.operator = { id: '', name: m.author };
      renderWatchHeader();
    }
    addWatchRow(el('li', { className: 'msg-row from-' + from }, bubble), m.seq);
  }

  function addWatchNote(n) {
    var watch = board.watch;
    var author = n.author && typeof n.author === 'object' ? n.author : {};
    var key = n.ts + '|' + str(author.id) + '|' + str(n.text);
    if (watch.notes.has(key)) return;
    watch.notes.add(key);
    var bubble = el('div', { className: 'msg', testid: 'watch-note', text: str(n.text) });
    bubble.dataset.from = 'note';
    bubble.dataset.author = 'Whisper from ' + str(author.name, 'a supervisor');
    bubble.dataset.time = typeof n.ts === 'number' ? C.formatClock(n.ts) : '';
    var after = 0;
    board.dom.watch.messages.querySelectorAll('[data-seq]').forEach(function (b) {
      var seq = Number(b.dataset.seq);
      if (seq > after) after = seq;
    });
    addWatchRow(el('li', { className: 'msg-row from-note' }, bubble), after + 0.5);
  }

  // ------------------------------------------------------------ frames
  C.on('board', function (f) {
    if (!f.board || typeof f.board !== 'object') return;
    board.state = f.board;
    board.rev = typeof f.rev === 'number' ? f.rev : 0;
    render();
  });

  C.on('board_patch', function (f) {
    if (!board.state || !f.patch) return;
    if (f.rev !== board.rev + 1) {
      C.send({ type: 'board' });  // missed one: ask for the whole board again
      return;
    }
    board.rev = f.rev;
    board.state = applyPatch(board.state, f.patch);
    render();
  });

  C.on('queue', function (f) {
    board.waiting = Array.isArray(f.entries) ? f.entries : [];
    renderWaiting();
  });

  C.on('welcome', function (f) {
    if (f.queue) {
      board.waiting = Array.isArray(f.queue.entries) ? f.queue.entries : [];
      renderWaiting();
    }
    // A new connection watches nothing: watch again what was open.
    if (board.watch) {
      var id = board.watch.id;
      board.watch = null;
      if (board.dom) startWatching(id);
    }
  });

  C.on('watching', function (f) {
    if (!board.watch || !f.chat || f.chat.session_id !== board.watch.id) return;
    board.watch.summary = f.chat;
    board.watch.operator = f.operator || null;
    renderWatchHeader();
    renderReassignChoices();
  });

  C.on('message', function (f) {
    if (board.watch && f.session_id === board.watch.id) addWatchMessage(f);
  });

  C.on('note', function (f) {
    if (board.watch && f.session_id === board.watch.id) addWatchNote(f);
  });

  C.on('notes', function (f) {
    if (board.watch && f.session_id === board.watch.id && Array.isArray(f.notes)) {
      f.notes.forEach(addWatchNote);
    }
  });

  C.on('reassigned', function (f) {
    var name = f.operator ? str(f.operator.name, 'the operator') : 'the operator';
    C.toast('Chat handed over to ' + name + '.', 'info');
    if (board.watch && board.watch.id === f.session_id) {
      board.watch.operator = f.operator;
      renderWatchHeader();
      renderReassignChoices();
    }
  });

  C.on('chat_assigned', function (f) {
    // A take over from the board: go to the chat.
    var id = f.chat && f.chat.session_id;
    if (!id || id !== board.takingOver) return;
    board.takingOver = null;
    if (board.watch && board.watch.id === id) stopWatching(false);
    C.openChat(id);
  });

  C.on('error', function (f) {
    if (board.takingOver && (f.code === 'invalid_state' || f.code === 'chat_closed' || f.code === 'unknown_session')) {
      board.takingOver = null;
    }
    if (board.watch && (f.code === 'unknown_session' || f.code === 'chat_closed') && board.dom && board.dom.watch.title.textContent === 'Loading\u2026') {
      stopWatching(false);
    }
  });

  C.on('view', function (id) {
    if (id === 'board') {
      if (board.state) render();
      else if (!board.dom) {
        var root = document.getElementById('view-board');
        clear(root);
        root.appendChild(el('div', { className: 'chat-empty' }, el('div', { className: 'chat-empty-title', text: 'Loading the board\u2026' })));
      }
    }
  });

  C.on('reset', function () {
    board.state = null;
    board.rev = -1;
    board.dom = null;
    board.rows = new Map();
    board.order = '';
    board.waiting = [];
    board.watch = null;
    board.takingOver = null;
    var root = document.getElementById('view-board');
    if (root) {
      clear(root);
      root.classList.remove('is-watching');
    }
  });

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (C.view() === 'board') renderCharts(); }, 150);
  });
  setInterval(tick, 1000);
})();
