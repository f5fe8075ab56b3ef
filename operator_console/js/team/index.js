/*
 * The Team page (role admin): the accounts of the desk, and creating,
 * changing, disabling, enabling and removing them and setting passwords,
 * through the HTTP API (docs/http-api.md, "Operators and the team"; the
 * server checks the role again). Drawn into index.html #view-team.
 */
import { el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, enc } from '../shared/format.js';
import { app } from '../shared/state.js';
import { api, errorText } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { confirmDialog } from '../shared/confirm.js';
import { renderRows } from './list.js';
import { accountForm, passwordForm } from './form.js';

let dom = null;
let operators = [];

function viewRoot() { return document.getElementById('view-team'); }

function build() {
  const root = viewRoot();
  clear(root);
  const d = {};
  d.heading = el('h2', { className: 'team-title', text: t('team.title'), testid: 'team-heading' });
  d.add = el('button', { type: 'button', className: 'btn btn-primary', text: t('team.new'), testid: 'team-new' });
  d.add.addEventListener('click', () => { openForm(accountForm(null, create, closeForm)); });
  d.error = el('div', { className: 'inline-error', testid: 'team-error', hidden: true, attrs: { role: 'alert' } });
  d.status = el('div', { className: 'visually-hidden', attrs: { role: 'status', 'aria-live': 'polite' } });
  d.formSlot = el('div', { className: 'team-form-slot' });
  d.tbody = el('tbody', { testid: 'team-rows' });
  const head = el('tr', null, ...['name', 'username', 'role', 'departments', 'levels', 'capacity', 'status', 'actions']
    .map((col) => el('th', { scope: 'col', text: t('team.col.' + col) })));
  d.table = el('table', { className: 'team-table', testid: 'team-table' },
    el('caption', { className: 'visually-hidden', text: t('team.caption') }), el('thead', null, head), d.tbody);
  root.appendChild(el('section', { className: 'panel team-panel', attrs: { 'aria-labelledby': 'team-heading' } },
    el('div', { className: 'team-head' }, d.heading, d.add), d.error, d.status, d.formSlot,
    el('div', { className: 'team-table-wrap' }, d.table)));
  d.heading.id = 'team-heading';
  dom = d;
}

function showError(text) {
  dom.error.textContent = text;
  dom.error.hidden = !text;
}

function announce(text) {
  dom.status.textContent = text;
  toast(text, 'info');
}

function openForm(parts) {
  clear(dom.formSlot);
  dom.formSlot.appendChild(parts.form);
  parts.focus();
}

function closeForm() {
  if (!dom) return;
  clear(dom.formSlot);
  dom.add.focus();
}

function render() {
  renderRows(dom.tbody, operators, { edit: edit, password: password, toggle: toggle, remove: remove }, app.operator && app.operator.id);
}

/** GET /api/operators (admins get every account, disabled ones too). */
export function loadTeam() {
  if (!dom) build();
  return api('GET', '/api/operators').then((body) => {
    operators = Array.isArray(body.operators) ? body.operators : [];
    operators.sort((a, b) => str(a.name, a.username).localeCompare(str(b.name, b.username)));
    showError('');
    render();
  }, (err) => { showError(errorText(err)); });
}

function nameOf(op) { return str(op.name, str(op.username, '')); }

function create(body) {
  return api('POST', '/api/operators', body, { context: 'teamCreate' }).then((res) => {
    closeForm();
    announce(t('team.created', { name: nameOf(res.operator) }));
    return loadTeam();
  });
}

function edit(op) {
  openForm(accountForm(op, (body) => {
    if (!Object.keys(body).length) { closeForm(); return Promise.resolve(); }
    return api('PATCH', '/api/operators/' + enc(op.id), body, { context: 'team' }).then((res) => {
      closeForm();
      announce(t('team.changed', { name: nameOf(res.operator) }));
      return loadTeam();
    });
  }, closeForm));
}

function password(op) {
  openForm(passwordForm(op, (value) =>
    api('POST', '/api/operators/' + enc(op.id) + '/password', { password: value }, { context: 'team' }).then(() => {
      closeForm();
      announce(t('team.passwordSet', { name: nameOf(op) }));
    }), closeForm));
}

function toggle(op) {
  const what = op.disabled ? 'enable' : 'disable';
  const go = op.disabled ? Promise.resolve(true)
    : confirmDialog(t('team.disable.title'), t('team.disable.text', { name: nameOf(op) }), t('team.disable'));
  return go.then((yes) => {
    if (!yes) return null;
    return api('POST', '/api/operators/' + enc(op.id) + '/' + what, undefined, { context: 'team' }).then(() => {
      announce(t(what === 'enable' ? 'team.enabled' : 'team.disabled', { name: nameOf(op) }));
      return loadTeam();
    }, (err) => { showError(errorText(err)); });
  });
}

function remove(op) {
  return confirmDialog(t('team.remove.title'), t('team.remove.text', { name: nameOf(op) }), t('team.remove')).then((yes) => {
    if (!yes) return null;
    return api('DELETE', '/api/operators/' + enc(op.id), undefined, { context: 'team' }).then(() => {
      announce(t('team.removed', { name: nameOf(op) }));
      return loadTeam();
    }, (err) => { showError(errorText(err)); });
  });
}

export function installTeam() {
  on('view', (id) => {
    if (id === 'team') loadTeam();
  });
  on('reset', () => {
    dom = null;
    operators = [];
    const root = viewRoot();
    if (root) clear(root);
  });
}
