/*
 * Canned responses next to the composer: the menu (search, pick one to insert
 * it with its placeholders filled in by the server, add one: personal for
 * every operator, the team's for supervisors and admins) and the "/" shortcut:
 * typing "/gre" in the composer opens a listbox of matches under it (arrow
 * keys move, Enter or Tab inserts, Escape closes; the ARIA combobox pattern
 * with aria-activedescendant, on the composer's textarea). Editing and deleting: canned-manage.js, opened
 * from the menu or, without a chat, from the canned button itself.
 */
import { $, el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, enc } from '../shared/format.js';
import { selectedChat, isSupervisor } from '../shared/state.js';
import { api, errorText } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { serviceOf } from '../service/chat-service.js';
import { openCannedManager } from './canned-manage.js';

const canned = { button: null, menu: null, list: null, form: null, seq: 0 };
// The "/" completion: its listbox, the matches, the active one, where the "/" is.
const comp = { box: null, items: [], active: -1, start: -1, seq: 0 };
const SLASH = /(?:^|\s)\/([\p{L}\p{N}_-]{0,30})$/u;

function cannedPath(chat, q) {
  const st = chat ? serviceOf(chat.id) : null;
  let path = '/api/canned?';
  if (chat) path += 'session_id=' + enc(chat.id);
  if (st && st.department) path += '&department=' + enc(st.department);
  if (q) path += '&q=' + enc(q.slice(0, 100));
  return path;
}

function buildCanned() {
  const composer = $('composer');
  const input = $('message-input');
  if (!composer || !input) return false;
  canned.button = el('button', {
    type: 'button', className: 'btn btn-icon svc-canned-button', testid: 'canned-button', text: '\u2261',
    title: t('canned.title'), attrs: { 'aria-label': t('canned.title'), 'aria-haspopup': 'true', 'aria-expanded': 'false' }
  });
  composer.insertBefore(canned.button, input);
  canned.search = el('input', {
    type: 'search', testid: 'canned-search', maxLength: 100, placeholder: t('canned.search'),
    attrs: { 'aria-label': t('canned.search') }
  });
  canned.list = el('ul', { className: 'svc-canned-list', testid: 'canned-list' });
  canned.status = el('div', { className: 'muted small svc-canned-status', testid: 'canned-status', attrs: { 'aria-live': 'polite' } });
  canned.title = el('input', {
    type: 'text', testid: 'canned-title', maxLength: 100, placeholder: t('canned.field.title'),
    attrs: { 'aria-label': t('canned.field.title') }
  });
  canned.shortcut = el('input', {
    type: 'text', testid: 'canned-shortcut', maxLength: 31, placeholder: t('canned.field.shortcut'),
    attrs: { 'aria-label': t('canned.field.shortcut') }
  });
  canned.text = el('textarea', {
    testid: 'canned-text', maxLength: 4000, rows: 3,
    placeholder: t('canned.field.text.placeholder'),
    attrs: { 'aria-label': t('canned.field.text') }
  });
  canned.department = el('select', { testid: 'canned-department', attrs: { 'aria-label': t('canned.field.department') } },
    el('option', { value: '', text: t('canned.allDepartments') }),
    el('option', { value: 'technical', text: t('department.technical') }),
    el('option', { value: 'billing', text: t('department.billing') }));
  canned.team = el('input', { type: 'checkbox', testid: 'canned-team', checked: true });
  canned.teamLabel = el('label', { className: 'small' }, canned.team, ' ', t('canned.field.team'));
  canned.save = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'canned-save', text: t('canned.add') });
  canned.error = el('div', { className: 'inline-error svc-error', testid: 'canned-error', hidden: true, attrs: { role: 'alert' } });
  canned.form = el('form', { className: 'svc-canned-form', testid: 'canned-form', noValidate: true },
    el('div', { className: 'svc-label', text: t('canned.new') }),
    canned.title, canned.shortcut, canned.text, canned.teamLabel,
    el('div', { className: 'svc-row' }, canned.department, canned.save), canned.error);
  canned.manage = el('button', {
    type: 'button', className: 'btn btn-small', testid: 'canned-manage', text: t('canned.manage')
  });
  canned.menu = el('div', {
    className: 'svc-canned', testid: 'canned-menu', hidden: true, attrs: { role: 'dialog', 'aria-label': t('canned.title') }
  }, el('div', { className: 'svc-row' }, el('div', { className: 'section-title', text: t('canned.title') }), canned.manage),
  canned.search, canned.status, canned.list, canned.form);
  composer.appendChild(canned.menu);

  canned.button.addEventListener('click', () => {
    if (!selectedChat() || selectedChat().ended) { openCannedManager(canned.button); return; }
    if (canned.menu.hidden) openCanned();
    else closeCanned();
  });
  canned.manage.addEventListener('click', () => { closeCanned(); openCannedManager(canned.button); });
  canned.search.addEventListener('input', () => {
    const chat = selectedChat();
    if (chat) loadCanned(chat, false);
  });
  canned.form.addEventListener('submit', onCannedAdd);
  canned.menu.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { closeCanned(); canned.button.focus(); }
  });
  document.addEventListener('mousedown', (ev) => {
    if (canned.menu.hidden) return;
    if (canned.menu.contains(ev.target) || canned.button.contains(ev.target)) return;
    closeCanned();
  });
  buildCompletion(composer, input);
  return true;
}

function renderCannedButton(chat) {
  if (!canned.button && !buildCanned()) return;
  // Without a chat the button opens the management dialog.
  canned.button.disabled = false;
  if (!chat || chat.ended) closeCanned();
  closeCompletion();
}

export function closeCanned() {
  if (!canned.menu) return;
  canned.menu.hidden = true;
  canned.button.setAttribute('aria-expanded', 'false');
  canned.seq++;
}

function openCanned() {
  const chat = selectedChat();
  if (!chat || chat.ended) return;
  canned.menu.hidden = false;
  canned.button.setAttribute('aria-expanded', 'true');
  canned.teamLabel.hidden = !isSupervisor();
  canned.error.hidden = true;
  canned.search.value = '';
  loadCanned(chat, true);
}

function loadCanned(chat, focusFirst) {
  const seq = ++canned.seq;
  clear(canned.list);
  canned.status.textContent = t('common.loading');
  api('GET', cannedPath(chat, canned.search.value.trim())).then((r) => {
    if (seq !== canned.seq) return;
    const items = r && Array.isArray(r.canned) ? r.canned : [];
    canned.status.textContent = items.length ? '' : (canned.search.value.trim() ? t('canned.noMatch') : t('canned.none'));
    items.forEach((item) => {
      if (!item || typeof item !== 'object') return;
      const text = str(item.rendered, str(item.text));
      const btn = el('button', {
        type: 'button', className: 'svc-canned-item', testid: 'canned-item', title: text
      }, el('span', { className: 'svc-canned-title', text: str(item.title, t('canned.untitled')) + (item.shortcut ? '  /' + item.shortcut : '') }),
      el('span', { className: 'svc-canned-preview', text: text }));
      if (item.department) btn.dataset.department = String(item.department);
      btn.addEventListener('click', () => {
        insertIntoComposer(text, -1);
        closeCanned();
      });
      canned.list.appendChild(el('li', null, btn));
    });
    const first = canned.list.querySelector('button');
    if (first && focusFirst) first.focus();
  }).catch((err) => {
    if (seq !== canned.seq) return;
    canned.status.textContent = t('canned.loadFailed', { message: err.message });
  });
}

/** Insert `text` at the caret, or in place of the "/shortcut" typed from `from`. */
function insertIntoComposer(text, from) {
  const input = $('message-input');
  if (!input || input.disabled) return;
  input.focus();
  const end = typeof input.selectionEnd === 'number' ? input.selectionEnd : input.value.length;
  let start = typeof input.selectionStart === 'number' ? input.selectionStart : end;
  if (from >= 0 && from <= end) start = from;
  input.setRangeText(text, start, end, 'end');
  // The composer keeps the draft, the typing indicator and the counter from 'input'.
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

function onCannedAdd(ev) {
  ev.preventDefault();
  const title = canned.title.value.trim();
  const text = canned.text.value.trim();
  if (!title || !text) {
    canned.error.textContent = t('canned.missing');
    canned.error.hidden = false;
    return;
  }
  const body = { title: title, text: text, personal: !(isSupervisor() && canned.team.checked) };
  const shortcut = canned.shortcut.value.trim();
  if (shortcut) body.shortcut = shortcut;
  if (canned.department.value) body.department = canned.department.value;
  canned.save.disabled = true;
  canned.error.hidden = true;
  api('POST', '/api/canned', body, { context: 'canned' }).then(() => {
    canned.save.disabled = false;
    canned.title.value = '';
    canned.shortcut.value = '';
    canned.text.value = '';
    toast(t('canned.added', { title: title }), 'info');
    const chat = selectedChat();
    if (chat && !canned.menu.hidden) loadCanned(chat, false);
  }).catch((err) => {
    canned.save.disabled = false;
    canned.error.textContent = errorText(err);
    canned.error.hidden = false;
  });
}

// The "/" completion ---------------------------------------------------------

function buildCompletion(composer, input) {
  comp.box = el('ul', {
    id: 'canned-complete', className: 'svc-canned-complete', testid: 'canned-complete', hidden: true,
    attrs: { role: 'listbox', 'aria-label': t('canned.complete') }
  });
  composer.appendChild(comp.box);
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'canned-complete');
  input.addEventListener('input', onSlashInput);
  input.addEventListener('blur', () => { window.setTimeout(closeCompletion, 150); });
  // Before the composer's own Enter-to-send: capture on the document.
  document.addEventListener('keydown', onCompletionKey, true);
}

function onSlashInput() {
  const input = $('message-input');
  const chat = selectedChat();
  const caret = typeof input.selectionStart === 'number' ? input.selectionStart : input.value.length;
  const m = chat && !chat.ended && input.selectionStart === input.selectionEnd
    ? SLASH.exec(input.value.slice(0, caret)) : null;
  if (!m) { closeCompletion(); return; }
  const query = m[1].toLowerCase();
  const seq = ++comp.seq;
  comp.start = caret - query.length - 1;
  api('GET', cannedPath(chat, query)).then((r) => {
    if (seq !== comp.seq) return;
    const items = (r && Array.isArray(r.canned) ? r.canned : []).filter((i) => i && typeof i === 'object');
    // Shortcuts that start with what was typed first, then titles, then the rest.
    const rank = (i) => (str(i.shortcut).startsWith(query) ? 0 : str(i.title).toLowerCase().startsWith(query) ? 1 : 2);
    items.sort((a, b) => rank(a) - rank(b));
    showCompletion(items.slice(0, 8));
  }).catch(() => { if (seq === comp.seq) closeCompletion(); });
}

function showCompletion(items) {
  comp.items = items;
  clear(comp.box);
  if (!items.length) { closeCompletion(); return; }
  items.forEach((item, i) => {
    const option = el('li', {
      id: 'canned-option-' + i, className: 'svc-canned-option', testid: 'canned-option',
      attrs: { role: 'option', 'aria-selected': 'false' }
    }, el('span', { className: 'svc-canned-title', text: (item.shortcut ? '/' + item.shortcut + '  ' : '') + str(item.title, t('canned.untitled')) }),
    el('span', { className: 'svc-canned-preview', text: str(item.rendered, str(item.text)) }));
    option.addEventListener('mousedown', (ev) => { ev.preventDefault(); });
    option.addEventListener('click', () => { acceptCompletion(i); });
    comp.box.appendChild(option);
  });
  comp.box.hidden = false;
  setActive(0);
}

function setActive(i) {
  const options = comp.box.querySelectorAll('[role="option"]');
  if (!options.length) return;
  comp.active = (i + options.length) % options.length;
  options.forEach((o, n) => { o.setAttribute('aria-selected', n === comp.active ? 'true' : 'false'); });
  const current = options[comp.active];
  $('message-input').setAttribute('aria-activedescendant', current.id);
  current.scrollIntoView({ block: 'nearest' });
}

function acceptCompletion(i) {
  const item = comp.items[i];
  const start = comp.start;
  closeCompletion();
  if (item) insertIntoComposer(str(item.rendered, str(item.text)), start);
}

export function closeCompletion() {
  comp.seq++;
  comp.items = [];
  comp.active = -1;
  if (!comp.box) return;
  comp.box.hidden = true;
  clear(comp.box);
  const input = $('message-input');
  // (A textarea takes no aria-expanded; the listbox's visibility tells it.)
  if (input) input.removeAttribute('aria-activedescendant');
}

function onCompletionKey(ev) {
  if (!comp.box || comp.box.hidden || ev.target !== $('message-input') || ev.isComposing) return;
  let handled = true;
  if (ev.key === 'ArrowDown') setActive(comp.active + 1);
  else if (ev.key === 'ArrowUp') setActive(comp.active - 1);
  else if (ev.key === 'Enter' || ev.key === 'Tab') acceptCompletion(comp.active);
  else if (ev.key === 'Escape') closeCompletion();
  else handled = false;
  if (handled) { ev.preventDefault(); ev.stopImmediatePropagation(); }
}

export function installCanned() {
  on('chat-selected', renderCannedButton);
  on('reset', () => { closeCanned(); closeCompletion(); });
  on('canned-changed', () => {
    const chat = selectedChat();
    if (chat && canned.menu && !canned.menu.hidden) loadCanned(chat, false);
  });
  // The button is there before any chat is selected.
  renderCannedButton(selectedChat());
}
