/*
 * The colleague picker of the transfer form: a combobox (the text input) with a
 * listbox of the colleagues who are online or away (online first), each with
 * name, status, load and support level. Typing filters by name or username;
 * ArrowDown/ArrowUp move, Enter chooses, Escape closes the list. Nobody types an
 * internal id (an `o_…` id typed in is still passed on, for the server to judge).
 */
import { el, clear } from '../shared/dom.js';
import { t, hasMessage } from '../shared/i18n.js';
import { app } from '../shared/state.js';
import { loadOperators } from '../consult/colleagues.js';

const ORDER = { online: 0, away: 1 };
let seq = 0;

function str(v, d) { return typeof v === 'string' && v ? v : d; }

function details(o) {
  const levels = Array.isArray(o.levels) ? o.levels.filter((n) => typeof n === 'number') : [];
  const status = str(o.status, 'offline');
  const bits = [hasMessage('consult.status.' + status) ? t('consult.status.' + status) : status];
  if (typeof o.load === 'number' && typeof o.capacity === 'number') {
    bits.push(t('consult.load', { load: o.load, capacity: o.capacity }));
  }
  if (levels.length) bits.push(t('consult.levels', { levels: levels.join('/') }));
  return bits.join(' \u00b7 ');
}

/**
 * Create the picker. Returns { input, list, show(on), choice() }: `choice()` is
 * { id, name } of the chosen colleague, or null when the text names nobody.
 */
export function createColleaguePicker() {
  const id = 'transfer-operators-' + (++seq);
  const p = { all: [], shown: [], active: -1, chosen: null };
  p.input = el('input', {
    type: 'text', testid: 'transfer-operator', maxLength: 64, placeholder: t('transfer.operator.placeholder'), hidden: true,
    attrs: {
      role: 'combobox', 'aria-label': t('transfer.operator.label'), 'aria-autocomplete': 'list',
      'aria-expanded': 'false', 'aria-controls': id, autocomplete: 'off', spellcheck: 'false'
    }
  });
  p.list = el('ul', {
    id: id, className: 'svc-picker', testid: 'transfer-operators', hidden: true,
    attrs: { role: 'listbox', 'aria-label': t('transfer.operator.list') }
  });
  p.wrap = el('span', { className: 'svc-picker-wrap' }, p.input, p.list);

  function open(on) {
    p.list.hidden = !on;
    p.input.setAttribute('aria-expanded', on ? 'true' : 'false');
    if (!on) activate(-1);
  }

  function activate(i) {
    p.active = i;
    Array.prototype.forEach.call(p.list.children, (li, k) => { li.setAttribute('aria-selected', k === i ? 'true' : 'false'); });
    const li = i >= 0 ? p.list.children[i] : null;
    if (li && li.id) {
      p.input.setAttribute('aria-activedescendant', li.id);
      li.scrollIntoView({ block: 'nearest' });
    } else {
      p.input.removeAttribute('aria-activedescendant');
    }
  }

  function choose(o) {
    p.chosen = o;
    p.input.value = str(o.name, str(o.username, o.id));
    open(false);
  }

  function render() {
    const q = p.input.value.trim().toLowerCase();
    p.shown = p.all.filter((o) => !q || str(o.name, '').toLowerCase().indexOf(q) >= 0 ||
      str(o.username, '').toLowerCase().indexOf(q) >= 0);
    clear(p.list);
    if (!p.shown.length) {
      p.list.appendChild(el('li', { className: 'svc-picker-none muted small', testid: 'transfer-operators-none', text: t('transfer.operator.none'), attrs: { role: 'presentation' } }));
    }
    p.shown.forEach((o, k) => {
      const li = el('li', {
        id: id + '-' + k, className: 'svc-picker-option', testid: 'transfer-operator-option',
        dataset: { id: o.id, status: str(o.status, 'offline') }, attrs: { role: 'option', 'aria-selected': 'false' }
      }, el('span', { className: 'svc-picker-name', text: str(o.name, str(o.username, o.id)) }),
      el('span', { className: 'muted small', text: details(o) }));
      // mousedown, not click: the input keeps the focus.
      li.addEventListener('mousedown', (ev) => { ev.preventDefault(); choose(o); });
      p.list.appendChild(li);
    });
    open(true);
    activate(p.shown.length && q ? 0 : -1);
  }

  p.input.addEventListener('input', () => { p.chosen = null; render(); });
  p.input.addEventListener('focus', () => { if (!p.input.hidden) render(); });
  p.input.addEventListener('blur', () => { open(false); });
  p.input.addEventListener('keydown', (ev) => {
    const n = p.shown.length;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (p.list.hidden) { render(); return; }
      if (!n) return;
      const step = ev.key === 'ArrowDown' ? 1 : -1;
      activate(p.active < 0 ? (step > 0 ? 0 : n - 1) : (p.active + step + n) % n);
    } else if (ev.key === 'Enter' && !p.list.hidden && p.active >= 0) {
      ev.preventDefault(); // chooses; the next Enter submits
      choose(p.shown[p.active]);
    } else if (ev.key === 'Escape' && !p.list.hidden) {
      ev.preventDefault();
      ev.stopPropagation();
      open(false);
    }
  });

  return {
    input: p.input,
    list: p.list,
    wrap: p.wrap,
    /** Show (and load the colleagues) or hide the picker; clears the text. */
    show(on) {
      p.input.value = '';
      p.chosen = null;
      p.input.hidden = !on;
      open(false);
      if (!on) return;
      const me = app.operator && app.operator.id;
      loadOperators(true).then((list) => {
        p.all = list.filter((o) => o.id !== me && (o.status === 'online' || o.status === 'away')).sort((a, b) =>
          ORDER[a.status] - ORDER[b.status] || str(a.name, '').toLowerCase().localeCompare(str(b.name, '').toLowerCase()));
        if (document.activeElement === p.input) render();
      }, () => { p.all = []; });
      p.input.focus();
    },
    /** The chosen colleague: picked from the list, or the only one the text matches. */
    choice() {
      if (p.chosen) return p.chosen;
      const q = p.input.value.trim().toLowerCase();
      if (!q) return null;
      const exact = p.all.filter((o) => str(o.name, '').toLowerCase() === q || str(o.username, '').toLowerCase() === q);
      if (exact.length === 1) return exact[0];
      const some = p.all.filter((o) => str(o.name, '').toLowerCase().indexOf(q) >= 0);
      if (some.length === 1) return some[0];
      const raw = p.input.value.trim();
      return /^o_\S+$/.test(raw) ? { id: raw, name: raw } : null;
    }
  };
}
