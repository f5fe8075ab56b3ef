/*
 * The knowledge base page's article form (supervisors and admins): title,
 * language, slug, department, tags, visibility and the Markdown body, with a
 * Preview of the body as the server renders and sanitises it (shown in a
 * sandboxed frame, kb/html.js), Publish / Unpublish, and the article's
 * revisions (who, when, what). Values are checked here first; the server
 * checks them again and its refusals are said through errorMessage().
 */
import { el, clear } from '../shared/dom.js';
import { t, hasMessage, language } from '../shared/i18n.js';
import { str, formatFull, toMs, languageName } from '../shared/format.js';
import { previewFrame } from './html.js';
import { KB_LANGUAGES, languageOptions, statusName } from './list.js';

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const NAME = /^[A-Za-z0-9_-]+$/;
export const MAX_BODY = 100000;

let counter = 0;

function field(label, input, hint) {
  counter += 1;
  input.id = 'kb-field-' + counter;
  const parts = [el('label', { className: 'field-label', text: label, htmlFor: input.id }), input];
  if (hint) {
    const note = el('div', { id: input.id + '-hint', className: 'muted small kb-hint', text: hint });
    input.setAttribute('aria-describedby', note.id);
    parts.push(note);
  }
  return el('div', { className: 'field' }, ...parts);
}

/** "a, b, a" -> ['a', 'b'], or null when one is not a name of letters, digits, - and _. */
export function parseNames(text) {
  const parts = String(text).split(',').map((p) => p.trim().toLowerCase()).filter((p) => p);
  const unique = parts.filter((p, i) => parts.indexOf(p) === i);
  return unique.every((p) => NAME.test(p) && p.length <= 40) && unique.length <= 20 ? unique : null;
}

/** What a revision's `action` says ('create', 'edit', 'publish', 'unpublish', 'import'). */
export function actionName(action) {
  return hasMessage('kb.action.' + action) ? t('kb.action.' + action) : str(action, '\u2014');
}

/**
 * The form for a new article (`article` null) or for `article` (with its
 * body). `actions`: save(values, article) -> promise of the article,
 * publish(article), unpublish(article) -> promise of the article,
 * preview(markdown) -> promise of {html}, revisions(article) -> promise of a
 * list, open(id) (another article, a translation), translate(article, lang)
 * (a new translation of it), cancel(). `seed`: the values a new article starts
 * with (a translation: its `translation_of` id and `lang`). Returns {form, focus}.
 */
export function articleForm(article, actions, seed) {
  let current = article;
  const translationOf = !article && seed && typeof seed.translation_of === 'number' ? seed.translation_of : null;
  const f = {};
  f.title = el('input', { type: 'text', maxLength: 200, testid: 'kb-title-input' });
  f.lang = el('select', { testid: 'kb-lang-input' });
  languageOptions(f.lang, false);
  f.slug = el('input', { type: 'text', maxLength: 80, spellcheck: false, autocomplete: 'off', testid: 'kb-slug-input' });
  f.department = el('input', { type: 'text', maxLength: 64, spellcheck: false, testid: 'kb-department-input' });
  f.tags = el('input', { type: 'text', maxLength: 500, testid: 'kb-tags-input' });
  f.public = el('input', { type: 'radio', name: 'kb-visibility-' + (++counter), value: 'public', testid: 'kb-visibility-public' });
  f.agents = el('input', { type: 'radio', name: f.public.name, value: 'agents', testid: 'kb-visibility-agents' });
  const visibility = el('fieldset', { className: 'kb-visibility' },
    el('legend', { className: 'field-label', text: t('kb.field.visibility') }),
    el('label', { className: 'kb-radio' }, f.public, ' ', t('kb.visibility.public')),
    el('label', { className: 'kb-radio' }, f.agents, ' ', t('kb.visibility.agents')));
  f.body = el('textarea', { className: 'kb-body', rows: 14, maxLength: MAX_BODY, spellcheck: true, testid: 'kb-body-input' });

  const previewButton = el('button', { type: 'button', className: 'btn btn-small', text: t('kb.preview'), testid: 'kb-preview' });
  const previewSlot = el('div', { className: 'kb-preview', testid: 'kb-preview-slot', attrs: { 'aria-live': 'polite' } });
  const status = el('span', { className: 'kb-status', testid: 'kb-form-status' });
  const publish = el('button', { type: 'button', className: 'btn btn-small', testid: 'kb-publish' });
  const error = el('div', { className: 'inline-error', testid: 'kb-form-error', hidden: true, attrs: { role: 'alert' } });
  const save = el('button', { type: 'submit', className: 'btn btn-primary', testid: 'kb-save' });
  const back = el('button', { type: 'button', className: 'btn', text: t('kb.close'), testid: 'kb-cancel' });
  const heading = el('h3', { className: 'kb-form-title', tabIndex: -1, testid: 'kb-form-heading' });
  const translations = el('div', { className: 'kb-translations', testid: 'kb-translations', hidden: true });
  const revisionList = el('ol', { className: 'kb-revisions', testid: 'kb-revisions' });
  const revisions = el('section', { className: 'kb-revisions-box', hidden: true },
    el('h4', { className: 'section-title', text: t('kb.revisions') }), revisionList);
  const form = el('form', { className: 'kb-form', testid: 'kb-form', noValidate: true },
    el('div', { className: 'kb-form-head' }, heading, status, publish),
    translations,
    field(t('kb.field.title'), f.title),
    el('div', { className: 'kb-form-row' },
      field(t('kb.field.lang'), f.lang),
      field(t('kb.field.slug'), f.slug, t('kb.slug.hint')),
      field(t('kb.field.department'), f.department, t('kb.department.hint'))),
    field(t('kb.field.tags'), f.tags, t('kb.tags.hint')),
    visibility,
    field(t('kb.field.body'), f.body, t('kb.body.hint')),
    el('div', { className: 'kb-preview-bar' }, previewButton),
    previewSlot,
    error,
    el('div', { className: 'dialog-actions' }, back, save),
    revisions);
  back.addEventListener('click', actions.cancel);

  function fill() {
    const a = current || seed || {};
    f.title.value = str(a.title);
    f.lang.value = kbLang(a.lang);
    f.slug.value = str(a.slug);
    f.department.value = str(a.department);
    f.tags.value = Array.isArray(a.tags) ? a.tags.join(', ') : '';
    (a.visibility === 'agents' ? f.agents : f.public).checked = true;
    f.body.value = str(a.body);
    draw();
  }

  function draw() {
    const a = current;
    const title = a ? t('kb.editing', { title: str(a.title, t('kb.untitled')) })
      : translationOf !== null ? t('kb.newTranslation', { lang: languageName(f.lang.value) }) : t('kb.new');
    f.lang.disabled = !!a || translationOf !== null;   // an article keeps its language
    drawTranslations(translations, a, actions);
    heading.textContent = title;
    form.setAttribute('aria-label', title);
    save.textContent = a ? t('kb.save') : t('kb.create');
    status.hidden = publish.hidden = !a;
    if (a) {
      const published = a.status === 'published';
      const state = published ? 'published' : 'draft';
      status.textContent = statusName(state);
      status.className = 'kb-status kb-status-' + state;
      publish.textContent = published ? t('kb.unpublish') : t('kb.publish');
      publish.dataset.action = published ? 'unpublish' : 'publish';
      publish.className = 'btn btn-small' + (published ? ' kb-unpublish' : ' btn-primary');
    }
    revisions.hidden = !a;
  }

  function refuse(text) {
    error.textContent = text;
    error.hidden = false;
  }

  function loadRevisions() {
    if (!current) return;
    actions.revisions(current).then((list) => {
      clear(revisionList);
      list.forEach((r) => {
        if (!r || typeof r !== 'object') return;
        const when = toMs(r.at);
        const by = r.by && typeof r.by === 'object' ? str(r.by.name) : str(r.by);
        revisionList.appendChild(el('li', { testid: 'kb-revision', dataset: { action: str(r.action) } },
          el('span', { className: 'kb-rev-action', text: actionName(r.action) }),
          el('span', { className: 'kb-rev-who', testid: 'kb-revision-by', text: by || t('kb.someone') }),
          el('span', { className: 'muted small', text: when ? formatFull(when) : '' })));
      });
      if (!revisionList.firstChild) revisionList.appendChild(el('li', { className: 'muted', text: t('kb.revisions.none') }));
    }, (err) => {
      clear(revisionList);
      revisionList.appendChild(el('li', { className: 'inline-error', text: errorOf(err) }));
    });
  }

  previewButton.addEventListener('click', () => {
    error.hidden = true;
    previewButton.disabled = true;
    clear(previewSlot);
    previewSlot.appendChild(el('div', { className: 'muted small', text: t('common.loading') }));
    actions.preview(f.body.value).then((r) => {
      clear(previewSlot);
      previewSlot.appendChild(el('div', { className: 'section-title', text: t('kb.preview.title') }));
      previewSlot.appendChild(previewFrame(r && typeof r.html === 'string' ? r.html : '', t('kb.preview.title'), 'kb-preview-frame'));
    }, (err) => {
      clear(previewSlot);
      refuse(errorOf(err));
    }).then(() => { previewButton.disabled = false; });
  });

  publish.addEventListener('click', () => {
    if (!current) return;
    error.hidden = true;
    publish.disabled = true;
    const go = current.status === 'published' ? actions.unpublish : actions.publish;
    go(current).then((a) => {
      if (a) current = Object.assign({}, current, a);
      draw();
      loadRevisions();
    }, (err) => { refuse(errorOf(err)); }).then(() => { publish.disabled = false; });
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const title = f.title.value.trim();
    if (!title || title.length > 200) return refuse(t('kb.invalid.title'));
    const slug = f.slug.value.trim().toLowerCase();
    if (slug && (!SLUG.test(slug) || slug.length > 80)) return refuse(t('kb.invalid.slug'));
    const department = f.department.value.trim().toLowerCase();
    if (department && (!NAME.test(department) || department.length > 64)) return refuse(t('kb.invalid.department'));
    const tags = parseNames(f.tags.value);
    if (!tags) return refuse(t('kb.invalid.tags'));
    const body = f.body.value;
    if (!body.trim() || body.length > MAX_BODY) return refuse(t('kb.invalid.body', { max: MAX_BODY }));
    const values = {
      title: title, department: department || null, tags: tags,
      visibility: f.agents.checked ? 'agents' : 'public', body: body
    };
    if (slug) values.slug = slug;
    if (current) {
      // The language stays; the revision started from lets the server refuse a lost update.
      if (typeof current.revision === 'number') values.revision = current.revision;
    } else {
      values.lang = f.lang.value;
      if (translationOf !== null) values.translation_of = translationOf;
    }
    save.disabled = true;
    actions.save(values, current).then((a) => {
      if (a) current = Object.assign({}, current || {}, a);
      fill();
      loadRevisions();
      heading.focus();
    }, (err) => { refuse(errorOf(err)); }).then(() => { save.disabled = false; });
  });

  fill();
  loadRevisions();
  return { form: form, focus: () => f.title.focus() };
}

/** The article's translations (each opens it) and, for a language it lacks, a button making one. */
function drawTranslations(box, a, actions) {
  clear(box);
  box.hidden = !a;
  if (!a) return;
  const have = [a.lang];
  const list = el('ul', { className: 'kb-translation-list' });
  (Array.isArray(a.translations) ? a.translations : []).forEach((tr) => {
    if (!tr || typeof tr !== 'object' || typeof tr.id !== 'number') return;
    have.push(tr.lang);
    const open = el('button', {
      type: 'button', className: 'link-button', testid: 'kb-translation',
      text: t('kb.translation.item', { lang: languageName(str(tr.lang)), title: str(tr.title, t('kb.untitled')), status: statusName(tr.status) })
    });
    open.addEventListener('click', () => { actions.open(tr.id); });
    list.appendChild(el('li', null, open));
  });
  const missing = KB_LANGUAGES.filter((code) => have.indexOf(code) < 0);
  box.appendChild(el('span', { className: 'field-label', text: t('kb.translations') }));
  if (list.firstChild) box.appendChild(list);
  else box.appendChild(el('span', { className: 'muted small', text: t('kb.translations.none') }));
  if (!missing.length) return;
  const pick = el('select', { testid: 'kb-translate-lang', attrs: { 'aria-label': t('kb.translate.lang') } });
  missing.forEach((code) => { pick.appendChild(el('option', { value: code, text: languageName(code) })); });
  const go = el('button', { type: 'button', className: 'btn btn-small', text: t('kb.translate'), testid: 'kb-translate' });
  go.addEventListener('click', () => { actions.translate(a, pick.value); });
  box.appendChild(el('span', { className: 'kb-translate' }, pick, go));
}

/** `code` if it is a language of the knowledge base, else the console's own (else German). */
function kbLang(code) {
  return KB_LANGUAGES.indexOf(code) >= 0 ? code : KB_LANGUAGES.indexOf(language()) >= 0 ? language() : 'de';
}

function errorOf(err) {
  return err && err.message ? err.message : t('error.generic');
}
