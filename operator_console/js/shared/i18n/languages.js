/*
 * The console's languages, in the order the language menu shows them. The
 * first one is the fallback (a key missing elsewhere, no match in the
 * browser's languages). Adding a language: its catalog next to en.js (the
 * same keys, see en.js), its import and its line below.
 *
 *   code    what the server stores (PUT /api/me/preferences) and <html lang>
 *   name    the language's name in itself, for the language menu
 *   locale  Intl formatting of dates, times, numbers and durations
 */
import en from './en.js';
import de from './de.js';

export const LANGUAGES = [
  { code: 'en', name: 'English', locale: 'en-GB', messages: en },
  { code: 'de', name: 'Deutsch', locale: 'de-CH', messages: de }
];
