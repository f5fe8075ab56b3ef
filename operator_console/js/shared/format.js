/*
 * Formatting helpers: strings from the network, times, sizes, durations.
 * Dates, times and durations are Intl's, in the locale of the console's
 * language (shared/i18n.js locale()); other words go through t().
 */
import { t, locale } from './i18n.js';

const formatters = new Map();   // locale|kind -> Intl formatter

function intl(kind, make) {
  const key = locale() + '|' + kind;
  if (!formatters.has(key)) formatters.set(key, make(locale()));
  return formatters.get(key);
}

/** `value` if it is a non-empty string, else `fallback` (or ''). */
export function str(value, fallback) {
  return (typeof value === 'string' && value.length) ? value : (fallback || '');
}

export function pad2(n) { return (n < 10 ? '0' : '') + n; }

/** "14:05" */
export function formatClock(ts) {
  const d = new Date(ts);
  if (isNaN(d.getTime())) return '';
  return intl('clock', (loc) => new Intl.DateTimeFormat(loc, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })).format(d);
}

/** Date and time: "05.12.2026, 14:05" (de-CH), "5 Dec 2026, 14:05" (en-GB). */
export function formatFull(ts) {
  const d = new Date(ts);
  if (isNaN(d.getTime())) return '';
  return intl('full', (loc) => new Intl.DateTimeFormat(loc, { dateStyle: 'medium', timeStyle: 'short' })).format(d);
}

/** A language's name in the console's language: 'fr' -> "French", "Französisch". */
export function languageName(code) {
  try {
    return intl('languages', (loc) => new Intl.DisplayNames(loc, { type: 'language' })).of(code) || code;
  } catch (e) {
    return String(code);   // not a language code
  }
}

/** `n` of `unit` ('second', 'minute', 'hour'): "3 min", "3 Min." */
export function formatUnit(n, unit) {
  return intl(unit, (loc) => new Intl.NumberFormat(loc, { style: 'unit', unit: unit, unitDisplay: 'short' })).format(n);
}

/** "45 sec", "3 min", "1 hr 5 min" (in the console's language) */
export function formatWaiting(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return formatUnit(s, 'second');
  const m = Math.floor(s / 60);
  if (m < 60) return formatUnit(m, 'minute');
  return formatUnit(Math.floor(m / 60), 'hour') + ' ' + formatUnit(m % 60, 'minute');
}

/** "3h 05m 12s", "12m 04s", "40s"; from one day on "2d 4h". */
export function formatDuration(msec) {
  const s = Math.max(0, Math.floor(msec / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d) return t('format.duration.days', { d: d, h: h });
  if (h) return t('format.duration.hours', { h: h, m: pad2(m), s: pad2(sec) });
  if (m) return t('format.duration.minutes', { m: m, s: pad2(sec) });
  return t('format.duration.seconds', { s: sec });
}

/** "512 B", "12 KB", "1.5 MB" */
export function formatSize(n) {
  n = Number(n) || 0;
  if (n < 1024) return t('format.bytes', { n: n });
  if (n < 1024 * 1024) return t('format.kilobytes', { n: Math.ceil(n / 1024) });
  const mb = intl('mb', (loc) => new Intl.NumberFormat(loc, { minimumFractionDigits: 1, maximumFractionDigits: 1 }));
  return t('format.megabytes', { n: mb.format(n / 1048576) });
}

/** The ticket API uses seconds, frames milliseconds: always milliseconds. */
export function toMs(ts) {
  if (typeof ts !== 'number') return null;
  return ts < 1e11 ? ts * 1000 : ts;
}

/** Return the URL if it is absolute http(s), else null. */
export function safeHttpUrl(raw) {
  if (typeof raw !== 'string' || !raw) return null;
  try {
    const u = new URL(raw);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
  } catch (e) { /* not a URL */ }
  return null;
}

/** encodeURIComponent for path segments and query values. */
export function enc(v) { return encodeURIComponent(String(v)); }
