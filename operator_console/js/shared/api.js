/*
 * HTTP API (docs/http-api.md) with the operator token.
 */
import { app } from './state.js';
import { t, errorMessage, logServerError } from './i18n.js';

// An error response without a code (a proxy's page, say): the code its status means.
const STATUS_CODES = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'invalid_state',
  413: 'too_large', 415: 'unsupported_type', 429: 'rate_limited', 502: 'unavailable', 503: 'unavailable',
  504: 'unavailable'
};

/**
 * fetch with the operator token. Resolves with the parsed JSON body (or a
 * Blob with {blob: true}); rejects with an Error whose message says, in the
 * operator's language, what to do (errorMessage() for the server's code, in
 * `opts.context` if given) and which carries `status` and `code`. The
 * server's own message only goes to the debug log. `opts.signal` (an
 * AbortSignal) cancels the request.
 */
export function api(method, path, body, opts) {
  const headers = { Authorization: 'Bearer ' + app.token };
  const init = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' };
  const context = opts && opts.context;
  if (opts && opts.signal) init.signal = opts.signal;   // an AbortController's: aborted, it rejects with status 0
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init).then((res) => {
    if (res.status === 204) return null;  // No Content (a DELETE)
    if (res.ok) return opts && opts.blob ? res.blob() : res.json();
    return res.json().catch(() => null).then((b) => {
      const code = b && typeof b.error === 'string' && b.error ? b.error : (STATUS_CODES[res.status] || '');
      logServerError(method + ' ' + path + ' ' + res.status, code, b && b.message);
      const err = new Error(errorMessage(code, context));
      err.status = res.status;
      err.code = code;
      throw err;
    });
  }, () => {
    const err = new Error(t('api.unreachable'));
    err.status = 0;
    err.code = '';
    throw err;
  });
}

/** What an api() error tells the operator. */
export function errorText(err) {
  return err && err.message ? err.message : t('error.generic');
}

/** POST /api/login; resolves with {status, body}. */
export function postLogin(username, password) {
  return fetch('/api/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify({ username: username, password: password })
  }).then((res) => res.json().catch(() => null).then((body) => ({ status: res.status, body: body })));
}

/** POST /api/logout with the current token, which the server revokes; errors are ignored
 * (the console forgets the token either way). Call before the token is cleared. */
export function postLogout() {
  if (!app.token) return;
  try {
    fetch('/api/logout', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + app.token },
      credentials: 'same-origin',
      keepalive: true
    }).catch(() => {});
  } catch (e) { /* ignore */ }
}
