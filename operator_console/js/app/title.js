/*
 * The page title: unread count, and a blinking notice while the page is
 * not looked at.
 */
import { t } from '../shared/i18n.js';
import { app } from '../shared/state.js';
import { renderNav } from './navigation.js';
import { updateFavicon } from './favicon.js';

const titleFlash = { timer: null, text: '', on: false };

export function totalUnread() {
  let n = 0;
  app.chats.forEach((c) => { n += c.unread; });
  return n;
}

function withCount(n, title) {
  return n > 0 ? t('title.withUnread', { n: n, title: title }) : title;
}

function baseTitle() {
  return withCount(totalUnread(), t('app.title'));
}

/** Title and navigation badge after the unread counts changed. */
export function updateTitle() {
  if (!titleFlash.timer) document.title = baseTitle();
  updateFavicon(totalUnread());
  renderNav();
}

function pageIsAttended() {
  return document.visibilityState === 'visible' && document.hasFocus();
}

/** Blink `text` (already translated) in the title until the page is looked at. */
export function flashTitle(text) {
  if (pageIsAttended()) return;
  titleFlash.text = text;
  if (titleFlash.timer) return;
  titleFlash.on = false;
  titleFlash.timer = setInterval(() => {
    titleFlash.on = !titleFlash.on;
    document.title = titleFlash.on
      ? withCount(totalUnread(), t('title.flash', { text: titleFlash.text, title: t('app.title') }))
      : baseTitle();
  }, 1000);
}

export function stopFlash() {
  if (titleFlash.timer) clearInterval(titleFlash.timer);
  titleFlash.timer = null;
  document.title = baseTitle();
}
