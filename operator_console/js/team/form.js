/*
 * The Team page's forms: a new operator, changing an account (name, role,
 * pools, capacity) and setting a new password. Values are checked here first
 * (the sentences come from the catalogs); the server checks them again and its
 * refusals are said through errorMessage().
 */
import { el } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { str } from '../shared/format.js';
import { roleName } from '../app/navigation.js';

const ROLES = ['operator', 'supervisor', 'admin'];
const DEPARTMENT = /^[A-Za-z0-9_-]+$/;

let counter = 0;

function field(label, input) {
  counter += 1;
  input.id = 'team-field-' + counter;
  return el('div', { className: 'field' }, el('label', { className: 'field-label', text: label, htmlFor: input.id }), input);
}

/** Departments typed as "a, b" -> ['a', 'b'], or null when one is not a name. */
export function parseDepartments(text) {
  const parts = String(text).split(',').map((p) => p.trim().toLowerCase()).filter((p) => p);
  return parts.every((p) => DEPARTMENT.test(p) && p.length <= 100) ? parts : null;
}

/**
 * The form for a new account (`op` null) or for changing `op`. `submit` is
 * called with the body (for a change: only the fields that changed) and
 * returns a promise; a refusal's text is shown in the form.
 */
export function accountForm(op, submit, cancel) {
  const creating = !op;
  const f = {};
  f.username = el('input', { type: 'text', maxLength: 100, autocomplete: 'off', spellcheck: false, testid: 'team-username-input' });
  f.password = el('input', { type: 'password', autocomplete: 'new-password', testid: 'team-password-input' });
  f.name = el('input', { type: 'text', maxLength: 100, testid: 'team-name-input', value: creating ? '' : str(op.name, '') });
  f.role = el('select', { testid: 'team-role-input' });
  ROLES.forEach((role) => f.role.appendChild(el('option', { value: role, text: roleName(role) })));
  f.role.value = creating ? 'operator' : op.role;
  f.departments = el('input', {
    type: 'text', testid: 'team-departments-input',
    value: creating ? '' : (op.departments || []).join(', ')
  });
  f.capacity = el('input', {
    type: 'number', min: 1, max: 100, step: 1, testid: 'team-capacity-input',
    value: creating ? '3' : String(op.capacity)
  });
  const levels = creating ? [1] : (op.levels || []);
  f.levels = [1, 2, 3].map((n) => el('input', { type: 'checkbox', value: String(n), checked: levels.indexOf(n) >= 0, testid: 'team-level-' + n }));
  const levelBox = el('fieldset', { className: 'team-levels' },
    el('legend', { className: 'field-label', text: t('team.field.levels') }),
    ...f.levels.map((box) => el('label', { className: 'team-level' }, box, String(box.value))));
  const error = el('div', { className: 'inline-error', testid: 'team-form-error', hidden: true, attrs: { role: 'alert' } });
  const save = el('button', { type: 'submit', className: 'btn btn-primary', text: creating ? t('team.create') : t('team.save'), testid: 'team-save' });
  const back = el('button', { type: 'button', className: 'btn', text: t('common.cancel'), testid: 'team-cancel' });
  back.addEventListener('click', cancel);
  const title = creating ? t('team.new') : t('team.editing', { name: str(op.name, op.username) });
  const heading = el('h3', { className: 'team-form-title', text: title, tabIndex: -1 });
  const form = el('form', { className: 'team-form', testid: 'team-form', noValidate: true, attrs: { 'aria-label': title } },
    heading,
    creating ? field(t('team.field.username'), f.username) : null,
    creating ? field(t('team.field.password'), f.password) : null,
    field(t('team.field.name'), f.name),
    field(t('team.field.role'), f.role),
    field(t('team.field.departments'), f.departments),
    el('div', { className: 'muted small team-hint', text: t('team.departments.hint') }),
    levelBox,
    field(t('team.field.capacity'), f.capacity),
    error,
    el('div', { className: 'dialog-actions' }, back, save));

  function refuse(text) {
    error.textContent = text;
    error.hidden = false;
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const body = {};
    const name = f.name.value.trim();
    if (creating) {
      const username = f.username.value.trim();
      if (!username || username.length > 100 || /\s/.test(username)) return refuse(t('team.invalid.username'));
      if (f.password.value.length < 8 || f.password.value.length > 1000) return refuse(t('team.invalid.password'));
      body.username = username;
      body.password = f.password.value;
    }
    if (name.length > 100 || (!creating && !name)) return refuse(t('team.invalid.name'));
    const departments = parseDepartments(f.departments.value);
    if (!departments) return refuse(t('team.invalid.departments'));
    const chosen = f.levels.filter((box) => box.checked).map((box) => Number(box.value));
    if (!chosen.length) return refuse(t('team.invalid.levels'));
    const capacity = Number(f.capacity.value);
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 100) return refuse(t('team.invalid.capacity'));
    const values = { role: f.role.value, departments: departments, levels: chosen, capacity: capacity };
    if (name) values.name = name;
    Object.keys(values).forEach((key) => {
      if (creating || JSON.stringify(values[key]) !== JSON.stringify(op[key])) body[key] = values[key];
    });
    save.disabled = true;
    submit(body).catch((err) => { refuse(err && err.message ? err.message : t('error.generic')); })
      .then(() => { save.disabled = false; });
  });
  return { form: form, focus: () => (creating ? f.username : f.name).focus() };
}

/** The form for a new password of `op`; `submit(password)` returns a promise. */
export function passwordForm(op, submit, cancel) {
  const input = el('input', { type: 'password', autocomplete: 'new-password', testid: 'team-new-password' });
  const error = el('div', { className: 'inline-error', testid: 'team-form-error', hidden: true, attrs: { role: 'alert' } });
  const save = el('button', { type: 'submit', className: 'btn btn-primary', text: t('team.password.set'), testid: 'team-save' });
  const back = el('button', { type: 'button', className: 'btn', text: t('common.cancel'), testid: 'team-cancel' });
  back.addEventListener('click', cancel);
  const title = t('team.password.title', { name: str(op.name, op.username) });
  const form = el('form', { className: 'team-form', testid: 'team-password-form', noValidate: true, attrs: { 'aria-label': title } },
    el('h3', { className: 'team-form-title', text: title }),
    field(t('team.field.newPassword'), input),
    el('div', { className: 'muted small team-hint', text: t('team.password.hint') }),
    error,
    el('div', { className: 'dialog-actions' }, back, save));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    error.hidden = true;
    if (input.value.length < 8 || input.value.length > 1000) {
      error.textContent = t('team.invalid.password');
      error.hidden = false;
      return;
    }
    save.disabled = true;
    submit(input.value).catch((err) => {
      error.textContent = err && err.message ? err.message : t('error.generic');
      error.hidden = false;
    }).then(() => { save.disabled = false; });
  });
  return { form: form, focus: () => input.focus() };
}
