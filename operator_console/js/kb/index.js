/*
 * The Knowledge base page (roles supervisor and admin): the articles with
 * search, language and state filters and their view and "helped" counts;
 * writing and changing an article with a preview, publishing and
 * unpublishing it, and its revisions, through the authoring API
 * (docs/http-api.md, "Knowledge base"; the server checks the role again).
 * Drawn into index.html #view-kb. The suggestions beside a chat are
 * kb/suggest.js.
 */
import { el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { on } from '../shared/events.js';
import { str, enc } from '../shared/format.js';
import { api, errorText } from '../shared/api.js';
import { toast } from '../shared/toasts.js';
import { renderArticleRows, languageOptions } from './list.js';
import { articleForm } from './form.js';

const BASE = '/api/kb/manage/articles';

let dom = null;
let seq = 0;

function viewRoot() { return document.getElementById('view-kb'); }

function build() {
  const root = viewRoot();
  clear(root);
  const d = {};
  d.heading = el('h2', { className: 'kb-title', text: t('kb.title'), id: 'kb-heading', testid: 'kb-heading' });
  d.add = el('button', { type: 'button', className: 'btn btn-primary', text: t('kb.new'), testid: 'kb-new' });
  d.add.addEventListener('click', () => { openForm(null); });
  d.q = el('input', { type: 'search', maxLength: 200, testid: 'kb-search', placeholder: t('kb.search.placeholder') });
  d.lang = el('select', { testid: 'kb-filter-lang' });
  languageOptions(d.lang, true);
  d.status = el('select', { testid: 'kb-filter-status' },
    el('option', { value: '', text: t('kb.filter.allStates') }),
    el('option', { value: 'published', text: t('kb.status.published') }),
    el('option', { value: 'draft', text: t('kb.status.draft') }));
  d.filters = el('form', { className: 'kb-filters', testid: 'kb-filters', attrs: { role: 'search', 'aria-label': t('kb.filters') } },
    filter(t('kb.search'), d.q), filter(t('kb.field.lang'), d.lang), filter(t('kb.field.status'), d.status),
    el('button', { type: 'submit', className: 'btn btn-small', text: t('kb.search.submit'), testid: 'kb-search-submit' }));
  d.filters.addEventListener('submit', (ev) => { ev.preventDefault(); loadArticles(); });
  d.lang.addEventListener('change', loadArticles);
  d.status.addEventListener('change', loadArticles);
  let timer = null;
  d.q.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(loadArticles, 300);
  });
  d.error = el('div', { className: 'inline-error', testid: 'kb-error', hidden: true, attrs: { role: 'alert' } });
  d.live = el('div', { className: 'visually-hidden', testid: 'kb-live', attrs: { role: 'status', 'aria-live': 'polite' } });
  d.formSlot = el('div', { className: 'kb-form-slot' });
  d.tbody = el('tbody', { testid: 'kb-rows' });
  const head = el('tr', null, ...['title', 'lang', 'status', 'visibility', 'views', 'helped', 'updated', 'actions']
    .map((col) => el('th', { scope: 'col', text: t('kb.col.' + col) })));
  d.table = el('table', { className: 'kb-table', testid: 'kb-table' },
    el('caption', { className: 'visually-hidden', text: t('kb.caption') }), el('thead', null, head), d.tbody);
  root.appendChild(el('section', { className: 'panel kb-panel', attrs: { 'aria-labelledby': 'kb-heading' } },
    el('div', { className: 'kb-head' }, d.heading, d.add), d.filters, d.error, d.live, d.formSlot,
    el('div', { className: 'kb-table-wrap' }, d.table)));
  dom = d;
}

function filter(label, input) {
  return el('label', { className: 'filter' }, el('span', { className: 'filter-label', text: label }), input);
}

function showError(text) {
  dom.error.textContent = text;
  dom.error.hidden = !text;
}

function announce(text) {
  dom.live.textContent = text;
  toast(text, 'info');
}

/** GET /api/kb/manage/articles with the filters; redraws the table. */
export function loadArticles() {
  if (!dom) build();
  const params = [];
  const q = dom.q.value.trim();
  if (q) params.push('q=' + enc(q));
  if (dom.lang.value) params.push('lang=' + enc(dom.lang.value));
  if (dom.status.value) params.push('status=' + enc(dom.status.value));
  const mine = ++seq;
  return api('GET', BASE + (params.length ? '?' + params.join('&') : '')).then((body) => {
    if (mine !== seq || !dom) return;
    const articles = body && Array.isArray(body.articles) ? body.articles.filter((a) => a && typeof a === 'object') : [];
    showError('');
    renderArticleRows(dom.tbody, articles, edit);
  }, (err) => { if (mine === seq && dom) showError(errorText(err)); });
}

function articleOf(body) {
  return body && typeof body === 'object' && body.article && typeof body.article === 'object' ? body.article : body;
}

const actions = {
  save: (values, article) => {
    const call = article
      ? api('PUT', BASE + '/' + enc(article.id), values, { context: 'kb' })
      : api('POST', BASE, values, { context: 'kb' });
    return call.then((body) => {
      const a = articleOf(body);
      announce(t(article ? 'kb.saved' : 'kb.created', { title: str(a && a.title, values.title) }));
      loadArticles();
      return a;
    });
  },
  publish: (article) => api('POST', BASE + '/' + enc(article.id) + '/publish', undefined, { context: 'kb' }).then((body) => {
    announce(t('kb.published', { title: str(article.title) }));
    loadArticles();
    return Object.assign({ status: 'published' }, articleOf(body));
  }),
  unpublish: (article) => api('POST', BASE + '/' + enc(article.id) + '/unpublish', undefined, { context: 'kb' }).then((body) => {
    announce(t('kb.unpublished', { title: str(article.title) }));
    loadArticles();
    return Object.assign({ status: 'draft' }, articleOf(body));
  }),
  preview: (markdown) => api('POST', '/api/kb/manage/preview', { body: markdown }, { context: 'kb' }),
  revisions: (article) => api('GET', BASE + '/' + enc(article.id) + '/revisions').then((body) =>
    (body && Array.isArray(body.revisions) ? body.revisions : [])),
  open: (id) => { edit({ id: id }); },
  translate: (article, lang) => {
    // The new translation starts as a copy of the article, in the other language.
    openForm(null, {
      translation_of: article.id, lang: lang, title: article.title, body: article.body,
      department: article.department, tags: article.tags, visibility: article.visibility
    });
  },
  cancel: () => { closeForm(); }
};

function openForm(article, seed) {
  clear(dom.formSlot);
  const parts = articleForm(article, actions, seed);
  dom.formSlot.appendChild(parts.form);
  parts.focus();
}

function closeForm() {
  if (!dom) return;
  clear(dom.formSlot);
  dom.add.focus();
}

function edit(row) {
  showError('');
  api('GET', BASE + '/' + enc(row.id)).then((body) => {
    if (dom) openForm(articleOf(body));
  }, (err) => { showError(errorText(err)); });
}

export function installKb() {
  on('view', (id) => {
    if (id === 'kb') loadArticles();
  });
  on('reset', () => {
    dom = null;
    seq++;
    const root = viewRoot();
    if (root) clear(root);
  });
}
