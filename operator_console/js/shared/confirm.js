/*
 * Asking before something that cannot be undone: an in-page dialog
 * (index.html #confirm-dialog, a modal <dialog>: focus stays in it, Escape
 * cancels), in the console's language, instead of the browser's confirm().
 */
import { $ } from './dom.js';

let settle = null;   // resolves the question being asked

function finish(answer) {
  const done = settle;
  settle = null;
  const dialog = $('confirm-dialog');
  if (dialog.open) dialog.close();
  if (done) done(answer);
}

/**
 * Ask `text` (translated) under `title`, with `confirm` as the label of the
 * button that goes ahead; resolves with true (go ahead) or false.
 */
export function confirmDialog(title, text, confirm) {
  if (settle) finish(false);
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = confirm;
  const dialog = $('confirm-dialog');
  dialog.showModal();
  $('confirm-cancel').focus();
  return new Promise((resolve) => { settle = resolve; });
}

/** Signed out: a question still open is answered with no. */
export function cancelConfirm() {
  if (settle) finish(false);
}

export function initConfirm() {
  $('confirm-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    finish(true);
  });
  $('confirm-cancel').addEventListener('click', () => { finish(false); });
  // Escape, or the dialog closed by other means.
  $('confirm-dialog').addEventListener('close', () => { if (settle) finish(false); });
}
