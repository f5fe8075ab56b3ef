/*
 * Attachments (docs/http-api.md): chips with download buttons, image
 * previews (fetched with the token, shown as blob: URLs), and uploads.
 */
import { el } from './dom.js';
import { t } from './i18n.js';
import { str, formatSize } from './format.js';
import { api } from './api.js';
import { toast } from './toasts.js';

const IMAGE_TYPES = { 'image/png': 1, 'image/jpeg': 1, 'image/gif': 1, 'image/webp': 1 };

const previews = new Map();   // attachment id -> Promise of a blob: URL

/** The attachment objects of a list that have an id. */
export function validAttachments(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((a) => a && typeof a === 'object' && typeof a.id === 'string');
}

function attachmentUrl(id, inline) {
  return '/api/attachments/' + encodeURIComponent(id) + (inline ? '?inline=1' : '');
}

function previewUrl(id) {
  if (!previews.has(id)) {
    const p = api('GET', attachmentUrl(id, true), undefined, { blob: true }).then((blob) => URL.createObjectURL(blob));
    p.catch(() => { previews.delete(id); });
    previews.set(id, p);
  }
  return previews.get(id);
}

/** Signed out: give the preview blobs back. */
export function forgetPreviews() {
  previews.forEach((p) => {
    p.then((url) => { URL.revokeObjectURL(url); }, () => {});
  });
  previews.clear();
}

function downloadAttachment(a) {
  api('GET', attachmentUrl(a.id, false), undefined, { blob: true }).then((blob) => {
    const url = URL.createObjectURL(blob);
    const link = el('a', { download: str(a.filename, t('attachment.defaultName')) });
    link.href = url;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.parentNode.removeChild(link);
    setTimeout(() => { URL.revokeObjectURL(url); }, 60000);
  }).catch((err) => {
    toast(t('attachment.downloadFailed', { message: err.message }), 'error');
  });
}

/** Attachment chips: a download button each, a small preview for images. */
export function attachmentList(list) {
  const box = el('div', { className: 'attachments', testid: 'attachments' });
  validAttachments(list).forEach((a) => {
    const name = str(a.filename, t('attachment.defaultName'));
    const item = el('div', { className: 'attachment', testid: 'attachment', dataset: { id: a.id } });
    if (IMAGE_TYPES[a.content_type]) {
      const img = el('img', { className: 'attachment-preview', alt: name, testid: 'attachment-preview' });
      img.addEventListener('click', () => { downloadAttachment(a); });
      previewUrl(a.id).then((url) => { img.src = url; }, () => {
        if (img.parentNode) img.parentNode.removeChild(img);
      });
      item.appendChild(img);
    }
    const btn = el('button', {
      type: 'button', className: 'attachment-link', testid: 'attachment-download',
      text: name, title: t('attachment.download', { name: name })
    });
    btn.addEventListener('click', () => { downloadAttachment(a); });
    item.appendChild(btn);
    item.appendChild(el('span', { className: 'attachment-size', text: formatSize(a.size) }));
    box.appendChild(item);
  });
  return box;
}

/** The text for a failed upload of `filename` (api() said why, in the 'upload' context). */
export function uploadError(err, filename) {
  return t('upload.failed', { name: filename, why: err.message });
}

/** Upload one file; `fields` are extra form fields (session_id or ticket). */
export function uploadFile(file, fields) {
  const form = new FormData();
  form.append('file', file, file.name);
  Object.keys(fields).forEach((k) => { form.append(k, String(fields[k])); });
  return api('POST', '/api/attachments', form, { context: 'upload' });
}
