/*
 * The connection banner under the top bar and the connection dot next to the
 * operator's name.
 */
import { $ } from './dom.js';
import { t } from './i18n.js';

let bannerAction = null;

/** Show the banner with `text`; optionally a button `actionLabel` that runs `action`. */
export function showBanner(text, actionLabel, action) {
  const banner = $('connection-banner');
  $('connection-banner-text').textContent = text;
  const btn = $('connection-banner-action');
  bannerAction = action || null;
  btn.textContent = actionLabel || '';
  btn.hidden = !actionLabel;
  banner.hidden = false;
}

export function hideBanner() {
  $('connection-banner').hidden = true;
  bannerAction = null;
}

/** state: 'online' | 'connecting' | 'offline' */
export function setConnIndicator(state) {
  const dot = $('conn-dot');
  dot.dataset.state = state;
  dot.title = state === 'online' ? t('conn.online') : state === 'connecting' ? t('conn.connecting') : t('conn.offline');
}

export function initBanner() {
  $('connection-banner-action').addEventListener('click', () => {
    if (bannerAction) bannerAction();
  });
}
