/*
 * Toasts: short notices at the corner of the screen.
 */
import { $, el, detach } from './dom.js';

const TOAST_MS = 6000;
const MAX_TOASTS = 5;

/** Show `text` (already translated); kind: 'info' | 'warn' | 'error'. */
export function toast(text, kind) {
  const box = $('toasts');
  const node = el('div', {
    className: 'toast toast-' + (kind || 'info'), testid: 'toast', text: text,
    attrs: { role: kind === 'error' ? 'alert' : 'status' }
  });
  const remove = () => detach(node);
  node.addEventListener('click', remove);
  box.appendChild(node);
  while (box.childNodes.length > MAX_TOASTS) box.removeChild(box.firstChild);
  setTimeout(remove, TOAST_MS);
}
