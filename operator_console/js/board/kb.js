/*
 * The board's knowledge base card: articles viewed, suggestions shown and
 * chats deflected (a visitor said an article answered the question), this
 * hour and today, from the snapshot's "kb" object (docs/protocol.md).
 */
import { el, setText } from '../shared/dom.js';
import { t } from '../shared/i18n.js';

const ROWS = ['views', 'shown', 'deflected'];

/** The card: {node, cells} with a cell per figure ('views_hour', ...). */
export function kbCard() {
  const cells = {};
  const body = el('tbody');
  ROWS.forEach((row) => {
    cells[row + '_hour'] = el('td', { className: 'kb-num', testid: 'board-kb-' + row + '-hour', text: '\u2014' });
    cells[row + '_today'] = el('td', { className: 'kb-num', testid: 'board-kb-' + row + '-today', text: '\u2014' });
    body.appendChild(el('tr', { testid: 'board-kb-' + row },
      el('th', { scope: 'row', text: t('board.kb.' + row) }), cells[row + '_hour'], cells[row + '_today']));
  });
  const node = el('section', { className: 'card', testid: 'board-kb', attrs: { 'aria-labelledby': 'board-kb-title' } },
    el('h2', { className: 'section-title', id: 'board-kb-title', text: t('board.kb.title') }),
    el('table', { className: 'mini-table board-kb-table' },
      el('thead', null, el('tr', null,
        el('td', null), el('th', { scope: 'col', text: t('board.kb.hour') }), el('th', { scope: 'col', text: t('board.kb.today') }))),
      body));
  return { node: node, cells: cells };
}

/** Fill the card from the snapshot's `kb` (missing: dashes). */
export function renderKbCard(card, kb) {
  const figures = kb && typeof kb === 'object' ? kb : null;
  Object.keys(card.cells).forEach((key) => {
    const v = figures ? figures[key] : undefined;
    setText(card.cells[key], typeof v === 'number' ? String(v) : '\u2014');
  });
  card.node.hidden = !figures;
}
