/*
 * DOM helpers shared by every view.
 *
 * Security rule for the whole console: text that comes from the network
 * (visitor names, messages, URLs, user agents, error messages, ...) is only
 * ever put into the page with textContent / createTextNode / setAttribute on
 * data-* or title attributes. innerHTML and friends are never used.
 */

/** document.getElementById */
export function $(id) { return document.getElementById(id); }

/**
 * Create an element. `props` may contain:
 *   className, text (textContent), testid, title, dataset {k: v},
 *   attrs {name: value} (setAttribute; never use for href/src/on*),
 *   and any other simple DOM property (type, hidden, tabIndex, ...).
 * Children may be nodes or strings (strings become text nodes).
 */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    Object.keys(props).forEach((key) => {
      const value = props[key];
      if (value === undefined || value === null) return;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'testid') node.setAttribute('data-testid', value);
      else if (key === 'dataset') {
        Object.keys(value).forEach((k) => { node.dataset[k] = String(value[k]); });
      } else if (key === 'attrs') {
        Object.keys(value).forEach((k) => { node.setAttribute(k, String(value[k])); });
      } else node[key] = value;
    });
  }
  children.forEach((child) => {
    if (child === null || child === undefined || child === false) return;
    node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  });
  return node;
}

/** Remove every child of `node`. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** Set textContent only when it changes (keeps selections and avoids reflows). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Remove `node` from its parent, if it has one. */
export function detach(node) {
  if (node && node.parentNode) node.parentNode.removeChild(node);
}

/**
 * Insert `row` into `list` so that rows stay sorted by their `_order` key
 * (rows with a higher key stay after it). Used by every message list.
 */
export function insertOrdered(list, row, order) {
  row._order = order;
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (node === row) continue;
    if (node._order > order) before = node;
    else break;
  }
  if (row.parentNode === list && row.nextElementSibling === before) return;
  list.insertBefore(row, before);
}
