/*
 * An article's HTML (sanitised by the server, GET /api/kb/articles/... and
 * POST /api/kb/manage/preview) in the console, without ever trusting it:
 *
 *   previewFrame(html, title)  an <iframe sandbox=""> whose srcdoc is the
 *                              HTML: no script, no form, no navigation of
 *                              the console, whatever the HTML holds
 *   htmlText(html)             the plain text of the HTML, read from an inert
 *                              DOMParser document (nothing of it is inserted)
 *
 * Neither puts the HTML into the console's own document.
 */
import { el } from '../shared/dom.js';

// The page around the article in the frame: the console's look, a second CSP
// (no script, no plugin, no form, images only from here) on top of the sandbox.
const FRAME_HEAD = '<!DOCTYPE html><html><head><meta charset="utf-8">' +
  '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src \'self\' data:; style-src \'unsafe-inline\'">' +
  '<style>body{font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Arial,sans-serif;color:#111827;' +
  'margin:12px 14px;overflow-wrap:anywhere}img{max-width:100%}pre{overflow:auto;background:#f3f4f6;padding:8px}' +
  'code{background:#f3f4f6}table{border-collapse:collapse}td,th{border:1px solid #d1d5db;padding:4px 6px}' +
  'a{color:#1d4ed8}</style></head><body>';

/** An iframe showing `html` with every capability off (sandbox=""); `title` names it for screen readers. */
export function previewFrame(html, title, testid) {
  const frame = el('iframe', { className: 'kb-preview-frame', title: title, testid: testid || null });
  frame.setAttribute('sandbox', '');
  frame.setAttribute('referrerpolicy', 'no-referrer');
  frame.srcdoc = FRAME_HEAD + String(html || '') + '</body></html>';
  return frame;
}

// Elements that start a paragraph (a blank line around them) or a line.
const PARAGRAPHS = /^(?:P|DIV|H[1-6]|PRE|BLOCKQUOTE|UL|OL|TABLE|DL|HR|SECTION|ARTICLE|FIGURE)$/;
const LINES = /^(?:LI|TR|DT|DD)$/;

/**
 * The plain text of `html`: paragraphs apart by a blank line, list items and
 * table rows on lines of their own ("- " or "1. " before an item), script and
 * style left out.
 */
export function htmlText(html) {
  const doc = new DOMParser().parseFromString(String(html || ''), 'text/html');
  doc.querySelectorAll('script, style, template, noscript').forEach((node) => { node.remove(); });
  const out = [];
  (function walk(node, pre) {
    let item = 0;
    node.childNodes.forEach((child) => {
      if (child.nodeType === 3) {
        out.push(pre ? child.textContent : child.textContent.replace(/\s+/g, ' '));
        return;
      }
      if (child.nodeType !== 1) return;
      const tag = child.tagName;
      if (tag === 'BR') { out.push('\n'); return; }
      const paragraph = PARAGRAPHS.test(tag);
      if (paragraph) out.push('\n\n');
      else if (LINES.test(tag)) out.push('\n');
      else if (tag === 'TD' || tag === 'TH') out.push(' ');
      if (tag === 'LI') out.push(node.tagName === 'OL' ? (++item) + '. ' : '- ');
      walk(child, pre || tag === 'PRE');
      if (paragraph) out.push('\n\n');
    });
  }(doc.body, false));
  // A run of line breaks (and blanks around them): one break, or one blank line if it held one.
  return out.join('').replace(/[ \t]*\n[ \t\n]*/g, (run) => (run.split('\n').length > 2 ? '\n\n' : '\n')).trim();
}
