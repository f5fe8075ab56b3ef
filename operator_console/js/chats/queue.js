/*
 * The waiting queue in the left panel.
 */
import { $, el, clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { emit } from '../shared/events.js';
import { str, formatWaiting } from '../shared/format.js';
import { app } from '../shared/state.js';
import { priorityLabel } from './model.js';

/** The `queue` frame (also part of welcome). */
export function onQueue(f) {
  app.queue = {
    total: typeof f.total === 'number' ? f.total : (Array.isArray(f.entries) ? f.entries.length : 0),
    entries: Array.isArray(f.entries) ? f.entries : []
  };
  renderQueue();
}

export function renderQueue() {
  const list = $('queue');
  clear(list);
  const entries = app.queue.entries;
  entries.forEach((e, i) => {
    if (!e || typeof e !== 'object') return;
    const priority = typeof e.priority === 'string' ? e.priority : 'normal';
    const position = typeof e.position === 'number' ? e.position : i + 1;
    const head = el('div', { className: 'queue-head' },
      el('span', { className: 'queue-pos', text: '#' + position }),
      el('span', { className: 'queue-name', text: str(e.name, t('visitor.defaultName')) })
    );
    const label = priorityLabel(priority);
    if (label) {
      head.appendChild(el('span', {
        className: 'priority-badge', text: label, dataset: { priority: priority }
      }));
    }
    if (e.requeued === true) {
      head.appendChild(el('span', { className: 'requeued-tag', text: t('queue.requeued'), title: t('queue.requeued.title') }));
    }
    const wait = el('span', { className: 'queue-wait', testid: 'queue-wait' });
    if (typeof e.waiting_since === 'number') wait.dataset.since = String(e.waiting_since);
    head.appendChild(wait);
    const item = el('li', { className: 'queue-item', testid: 'queue-item' }, head);
    item.dataset.sessionId = str(e.session_id);
    item.dataset.priority = priority;
    const preview = str(e.preview);
    if (preview) {
      item.appendChild(el('div', { className: 'queue-preview', text: preview, title: preview }));
    }
    list.appendChild(item);
    emit('queue-item', { entry: e, item: item });
  });
  $('queue-total').textContent = String(app.queue.total);
  $('queue-empty').hidden = app.queue.total > 0 || entries.length > 0;
  const more = app.queue.total - entries.length;
  $('queue-more').hidden = more <= 0;
  $('queue-more').textContent = more > 0 ? t('queue.more', { n: more }) : '';
  tickQueue();
}

/** Waiting times grow every second. */
function tickQueue() {
  const now = Date.now();
  const nodes = document.querySelectorAll('#queue .queue-wait');
  for (let i = 0; i < nodes.length; i++) {
    const since = Number(nodes[i].dataset.since);
    nodes[i].textContent = since ? formatWaiting(now - since) : '';
  }
}

export function initQueue() {
  setInterval(tickQueue, 1000);
}
