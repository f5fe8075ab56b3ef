/*
 * The Team page's table of operators (admins): one row per account with its
 * role, pools, capacity and status, and the actions on it. Rows are drawn
 * with textContent only (names and usernames come from the network).
 */
import { el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { str, formatFull, toMs } from '../shared/format.js';
import { roleName } from '../app/navigation.js';

/** A department's display name (known ones translated, others as they are). */
export function departmentName(dep) {
  return dep === 'technical' || dep === 'billing' ? t('department.' + dep) : String(dep);
}

/** 'active', 'disabled' or 'locked' (failed logins lock it until `locked_until`). */
export function accountStatus(op) {
  if (op.disabled) return 'disabled';
  const until = toMs(op.locked_until);
  if (until && until > Date.now()) return 'locked';
  return 'active';
}

function statusText(op) {
  const status = accountStatus(op);
  if (status === 'locked') return t('team.status.lockedUntil', { time: formatFull(toMs(op.locked_until)) });
  return t('team.status.' + status);
}

function cell(text, testid) {
  return el('td', { text: text, testid: testid || null });
}

function action(label, aria, testid, handler, className) {
  const btn = el('button', {
    type: 'button', className: 'btn btn-small' + (className ? ' ' + className : ''), text: label,
    testid: testid, attrs: { 'aria-label': aria }
  });
  btn.addEventListener('click', handler);
  return btn;
}

/**
 * Draw `operators` into `tbody`. `actions` has edit, password, toggle (disable
 * or enable) and remove callbacks, each called with the account; `selfId` is
 * the signed-in admin (no disable or remove on their own row).
 */
export function renderRows(tbody, operators, actions, selfId) {
  clear(tbody);
  operators.forEach((op) => {
    const name = str(op.name, str(op.username, ''));
    const status = accountStatus(op);
    const deps = Array.isArray(op.departments) && op.departments.length
      ? op.departments.map(departmentName).join(', ') : t('team.departments.all');
    const levels = Array.isArray(op.levels) ? op.levels.join(', ') : '';
    const buttons = el('td', { className: 'team-actions' },
      action(t('team.edit'), t('team.edit.label', { name: name }), 'team-edit', () => actions.edit(op)),
      action(t('team.password'), t('team.password.label', { name: name }), 'team-password', () => actions.password(op)));
    if (op.id !== selfId) {
      if (op.disabled) {
        buttons.appendChild(action(t('team.enable'), t('team.enable.label', { name: name }), 'team-enable', () => actions.toggle(op)));
      } else {
        buttons.appendChild(action(t('team.disable'), t('team.disable.label', { name: name }), 'team-disable', () => actions.toggle(op)));
      }
      buttons.appendChild(action(t('team.remove'), t('team.remove.label', { name: name }), 'team-remove', () => actions.remove(op), 'btn-danger-outline'));
    }
    const row = el('tr', { testid: 'team-row', dataset: { username: str(op.username, ''), status: status } },
      el('th', { scope: 'row', text: name, testid: 'team-name' }),
      cell(str(op.username, ''), 'team-username'),
      cell(roleName(op.role), 'team-role'),
      cell(deps, 'team-departments'),
      cell(levels, 'team-levels'),
      cell(String(op.capacity), 'team-capacity'),
      el('td', null, el('span', { className: 'team-status team-status-' + status, text: statusText(op), testid: 'team-status' })),
      buttons);
    tbody.appendChild(row);
  });
}
