/*
 * chatserver operator console: consulting a colleague internally ("3rd level").
 *
 *  - In an own chat, "Consult…" asks a colleague (picked from GET /api/operators,
 *    3rd-level support first) on the chat's operators-only thread: a `consult`
 *    frame. Consult notes appear in the chat like whispers, labelled as internal.
 *  - A consulted colleague gets `consulted`: a read-only tab of that chat opens
 *    (history, live messages, the notes thread) with a note composer that answers
 *    with `consult` frames; there is no message composer, nothing reaches the visitor.
 *  - Tickets: in the internal-note mode a "Consult colleague" select adds `consult`
 *    to the reply body; note events that consulted someone say so.
 *
 * Loaded after console.js and built on window.chatserverConsole. Same rules as
 * console.js: text from the network only ever goes into the page through
 * textContent / createElement / data-* attributes.
 */
(function () {
  'use strict';

  var C = window.chatserverConsole;
  if (!C || typeof C.on !== 'function' || typeof C.api !== 'function') return;

  var el = C.el;
  var clear = C.clear;
  var str = C.str;

  var LABEL = 'Consult \u2014 internal, not visible to the visitor';
  var MAX_CHARS = 4000;
  var OPERATORS_FRESH_MS = 15000;
  var PENDING_MS = 10000;
  var STATUS_ORDER = { online: 0, away: 1, offline: 2 };
  var REFUSALS = {
    bad_frame: 1, unknown_session: 1, not_assigned: 1, chat_closed: 1, forbidden: 1,
    rate_limited: 1, unavailable: 1, not_found: 1, invalid_state: 1
  };

  function $(id) { return document.getElementById(id); }

  function me() { return C.operator() || {}; }

  function person(p) { return p && typeof p === 'object' ? p : {}; }

  function isMine(note) { return !!me().id && person(note.author).id === me().id; }

  // ------------------------------------------------------------------
  // Colleagues (GET /api/operators)
  // ------------------------------------------------------------------

  var operators = { list: [], at: 0, promise: null };

  function loadOperators(force) {
    if (operators.promise && !force && Date.now() - operators.at < OPERATORS_FRESH_MS) return operators.promise;
    operators.at = Date.now();
    operators.promise = C.api('GET', '/api/operators').then(function (r) {
      var list = r && Array.isArray(r.operators) ? r.operators : [];
      operators.list = list.filter(function (o) { return o && typeof o === 'object' && typeof o.id === 'string'; });
      return operators.list;
    }, function (err) {
      operators.at = 0;
      operators.promise = null;
      throw err;
    });
    return operators.promise;
  }

  function thirdLevel(o) { return Array.isArray(o.levels) && o.levels.indexOf(3) >= 0; }

  /** Everyone but me: 3rd level first, then online before away before offline, by name. */
  function colleagues() {
    var self = me().id;
    return operators.list.filter(function (o) { return o.id !== self; }).sort(function (a, b) {
      var l = (thirdLevel(b) ? 1 : 0) - (thirdLevel(a) ? 1 : 0);
      if (l) return l;
      var s = (a.status in STATUS_ORDER ? STATUS_ORDER[a.status] : 3) - (b.status in STATUS_ORDER ? STATUS_ORDER[b.status] : 3);
      if (s) return s;
      return str(a.name).toLowerCase().localeCompare(str(b.name).toLowerCase());
    });
  }

  function colleagueName(id) {
    for (var i = 0; i < operators.list.length; i++) {
      if (operators.list[i].id === id) return str(operators.list[i].name, id);
    }
    return id;
  }

  function levelText(o) {
    var levels = Array.isArray(o.levels) ? o.levels.filter(function (n) { return typeof n === 'number'; }) : [];
    if (thirdLevel(o)) return '\u2605 3rd level';
    return levels.length ? 'level ' + levels.join('/') : '';
  }

  function colleagueOption(o) {
    var status = str(o.status, 'offline');
    var bits = [levelText(o), status];
    if (typeof o.load === 'number' && typeof o.capacity === 'number') bits.push(o.load + '/' + o.capacity + ' chats');
    return el('option', {
      value: o.id,
      text: str(o.name, str(o.username, o.id)) + ' \u2014 ' + bits.filter(Boolean).join(' \u00b7 '),
      dataset: { status: status, level3: thirdLevel(o) ? 'true' : 'false' }
    });
  }

  /**
   * Fill a <select> with the colleagues; `first` is the text of the '' option.
   * Keeps the chosen colleague when it is still listed.
   */
  function fillColleagues(select, first) {
    var keep = select.value;
    clear(select);
    select.appendChild(el('option', { value: '', text: first }));
    var list = colleagues();
    var third = list.filter(thirdLevel);
    var others = list.filter(function (o) { return !thirdLevel(o); });
    if (third.length) {
      var g3 = el('optgroup', { label: '3rd level support' });
      third.forEach(function (o) { g3.appendChild(colleagueOption(o)); });
      select.appendChild(g3);
    }
    if (others.length) {
      var g = el('optgroup', { label: third.length ? 'Other colleagues' : 'Colleagues' });
      others.forEach(function (o) { g.appendChild(colleagueOption(o)); });
      select.appendChild(g);
    }
    select.value = keep;
    if (select.value !== keep) select.value = '';
  }

  /** "Anna asks Cleo" / "from Cleo": who wrote a consult note to whom. */
  function whoLine(note) {
    var author = str(person(note.author).name, 'A colleague');
    var to = note.to && typeof note.to === 'object' ? str(note.to.name, str(note.to.id)) : '';
    return to ? author + ' asks ' + to : 'from ' + author;
  }

  function consultLabel(note) {
    return LABEL + ' \u00b7 ' + whoLine(note);
  }

  function labelNote(bubble, note) {
    bubble.dataset.kind = 'consult';
    bubble.dataset.author = consultLabel(note);
    bubble.dataset.consultFrom = str(person(note.author).name);
    if (note.to && typeof note.to === 'object') bubble.dataset.consultTo = str(note.to.name);
  }

  // A `consult` frame in flight: its note (from me, same text) confirms it, an
  // error frame without `ref` soon after refuses it.
  function Pending(onDone, onFail) {
    this.item = null;
    this.timer = null;
    this.onDone = onDone;
    this.onFail = onFail;
  }

  Pending.prototype.start = function (sessionId, text, target) {
    var self = this;
    clearTimeout(this.timer);
    this.item = { sessionId: sessionId, text: text, target: target, at: Date.now() };
    var item = this.item;
    this.timer = setTimeout(function () {
      if (self.item === item) {
        self.item = null;
        self.onFail(item, 'No answer from the server \u2014 try again');
      }
    }, PENDING_MS);
  };

  Pending.prototype.note = function (f) {
    var p = this.item;
    if (!p || f.session_id !== p.sessionId || !isMine(f) || str(f.text) !== p.text) return;
    this.item = null;
    clearTimeout(this.timer);
    this.onDone(p, f);
  };

  Pending.prototype.error = function (f) {
    var p = this.item;
    if (!p || f.ref || !REFUSALS[f.code] || Date.now() - p.at > PENDING_MS) return;
    this.item = null;
    clearTimeout(this.timer);
    this.onFail(p, str(f.message, str(f.code, 'refused')) + (f.code ? ' (' + f.code + ')' : ''));
  };

  Pending.prototype.reset = function () {
    clearTimeout(this.timer);
    this.item = null;
  };

  function sendConsult(pending, sessionId, text, target) {
    var frame = { type: 'consult', session_id: sessionId, text: text };
    if (target) frame.operator_id = target;
    if (!C.send(frame)) return false;
    pending.start(sessionId, text, target);
    return true;
  }

  function checkText(text) {
    if (!text) return 'Type a question or an answer first';
    if (text.length > MAX_CHARS) return 'At most ' + MAX_CHARS + ' characters';
    return '';
  }

  function enterSends(textarea, form) {
    textarea.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
  }

  // ------------------------------------------------------------------
  // Own chat: "Consult…" (the assigned operator asks a colleague)
  // ------------------------------------------------------------------

  var ask = { form: null, chatId: null, threads: new Set() };

  ask.pending = new Pending(function (p) {
    if (!ask.form) return;
    ask.send.disabled = false;
    if (ask.chatId !== p.sessionId) return;
    ask.text.value = '';
    ask.status.textContent = p.target
      ? 'Asked ' + colleagueName(p.target) + ' \u2014 the answer appears in the chat'
      : 'Sent to the consult thread';
    fillAskSelect();
    ask.select.value = '';   // follow-ups go to the thread
  }, function (p, why) {
    if (!ask.form) return;
    ask.send.disabled = false;
    if (ask.chatId === p.sessionId) askError('Consult not sent: ' + why);
  });

  function buildAsk() {
    var view = $('chat-view');
    var actions = view && view.querySelector('.chat-header-actions');
    var slot = $('messages-slot');
    if (!actions || !slot) return false;
    ask.button = el('button', {
      type: 'button', className: 'btn btn-small', testid: 'consult-button', text: 'Consult\u2026',
      title: 'Ask a colleague (e.g. 3rd level) internally \u2014 the visitor does not see it',
      attrs: { 'aria-expanded': 'false' }
    });
    actions.insertBefore(ask.button, actions.firstChild);
    ask.select = el('select', { testid: 'consult-colleague', attrs: { 'aria-label': 'Colleague to consult' } });
    ask.text = el('textarea', {
      className: 'message-input consult-input', rows: 2, maxLength: MAX_CHARS, testid: 'consult-text',
      placeholder: 'Your question for the colleague\u2026 (Enter to send)', attrs: { 'aria-label': 'Question for the colleague' }
    });
    ask.send = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'consult-send', text: 'Ask' });
    ask.cancel = el('button', { type: 'button', className: 'btn btn-small', testid: 'consult-cancel', text: 'Close' });
    ask.status = el('span', { className: 'muted small consult-status', testid: 'consult-status', attrs: { 'aria-live': 'polite' } });
    ask.error = el('div', { className: 'inline-error consult-error', testid: 'consult-error', hidden: true, attrs: { role: 'alert' } });
    ask.form = el('form', { className: 'consult-form', testid: 'consult-form', hidden: true, noValidate: true },
      el('div', { className: 'consult-row' },
        el('span', { className: 'consult-label', text: LABEL }),
        el('span', { className: 'consult-spacer' }),
        ask.cancel),
      el('div', { className: 'consult-row' },
        el('span', { className: 'svc-label', text: 'Ask' }), ask.select, ask.status),
      el('div', { className: 'consult-row' }, ask.text, ask.send),
      ask.error);
    view.insertBefore(ask.form, slot);
    ask.button.addEventListener('click', function () { showAsk(ask.form.hidden); });
    ask.cancel.addEventListener('click', function () { showAsk(false); });
    ask.form.addEventListener('submit', onAskSubmit);
    enterSends(ask.text, ask.form);
    return true;
  }

  function askError(text) {
    ask.error.textContent = text;
    ask.error.hidden = !text;
    if (text) ask.status.textContent = '';
  }

  function fillAskSelect() {
    var thread = ask.chatId && ask.threads.has(ask.chatId);
    fillColleagues(ask.select, thread ? 'Reply in the consult thread (no new colleague)' : 'Choose a colleague\u2026');
  }

  function showAsk(on) {
    if (!ask.form) return;
    var chat = C.selectedChat();
    if (on && (!chat || chat.ended)) on = false;
    ask.form.hidden = !on;
    ask.button.setAttribute('aria-expanded', on ? 'true' : 'false');
    askError('');
    if (!on) return;
    ask.chatId = chat.id;
    ask.status.textContent = 'Loading colleagues\u2026';
    fillAskSelect();
    loadOperators(true).then(function () {
      if (ask.form.hidden) return;
      ask.status.textContent = '';
      fillAskSelect();
    }, function (err) {
      ask.status.textContent = '';
      askError('Could not load the colleagues: ' + err.message);
    });
    ask.text.focus();
  }

  function onAskSubmit(ev) {
    ev.preventDefault();
    var chat = C.selectedChat();
    if (!chat || chat.ended || ask.send.disabled) return;
    var text = ask.text.value.trim();
    var target = ask.select.value;
    var problem = checkText(text);
    if (!problem && !target && !ask.threads.has(chat.id)) problem = 'Choose the colleague to consult';
    if (problem) {
      askError(problem);
      return;
    }
    askError('');
    if (!sendConsult(ask.pending, chat.id, text, target)) {
      askError('Not connected \u2014 try again when the connection is back');
      return;
    }
    ask.send.disabled = true;
    ask.status.textContent = 'Sending\u2026';
  }

  function renderAsk(chat) {
    if (!ask.form && !buildAsk()) return;
    ask.button.hidden = !chat || chat.ended;
    if (!chat || chat.ended || chat.id !== ask.chatId) {
      if (!ask.form.hidden) showAsk(false);
      ask.text.value = '';
      ask.status.textContent = '';
    }
  }

  C.on('chat-selected', renderAsk);
  C.on('chat-ended', function (chat) {
    var selected = C.selectedChat();
    if (selected && selected.id === chat.id) renderAsk(chat);
  });

  // Consult notes in an own chat: the console draws them like whispers; say what they are.
  C.on('note-row', function (p) {
    if (!p || !p.note || p.note.kind !== 'consult') return;
    labelNote(p.bubble, p.note);
    ask.threads.add(p.chat.id);
  });

  // ------------------------------------------------------------------
  // Consulted: a read-only tab of a colleague's chat
  // ------------------------------------------------------------------

  var consults = new Map();   // session_id -> consult (tab order = insertion order)
  var ui = null;
  var active = null;          // session id of the consult shown, or null

  var reply = new Pending(function (p) {
    if (!ui) return;
    ui.send.disabled = false;
    var c = consults.get(p.sessionId);
    if (c) c.draft = '';
    if (active === p.sessionId) {
      ui.input.value = '';
      ui.colleague.value = '';
      ui.status.textContent = p.target ? 'Asked ' + colleagueName(p.target) : '';
    }
  }, function (p, why) {
    if (!ui) return;
    ui.send.disabled = false;
    if (active === p.sessionId) replyError('Note not sent: ' + why);
  });

  function buildView() {
    var chatView = $('chat-view');
    var tabs = $('chat-tabs');
    var info = $('visitor-info');
    if (!chatView || !tabs || !info) return false;
    ui = {};
    ui.strip = el('div', {
      className: 'chat-tabs consult-tabs', testid: 'consult-tabs', hidden: true,
      attrs: { role: 'tablist', 'aria-label': 'Chats you were consulted on' }
    }, el('span', { className: 'consult-strip-label', text: 'Consulted' }));
    tabs.parentNode.insertBefore(ui.strip, tabs.nextSibling);

    ui.title = el('span', { className: 'chat-title', testid: 'consult-title' });
    ui.meta = el('span', { className: 'muted small', testid: 'consult-meta' });
    ui.close = el('button', { type: 'button', className: 'btn btn-small', testid: 'consult-close', text: 'Close tab' });
    ui.slot = el('div', { className: 'messages-slot', testid: 'consult-messages' });
    ui.stale = el('div', { className: 'consult-stale', testid: 'consult-stale', hidden: true },
      el('span', { text: 'Reconnected: new chat messages no longer arrive here live. ' }),
      ui.refresh = el('button', { type: 'button', className: 'link-button', testid: 'consult-refresh', text: 'Refresh the notes' }));
    ui.ended = el('div', { className: 'chat-ended', testid: 'consult-ended', hidden: true },
      el('span', { className: 'chat-ended-label' }, el('strong', { text: 'Chat ended' }),
        el('span', { className: 'muted', text: ' \u2014 the consultation is read-only now' })));
    ui.input = el('textarea', {
      className: 'message-input consult-input', rows: 2, maxLength: MAX_CHARS, testid: 'consult-note-input',
      placeholder: 'Answer your colleague\u2026 (internal; Enter to send)', attrs: { 'aria-label': 'Internal note' }
    });
    ui.colleague = el('select', { testid: 'consult-note-colleague', attrs: { 'aria-label': 'Also ask a colleague' } },
      el('option', { value: '', text: 'To the thread' }));
    ui.send = el('button', { type: 'submit', className: 'btn btn-primary', testid: 'consult-note-send', text: 'Send note' });
    ui.status = el('span', { className: 'muted small', testid: 'consult-note-status', attrs: { 'aria-live': 'polite' } });
    ui.error = el('div', { className: 'inline-error consult-error', testid: 'consult-note-error', hidden: true, attrs: { role: 'alert' } });
    ui.form = el('form', { className: 'consult-composer', testid: 'consult-composer', noValidate: true },
      el('div', { className: 'consult-row' },
        el('span', { className: 'consult-label', text: LABEL }),
        el('span', { className: 'consult-spacer' }), ui.status),
      el('div', { className: 'consult-row' }, ui.input,
        el('div', { className: 'consult-side-controls' }, ui.colleague, ui.send)),
      ui.error);
    ui.view = el('section', {
      id: 'consult-view', className: 'chat-view consult-view', testid: 'consult-view', attrs: { role: 'tabpanel' }
    },
    el('header', { className: 'chat-header' },
      el('div', { className: 'chat-header-main' }, ui.title,
        el('span', { className: 'watch-badge consult-badge', text: 'read-only \u00b7 consulted' }), ui.meta),
      el('div', { className: 'chat-header-actions' }, ui.close)),
    ui.stale, ui.slot, ui.ended, ui.form);
    chatView.parentNode.insertBefore(ui.view, chatView.nextSibling);

    ui.side = el('section', { className: 'consult-side', testid: 'consult-side' },
      el('div', { className: 'section-title', text: 'Visitor (consultation)' }),
      ui.sideInfo = el('dl', { className: 'visitor-info' }));
    info.parentNode.appendChild(ui.side);

    ui.close.addEventListener('click', function () { if (active) closeConsult(active); });
    ui.refresh.addEventListener('click', function () { if (active) C.send({ type: 'notes', session_id: active }); });
    ui.form.addEventListener('submit', onReplySubmit);
    ui.input.addEventListener('input', function () {
      var c = consults.get(active);
      if (c) c.draft = ui.input.value;
    });
    enterSends(ui.input, ui.form);

    // Back to an own chat: a click on one of the console's tabs (not on its ×).
    var leaveOnTab = function (ev) {
      var t = ev.target;
      if (!active || !t || !t.closest) return;
      if (ev.type === 'keydown' && ev.key !== 'Enter' && ev.key !== ' ') return;
      if (t.closest('.chat-tab') && !t.closest('.tab-dismiss')) leave();
    };
    tabs.addEventListener('click', leaveOnTab, true);
    tabs.addEventListener('keydown', leaveOnTab, true);
    var link = $('ticket-chat-link');
    if (link) link.addEventListener('click', function () { leave(); }, true);
    return true;
  }

  function createConsult(id) {
    var c = {
      id: id,
      summary: {},
      operator: null,
      by: null,
      msgs: new Map(),     // seq -> {ts}
      notes: new Set(),    // ts|author id|text
      ended: false,
      live: true,
      closed: false,       // the tab was closed (frames are still kept)
      unread: 0,
      draft: '',
      list: el('ol', { className: 'messages consult-messages', attrs: { 'aria-label': 'Messages (read-only)' } }),
      tab: null
    };
    consults.set(id, c);
    return c;
  }

  function visitorOf(c) { return person(c.summary.visitor); }

  function renderTab(c) {
    if (!ui) return;
    var tab = c.tab;
    if (!tab) {
      tab = el('div', { className: 'chat-tab consult-tab', testid: 'consult-tab', tabIndex: 0, attrs: { role: 'tab' } });
      tab.dataset.sessionId = c.id;
      tab.addEventListener('click', function (ev) {
        if (ev.target && ev.target.closest && ev.target.closest('.tab-dismiss')) return;
        activate(c.id);
      });
      tab.addEventListener('keydown', function (ev) {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); activate(c.id); }
      });
      c.tab = tab;
      ui.strip.appendChild(tab);
    }
    clear(tab);
    var name = str(visitorOf(c).name, 'Visitor ' + c.id.slice(-4));
    tab.appendChild(el('span', { className: 'consult-tab-mark', text: '?', attrs: { 'aria-hidden': 'true' } }));
    tab.appendChild(el('span', { className: 'tab-name', text: name }));
    if (c.unread > 0) tab.appendChild(el('span', { className: 'badge', testid: 'consult-tab-unread', text: String(c.unread) }));
    if (c.ended) tab.appendChild(el('span', { className: 'tab-ended', text: 'Chat ended' }));
    var dismiss = el('button', {
      type: 'button', className: 'tab-dismiss', testid: 'consult-tab-close', text: '\u00d7', title: 'Close this consultation',
      attrs: { 'aria-label': 'Close consultation' }
    });
    dismiss.addEventListener('click', function (ev) {
      ev.stopPropagation();
      closeConsult(c.id);
    });
    tab.appendChild(dismiss);
    tab.title = 'Consulted by ' + str(person(c.by).name, 'a colleague') + ' on the chat with ' + name;
    tab.hidden = c.closed;
    tab.classList.toggle('is-selected', active === c.id);
    tab.classList.toggle('is-ended', c.ended);
    tab.classList.toggle('is-new', c.unread > 0 && active !== c.id);
    tab.setAttribute('aria-selected', active === c.id ? 'true' : 'false');
    var open = 0;
    consults.forEach(function (x) { if (!x.closed) open++; });
    ui.strip.hidden = open === 0;
  }

  function renderView() {
    var c = consults.get(active);
    if (!ui || !c) return;
    if (ui.slot.firstChild !== c.list) {
      clear(ui.slot);
      ui.slot.appendChild(c.list);
    }
    ui.view.dataset.sessionId = c.id;
    var v = visitorOf(c);
    ui.title.textContent = str(v.name, 'Visitor');
    var bits = [];
    if (c.operator) bits.push('With ' + str(c.operator.name, 'an operator'));
    else if (c.summary.state === 'waiting') bits.push('Waiting in the queue');
    if (c.by) bits.push('asked by ' + str(c.by.name, 'a colleague'));
    ui.meta.textContent = bits.join(' \u00b7 ');
    ui.ended.hidden = !c.ended;
    ui.stale.hidden = c.live || c.ended;
    ui.input.disabled = c.ended;
    ui.send.disabled = c.ended || !!(reply.item && reply.item.sessionId === c.id);
    ui.colleague.disabled = c.ended;

    clear(ui.sideInfo);
    var row = function (label, value, testid) {
      ui.sideInfo.appendChild(el('dt', { text: label }));
      ui.sideInfo.appendChild(el('dd', null, el('span', { className: 'break', testid: testid || null, text: value })));
    };
    row('Name', str(v.name, 'Visitor'), 'consult-visitor-name');
    row('E-mail', str(v.email, '\u2014'));
    row('Current page', str(v.page_url, '\u2014'));
    row('Operator', c.operator ? str(c.operator.name, '\u2014') : '\u2014');
    row('Asked by', c.by ? str(c.by.name, '\u2014') : '\u2014');
    row('Chat', c.id);
  }

  /** Show a consultation (`quiet`: without switching to the Chats view). */
  function activate(id, quiet) {
    var c = consults.get(id);
    if (!c || !ui) return;
    if (active && active !== id) saveDraft();
    var switched = active !== id;
    active = id;
    c.closed = false;
    c.unread = 0;
    if (!quiet && C.view() !== 'chats') C.showView('chats');
    $('view-chats').classList.add('is-consulting');
    consults.forEach(renderTab);
    renderView();
    if (switched) {
      ui.input.value = c.draft || '';
      ui.status.textContent = '';
      replyError('');
      c.list.scrollTop = c.list.scrollHeight;
      if (!c.ended && C.view() === 'chats') ui.input.focus({ preventScroll: true });
      loadOperators(false).then(function () {
        fillColleagues(ui.colleague, 'To the thread');
      }, function () { /* only the thread, then */ });
    }
  }

  function saveDraft() {
    var c = consults.get(active);
    if (c && ui) c.draft = ui.input.value;
  }

  function leave() {
    if (!active) return;
    saveDraft();
    active = null;
    var view = $('view-chats');
    if (view) view.classList.remove('is-consulting');
    consults.forEach(renderTab);
  }

  /** Close the tab. Frames keep coming (nothing unsubscribes), so the chat is kept
   *  quietly; a new question for me opens it again. An ended chat is dropped. */
  function closeConsult(id) {
    var c = consults.get(id);
    if (!c) return;
    if (active === id) leave();
    if (c.ended) {
      if (c.tab && c.tab.parentNode) c.tab.parentNode.removeChild(c.tab);
      consults.delete(id);
    } else {
      c.closed = true;
    }
    consults.forEach(renderTab);
    if (ui && !consults.size) ui.strip.hidden = true;
  }

  function placeRow(c, row, order) {
    row._order = order;
    var before = null;
    for (var node = c.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node._order > order) before = node;
      else break;
    }
    var stick = c.list.scrollHeight - c.list.scrollTop - c.list.clientHeight < 40;
    c.list.insertBefore(row, before);
    if (stick || active !== c.id) c.list.scrollTop = c.list.scrollHeight;
  }

  function addMessage(c, m) {
    if (typeof m.seq !== 'number' || c.msgs.has(m.seq)) return;
    c.msgs.set(m.seq, { ts: typeof m.ts === 'number' ? m.ts : null });
    var from = m.from === 'visitor' || m.from === 'operator' ? m.from : 'system';
    var text = str(m.text);
    if (m.event === 'escalated' && typeof m.ticket === 'string' && text.indexOf(m.ticket) < 0) {
      text = 'Chat escalated to ticket ' + m.ticket;
    }
    var bubble = el('div', { className: 'msg', testid: 'consult-message', text: text });
    bubble.dataset.from = from;
    bubble.dataset.seq = String(m.seq);
    bubble.dataset.time = typeof m.ts === 'number' ? C.formatClock(m.ts) : '';
    if (typeof m.ts === 'number') bubble.title = C.formatFull(m.ts);
    if (typeof m.event === 'string') bubble.dataset.event = m.event;
    if (from === 'operator') {
      bubble.dataset.author = str(m.author, 'Operator');
      bubble.dataset.state = 'stored';
    }
    var atts = Array.isArray(m.attachments) ? m.attachments.filter(function (a) { return a && typeof a.filename === 'string'; }) : [];
    var row = el('li', { className: 'msg-row from-' + from }, bubble);
    if (atts.length) {
      row.appendChild(el('div', {
        className: 'muted small consult-files',
        text: 'Attachments: ' + atts.map(function (a) { return a.filename; }).join(', ')
      }));
    }
    placeRow(c, row, m.seq);
    if (from === 'system' && (m.event === 'assigned' || m.event === 'reassigned') && m.author) {
      c.operator = { id: '', name: m.author };
    }
    if (from === 'system' && m.event === 'closed') c.ended = true;
    if (active === c.id) renderView();
  }

  function addNote(c, n) {
    if (!n || typeof n.text !== 'string') return false;
    var author = person(n.author);
    var key = n.ts + '|' + str(author.id) + '|' + n.text;
    if (c.notes.has(key)) return false;
    c.notes.add(key);
    var bubble = el('div', { className: 'msg', testid: 'consult-note', text: n.text });
    bubble.dataset.from = 'note';
    if (n.kind === 'consult') {
      labelNote(bubble, n);
    } else {
      bubble.dataset.kind = str(n.kind, 'whisper');
      bubble.dataset.author = 'Whisper from ' + str(author.name, 'a supervisor') + ' \u00b7 not shown to the visitor';
    }
    if (typeof n.ts === 'number') {
      bubble.dataset.time = C.formatClock(n.ts);
      bubble.title = C.formatFull(n.ts);
    }
    var after = 0;
    c.msgs.forEach(function (m, seq) {
      if (m.ts !== null && typeof n.ts === 'number' && m.ts <= n.ts && seq > after) after = seq;
    });
    placeRow(c, el('li', { className: 'msg-row from-note' }, bubble), after + 0.5);
    return true;
  }

  function replyError(text) {
    if (!ui) return;
    ui.error.textContent = text;
    ui.error.hidden = !text;
  }

  function onReplySubmit(ev) {
    ev.preventDefault();
    var c = consults.get(active);
    if (!c || c.ended || ui.send.disabled) return;
    var text = ui.input.value.trim();
    var problem = checkText(text);
    if (problem) {
      replyError(problem);
      return;
    }
    replyError('');
    if (!sendConsult(reply, c.id, text, ui.colleague.value)) {
      replyError('Not connected \u2014 try again when the connection is back');
      return;
    }
    ui.send.disabled = true;
    ui.status.textContent = 'Sending\u2026';
  }

  function notify(text) {
    C.toast(text, 'info');
  }

  // Frames ---------------------------------------------------------------

  C.on('consulted', function (f) {
    var summary = f.chat && typeof f.chat === 'object' ? f.chat : null;
    if (!summary || typeof summary.session_id !== 'string') return;
    var id = summary.session_id;
    var by = f.by && typeof f.by === 'object' ? f.by : null;
    var own = C.chats().get(id);
    if (own && !own.ended) {
      notify(str(by && by.name, 'A colleague') + ' consults you on this chat.');
      return;
    }
    if (!ui && !buildView()) return;
    var c = consults.get(id) || createConsult(id);
    c.summary = summary;
    c.operator = f.operator && typeof f.operator === 'object' ? f.operator : null;
    c.by = by;
    c.ended = summary.state === 'closed';
    c.live = true;
    c.closed = false;
    var name = str(person(summary.visitor).name, 'a visitor');
    notify(str(by && by.name, 'A colleague') + ' asks for your help with the chat of ' + name + '.');
    // Show it at once unless the operator is busy with an own chat or another
    // consultation (then the tab is highlighted); never switch views for it.
    if (!active && !C.selectedChat()) activate(id, true);
    else if (active === id) renderView();
    else c.unread++;
    renderTab(c);
  });

  C.on('message', function (f) {
    var c = consults.get(f.session_id);
    if (!c || C.chats().has(f.session_id)) return;
    var wasEnded = c.ended;
    addMessage(c, f);
    if (c.ended !== wasEnded) renderTab(c);
  });

  C.on('notes', function (f) {
    var c = consults.get(f.session_id);
    if (!c || !Array.isArray(f.notes)) return;
    f.notes.forEach(function (n) { addNote(c, n); });
  });

  C.on('note', function (f) {
    reply.note(f);
    ask.pending.note(f);
    var own = C.chats().get(f.session_id);
    if (own) {
      if (f.kind === 'consult' && !isMine(f)) {
        notify('Consult ' + whoLine(f) + ': ' + str(f.text));
      }
      return;
    }
    var c = consults.get(f.session_id);
    if (!c) return;
    if (!addNote(c, f)) return;
    var forMe = f.to && typeof f.to === 'object' && f.to.id === me().id;
    if (forMe && c.closed) c.closed = false;
    if (!isMine(f) && active !== c.id) {
      c.unread++;
      if (forMe || !c.closed) notify('Consult ' + whoLine(f) + ': ' + str(f.text));
    }
    renderTab(c);
  });

  C.on('chat_closed', function (f) {
    var c = consults.get(f.session_id);
    if (!c || c.ended) return;
    c.ended = true;
    renderTab(c);
    if (active === c.id) renderView();
  });

  C.on('chat_assigned', function (f) {
    // The consulted chat became mine: it opens as an own chat.
    var id = f.chat && f.chat.session_id;
    var c = id && consults.get(id);
    if (!c) return;
    if (active === id) leave();
    if (c.tab && c.tab.parentNode) c.tab.parentNode.removeChild(c.tab);
    consults.delete(id);
    consults.forEach(renderTab);
    if (ui && !consults.size) ui.strip.hidden = true;
  });

  C.on('error', function (f) {
    reply.error(f);
    ask.pending.error(f);
  });

  C.on('welcome', function () {
    // A new connection is nobody's watcher: the thread can be fetched again,
    // the chat's messages do not arrive live any more.
    consults.forEach(function (c) {
      if (c.ended) return;
      c.live = false;
      C.send({ type: 'notes', session_id: c.id });
      renderTab(c);
    });
    if (active) renderView();
    reply.reset();
    ask.pending.reset();
    if (ui) ui.send.disabled = false;
    if (ask.send) ask.send.disabled = false;
  });

  // Whoever opens an own chat from elsewhere (board, ticket) leaves the consult view.
  var openChat = C.openChat;
  C.openChat = function (id) {
    if (C.chats().has(id)) leave();
    return openChat(id);
  };

  C.on('reset', function () {
    leave();
    consults.forEach(function (c) { if (c.tab && c.tab.parentNode) c.tab.parentNode.removeChild(c.tab); });
    consults.clear();
    if (ui) ui.strip.hidden = true;
    ask.threads.clear();
    ask.pending.reset();
    reply.reset();
    operators.list = [];
    operators.promise = null;
    operators.at = 0;
    if (ask.form) showAsk(false);
    tk.number = null;
  });

  // ------------------------------------------------------------------
  // Tickets: an internal note that consults a colleague
  // ------------------------------------------------------------------

  var tk = { select: null, number: null };

  function buildTicketConsult() {
    var actions = document.querySelector('#ticket-reply .reply-actions');
    var spacer = actions && actions.querySelector('.topbar-spacer');
    if (!actions) return false;
    tk.select = el('select', { testid: 'ticket-consult', attrs: { 'aria-label': 'Consult colleague' } },
      el('option', { value: '', text: 'No one' }));
    tk.field = el('label', { className: 'ticket-consult' },
      el('span', { className: 'svc-label', text: 'Consult colleague' }), tk.select);
    actions.insertBefore(tk.field, spacer || null);
    return true;
  }

  function refreshTicketConsult(force) {
    loadOperators(force).then(function () {
      if (tk.select) fillColleagues(tk.select, 'No one');
    }, function () { /* the select keeps "No one" */ });
  }

  /** Note events that consulted a colleague: "Consulted: Name". */
  function decorateConsultEvents(events) {
    var byN = new Map();
    (events || []).forEach(function (e) {
      var body = e && e.body && typeof e.body === 'object' ? e.body : null;
      if (body && body.consult && typeof e.n === 'number') byN.set(e.n, body.consult);
    });
    if (!byN.size) return;
    var items = document.querySelectorAll('#ticket-events [data-testid="ticket-event"]');
    for (var i = 0; i < items.length; i++) {
      var consult = byN.get(Number(items[i].dataset.n));
      if (!consult || items[i]._consult) continue;
      items[i]._consult = true;
      var name = typeof consult === 'object' ? str(consult.name, str(consult.id, 'a colleague')) : str(consult, 'a colleague');
      items[i].dataset.consult = typeof consult === 'object' ? str(consult.id) : str(consult);
      var line = el('div', { className: 'tev-consult', testid: 'ticket-event-consult', text: 'Consulted: ' + name });
      var head = items[i].querySelector('.tev-head');
      items[i].insertBefore(line, head ? head.nextSibling : items[i].firstChild);
    }
  }

  C.on('ticket', function (cur) {
    if (!cur || !cur.ticket) return;
    if (!tk.select && !buildTicketConsult()) return;
    if (tk.number !== cur.ticket.number) {
      tk.number = cur.ticket.number;
      tk.select.value = '';
      refreshTicketConsult(false);
    }
    decorateConsultEvents(cur.events);
  });

  C.on('ticket-reply-body', function (body) {
    if (!tk.select || !body.internal || !tk.select.value) return;
    body.consult = tk.select.value;
  });

  C.on('ticket-reply-sent', function (p) {
    if (tk.select && p && p.body && p.body.consult) tk.select.value = '';
  });

  // The console may have drawn a chat before this file ran.
  renderAsk(C.selectedChat());
})();
