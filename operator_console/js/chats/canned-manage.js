/*
 * Managing canned responses outside a chat: a modal dialog (opened from the
 * canned menu or, without a chat, the canned button) that lists the team's
 * responses and the operator's own, searchable by title, shortcut and text and
 * by language, and creates, edits and deletes them. Every operator manages
 * their personal ones; supervisors and admins also the team's (the server
 * says per response whether it is `editable`). Deleting asks first.
 */
import { el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, enc } from '../shared/format.js';
import { isSupervisor } from '../shared/state.js';
import { api, errorText } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { confirmDialog } from '../shared/confirm.js';

const LANGS = ['de', 'fr', 'it', 'en'];
const m = { dialog: null, editing: null, seq: 0, opener: null };

function langSelect(testid, allKey) {
  return el('select', { testid: testid, attrs: { 'aria-label': t('canned.field.lang') } },
    el('option', { value: '', text: t(allKey) }),
    ...LANGS.map((code) => el('option', { value: code, text: t('canned.lang.' + code) })));
}

function build() {
  m.search = el('input', {
    type: 'search', testid: 'canned-manage-search', maxLength: 100, placeholder: t('canned.search'),
    attrs: { 'aria-label': t('canned.search') }
  });
  m.lang = langSelect('canned-manage-lang', 'canned.lang.all');
  m.status = el('div', { className: 'muted small', testid: 'canned-manage-status', attrs: { 'aria-live': 'polite' } });
  m.list = el('ul', { className: 'svc-canned-list svc-canned-manage-list', testid: 'canned-manage-list' });
  m.formTitle = el('h3', { className: 'svc-label', testid: 'canned-edit-heading', text: t('canned.new') });
  m.title = el('input', { type: 'text', testid: 'canned-edit-title', maxLength: 100, attrs: { 'aria-label': t('canned.field.title') }, placeholder: t('canned.field.title') });
  m.shortcut = el('input', { type: 'text', testid: 'canned-edit-shortcut', maxLength: 31, attrs: { 'aria-label': t('canned.field.shortcut') }, placeholder: t('canned.field.shortcut') });
  m.text = el('textarea', { testid: 'canned-edit-text', maxLength: 4000, rows: 4, attrs: { 'aria-label': t('canned.field.text') }, placeholder: t('canned.field.text.placeholder') });
  m.formLang = langSelect('canned-edit-lang', 'canned.lang.every');
  m.department = el('select', { testid: 'canned-edit-department', attrs: { 'aria-label': t('canned.field.department') } },
    el('option', { value: '', text: t('canned.allDepartments') }),
    el('option', { value: 'technical', text: t('department.technical') }),
    el('option', { value: 'billing', text: t('department.billing') }));
  m.team = el('input', { type: 'checkbox', testid: 'canned-edit-team' });
  m.teamLabel = el('label', { className: 'small' }, m.team, ' ', t('canned.field.team'));
  m.save = el('button', { type: 'submit', className: 'btn btn-primary btn-small', testid: 'canned-edit-save', text: t('canned.save') });
  m.cancel = el('button', { type: 'button', className: 'btn btn-small', testid: 'canned-edit-cancel', text: t('common.cancel') });
  m.error = el('div', { className: 'inline-error svc-error', testid: 'canned-edit-error', hidden: true, attrs: { role: 'alert' } });
  m.form = el('form', { className: 'svc-canned-form', testid: 'canned-edit-form', noValidate: true },
    m.formTitle, m.title, m.shortcut, m.text,
    el('div', { className: 'svc-row' }, m.formLang, m.department), m.teamLabel,
    el('div', { className: 'svc-row' }, m.cancel, m.save), m.error);
  const close = el('button', { type: 'button', className: 'btn btn-small', testid: 'canned-manage-close', text: t('canned.close') });
  m.dialog = el('dialog', {
    className: 'dialog svc-canned-dialog', testid: 'canned-dialog', attrs: { 'aria-labelledby': 'canned-dialog-title' }
  }, el('div', { className: 'svc-row' }, el('h2', { id: 'canned-dialog-title', className: 'section-title', text: t('canned.title') }), close),
  el('div', { className: 'svc-row' }, m.search, m.lang), m.status, m.list, m.form);
  document.body.appendChild(m.dialog);

  close.addEventListener('click', () => { m.dialog.close(); });
  m.dialog.addEventListener('close', () => {
    m.seq++;
    if (m.opener && m.opener.isConnected) m.opener.focus();
  });
  m.search.addEventListener('input', load);
  m.lang.addEventListener('change', load);
  m.form.addEventListener('submit', onSave);
  m.cancel.addEventListener('click', () => { resetForm(); });
}

/** Open the dialog; focus returns to `opener` when it closes. */
export function openCannedManager(opener) {
  if (!m.dialog) build();
  m.opener = opener || null;
  resetForm();
  m.search.value = '';
  if (!m.dialog.open) m.dialog.showModal();
  m.search.focus();
  load();
}

function resetForm() {
  m.editing = null;
  m.formTitle.textContent = t('canned.new');
  m.title.value = '';
  m.shortcut.value = '';
  m.text.value = '';
  m.formLang.value = '';
  m.department.value = '';
  m.team.checked = isSupervisor();
  m.team.disabled = false;
  m.teamLabel.hidden = !isSupervisor();
  m.cancel.hidden = true;
  m.error.hidden = true;
}

function load() {
  const seq = ++m.seq;
  let path = '/api/canned?';
  const q = m.search.value.trim();
  if (q) path += 'q=' + enc(q.slice(0, 100));
  if (m.lang.value) path += '&lang=' + enc(m.lang.value);
  m.status.textContent = t('common.loading');
  api('GET', path).then((r) => {
    if (seq !== m.seq) return;
    const items = (r && Array.isArray(r.canned) ? r.canned : []).filter((i) => i && typeof i === 'object');
    clear(m.list);
    m.status.textContent = items.length ? '' : (q ? t('canned.noMatch') : t('canned.none'));
    items.forEach((item) => { m.list.appendChild(row(item)); });
  }).catch((err) => {
    if (seq !== m.seq) return;
    m.status.textContent = t('canned.loadFailed', { message: err.message });
  });
}

function row(item) {
  const title = str(item.title, t('canned.untitled'));
  const badge = el('span', {
    className: 'svc-canned-badge', testid: 'canned-row-kind',
    text: item.personal ? t('canned.kind.personal') : t('canned.kind.team')
  });
  const meta = [item.shortcut ? '/' + item.shortcut : '', item.lang ? t('canned.lang.' + item.lang) : ''].filter(Boolean).join(' \u00b7 ');
  const li = el('li', { className: 'svc-canned-row', testid: 'canned-row', dataset: { id: item.id } },
    el('span', { className: 'svc-canned-title' }, title, ' ', badge),
    meta ? el('span', { className: 'muted small', text: meta }) : null,
    el('span', { className: 'svc-canned-preview', text: str(item.text) }));
  if (item.editable) {
    const edit = el('button', {
      type: 'button', className: 'btn btn-small', testid: 'canned-row-edit', text: t('canned.edit'),
      attrs: { 'aria-label': t('canned.editNamed', { title: title }) }
    });
    const del = el('button', {
      type: 'button', className: 'btn btn-small btn-danger', testid: 'canned-row-delete', text: t('canned.delete'),
      attrs: { 'aria-label': t('canned.deleteNamed', { title: title }) }
    });
    edit.addEventListener('click', () => { startEdit(item); });
    del.addEventListener('click', () => { onDelete(item, title); });
    li.appendChild(el('span', { className: 'svc-row' }, edit, del));
  }
  return li;
}

function startEdit(item) {
  m.editing = item;
  m.formTitle.textContent = t('canned.editing', { title: str(item.title, t('canned.untitled')) });
  m.title.value = str(item.title);
  m.shortcut.value = str(item.shortcut);
  m.text.value = str(item.text);
  m.formLang.value = item.lang && LANGS.includes(item.lang) ? item.lang : '';
  m.department.value = item.department === 'technical' || item.department === 'billing' ? item.department : '';
  m.team.checked = !item.personal;
  m.team.disabled = true;   // a response stays personal or the team's
  m.cancel.hidden = false;
  m.error.hidden = true;
  m.title.focus();
}

function onSave(ev) {
  ev.preventDefault();
  const title = m.title.value.trim();
  const text = m.text.value.trim();
  if (!title || !text) {
    m.error.textContent = t('canned.missing');
    m.error.hidden = false;
    return;
  }
  const body = {
    title: title,
    text: text,
    shortcut: m.shortcut.value.trim() || null,
    lang: m.formLang.value || null,
    department: m.department.value || null
  };
  const editing = m.editing;
  if (!editing) body.personal = !(isSupervisor() && m.team.checked);
  m.save.disabled = true;
  m.error.hidden = true;
  const done = editing
    ? api('PATCH', '/api/canned/' + enc(String(editing.id)), body, { context: 'canned' })
    : api('POST', '/api/canned', body, { context: 'canned' });
  done.then(() => {
    m.save.disabled = false;
    toast(editing ? t('canned.saved', { title: title }) : t('canned.added', { title: title }), 'info');
    resetForm();
    load();
    emit('canned-changed');
  }).catch((err) => {
    m.save.disabled = false;
    m.error.textContent = errorText(err);
    m.error.hidden = false;
  });
}

function onDelete(item, title) {
  confirmDialog(t('canned.deleteTitle'), t('canned.deleteText', { title: title }), t('canned.delete')).then((yes) => {
    if (!yes) return;
    api('DELETE', '/api/canned/' + enc(String(item.id)), undefined, { context: 'canned' }).then(() => {
      toast(t('canned.deleted', { title: title }), 'info');
      if (m.editing && m.editing.id === item.id) resetForm();
      load();
      emit('canned-changed');
    }).catch((err) => { toast(errorText(err), 'error'); });
  });
}
