/*
 * Consulting: the colleagues (GET /api/operators), how consult notes are
 * labelled, and a `consult` frame in flight.
 */
import { el, clear } from '../shared/dom.js';
import { t, hasMessage, errorMessage } from '../shared/i18n.js';
import { str } from '../shared/format.js';
import { app } from '../shared/state.js';
import { api } from '../shared/api.js';
import { send } from '../shared/connection.js';

export const MAX_CHARS = 4000;
const OPERATORS_FRESH_MS = 15000;
const PENDING_MS = 10000;
const STATUS_ORDER = { online: 0, away: 1, offline: 2 };
const REFUSALS = {
  bad_frame: 1, unknown_session: 1, not_assigned: 1, chat_closed: 1, forbidden: 1,
  rate_limited: 1, unavailable: 1, not_found: 1, invalid_state: 1
};

export function me() { return app.operator || {}; }

export function person(p) { return p && typeof p === 'object' ? p : {}; }

export function isMine(note) { return !!me().id && person(note.author).id === me().id; }

// ------------------------------------------------------------------
// Colleagues (GET /api/operators)
// ------------------------------------------------------------------

const operators = { list: [], at: 0, promise: null };

export function loadOperators(force) {
  if (operators.promise && !force && Date.now() - operators.at < OPERATORS_FRESH_MS) return operators.promise;
  operators.at = Date.now();
  operators.promise = api('GET', '/api/operators').then((r) => {
    const list = r && Array.isArray(r.operators) ? r.operators : [];
    operators.list = list.filter((o) => o && typeof o === 'object' && typeof o.id === 'string');
    return operators.list;
  }, (err) => {
    operators.at = 0;
    operators.promise = null;
    throw err;
  });
  return operators.promise;
}

export function forgetOperators() {
  operators.list = [];
  operators.promise = null;
  operators.at = 0;
}

function thirdLevel(o) { return Array.isArray(o.levels) && o.levels.indexOf(3) >= 0; }

/** Everyone but me: 3rd level first, then online before away before offline, by name. */
function colleagues() {
  const self = me().id;
  return operators.list.filter((o) => o.id !== self).sort((a, b) => {
    const l = (thirdLevel(b) ? 1 : 0) - (thirdLevel(a) ? 1 : 0);
    if (l) return l;
    const s = (a.status in STATUS_ORDER ? STATUS_ORDER[a.status] : 3) - (b.status in STATUS_ORDER ? STATUS_ORDER[b.status] : 3);
    if (s) return s;
    return str(a.name).toLowerCase().localeCompare(str(b.name).toLowerCase());
  });
}

export function colleagueName(id) {
  for (let i = 0; i < operators.list.length; i++) {
    if (operators.list[i].id === id) return str(operators.list[i].name, id);
  }
  return id;
}

function levelText(o) {
  const levels = Array.isArray(o.levels) ? o.levels.filter((n) => typeof n === 'number') : [];
  if (thirdLevel(o)) return t('consult.level3');
  return levels.length ? t('consult.levels', { levels: levels.join('/') }) : '';
}

function colleagueOption(o) {
  const status = str(o.status, 'offline');
  const bits = [levelText(o), hasMessage('consult.status.' + status) ? t('consult.status.' + status) : status];
  if (typeof o.load === 'number' && typeof o.capacity === 'number') {
    bits.push(t('consult.load', { load: o.load, capacity: o.capacity }));
  }
  return el('option', {
    value: o.id,
    text: t('consult.option', { name: str(o.name, str(o.username, o.id)), details: bits.filter(Boolean).join(' \u00b7 ') }),
    dataset: { status: status, level3: thirdLevel(o) ? 'true' : 'false' }
  });
}

/**
 * Fill a <select> with the colleagues; `first` is the text of the '' option.
 * Keeps the chosen colleague when it is still listed.
 */
export function fillColleagues(select, first) {
  const keep = select.value;
  clear(select);
  select.appendChild(el('option', { value: '', text: first }));
  const list = colleagues();
  const third = list.filter(thirdLevel);
  const others = list.filter((o) => !thirdLevel(o));
  if (third.length) {
    const g3 = el('optgroup', { label: t('consult.group.level3') });
    third.forEach((o) => { g3.appendChild(colleagueOption(o)); });
    select.appendChild(g3);
  }
  if (others.length) {
    const g = el('optgroup', { label: third.length ? t('consult.group.others') : t('consult.group.colleagues') });
    others.forEach((o) => { g.appendChild(colleagueOption(o)); });
    select.appendChild(g);
  }
  select.value = keep;
  if (select.value !== keep) select.value = '';
}

// ------------------------------------------------------------------
// Consult notes
// ------------------------------------------------------------------

/** "Anna asks Cleo" / "from Cleo": who wrote a consult note to whom. */
export function whoLine(note) {
  const author = str(person(note.author).name, t('note.aColleague'));
  const to = note.to && typeof note.to === 'object' ? str(note.to.name, str(note.to.id)) : '';
  return to ? t('consult.who.asks', { author: author, to: to }) : t('consult.who.from', { author: author });
}

/** Mark a drawn note bubble as a consult note. */
export function labelNote(bubble, note) {
  bubble.dataset.kind = 'consult';
  bubble.dataset.author = t('consult.noteLabel', { label: t('consult.label'), who: whoLine(note) });
  bubble.dataset.consultFrom = str(person(note.author).name);
  if (note.to && typeof note.to === 'object') bubble.dataset.consultTo = str(note.to.name);
}

/**
 * A `consult` frame in flight: its note (from me, same text) confirms it, an
 * error frame without `ref` soon after refuses it.
 */
export class Pending {
  constructor(onDone, onFail) {
    this.item = null;
    this.timer = null;
    this.onDone = onDone;
    this.onFail = onFail;
  }

  start(sessionId, text, target) {
    clearTimeout(this.timer);
    const item = { sessionId: sessionId, text: text, target: target, at: Date.now() };
    this.item = item;
    this.timer = setTimeout(() => {
      if (this.item === item) {
        this.item = null;
        this.onFail(item, t('consult.noAnswer'));
      }
    }, PENDING_MS);
  }

  note(f) {
    const p = this.item;
    if (!p || f.session_id !== p.sessionId || !isMine(f) || str(f.text) !== p.text) return;
    this.item = null;
    clearTimeout(this.timer);
    this.onDone(p, f);
  }

  error(f) {
    const p = this.item;
    if (!p || f.ref || !REFUSALS[f.code] || Date.now() - p.at > PENDING_MS) return;
    this.item = null;
    clearTimeout(this.timer);
    this.onFail(p, errorMessage(f.code, 'consult'));
  }

  reset() {
    clearTimeout(this.timer);
    this.item = null;
  }
}

/** Send a `consult` frame (to `target`, or to the thread); false if not connected. */
export function sendConsult(pending, sessionId, text, target) {
  const frame = { type: 'consult', session_id: sessionId, text: text };
  if (target) frame.operator_id = target;
  if (!send(frame)) return false;
  pending.start(sessionId, text, target);
  return true;
}

/** What is wrong with a note text, or ''. */
export function checkText(text) {
  if (!text) return t('consult.textMissing');
  if (text.length > MAX_CHARS) return t('consult.textTooLong', { max: MAX_CHARS });
  return '';
}

/** Enter sends the form (Shift+Enter: new line). */
export function enterSends(textarea, form) {
  textarea.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
}
