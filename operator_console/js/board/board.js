/*
 * The supervisor board (role supervisor or admin).
 *
 * The server pushes the board over the operator WebSocket: one `board` frame
 * (the whole snapshot) after welcome, then `board_patch` frames with only what
 * changed (docs/protocol.md). This view keeps a copy, applies the patches and
 * redraws; from it a supervisor watches any live chat (board/watch.js).
 */
import { el, clear, setText } from '../shared/dom.js';
import { t, tn } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, formatClock, formatWaiting } from '../shared/format.js';
import { app } from '../shared/state.js';
import { send } from '../shared/connection.js';
import { openChat } from '../chats/tabs.js';
import { roleName } from '../app/navigation.js';
import { board, applyPatch, resetBoardState } from './state.js';
import { lineChart, barChart } from './charts.js';
import { buildWatch, startWatching, renderReassignChoices, rewatch, installWatch } from './watch.js';
import { kbCard, renderKbCard } from './kb.js';

function viewRoot() { return document.getElementById('view-board'); }

function seconds(v) {
  if (typeof v !== 'number') return '\u2014';
  return formatWaiting(v * 1000);
}

function since(ms) {
  return typeof ms === 'number' ? formatWaiting(Date.now() - ms) : '\u2014';
}

function statusName(status) {
  return status === 'online' || status === 'away' || status === 'offline' ? t('status.' + status) : status;
}

function departmentName(dep) {
  return dep === 'technical' || dep === 'billing' ? t('department.' + dep) : dep;
}

function tile(label, testid, extraTestid) {
  const value = el('div', { className: 'tile-value', testid: testid, text: '\u2014' });
  const sub = el('div', { className: 'tile-sub muted small', testid: extraTestid || null });
  return { node: el('div', { className: 'tile' }, el('div', { className: 'tile-label', text: label }), value, sub), value: value, sub: sub };
}

// ------------------------------------------------------------ DOM
function build() {
  const root = viewRoot();
  clear(root);
  const d = {};
  d.tiles = {
    staff: tile(t('board.tile.online'), 'board-online', 'board-staff-detail'),
    load: tile(t('board.tile.load'), 'board-load'),
    queue: tile(t('board.tile.waiting'), 'board-queue-total', 'board-longest-wait'),
    started: tile(t('board.tile.started'), 'board-started', 'board-outcomes'),
    wait: tile(t('board.tile.wait'), 'board-wait'),
    first: tile(t('board.tile.firstResponse'), 'board-first-response'),
    sla: tile(t('board.tile.sla'), 'board-sla', 'board-sla-detail'),
    csat: tile(t('board.tile.csat'), 'board-csat')
  };
  d.loadFill = el('div', { className: 'load-bar-fill' });
  d.loadBar = el('div', { className: 'load-bar tile-bar' }, d.loadFill);
  d.tiles.load.node.appendChild(d.loadBar);

  d.rangeHour = el('button', { type: 'button', className: 'seg', text: t('board.range.hour'), testid: 'board-range-hour' });
  d.rangeDay = el('button', { type: 'button', className: 'seg', text: t('board.range.day'), testid: 'board-range-day' });
  d.rangeHour.addEventListener('click', () => { board.range = 'hour'; render(); });
  d.rangeDay.addEventListener('click', () => { board.range = 'day'; render(); });
  d.window = el('span', { className: 'muted small', testid: 'board-window' });

  d.queueChart = el('div', { className: 'chart-slot' });
  d.loadChart = el('div', { className: 'chart-slot' });
  d.byDept = el('tbody');
  d.byLevel = el('tbody');
  d.byPriority = el('div', { className: 'small muted', testid: 'board-by-priority' });
  d.waitingList = el('ol', { className: 'board-waiting', testid: 'board-waiting' });
  d.waitingEmpty = el('div', { className: 'queue-empty', text: t('board.nobodyWaiting') });

  d.hideOffline = el('input', { type: 'checkbox', checked: board.hideOffline, testid: 'board-hide-offline' });
  d.hideOffline.addEventListener('change', () => {
    board.hideOffline = d.hideOffline.checked;
    board.order = '';
    renderOperators();
  });
  d.operators = el('tbody', { testid: 'board-operators' });
  d.kb = kbCard();

  const main = el('div', { className: 'board-main' },
    el('div', { className: 'board-toolbar' },
      el('div', { className: 'seg-group', attrs: { role: 'group', 'aria-label': t('board.period') } }, d.rangeHour, d.rangeDay),
      d.window),
    el('div', { className: 'board-tiles' },
      d.tiles.staff.node, d.tiles.load.node, d.tiles.queue.node, d.tiles.started.node,
      d.tiles.wait.node, d.tiles.first.node, d.tiles.sla.node, d.tiles.csat.node),
    el('div', { className: 'board-cards' },
      el('section', { className: 'card card-wide' },
        el('div', { className: 'section-title', text: t('board.queueChart.title') }),
        el('div', { className: 'chart-legend small' },
          el('span', { className: 'legend legend-queue', text: t('board.queueChart.legendQueue') }),
          el('span', { className: 'legend legend-wait', text: t('board.queueChart.legendWait') })),
        d.queueChart),
      el('section', { className: 'card' },
        el('div', { className: 'section-title', text: t('board.loadChart.title') }),
        d.loadChart),
      el('section', { className: 'card' },
        el('div', { className: 'section-title', text: t('board.waitingNow') }),
        el('table', { className: 'mini-table' },
          el('thead', null, el('tr', null,
            el('th', { text: t('board.col.department') }), el('th', { text: t('board.col.waiting') }), el('th', { text: t('board.col.longest') }))),
          d.byDept),
        el('table', { className: 'mini-table' },
          el('thead', null, el('tr', null,
            el('th', { text: t('board.col.level') }), el('th', { text: t('board.col.waiting') }), el('th', { text: t('board.col.longest') }))),
          d.byLevel),
        d.byPriority),
      el('section', { className: 'card' },
        el('div', { className: 'section-title', text: t('board.waitingChats') }),
        d.waitingList, d.waitingEmpty),
      d.kb.node),
    el('section', { className: 'card card-full' },
      el('div', { className: 'section-title section-title-row' },
        el('span', { text: t('board.operators') }),
        el('label', { className: 'small muted check' }, d.hideOffline, t('board.hideOffline'))),
      el('table', { className: 'board-table' },
        el('thead', null, el('tr', null,
          el('th', { text: t('board.col.operator') }), el('th', { text: t('board.col.status') }),
          el('th', { text: t('board.col.load') }), el('th', { text: t('board.col.chats') }))),
        d.operators)));

  d.watch = buildWatch();
  root.appendChild(main);
  root.appendChild(d.watch.node);
  board.dom = d;
  board.rows = new Map();
  board.order = '';
  renderWaiting();
}

// ------------------------------------------------------------ render
function render() {
  const s = board.state;
  if (!s) return;
  if (!board.dom) build();
  const d = board.dom;
  const tl = d.tiles;
  const staff = s.staff || {};
  setText(tl.staff.value, String(staff.online || 0));
  setText(tl.staff.sub, t('board.staffDetail', { away: staff.away || 0, offline: staff.offline || 0 }));
  setText(tl.load.value, (staff.load || 0) + ' / ' + (staff.capacity || 0));
  const pct = staff.capacity ? Math.min(100, Math.round(100 * staff.load / staff.capacity)) : 0;
  d.loadFill.style.width = pct + '%';
  d.loadFill.classList.toggle('is-full', staff.capacity > 0 && staff.load >= staff.capacity);
  const q = s.queue || {};
  setText(tl.queue.value, String(q.total || 0));
  tick();
  d.rangeHour.classList.toggle('is-active', board.range === 'hour');
  d.rangeDay.classList.toggle('is-active', board.range === 'day');
  const counts = (s.counts || {})[board.range] || {};
  setText(tl.started.value, String(counts.started || 0));
  setText(tl.started.sub, t('board.outcomes', {
    answered: counts.answered || 0, missed: counts.missed || 0, escalated: counts.escalated || 0
  }));
  tl.started.sub.dataset.answered = String(counts.answered || 0);
  tl.started.sub.dataset.missed = String(counts.missed || 0);
  tl.started.sub.dataset.escalated = String(counts.escalated || 0);
  const times = (s.times || {})[board.range] || {};
  const wait = times.wait || {};
  const first = times.first_response || {};
  setText(tl.wait.value, seconds(wait.avg) + ' / ' + seconds(wait.p90));
  setText(tl.wait.sub, tn('board.chatsCount', wait.n || 0));
  setText(tl.first.value, seconds(first.avg) + ' / ' + seconds(first.p90));
  setText(tl.first.sub, tn('board.chatsCount', first.n || 0));
  const sla = s.sla || {};
  setText(tl.sla.value, (sla.at_risk || 0) + ' / ' + (sla.breached || 0));
  tl.sla.node.classList.toggle('is-bad', (sla.breached || 0) + (sla.chats_breached || 0) > 0);
  tl.sla.node.classList.toggle('is-warn', (sla.at_risk || 0) + (sla.chats_at_risk || 0) > 0);
  const today = sla.breaches_today || {};
  const breachesToday = Object.keys(today).reduce((n, k) => n + today[k], 0);
  setText(tl.sla.sub, t('board.slaDetail', {
    atRisk: sla.chats_at_risk || 0, breached: sla.chats_breached || 0, today: breachesToday
  }));
  setText(tl.csat.value, s.csat ? String(s.csat.avg) : '\u2014');
  setText(tl.csat.sub, s.csat ? tn('board.csatRatings', s.csat.n) : t('board.csatNone'));
  const w = s.window || {};
  setText(d.window, board.range === 'hour'
    ? t('board.window.hour', { time: formatClock(w.hour_start), tz: str(w.tz) })
    : t('board.window.day', { tz: str(w.tz) }));

  renderBreakdowns(q);
  renderKbCard(d.kb, s.kb);
  renderOperators();
  renderReassignChoices();
  if (app.view === 'board') renderCharts();
}

function renderBreakdowns(q) {
  const d = board.dom;
  clear(d.byDept);
  (q.by_department || []).forEach((r) => {
    d.byDept.appendChild(el('tr', null,
      el('td', { text: r.department ? departmentName(r.department) : t('board.anyDepartment') }),
      el('td', { text: String(r.total) }),
      el('td', { className: 'ticking', dataset: { since: r.oldest_since }, text: since(r.oldest_since) })));
  });
  if (!(q.by_department || []).length) {
    d.byDept.appendChild(el('tr', null, el('td', { className: 'muted', text: t('board.nobodyWaiting'), colSpan: 3 })));
  }
  clear(d.byLevel);
  (q.by_level || []).forEach((r) => {
    d.byLevel.appendChild(el('tr', null,
      el('td', { text: t('board.levelRow', { level: r.level }) }),
      el('td', { text: String(r.total) }),
      el('td', { className: 'ticking', dataset: { since: r.oldest_since }, text: since(r.oldest_since) })));
  });
  const p = q.by_priority || {};
  setText(d.byPriority, t('board.byPriority', { urgent: p.urgent || 0, vip: p.vip || 0, normal: p.normal || 0 }));
}

function renderCharts() {
  const s = board.state;
  const d = board.dom;
  if (!s || !d) return;
  const history = s.history || [];
  lineChart(d.queueChart, {
    testid: 'chart-queue',
    title: t('board.queueChart.svgTitle'),
    height: 170,
    series: [
      { name: t('board.queueChart.seriesQueue'), className: 'series-queue', points: history.map((p) => [p.t, p.queue]) },
      { name: t('board.queueChart.seriesWait'), className: 'series-wait', points: history.map((p) => [p.t, p.wait]) }
    ]
  });
  const working = (s.operators || []).filter((r) => r.status !== 'offline' || r.load > 0);
  barChart(d.loadChart, {
    testid: 'chart-load',
    title: t('board.loadChart.title'),
    empty: t('board.loadChart.empty'),
    rows: working.slice(0, 60).map((r) => ({ label: r.name, value: r.load, max: r.capacity, className: 'status-' + r.status }))
  });
}

function chatChip(c) {
  const chip = el('button', {
    type: 'button', className: 'chat-chip', testid: 'board-chat',
    dataset: { sessionId: c.session_id, since: c.since },
    title: t('board.watchChat')
  }, el('span', { className: 'chip-name', text: str(c.visitor, t('visitor.defaultName')) }),
  el('span', { className: 'chip-age ticking', dataset: { since: c.since }, text: since(c.since) }));
  chip.addEventListener('click', () => {
    if (!openChat(c.session_id)) startWatching(c.session_id);  // own chats open as usual
  });
  return chip;
}

function operatorRow(r) {
  const pct = r.capacity ? Math.min(100, Math.round(100 * r.load / r.capacity)) : 0;
  const chats = el('div', { className: 'chip-list' });
  (r.chats || []).forEach((c) => { chats.appendChild(chatChip(c)); });
  return el('tr', { testid: 'board-operator', dataset: { operatorId: r.id, status: r.status, name: r.name } },
    el('td', null,
      el('span', { className: 'op-cell-name', text: r.name }),
      r.role !== 'operator' ? el('span', { className: 'role-tag', text: roleName(r.role) }) : null),
    el('td', null,
      el('span', { className: 'status-dot', dataset: { status: r.status } }),
      el('span', { testid: 'board-operator-status', text: ' ' + statusName(r.status) })),
    el('td', { className: 'load-cell' },
      el('span', { testid: 'board-operator-load', text: r.load + ' / ' + r.capacity }),
      el('div', { className: 'load-bar' },
        el('div', { className: 'load-bar-fill' + (r.load >= r.capacity ? ' is-full' : ''), style: 'width: ' + pct + '%' }))),
    el('td', null, chats));
}

function renderOperators() {
  const s = board.state;
  const body = board.dom.operators;
  const shown = (s.operators || []).filter((r) => !(board.hideOffline && r.status === 'offline' && !(r.chats || []).length));
  const seen = new Set();
  shown.forEach((r) => {
    seen.add(r.id);
    const key = JSON.stringify(r);
    const entry = board.rows.get(r.id);
    if (entry && entry.key === key) return;
    const tr = operatorRow(r);
    if (entry && entry.tr.parentNode) entry.tr.parentNode.replaceChild(tr, entry.tr);
    board.rows.set(r.id, { tr: tr, key: key });
  });
  board.rows.forEach((entry, id) => {
    if (!seen.has(id)) {
      if (entry.tr.parentNode) entry.tr.parentNode.removeChild(entry.tr);
      board.rows.delete(id);
    }
  });
  const order = shown.map((r) => r.id).join(' ');
  if (order !== board.order) {
    shown.forEach((r) => { body.appendChild(board.rows.get(r.id).tr); });
    board.order = order;
  } else {
    shown.forEach((r) => {
      const tr = board.rows.get(r.id).tr;
      if (!tr.parentNode) body.appendChild(tr);
    });
  }
}

function renderWaiting() {
  if (!board.dom) return;
  const list = board.dom.waitingList;
  clear(list);
  board.waiting.slice(0, 20).forEach((e) => {
    const watch = el('button', { type: 'button', className: 'btn btn-small', text: t('board.waiting.watch'), testid: 'waiting-watch' });
    const take = el('button', { type: 'button', className: 'btn btn-small', text: t('board.waiting.take'), testid: 'waiting-take-over' });
    watch.addEventListener('click', () => { startWatching(e.session_id); });
    take.addEventListener('click', () => {
      board.takingOver = e.session_id;
      send({ type: 'take_over', session_id: e.session_id });
    });
    list.appendChild(el('li', { className: 'waiting-item', testid: 'board-waiting-item', dataset: { sessionId: e.session_id } },
      el('span', { className: 'queue-name', text: str(e.name, t('visitor.defaultName')) }),
      el('span', { className: 'queue-wait ticking', dataset: { since: e.waiting_since }, text: since(e.waiting_since) }),
      watch, take));
  });
  board.dom.waitingEmpty.hidden = board.waiting.length > 0;
}

/** Waiting times grow by the second; nothing is sent for that. */
function tick() {
  if (!board.dom || !board.state) return;
  const q = board.state.queue || {};
  setText(board.dom.tiles.queue.sub, q.total ? t('board.longest', { time: since(q.oldest_since) }) : t('board.nobodyWaitingShort'));
  board.dom.tiles.queue.sub.dataset.since = q.oldest_since === null || q.oldest_since === undefined ? '' : String(q.oldest_since);
  if (app.view !== 'board') return;
  const nodes = document.querySelectorAll('#view-board .ticking');
  for (let i = 0; i < nodes.length; i++) {
    const ms = Number(nodes[i].dataset.since);
    if (ms) setText(nodes[i], formatWaiting(Date.now() - ms));
  }
}

// ------------------------------------------------------------ frames
export function installBoard() {
  on('board', (f) => {
    if (!f.board || typeof f.board !== 'object') return;
    board.state = f.board;
    board.rev = typeof f.rev === 'number' ? f.rev : 0;
    render();
  });

  on('board_patch', (f) => {
    if (!board.state || !f.patch) return;
    if (f.rev !== board.rev + 1) {
      send({ type: 'board' });  // missed one: ask for the whole board again
      return;
    }
    board.rev = f.rev;
    board.state = applyPatch(board.state, f.patch);
    render();
  });

  on('queue', (f) => {
    board.waiting = Array.isArray(f.entries) ? f.entries : [];
    renderWaiting();
  });

  on('welcome', (f) => {
    if (f.queue) {
      board.waiting = Array.isArray(f.queue.entries) ? f.queue.entries : [];
      renderWaiting();
    }
    rewatch();
  });

  installWatch();

  on('view', (id) => {
    if (id === 'board') {
      if (board.state) render();
      else if (!board.dom) {
        const root = viewRoot();
        clear(root);
        root.appendChild(el('div', { className: 'chat-empty' }, el('div', { className: 'chat-empty-title', text: t('board.loading') })));
      }
    }
  });

  on('reset', () => {
    resetBoardState();
    const root = viewRoot();
    if (root) {
      clear(root);
      root.classList.remove('is-watching');
    }
  });

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (app.view === 'board') renderCharts(); }, 150);
  });
  setInterval(tick, 1000);
}
