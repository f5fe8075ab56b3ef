/*
 * The knowledge base page's table of articles (supervisors and admins): one
 * row per article with its language, state, visibility, views and "helped"
 * counts, and its Edit button. Drawn with textContent only (titles come
 * from the network).
 */
import { el, clear } from '../shared/dom.js';
import { t, hasMessage } from '../shared/i18n.js';
import { str, formatFull, toMs, languageName } from '../shared/format.js';

export const KB_LANGUAGES = ['de', 'fr', 'it', 'en'];

/** 'published' -> "Published" (unknown states as they are). */
export function statusName(status) {
  return hasMessage('kb.status.' + status) ? t('kb.status.' + status) : str(status, '\u2014');
}

/** 'agents' -> "Agents only", 'public' -> "Public". */
export function visibilityName(visibility) {
  return visibility === 'agents' ? t('kb.visibility.agents') : t('kb.visibility.public');
}

function count(n) {
  return typeof n === 'number' ? String(n) : '0';
}

/** Draw `articles` into `tbody`; `edit(article)` is called by a row's Edit button. */
export function renderArticleRows(tbody, articles, edit) {
  clear(tbody);
  if (!articles.length) {
    tbody.appendChild(el('tr', null, el('td', { className: 'muted', colSpan: 8, text: t('kb.empty'), testid: 'kb-empty' })));
    return;
  }
  articles.forEach((a) => {
    const title = str(a.title, t('kb.untitled'));
    const status = str(a.status, 'draft');
    const button = el('button', {
      type: 'button', className: 'btn btn-small', text: t('kb.edit'), testid: 'kb-edit',
      attrs: { 'aria-label': t('kb.edit.label', { title: title }) }
    });
    button.addEventListener('click', () => { edit(a); });
    const updated = toMs(a.updated);
    const name = el('span', { text: title });
    if (str(a.lang)) name.setAttribute('lang', a.lang);
    const id = a.id === undefined || a.id === null ? '' : String(a.id);
    tbody.appendChild(el('tr', { testid: 'kb-row', dataset: { id: id, slug: str(a.slug), lang: str(a.lang), status: status } },
      el('th', { scope: 'row', testid: 'kb-row-title' }, name,
        el('div', { className: 'muted small kb-slug', text: str(a.slug) })),
      el('td', { text: a.lang ? languageName(a.lang) : '\u2014', testid: 'kb-row-lang' }),
      el('td', null, el('span', { className: 'kb-status kb-status-' + status, text: statusName(status), testid: 'kb-row-status' })),
      el('td', { text: visibilityName(a.visibility), testid: 'kb-row-visibility' }),
      el('td', { className: 'kb-num', text: count(a.views), testid: 'kb-row-views' }),
      el('td', { className: 'kb-num', text: count(a.helped), testid: 'kb-row-helped' }),
      el('td', { className: 'small', text: updated ? formatFull(updated) : '\u2014' }),
      el('td', null, button)));
  });
}

/** The language filter's and the form's <option>s (`all`: an "All languages" first). */
export function languageOptions(select, all) {
  if (all) select.appendChild(el('option', { value: '', text: t('kb.filter.allLanguages') }));
  KB_LANGUAGES.forEach((code) => { select.appendChild(el('option', { value: code, text: languageName(code) })); });
}
