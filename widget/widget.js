/*!
 * chatserver visitor widget
 *
 * Embed with one tag:   <script src="https://chat.example.com/widget.js" async></script>
 * Options (data-* on that tag): data-server, data-title, data-color, data-name,
 * data-email, data-identity (JSON), data-open="true", data-lang (de, fr, it, en).
 *
 * Plain, dependency-free JavaScript. This file is the source; `make widget` minifies it
 * (terser) into widget/dist/widget.min.js, which the server serves when it is current.
 *
 * Longer than 800 lines: a site embeds the widget with one tag, so it is one script
 * (the sections below: configuration, catalogs, connection, panel, forms, tickets);
 * splitting it would need a bundler or a second request for every visitor.
 * Wire protocol: docs/protocol.md, section "Visitor endpoint /ws/visitor".
 *
 * Safety rule for this file: text from the server or the visitor is only ever
 * put on the page with textContent / createTextNode, never parsed as HTML.
 *
 * Every text the visitor sees or hears comes from a catalog, widget/i18n/<lang>.json,
 * through t('key') or T('key') (a text that follows language switches).
 */
(function () {
  'use strict';

  if (window.ChatserverWidget || document.getElementById('chatserver-widget')) return;

  // ---------------------------------------------------------------------------
  // Configuration
  // ---------------------------------------------------------------------------

  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const data = (script && script.dataset) || {};

  const MAX_CHARS = 4000;
  const TYPING_THROTTLE = 2000;  // send typing:true at most this often
  const TYPING_IDLE = 3000;      // send typing:false after this much quiet
  const TYPING_SHOW = 6000;      // hide the operator's typing indicator after this
  const PING_EVERY = 25000;
  const DEAD_AFTER = 65000;      // nothing received for this long: reconnect
  const BACKOFF_MIN = 500;
  const BACKOFF_MAX = 15000;

  function parseJSON(s) {
    if (!s) return null;
    try { return JSON.parse(s); } catch (e) {
      console.warn('[chatserver] data-identity is not valid JSON; ignored');
      return null;
    }
  }

  function validColor(c) {
    return !!c && !!(window.CSS && CSS.supports && CSS.supports('color', c));
  }

  let base;
  try {
    const scriptUrl = script && script.src ? new URL(script.src, location.href) : new URL(location.href);
    base = new URL(data.server || scriptUrl.origin, location.href);
  } catch (e) {
    base = new URL(location.href);
  }
  const basePath = base.pathname.replace(/\/+$/, '');
  const WS_URL = (base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host + basePath + '/ws/visitor';
  const API = base.origin + basePath + '/api';
  const STORE_KEY = 'chatserver:' + base.origin;
  const OPEN_KEY = STORE_KEY + ':open';
  const LANG_KEY = STORE_KEY + ':lang';

  // ---------------------------------------------------------------------------
  // Language. The server writes {"d": site default, "l": {lang: [name, version]},
  // "c": catalog of d} over the marker string; other catalogs are fetched once
  // (a versioned URL, cached for good). The visitor's choice (localStorage),
  // else data-lang, else the browser's languages, else the site default.
  // ---------------------------------------------------------------------------

  let I18N = '@@CHATSERVER_I18N@@';
  if (!I18N.l) I18N = { d: 'en', l: { en: ['English'] }, c: {} }; // served unprocessed
  const LANGS = I18N.l;
  const cats = { [I18N.d]: I18N.c };
  const browserLangs = navigator.languages || [navigator.language];
  let lang, cat, loc, fmtNum;

  const known = (x) => (x = String(x).toLowerCase().split('-')[0], Array.isArray(LANGS[x]) && x);

  // The text of key k in the visitor's language, {name} filled from p (numbers formatted).
  function t(k, p) {
    return String(cat[k] || cats[I18N.d][k] || k).replace(/\{(\w+)\}/g, (m, n) =>
      !p || p[n] == null ? m : p[n].toFixed ? fmtNum.format(p[n]) : p[n]);
  }
  const T = (k, p) => () => t(k, p);

  function useLang(l, c) {
    lang = l;
    cat = cats[l] = c;
    // Formats follow the browser's region for this language (fr-BE), else Swiss ones.
    loc = browserLangs.filter((x) => known(x) === l && x.length > 2)[0] || l + '-CH';
    fmtNum = new Intl.NumberFormat(loc);
  }
  useLang(I18N.d, I18N.c);

  function loadLang(l) {
    return (cats[l] ? Promise.resolve(cats[l]) : fetch(base.origin + basePath + '/widget/i18n/' + l + '.json?v=' +
      LANGS[l][1]).then((r) => r.ok ? r.json() : Promise.reject())).then((c) => {
      useLang(l, c);
      if (ui.root) applyLang();
    });
  }

  const opt = {
    title: data.title || T('title'),
    color: validColor(data.color) ? data.color : '#2563eb',
    name: (data.name || '').slice(0, 100),
    email: (data.email || '').slice(0, 254),
    identity: parseJSON(data.identity),
    open: data.open === 'true',
  };

  // ---------------------------------------------------------------------------
  // Persistence: localStorage[STORE_KEY] = {token, last_seq, session_id,
  // closed, read_seq, outbox: [{id, text, ts}]}
  // ---------------------------------------------------------------------------

  let memStore = null; // fallback when localStorage is unavailable

  function loadStore() {
    try {
      const v = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
      return v && typeof v === 'object' ? v : {};
    } catch (e) {
      return memStore || {};
    }
  }

  const stored = loadStore();

  // ---------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------

  let token = typeof stored.token === 'string' ? stored.token : null;
  let sessionId = typeof stored.session_id === 'string' ? stored.session_id : null;
  let storedClosed = !!stored.closed;
  let seenSeq = +stored.last_seq || 0;   // highest seq ever seen (persisted)
  let readSent = +stored.read_seq || 0;  // highest seq we told the server we read
  let outbox = (Array.isArray(stored.outbox) ? stored.outbox : []).filter(
    (m) => m && typeof m.id === 'string' && typeof m.text === 'string');

  let chatState = null;   // null (no session yet) | new | waiting | assigned | closed
  let operator = null;    // {id, name} or null
  let queuePos = null;
  let serverName = '';    // what the server knows about the visitor
  let serverEmail = '';

  const bySeq = new Map();   // seq -> record
  const byCmid = new Map();  // client_msg_id -> record (own messages)
  let streamSeq = 0;         // highest seq received as a message frame
  let contigSeq = 0;         // every seq 1..contigSeq is shown
  let lastSeq = 0;           // resume point sent in hello (0 after a page load)
  let opReadSeq = 0;         // highest seq the operator has read

  let ws = null;
  let ready = false;         // welcome (and replay) done: may send
  let helloSeq = 0;
  let sentThisConn = new Set();
  let attempt = 0;
  let retryTimer = 0;
  let replayTimer = 0;
  let everConnected = false;
  let blocked = false;       // closed with 4003: wait for the visitor to reopen
  let lastRx = 0;
  let pendingInfo = null;

  let panelOpen = false;
  let typingActive = false;
  let typingSentAt = 0;
  let typingIdleTimer = 0;
  let typingHideTimer = 0;
  let noticeTimer = 0;
  let offline = false;    // no operator online: offer the offline form
  let offDone = false;    // the offline form was sent
  let cbAllowed = false;  // the plan includes phone support: offer "Call me back"
  let cbOpen = false;     // the callback form is shown
  let cbDone = false;     // a callback was requested in this chat
  let stuck = null;       // no_operator: nobody can take the waiting chat (reason)
  let stDone = 0;         // ... and the visitor left it as a ticket

  function save() {
    const v = {
      token: token,
      last_seq: seenSeq,
      session_id: sessionId,
      closed: chatState === 'closed' || (chatState === null && storedClosed),
      read_seq: readSent,
      outbox: outbox,
    };
    memStore = v;
    try {
      if (token || outbox.length) localStorage.setItem(STORE_KEY, JSON.stringify(v));
      else localStorage.removeItem(STORE_KEY);
    } catch (e) { /* storage full or disabled: keep going in memory */ }
  }

  function rememberOpen(open) {
    try {
      if (open) sessionStorage.setItem(OPEN_KEY, '1');
      else sessionStorage.removeItem(OPEN_KEY);
    } catch (e) { /* ignore */ }
  }

  function wasOpen() {
    try { return sessionStorage.getItem(OPEN_KEY) === '1'; } catch (e) { return false; }
  }

  function uuid() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === 'function') {
      try { return c.randomUUID(); } catch (e) { /* insecure context */ }
    }
    let hex = '';
    if (c && c.getRandomValues) {
      c.getRandomValues(new Uint8Array(16)).forEach((b) => { hex += (b + 256).toString(16).slice(1); });
    } else {
      for (let i = 0; i < 32; i++) hex += Math.floor(Math.random() * 16).toString(16);
    }
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' +
      hex.slice(16, 20) + '-' + hex.slice(20, 32);
  }

  // ---------------------------------------------------------------------------
  // DOM helpers (no HTML parsing anywhere)
  // ---------------------------------------------------------------------------

  // Elements with texts that follow the language: el._b = {attribute or 'text': () => text}.
  const bound = new Set();

  // Sets a text or attribute; a function value is kept and called again on a language switch.
  function put(el, k, v) {
    if (typeof v === 'function') {
      (el._b || (el._b = {}))[k] = v;
      bound.add(el);
      v = v();
    } else if (el._b) delete el._b[k];
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }

  function h(tag, attrs, children) {
    const el = document.createElement(tag);
    // Forms check their fields themselves, in the visitor's language (no browser bubbles).
    if (tag === 'form') el.noValidate = true;
    if (attrs) {
      for (const k in attrs) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
        else put(el, k, v === true ? '' : v);
      }
    }
    if (children) children.forEach((c) => { if (c) el.appendChild(c); });
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function icon(paths, cls) {
    const s = document.createElementNS(SVG_NS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    if (cls) s.setAttribute('class', cls);
    paths.forEach((d) => {
      const p = document.createElementNS(SVG_NS, 'path');
      p.setAttribute('d', d);
      s.appendChild(p);
    });
    return s;
  }

  const ICON_CHAT = ['M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z'];
  const ICON_CLOSE = ['M6 6l12 12M18 6L6 18'];
  const ICON_DOWN = ['M6 9l6 6 6-6'];
  const ICON_SEND = ['M4 12l16-8-6 16-2.5-6.5z', 'M11.5 13.5L20 4'];
  const ICON_CLIP = ['M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7'];

  // HTTP API (docs/http-api.md), visitor token. Errors: server message, status in .s.
  function req(path, o) {
    o = o || {};
    o.headers = { Authorization: 'Bearer ' + token };
    if (o.json) {
      o.method = 'POST';
      o.headers['Content-Type'] = 'application/json';
      o.body = JSON.stringify(o.json);
    }
    return fetch(API + path, o).then((r) => r.ok ? (o.blob ? r.blob() : r.json())
      : r.json().catch(() => ({})).then((e) => {
        throw { s: r.status, m: typeof e.message === 'string' ? e.message : '' };
      }));
  }

  // A refusal as the visitor reads it: the server's words are English, so in
  // English those (they name the problem), else the catalog's for the status.
  const errText = (e) => () => lang === 'en' && e.m ? e.m
    : t(!e.s ? 'error.offline' : e.s === 400 ? 'error.check' : 'error.generic');

  function upload(file) {
    const fd = new FormData();
    fd.append('file', file);
    return req('/attachments', { method: 'POST', body: fd }).catch((e) => {
      throw () => t('upload.failed', { file: file.name, reason: e.s === 413 ? t('upload.too_large')
        : e.s === 415 ? t('upload.bad_type') : errText(e)() });
    });
  }

  const IMG_RE = /^image\/(png|jpeg|gif|webp)$/;
  function blobUrl(p) { return req(p, { blob: 1 }).then((b) => URL.createObjectURL(b)); }

  // A file size in the visitor's language: decimal units (1 kB = 1000 B), bytes narrow ("93 B").
  function fmtSize(n) {
    n = +n || 0;
    const u = n < 1e3 ? 0 : n < 1e6 ? 1 : 2;
    return new Intl.NumberFormat(loc, { style: 'unit', unit: ['byte', 'kilobyte', 'megabyte'][u],
      unitDisplay: u ? 'short' : 'narrow', maximumFractionDigits: 1 }).format(n / [1, 1e3, 1e6][u]);
  }

  // Attachments: download buttons and image previews, via blob: URLs.
  function attEl(list) {
    const box = h('div', { class: 'att' });
    list.forEach((a) => {
      if (!a || typeof a.id !== 'string') return;
      const p = '/attachments/' + encodeURIComponent(a.id);
      const name = a.filename ? String(a.filename) : t('file.unnamed');
      if (IMG_RE.test(a.content_type)) {
        const img = h('img', { alt: name, 'data-testid': 'attachment-preview' });
        blobUrl(p + '?inline=1').then((u) => { img.src = u; }, () => img.remove());
        box.appendChild(img);
      }
      box.appendChild(h('button', { type: 'button', 'data-testid': 'attachment', title: T('file.download'),
        text: () => name + ' (' + fmtSize(a.size) + ')',
        onclick: () => blobUrl(p).then((u) => {
          h('a', { href: u, download: name }).click();
          setTimeout(() => URL.revokeObjectURL(u), 60000);
        }, (e) => showNotice(errText(e))) }));
    });
    return box;
  }

  // Text with http(s) links turned into safe anchors.
  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  function richText(el, text) {
    let last = 0;
    let m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      let url = m[0];
      const trail = /[.,;:!?)\]]+$/.exec(url);
      if (trail) url = url.slice(0, -trail[0].length);
      if (m.index > last) el.appendChild(document.createTextNode(text.slice(last, m.index)));
      const a = document.createElement('a');
      a.href = url;
      a.textContent = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      el.appendChild(a);
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) el.appendChild(document.createTextNode(text.slice(last)));
  }

  // A message's time in the visitor's language: 14:05, or 5. Dez., 14:05 before today.
  function fmtTime(ts) {
    const d = new Date(typeof ts === 'number' ? (ts < 1e11 ? ts * 1000 : ts) : Date.now());
    const o = { hour: '2-digit', minute: '2-digit' };
    if (d.toDateString() !== new Date().toDateString()) { o.day = 'numeric'; o.month = 'short'; }
    return new Intl.DateTimeFormat(loc, o).format(d);
  }

  function textColorFor(color) {
    // Dark text on light accents (only for hex colours; white otherwise).
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
    if (!m) return '#fff';
    let hex = m[1];
    if (hex.length === 3) hex = hex.replace(/./g, '$&$&');
    const lin = (i) => {
      const c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    };
    const lum = 0.2126 * lin(0) + 0.7152 * lin(2) + 0.0722 * lin(4);
    return lum > 0.45 ? '#111827' : '#fff';
  }

  // ---------------------------------------------------------------------------
  // Styles (static; lives inside the shadow root only)
  // ---------------------------------------------------------------------------

  const CSS_TEXT = `
:host{all:initial}
*{box-sizing:border-box}
[hidden]{display:none!important}
.root{--a:#2563eb;--at:#fff;position:fixed;right:20px;bottom:20px;z-index:2147483000;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2937;-webkit-font-smoothing:antialiased;text-align:left}
button,input,textarea,select{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
svg{width:24px;height:24px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.bubble{position:relative;width:60px;height:60px;border-radius:50%;border:0;padding:0;
 display:flex;align-items:center;justify-content:center;margin-left:auto;
 background:var(--a);color:var(--at);box-shadow:0 6px 20px rgba(0,0,0,.22);
 transition:transform .15s ease,box-shadow .15s ease}
.bubble:hover{transform:scale(1.06);box-shadow:0 8px 26px rgba(0,0,0,.28)}
.bubble:focus-visible,.panel button:focus-visible{outline:3px solid rgba(37,99,235,.45);outline-offset:2px}
.bubble svg{width:28px;height:28px}
.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;
 background:#dc2626;color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center;
 box-shadow:0 0 0 2px #fff}
.panel{position:absolute;right:0;bottom:76px;width:370px;height:560px;max-height:calc(100vh - 120px);
 display:flex;flex-direction:column;background:#fff;border-radius:16px;overflow:hidden;
 box-shadow:0 12px 48px rgba(0,0,0,.22),0 0 0 1px rgba(0,0,0,.05);animation:cs-in .18s ease-out}
@keyframes cs-in{from{opacity:0;transform:translateY(12px)}to{opacity:1;transform:none}}
.head{display:grid;grid-template-columns:minmax(0,1fr) auto;align-items:start;gap:8px;padding:14px 12px 12px 18px;
 background:var(--a);color:var(--at)}
.head-text{min-width:0}
.acts,.pills{display:flex;flex-wrap:wrap;align-items:center;gap:6px}.acts{grid-column:1/-1}.pills{margin-left:auto}
.title{font-size:16px;font-weight:650;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.status{font-size:12.5px;margin-top:2px}
.hbtn{border:0;background:transparent;color:inherit;border-radius:8px;padding:6px;display:flex}
.hbtn:hover{background:rgba(0,0,0,.15)}
.end{font-size:12px;padding:5px 9px;border:1px solid currentColor;border-radius:999px}
.conn{padding:6px 14px;font-size:12.5px;background:#fef3c7;color:#92400e;text-align:center}
.body{flex:1;overflow-y:auto;padding:16px 14px 8px;background:#f8fafc}
.intro{margin:0 auto 14px;max-width:88%;text-align:center;color:#64748b;font-size:13px}
.list{display:flex;flex-direction:column;gap:8px}
.msg{display:flex;flex-direction:column;max-width:80%}
.msg.visitor{align-self:flex-end;align-items:flex-end}
.msg.operator{align-self:flex-start;align-items:flex-start}
.msg.system{align-self:center;align-items:center;max-width:90%;text-align:center;color:#64748b;font-size:12px;font-style:italic}
.author{font-size:11.5px;color:#64748b;margin:0 0 2px 10px}
.txt{padding:9px 13px;border-radius:16px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}
.visitor .txt{background:var(--a);color:var(--at);border-bottom-right-radius:5px}
.operator .txt{background:#fff;color:#0f172a;border:1px solid #e2e8f0;border-bottom-left-radius:5px}
.system .txt{padding:2px 8px}
.txt a{color:inherit;text-decoration:underline}
.meta{font-size:11px;color:#64748b;margin:3px 6px 0;display:flex;gap:5px;align-items:center}
.tick{letter-spacing:-3px;padding-right:3px}
.msg[data-state=read] .tick{color:var(--a)}
.msg[data-state=failed] .tick{color:#dc2626;letter-spacing:0}
.msg[data-state=failed] .txt{opacity:.6}
.typing{padding:2px 18px 6px;font-size:12.5px;color:#64748b;font-style:italic;background:#f8fafc}
.notice{margin:8px 12px;padding:7px 10px;border-radius:8px;background:#fee2e2;color:#991b1b;font-size:12.5px}
.ended{padding:14px;text-align:center;border-top:1px solid #e5e7eb;color:#475569}
.ended p{margin:0 0 10px}.rate{margin:0 0 10px}.rate span{display:block}.star{border:0;background:none;font-size:20px;color:#f59e0b;cursor:pointer;padding:0 2px}
.btn{border:0;border-radius:10px;padding:9px 16px;background:var(--a);color:var(--at);font-weight:600}
.btn:hover{filter:brightness(1.08)}
.composer{border-top:1px solid #e5e7eb;padding:10px 12px 12px;background:#fff}
.pre{display:flex;gap:8px;margin-bottom:8px}
.pre label{flex:1;min-width:0;font-size:11.5px;color:#64748b}
input,textarea{display:block;width:100%;border:1px solid #d1d5db;border-radius:10px;background:#fff;
 padding:8px 10px;outline:none;transition:border-color .15s,box-shadow .15s}
input{margin-top:3px;font-size:13.5px;color:#1f2937}
input:focus,textarea:focus{border-color:var(--a);box-shadow:0 0 0 3px rgba(37,99,235,.15)}
.row{display:flex;gap:8px;align-items:flex-end}
textarea{resize:none;min-height:40px;max-height:130px;line-height:1.4}
.send{flex:none;width:40px;height:40px;border-radius:10px;border:0;background:var(--a);color:var(--at);
 display:flex;align-items:center;justify-content:center}
.send svg{width:20px;height:20px}
.send:disabled,textarea:disabled{opacity:.5;cursor:default}
.brand{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:0 10px 6px;font-size:10.5px;color:#6b7280;background:#fff}
.lang{border:0;border-radius:6px;background:transparent;color:#64748b;font-size:12px;padding:2px;cursor:pointer}
.lang:focus-visible{outline:3px solid rgba(37,99,235,.45)}
.chat{flex:1;min-height:0;display:flex;flex-direction:column}
.clip{background:#fff;color:#64748b;border:1px solid #d1d5db}
.att{display:flex;flex-direction:column;align-items:inherit;gap:4px;margin-top:4px}
.att img{max-width:180px;max-height:140px;border-radius:8px}
.att button,.tkrow{border:1px solid #cbd5e1;background:#fff;border-radius:8px;padding:5px 9px;font-size:12.5px;text-align:left;overflow-wrap:anywhere}
.lnk{border:0;background:none;color:var(--a);text-decoration:underline;padding:0 0 8px;font-size:12.5px}
.tkrow{display:flex;flex-wrap:wrap;gap:4px;width:100%}
.tkrow small{width:100%;color:#64748b}
.off{padding:12px;border:1px solid #e5e7eb;border-radius:12px;background:#fff;margin-bottom:12px}
.off input,.off textarea{margin:0 0 8px}
[aria-invalid=true]{border-color:#dc2626}
.off [aria-invalid]+.err{margin-top:-4px}.pre .err{margin:3px 0 0;font-size:11.5px}
.fbtn{display:flex;align-items:center;gap:6px;border:1px dashed #94a3b8;background:#fff;color:#475569;border-radius:10px;padding:6px 10px;margin:0 0 8px;font-size:12.5px}
.fbtn svg,.fi svg{width:16px;height:16px}.fi{display:flex;align-items:center;gap:4px;font-size:12.5px;margin:0 0 6px}.fi span{flex:1;overflow-wrap:anywhere}
.offh{margin:0 0 8px;font-weight:600}.off .btn{position:sticky;bottom:-8px;width:100%;box-shadow:0 0 0 6px #fff}.off [role=status]{margin:0}
.err{color:#b91c1c;font-size:12.5px;margin:0 0 8px}
.tr{padding:0 12px 8px;background:#fff;font-size:12.5px}.tr .lnk{padding:0}.tr input{margin:0}
.trm{margin:4px 0 0;color:#166534}.tr .err{margin:4px 0 0}
.hl{border:0;background:none;color:inherit;text-decoration:underline;padding:0;margin-right:auto;font-size:12px;text-align:left}
.kb{margin-top:8px}.pre[hidden]~.kb{display:none}.kbh{margin:0 0 4px;font-size:12px;font-weight:600;color:#475569}
.kbl{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:4px}
.kbs{width:100%;text-align:left;border:1px solid #cbd5e1;background:#fff;border-radius:8px;padding:5px 9px;font-size:12.5px}
.kbs small{display:block;color:#64748b;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.kbt{font-size:16px;margin:0 0 8px}.kbb{overflow-wrap:anywhere}.kbb a{color:var(--a)}.kbb pre{white-space:pre-wrap}
.kbq{margin:14px 0 8px;padding-top:10px;border-top:1px solid #e5e7eb}.kbq p{margin:0 0 8px;font-weight:600}.kbq .row{flex-wrap:wrap}
.kbn{background:#fff;color:#1f2937;border:1px solid #d1d5db}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){
 .root{right:12px;bottom:12px}
 .panel{position:fixed;inset:0;width:auto;height:auto;max-height:none;border-radius:0}
 .root.open .bubble{display:none}
}
@media (prefers-reduced-motion:reduce){.panel{animation:none}.bubble{transition:none}}
`;

  // ---------------------------------------------------------------------------
  // UI skeleton
  // ---------------------------------------------------------------------------

  const ui = {};

  // Forms check their own fields: el._ok(value) gives the catalog key of a
  // problem (or 0), shown under the field (el._err, its aria-describedby).
  // The exact checks are the server's.
  const EMAIL_RE = /^[^@\s<>"]+@[^@\s<>"]+\.[^@\s<>"]+$/;
  const needEmail = (v) => !v ? 'invalid.required' : EMAIL_RE.test(v) ? 0 : 'invalid.email';
  const needText = (v) => v ? 0 : 'invalid.required';
  let errIds = 0;

  function field(tag, attrs, ok) {
    const el = h(tag, attrs);
    const id = 'cs-err' + ++errIds;
    el._ok = ok;
    el._err = h('p', { class: 'err', id: id, hidden: true, 'data-testid': attrs['data-testid'] + '-error' });
    el.setAttribute('aria-describedby', id);
    return el;
  }

  // Checks the fields; false (the first bad one focused) if one is not right.
  function check(els) {
    let bad;
    els.forEach((el) => {
      const k = el._ok && el._ok(el.value.trim());
      put(el._err, 'text', k ? T(k) : '');
      el._err.hidden = !k;
      el.setAttribute('aria-invalid', !!k);
      bad = bad || k && el;
    });
    if (bad) bad.focus();
    return !bad;
  }

  // e: a refused request, or a text (a function) to show.
  function refused(e, out) {
    put(out, 'text', e.call ? e : errText(e));
    out.hidden = false;
  }

  function build() {
    const host = document.createElement('chatserver-widget');
    host.id = 'chatserver-widget';
    host.style.cssText = 'all:initial';
    const shadow = host.attachShadow({ mode: 'open' });
    shadow.appendChild(h('style', { text: CSS_TEXT }));

    ui.status = h('div', { class: 'status', 'data-testid': 'status', role: 'status' });
    ui.end = h('button', { type: 'button', class: 'hbtn end', 'data-testid': 'end-chat-button',
      text: T('chat.end'), hidden: true, onclick: endChat });
    ui.min = h('button', { type: 'button', class: 'hbtn', 'aria-label': T('chat.minimize'),
      title: T('chat.minimize'), onclick: () => closePanel(true) }, [icon(ICON_DOWN)]);
    ui.conn = h('div', { class: 'conn', 'data-testid': 'connection', hidden: true });
    ui.list = h('div', { class: 'list', 'data-testid': 'messages', role: 'log', 'aria-live': 'polite',
      'aria-label': T('chat.messages') });
    ui.intro = h('p', { class: 'intro', text: T('chat.intro') });
    ui.body = h('div', { class: 'body', onscroll: () => { follow = nearBottom(); } }, [ui.intro, ui.list]);
    ui.typing = h('div', { class: 'typing', 'data-testid': 'typing', hidden: true, 'aria-live': 'polite' });
    ui.notice = h('div', { class: 'notice', 'data-testid': 'notice', role: 'alert', hidden: true });

    ui.newChat = h('button', { type: 'button', class: 'btn', 'data-testid': 'new-chat-button',
      text: T('chat.new'), onclick: newChat });
    // Customer satisfaction: one to five stars once the chat has ended.
    ui.rate = h('div', { class: 'rate', 'data-testid': 'rate' }, [h('span', { text: T('rate.ask') })]);
    for (let i = 1; i <= 5; i++) {
      ui.rate.appendChild(h('button', { type: 'button', class: 'star', 'data-score': String(i),
        'aria-label': T('rate.star', { n: i }), text: '\u2605',
        onclick: () => { if (sendFrame({ type: 'rate', score: i })) put(ui.rate, 'text', T('rate.thanks')); } }));
    }
    ui.ended = h('div', { class: 'ended', hidden: true }, [
      h('p', { text: T('chat.ended') }), ui.rate, ui.newChat,
    ]);

    ui.name = h('input', { type: 'text', maxlength: '100', autocomplete: 'name', 'data-testid': 'name-input',
      placeholder: T('form.name') });
    ui.email = field('input', { type: 'email', name: 'email', maxlength: '254', autocomplete: 'email',
      'data-testid': 'email-input', placeholder: T('form.email_placeholder') }, (v) => v && needEmail(v));
    ui.name.value = opt.name;
    ui.email.value = opt.email;
    ui.pre = h('div', { class: 'pre' }, [
      h('label', null, [h('span', { text: T('form.name_optional') }), ui.name]),
      h('label', null, [h('span', { text: T('form.email_optional') }), ui.email, ui.email._err]),
    ]);
    ui.input = h('textarea', { rows: '1', maxlength: String(MAX_CHARS), 'data-testid': 'message-input',
      placeholder: T('chat.placeholder'), oninput: onInput, onkeydown: onKeyDown });
    ui.send = h('button', { type: 'submit', class: 'send', 'data-testid': 'send-button', 'aria-label': T('chat.send'),
      title: T('chat.send') }, [icon(ICON_SEND)]);
    ui.file = h('input', { type: 'file', hidden: true, 'data-testid': 'file-input', onchange: onFile });
    ui.clip = h('button', { type: 'button', class: 'send clip', 'data-testid': 'attach-button', 'aria-label': T('chat.attach'),
      title: T('chat.attach'), onclick: () => ui.file.click() }, [icon(ICON_CLIP)]);
    ui.composer = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); sendMessage(); } }, [
      ui.pre, h('div', { class: 'row' }, [ui.clip, ui.file, ui.input, ui.send]),
    ]);

    // Offline form, above an empty chat, in place of the composer (renderStatus).
    // fld: a field of one of the forms (in ui.of / ui.cf), with its error line.
    const fld = (o, n, ph, m, ok, tag) => {
      const el = o[n] = field(tag || 'input', { name: n, placeholder: T(ph), 'aria-label': T(ph), maxlength: m, required: !!ok,
        type: tag ? null : n === 'email' ? 'email' : n === 'phone' ? 'tel' : 'text',
        'data-testid': (o === ui.of ? 'offline-' : 'callback-') + n }, ok);
      return h('div', null, [el, el._err]);
    };
    ui.of = {};
    ui.offErr = h('p', { class: 'err', role: 'alert', hidden: true, 'data-testid': 'offline-error' });
    // Files: uploaded into this chat when picked (ui.ofAtt), sent with the form by id.
    ui.ofAtt = [];
    ui.ofFile = h('input', { type: 'file', hidden: true, 'data-testid': 'offline-file', onchange: offFile });
    ui.ofClip = h('button', { type: 'button', class: 'fbtn', 'data-testid': 'offline-attach',
      onclick: () => ui.ofFile.click() }, [icon(ICON_CLIP), h('span', { text: T('offline.attach') })]);
    ui.ofList = h('div', { 'data-testid': 'offline-attachments' });
    // The header says "offline, leave a message" (renderStatus): not said again here.
    ui.off = h('form', { class: 'off', hidden: true, 'data-testid': 'offline-form', onsubmit: sendOffline }, [
      h('p', { class: 'intro', text: T('offline.intro') }),
      fld(ui.of, 'name', 'form.name', 100), fld(ui.of, 'email', 'offline.email', 254, needEmail),
      fld(ui.of, 'subject', 'offline.subject', 100, needText),
      fld(ui.of, 'text', 'offline.text', MAX_CHARS, needText, 'textarea'), ui.ofClip, ui.ofList, ui.ofFile, ui.offErr,
      h('button', { class: 'btn', 'data-testid': 'offline-submit', text: T('chat.send') }),
    ]);
    ui.of.name.value = opt.name;
    ui.of.email.value = opt.email;
    ui.body.insertBefore(ui.off, ui.list);

    // "Call me back" (plans with phone support), before the chat has started.
    ui.cf = {};
    ui.cbErr = h('p', { class: 'err', role: 'alert', hidden: true, 'data-testid': 'callback-error' });
    ui.cb = h('form', { class: 'off', hidden: true, 'data-testid': 'callback-form', onsubmit: sendCallback }, [
      h('p', { class: 'offh', text: T('callback.head') }),
      fld(ui.cf, 'phone', 'callback.phone', 30, needText), fld(ui.cf, 'times', 'callback.times', 200),
      fld(ui.cf, 'note', 'callback.note', 1000, 0, 'textarea'), ui.cbErr,
      h('button', { class: 'btn', 'data-testid': 'callback-submit', text: T('callback.send') }),
    ]);
    ui.cbLink = h('button', { type: 'button', class: 'lnk', hidden: true, 'data-testid': 'callback-link',
      text: T('callback.link'), onclick: () => { cbOpen = true; renderStatus(); ui.cf.phone.focus(); } });
    ui.cbOk = h('p', { class: 'intro', hidden: true, 'data-testid': 'callback-done' });
    [ui.cbLink, ui.cb, ui.cbOk].forEach((x) => ui.body.insertBefore(x, ui.list));
    // "Email me the transcript": to the known address, else asked for here.
    ui.trIn = field('input', { type: 'email', name: 'email', maxlength: '254', autocomplete: 'email',
      placeholder: T('form.email_placeholder'), 'aria-label': T('transcript.label'), 'data-testid': 'transcript-email' },
    needEmail);
    ui.trF = h('form', { class: 'row', hidden: true, 'data-testid': 'transcript-form',
      onsubmit: (e) => { e.preventDefault(); if (check([ui.trIn])) mailTranscript(ui.trIn.value.trim()); } },
    [ui.trIn, h('button', { class: 'btn', text: T('transcript.send'), 'data-testid': 'transcript-send' })]);
    ui.trMsg = h('p', { role: 'status', hidden: true, 'data-testid': 'transcript-status' });
    ui.tr = h('div', { class: 'tr', hidden: true }, [h('button', { type: 'button', class: 'lnk',
      'data-testid': 'transcript-link', text: T('transcript.link'),
      onclick: () => mailTranscript(serverEmail || ui.email.value.trim()) }), ui.trF, ui.trIn._err, ui.trMsg]);
    // "Never stuck" (no_operator): leave the question as a ticket, or ask for a callback.
    ui.stIn = field('input', { type: 'email', name: 'email', maxlength: '254', autocomplete: 'email',
      placeholder: T('offline.email'), 'aria-label': T('offline.email'), 'data-testid': 'stuck-email' }, needEmail);
    ui.stIn.hidden = true;
    ui.stErr = h('p', { class: 'err', role: 'alert', hidden: true, 'data-testid': 'stuck-error' });
    ui.stMsg = h('p', { 'data-testid': 'stuck-text' });
    ui.stB = h('div', { class: 'row' }, [
      h('button', { type: 'button', class: 'btn', 'data-testid': 'stuck-ticket', text: T('stuck.ticket'),
        onclick: stuckTicket }),
      ui.stCb = h('button', { type: 'button', class: 'btn', 'data-testid': 'stuck-callback', text: T('callback.send'),
        onclick: () => { cbOpen = true; renderStatus(); ui.cf.phone.focus(); } })]);
    ui.st = h('div', { class: 'off', role: 'status', hidden: true, 'data-testid': 'stuck' },
      [ui.stMsg, ui.stIn, ui.stIn._err, ui.stB, ui.stErr]);
    ui.chat = h('div', { class: 'chat' }, [ui.body, ui.typing, ui.ended, ui.st, ui.composer, ui.tr]);
    ui.tk = h('div', { class: 'chat', hidden: true, 'data-testid': 'tickets' });

    // The language switch: each language named in itself.
    ui.lang = h('select', { class: 'lang', 'aria-label': T('lang.label'), 'data-testid': 'language-select',
      onchange: () => chooseLang(ui.lang.value) });
    for (const l in LANGS) ui.lang.appendChild(h('option', { value: l, lang: l, text: LANGS[l][0] }));

    ui.panel = h('section', { class: 'panel', role: 'dialog', 'aria-label': opt.title, 'data-testid': 'panel',
      hidden: true, onkeydown: (e) => { if (e.key === 'Escape') closePanel(true); } }, [
      // Title and status beside "minimize"; the actions below them (texts differ in length).
      h('header', { class: 'head' }, [
        h('div', { class: 'head-text' }, [h('div', { class: 'title', text: opt.title }), ui.status]), ui.min,
        h('div', { class: 'acts' }, [
          ui.other = h('button', { type: 'button', class: 'hl', hidden: true, 'data-testid': 'another-operator',
            text: T('chat.other'), onclick: () => sendFrame({ type: 'another_operator' }) ||
              showNotice(T('error.offline')) }),
          h('span', { class: 'pills' }, [h('button', { type: 'button', class: 'hbtn end', 'data-testid': 'my-tickets',
            text: T('tickets.mine'), onclick: () => showTickets() }), ui.end])]),
      ]),
      ui.conn, ui.notice, ui.chat, ui.tk,
      h('div', { class: 'brand' }, [ui.lang, h('span', { text: T('brand') })]),
    ]);

    ui.badge = h('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
    ui.bubbleIcon = icon(ICON_CHAT);
    ui.bubbleClose = icon(ICON_CLOSE);
    ui.bubbleClose.style.display = 'none';
    ui.bubble = h('button', { type: 'button', class: 'bubble', 'data-testid': 'bubble',
      'aria-expanded': 'false', 'aria-haspopup': 'dialog', onclick: () => (panelOpen ? closePanel(false) : openPanel()) },
    [ui.bubbleIcon, ui.bubbleClose, ui.badge]);

    ui.root = h('div', { class: 'root' }, [ui.panel, ui.bubble]);
    ui.root.style.setProperty('--a', opt.color);
    ui.root.style.setProperty('--at', textColorFor(opt.color));
    shadow.appendChild(ui.root);
    kbBuild();
    document.body.appendChild(host);
    applyLang();
    // The list area shrinks when a notice, the typing line or the "ended" box
    // appears: stay at the bottom if we were there.
    if (window.ResizeObserver) new ResizeObserver(keepBottom).observe(ui.body);
  }

  // Every text again in the current language (after a switch).
  function applyLang() {
    ui.root.lang = lang;
    ui.lang.value = lang;
    bound.forEach((el) => {
      if (!el.isConnected) return bound.delete(el);
      for (const k in el._b) put(el, k, el._b[k]);
    });
    renderStatus();
    renderConn();
    renderBadge();
  }

  // The visitor picked a language: remembered on this device and told to the server.
  function chooseLang(l) {
    try { localStorage.setItem(LANG_KEY, l); } catch (e) { /* storage disabled */ }
    loadLang(l).then(() => {
      pendingInfo = Object.assign(pendingInfo || { type: 'info' }, { lang: l });
      if (ready && sendFrame(pendingInfo)) pendingInfo = null;
    }, () => {
      ui.lang.value = lang;
      showNotice(T('error.generic'));
    });
  }

  // ---------------------------------------------------------------------------
  // Rendering
  // ---------------------------------------------------------------------------

  function operatorName() {
    return (operator && operator.name) || t('operator.anon');
  }

  function renderStatus() {
    const a = ui.root.getRootNode().activeElement;  // before anything is hidden
    let s;
    if (chatState === 'waiting') {
      s = queuePos ? t('status.queue', { n: queuePos }) : t('status.waiting');
    } else if (chatState === 'assigned') {
      s = operator && operator.name ? t('status.with', { name: operator.name }) : t('status.with_anon');
    } else {
      s = t(chatState === 'closed' ? 'status.ended' : !offline ? 'status.idle' : offDone ? 'offline.intro' : 'offline.head');
    }
    ui.status.textContent = s;

    const closed = chatState === 'closed';
    ui.ended.hidden = !closed;
    ui.end.hidden = !(chatState === 'waiting' || chatState === 'assigned');
    ui.pre.hidden = !(chatState === null || chatState === 'new') || ui.list.childElementCount > 0;
    ui.intro.hidden = !(ui.off.hidden = !offDone && !(offline && !ui.pre.hidden && !cbOpen));
    const fresh = chatState === null || chatState === 'new';
    ui.cbLink.hidden = !(cbAllowed && fresh && !cbOpen && !cbDone && !ui.list.childElementCount);
    ui.cb.hidden = !(cbOpen && !cbDone && (fresh || stuck && !stDone) && cbAllowed);
    if (chatState === 'assigned') stuck = null;
    ui.st.hidden = !(stuck && !cbDone && (chatState === 'waiting' || stDone));
    ui.stB.hidden = !!stDone;
    ui.stCb.hidden = !cbAllowed;
    ui.cbOk.hidden = !(cbDone && !closed && ui.cbOk.textContent);
    ui.other.hidden = !(chatState === 'assigned' && operator);
    // One form at a time: no chat composer while offline before the chat started.
    ui.composer.hidden = closed || offline && !ui.pre.hidden;
    // The focus went with what was hidden: to the panel's main control.
    if (panelOpen && a && !a.offsetParent) focusMain();
    ui.tr.hidden = !token || !ui.list.childElementCount;
    if (closed) hideTyping();
    if (ui.off.hidden || ui.list.childElementCount) keepBottom();
    else ui.body.scrollTop = follow = 0;
  }

  // The focus to the panel's main control: the composer, else the offline form, else "new chat".
  function focusMain() {
    (chatState === 'closed' ? ui.newChat : !ui.composer.hidden ? ui.input : ui.done || ui.of.name).focus();
  }

  function renderConn() {
    let s = '';
    if (blocked) s = t('conn.blocked');
    else if (!ready && (ws || retryTimer) && (everConnected || attempt > 0)) s = t('conn.reconnecting');
    ui.conn.textContent = s;
    ui.conn.hidden = !s;
  }

  function renderBadge() {
    let n = 0;
    if (!panelOpen) bySeq.forEach((r) => { if (r.from === 'operator' && r.seq > readSent) n++; });
    ui.badge.textContent = n > 9 ? '9+' : String(n);
    ui.badge.hidden = n === 0;
    ui.bubble.setAttribute('aria-label', n ? t('bubble.unread', { n: n }) : t(panelOpen ? 'bubble.close' : 'bubble.open'));
  }

  // Follow new messages while the visitor is at the bottom of the list.
  let follow = true;

  function nearBottom() {
    const b = ui.body;
    return b.scrollHeight - b.scrollTop - b.clientHeight < 60;
  }

  function scrollToBottom() {
    ui.body.scrollTop = ui.body.scrollHeight;
    follow = true;
  }

  function keepBottom() {
    if (follow) scrollToBottom();
  }

  const TICKS = { sent: '\u2713', stored: '\u2713\u2713', read: '\u2713\u2713', failed: '! ' };

  function setMsgState(rec, st) {
    if (rec.from !== 'visitor') return;
    rec.state = st;
    rec.el.setAttribute('data-state', st);
    put(rec.tick, 'text', st === 'failed' ? () => TICKS[st] + t('tick.failed') : TICKS[st]);
    put(rec.tick, 'title', T('tick.' + st));
    put(rec.tick, 'aria-label', T('tick.' + st));
  }

  // Stored messages are kept in seq order; messages still waiting for their
  // seq (pending) stay after them.
  function insertBySeq(el, seq) {
    let ref = null;
    for (let c = ui.list.lastElementChild; c; c = c.previousElementSibling) {
      if (c._seq === undefined || c._seq > seq) { ref = c; continue; }
      break;
    }
    ui.list.insertBefore(el, ref);
  }

  // One message bubble (chat message or ticket event).
  function msgEl(m) {
    const from = m.from === 'visitor' || m.from === 'operator' ? m.from : 'system';
    const el = h('div', { class: 'msg ' + from, 'data-testid': 'message', 'data-from': from });
    const rec = { el: el, from: from, seq: null, cmid: m.cmid || null, state: null, tick: null, time: null };
    if (from === 'operator' && m.author) el.appendChild(h('div', { class: 'author', text: String(m.author) }));
    // Texts of the widget's own (a function) follow the language; others may hold links.
    const text = typeof m.text === 'function' ? m.text : String(m.text == null ? '' : m.text);
    const txt = h('div', { class: 'txt', hidden: !text });
    if (typeof text === 'function') put(txt, 'text', text);
    else richText(txt, text);
    el.appendChild(txt);
    if (m.att && m.att.length) el.appendChild(attEl(m.att));
    if (m.ticket) el.appendChild(h('button', { type: 'button', class: 'lnk', text: T('ticket.view'), onclick: () => showTickets(m.ticket) }));
    rec.time = h('span', { class: 'time', text: () => fmtTime(m.ts) });
    rec.meta = h('div', { class: 'meta' }, [rec.time]);
    el.appendChild(rec.meta);
    return rec;
  }

  function addMessage(m) {
    const rec = msgEl(m);
    const el = rec.el;
    const from = rec.from;
    if (from === 'visitor') rec.meta.appendChild(rec.tick = h('span', { class: 'tick' }));

    if (typeof m.seq === 'number') {
      rec.seq = m.seq;
      el._seq = m.seq;
      el.setAttribute('data-seq', String(m.seq));
      bySeq.set(m.seq, rec);
      insertBySeq(el, m.seq);
    } else {
      ui.list.appendChild(el);
    }
    if (rec.cmid && from === 'visitor') byCmid.set(rec.cmid, rec);
    if (from === 'visitor') setMsgState(rec, m.state || (rec.seq !== null && rec.seq <= opReadSeq ? 'read' : 'stored'));
    renderStatus();
    if (from === 'visitor' && !m.seq) scrollToBottom();
    else keepBottom();
    return rec;
  }

  // A pending own message got its seq (from an ack or from a replayed frame).
  function assignSeq(rec, seq, ts) {
    rec.seq = seq;
    rec.el._seq = seq;
    rec.el.setAttribute('data-seq', String(seq));
    if (typeof ts === 'number') put(rec.time, 'text', () => fmtTime(ts));
    bySeq.set(seq, rec);
    setMsgState(rec, seq <= opReadSeq ? 'read' : 'stored');
    ui.list.removeChild(rec.el);
    insertBySeq(rec.el, seq);
    keepBottom();
  }

  function noteSeq(seq) {
    while (bySeq.has(contigSeq + 1)) contigSeq++;
    lastSeq = Math.max(lastSeq, streamSeq, contigSeq);
    if (seq > seenSeq) seenSeq = seq;
    save();
  }

  function applyRead() {
    bySeq.forEach((rec) => {
      if (rec.from === 'visitor' && rec.seq <= opReadSeq && rec.state === 'stored') setMsgState(rec, 'read');
    });
  }

  function showTyping(active) {
    clearTimeout(typingHideTimer);
    if (!active || chatState === 'closed') return hideTyping();
    put(ui.typing, 'text', () => t('typing', { name: operatorName() }));
    ui.typing.hidden = false;
    typingHideTimer = setTimeout(hideTyping, TYPING_SHOW);
  }

  function hideTyping() {
    clearTimeout(typingHideTimer);
    ui.typing.hidden = true;
  }

  // text: a string, or a function giving it in the current language.
  function showNotice(text) {
    clearTimeout(noticeTimer);
    put(ui.notice, 'text', text);
    ui.notice.hidden = false;
    noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, 8000);
  }

  // Drops every rendered message (optionally keeping own unsent ones).
  function clearHistory(keepPending) {
    bySeq.clear();
    const keep = [];
    byCmid.forEach((rec) => { if (keepPending && rec.seq === null && rec.state !== 'failed') keep.push(rec); });
    byCmid.clear();
    ui.list.textContent = '';
    keep.forEach((rec) => { byCmid.set(rec.cmid, rec); delete rec.el._seq; ui.list.appendChild(rec.el); });
    streamSeq = contigSeq = lastSeq = seenSeq = opReadSeq = readSent = 0;
    hideTyping();
  }

  // ---------------------------------------------------------------------------
  // Connection
  // ---------------------------------------------------------------------------

  function wanted() {
    return !blocked && (panelOpen || outbox.length > 0 || (!!token && chatState !== 'closed' && !storedClosed));
  }

  function sendFrame(frame) {
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(frame)); return true; } catch (e) { return false; }
  }

  function connect() {
    if (ws || blocked) return;
    clearTimeout(retryTimer);
    retryTimer = 0;
    let sock;
    try {
      sock = new WebSocket(WS_URL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    ready = false;
    sentThisConn = new Set();
    sock._hadToken = !!token;
    sock.onopen = () => {
      if (ws !== sock) return;
      lastRx = Date.now();
      helloSeq = lastSeq;
      const hello = {
        type: 'hello',
        last_seq: lastSeq,
        page_url: location.href.slice(0, 2000),
        user_agent: String(navigator.userAgent || '').slice(0, 500),
        lang: lang,
      };
      if (token) hello.token = token;
      const name = (ui.name.value.trim() || serverName).slice(0, 100);
      const email = (ui.email.value.trim() || serverEmail).slice(0, 254);
      if (name) hello.name = name;
      if (email) hello.email = email;
      if (opt.identity) hello.identity = opt.identity;
      sock._hadToken = !!token;
      sendFrame(hello);
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      lastRx = Date.now();
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f === 'object' && typeof f.type === 'string') handleFrame(f);
    };
    sock.onerror = () => { /* a close event follows */ };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      onClosed(ev.code, sock._hadToken);
    };
    renderConn();
  }

  // Drops the current socket without waiting for its close handshake.
  function dropSocket() {
    const s = ws;
    ws = null;
    ready = false;
    clearTimeout(replayTimer);
    if (s) { try { s.close(1000); } catch (e) { /* ignore */ } }
  }

  function onClosed(code, hadToken) {
    ws = null;
    ready = false;
    clearTimeout(replayTimer);
    stopTypingLocal();
    if (code === 4001 && hadToken) {
      // Unknown or expired token: forget the session, keep unsent messages;
      // they start a fresh chat.
      token = null;
      sessionId = null;
      chatState = null;
      operator = null;
      storedClosed = false;
      clearHistory(true);
      save();
      renderStatus();
      attempt = 0;
      if (wanted()) connect();
      renderConn();
      return;
    }
    if (code === 4003) {
      blocked = true;
      renderConn();
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (wanted()) {
      const cap = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, attempt));
      attempt++;
      retryTimer = setTimeout(() => { retryTimer = 0; connect(); }, cap / 2 + Math.random() * cap / 2);
    }
    renderConn();
  }

  function reconnectNow() {
    if (ws || blocked || !wanted()) return;
    clearTimeout(retryTimer);
    retryTimer = 0;
    connect();
  }

  function markReady() {
    clearTimeout(replayTimer);
    if (!ws || ready) return;
    ready = true;
    renderConn();
    if (pendingInfo) {
      if (sendFrame(pendingInfo)) pendingInfo = null;
    }
    flushOutbox();
    maybeSendRead();
  }

  function flushOutbox() {
    if (!ready) return;
    outbox.forEach((m) => {
      if (sentThisConn.has(m.id)) return;
      const f = { type: 'message', client_msg_id: m.id, text: m.text };
      if (m.att) f.attachments = m.att.map((a) => a.id);
      if (sendFrame(f)) sentThisConn.add(m.id);
    });
  }

  function dropFromOutbox(id) {
    const n = outbox.length;
    outbox = outbox.filter((m) => m.id !== id);
    if (outbox.length !== n) save();
  }

  // ---------------------------------------------------------------------------
  // Incoming frames
  // ---------------------------------------------------------------------------

  function handleFrame(f) {
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'message': return onMessage(f);
      case 'replay_done': return onReplayDone(f);
      case 'ack': return onAck(f);
      case 'state':
        if ('offline' in f) offline = !!f.offline;
        setState(f.state, f.operator, f.queue_position);
        return;
      case 'queue':
        if (typeof f.position === 'number') {
          queuePos = f.position;
          if (chatState === 'waiting') renderStatus();
        }
        return;
      case 'no_operator':
        stuck = f.reason || 1;
        if (f.callback) cbAllowed = true;
        put(ui.stMsg, 'text', T({ nobody_else: 'stuck.nobody_else', waited: 'stuck.waited' }[f.reason] ||
          'stuck.none_online'));
        return renderStatus();
      case 'typing':
        if (f.from !== 'visitor') showTyping(!!f.active);
        return;
      case 'read':
        if (f.by === 'operator' && typeof f.seq === 'number' && f.seq > opReadSeq) {
          opReadSeq = f.seq;
          applyRead();
        }
        return;
      case 'error': return onError(f);
      default: // pong and anything new
    }
  }

  function onWelcome(f) {
    attempt = 0;
    everConnected = true;
    if (sessionId && f.session_id !== sessionId) clearHistory(true);
    sessionId = f.session_id || null;
    if (typeof f.token === 'string') token = f.token;
    storedClosed = false;
    if (typeof f.read_seq === 'number' && f.read_seq > opReadSeq) opReadSeq = f.read_seq;
    const v = f.visitor || {};
    serverName = v.name || '';
    serverEmail = v.email || '';
    if (!ui.name.value && serverName) ui.name.value = serverName;
    if (!ui.email.value && serverEmail) ui.email.value = serverEmail;
    offline = !!f.offline;
    cbAllowed = !!f.callback_allowed;
    if (f.kind === 'callback') cbDone = true;
    setState(f.state, f.operator, f.queue_position);
    applyRead();
    save();
    if (f.resumed) {
      // Outbox is flushed after the replay, so replayed copies merge first.
      replayTimer = setTimeout(markReady, 10000);
    } else {
      markReady();
    }
    renderConn();
  }

  function onReplayDone(f) {
    if (f.complete === false && lastSeq > helloSeq) {
      // The server sent only part of the backlog: resume again from here.
      dropSocket();
      connect();
      return;
    }
    markReady();
  }

  function setState(st, op, pos) {
    if (typeof st !== 'string') return;
    chatState = st;
    if (op !== undefined) operator = op && typeof op === 'object' ? op : null;
    queuePos = st === 'waiting' && typeof pos === 'number' ? pos : null;
    if (st === 'closed') stopTypingLocal();
    renderStatus();
    save();
  }

  function onMessage(f) {
    if (typeof f.seq !== 'number') return;
    if (sessionId && f.session_id && f.session_id !== sessionId) return;
    let rec = f.from === 'visitor' && f.client_msg_id ? byCmid.get(f.client_msg_id) : null;
    if (rec && rec.seq === null) {
      // Our own pending message came back in the replay: merge, don't duplicate.
      assignSeq(rec, f.seq, f.ts);
      dropFromOutbox(rec.cmid);
    } else {
      if (bySeq.has(f.seq) || f.seq <= streamSeq) return;
      const esc = f.event === 'escalated' && typeof f.ticket === 'string' && f.ticket;
      // A callback request: its first line (the server's English) in the visitor's language.
      const cb = f.callback && f.callback.phone && f.callback;
      rec = addMessage({ from: f.from, seq: f.seq, ts: f.ts, text: noticeOf(f) || cb && (() => t('callback.msg',
        { phone: cb.phone }) + (cb.preferred_times ? ' (' + cb.preferred_times + ')' : '') +
        String(f.text || '').replace(/^.*/, '')) || f.text,
        author: f.author, cmid: f.from === 'visitor' ? f.client_msg_id : null, att: f.attachments,
        ticket: esc && esc.replace(/\D/g, '') });
    }
    if (f.seq > streamSeq) streamSeq = f.seq;
    noteSeq(f.seq);
    if (rec.from !== 'visitor') {
      if (rec.from === 'operator') hideTyping();
      maybeSendRead();
    }
    renderBadge();
  }

  // A server-written event (i18n contract): its notice {code, params} as the
  // catalog's notice.<code>; null (show the server's English text) without one.
  function noticeOf(f) {
    const n = f.notice;
    if (!n || !cat['notice.' + n.code]) return null;
    const p = Object.assign({}, n.params);
    return () => t('notice.' + n.code, Object.assign({}, p, p.level ? { level: t('level.' + p.level) } : null));
  }

  function onAck(f) {
    const rec = byCmid.get(f.client_msg_id);
    dropFromOutbox(f.client_msg_id);
    if (!rec || typeof f.seq !== 'number') return;
    if (rec.seq === null) {
      if (bySeq.has(f.seq)) return;
      assignSeq(rec, f.seq, f.ts);
      noteSeq(f.seq);
    }
  }

  function onError(f) {
    const rec = f.ref ? byCmid.get(f.ref) : null;
    const retry = f.code === 'rate_limited' || f.code === 'unavailable';
    if (rec && rec.seq === null && rec.state !== 'failed') {
      if (retry) {
        sentThisConn.delete(rec.cmid);
        setTimeout(flushOutbox, 3000);
      } else {
        setMsgState(rec, 'failed');
        // Keep its place: later messages go after it.
        let hi = 0;
        bySeq.forEach((r, seq) => { if (seq > hi) hi = seq; });
        rec.el._seq = hi;
        dropFromOutbox(rec.cmid);
      }
    }
    const k = 'error.' + f.code;
    showNotice(cat[k] ? T(k) : lang === 'en' && typeof f.message === 'string' && f.message || T('error.generic'));
  }

  // ---------------------------------------------------------------------------
  // Outgoing actions
  // ---------------------------------------------------------------------------

  function maybeSendRead() {
    if (!ready || !panelOpen || document.visibilityState === 'hidden') return;
    let hi = 0;
    bySeq.forEach((r) => { if (r.from !== 'visitor' && r.seq > hi) hi = r.seq; });
    if (hi > readSent && sendFrame({ type: 'read', seq: hi })) {
      readSent = hi;
      save();
    }
    renderBadge();
  }

  function sendMessage(att) {
    if (chatState === 'closed') return;
    const text = ui.input.value.trim();
    if (!text && !att) return;
    if (text.length > MAX_CHARS) {
      showNotice(T('error.too_long', { n: MAX_CHARS }));
      return;
    }
    if (!ui.pre.hidden) {
      if (!check([ui.email])) return;
      const info = pendingInfo || { type: 'info' };
      const name = ui.name.value.trim().slice(0, 100);
      const email = ui.email.value.trim().slice(0, 254);
      if (name && name !== serverName) info.name = serverName = name;
      if (email && email !== serverEmail) info.email = serverEmail = email;
      if (info.name || info.email || info.lang) pendingInfo = info;
    }
    ui.input.value = '';
    autoGrow();
    stopTypingLocal();

    const m = { id: uuid(), text: text, ts: Date.now() };
    if (att) m.att = [att];
    outbox.push(m);
    save();
    addMessage({ from: 'visitor', text: text, ts: m.ts, cmid: m.id, state: 'sent', att: m.att });

    if (ready) {
      if (pendingInfo && sendFrame(pendingInfo)) pendingInfo = null;
      flushOutbox();
    } else {
      reconnectNow();
    }
  }

  function onFile() {
    const f = ui.file.files[0];
    ui.file.value = '';
    if (!f || chatState === 'closed') return;
    if (!token) return showNotice(T('error.offline'));
    ui.clip.disabled = true;
    upload(f).then(sendMessage, showNotice).then(() => { ui.clip.disabled = false; });
  }

  // Uploads queue up (ofUp); the form is sent after them.
  let ofUp = Promise.resolve();

  // A file picked for the offline form: uploaded now, listed with its size and a remove button.
  function offFile() {
    const f = ui.ofFile.files[0];
    ui.ofFile.value = '';
    ui.offErr.hidden = true;
    if (!f) return;
    if (!token) return refused({}, ui.offErr);
    ofUp = ofUp.then(() => upload(f).then((a) => {
      ui.ofAtt.push(a);
      const name = String(a.filename || f.name);
      const row = h('div', { class: 'fi', 'data-testid': 'offline-attachment' }, [
        h('span', { text: () => name + ' (' + fmtSize(a.size) + ')' }),
        h('button', { type: 'button', class: 'hbtn', 'aria-label': T('file.remove', { file: name }),
          title: T('file.remove', { file: name }), 'data-testid': 'offline-attachment-remove', onclick: () => {
            ui.ofAtt = ui.ofAtt.filter((x) => x !== a);
            row.remove();
            ui.ofClip.focus();
          } }, [icon(ICON_CLOSE)])]);
      ui.ofList.appendChild(row);
    }, (m) => refused(m, ui.offErr)));
  }

  function sendOffline(e) {
    e.preventDefault();
    ui.offErr.hidden = true;
    const v = {};
    for (const k in ui.of) if (ui.of[k].value.trim()) v[k] = ui.of[k].value.trim();
    if (!check(Object.values(ui.of))) return;
    ofUp.then(() => {
      if (ui.ofAtt.length) v.attachments = ui.ofAtt.map((a) => a.id);
      return req('/visitor/offline', { json: v });
    }).then((r) => {
      offDone = true;
      ui.off.textContent = '';
      ui.off.appendChild(ui.done = h('p', { role: 'status', tabindex: '-1', 'data-testid': 'offline-done',
        text: T('offline.done', { ticket: r.ticket.ref }) }));
      renderStatus();
      focusMain();
    }, (er) => refused(er, ui.offErr));
  }

  function mailTranscript(email) {
    if (!email) {
      ui.trF.hidden = false;
      return ui.trIn.focus();
    }
    if (!token) return showNotice(T('error.offline'));
    const say = (s, bad) => {
      put(ui.trMsg, 'text', s);
      ui.trMsg.className = bad ? 'err' : 'trm';
      ui.trMsg.hidden = false;
    };
    req('/visitor/transcript', { json: { email: email } }).then((r) => {
      ui.trF.hidden = true;
      say(T('transcript.sent', { email: r.email || email }));
    }, (er) => say(errText(er), 1));
  }

  // The waiting chat becomes a ticket; the answer comes by e-mail (asked for if unknown).
  function stuckTicket() {
    let email = serverEmail || ui.email.value.trim();
    ui.stErr.hidden = true;
    if (!email) {
      if (ui.stIn.hidden) { ui.stIn.hidden = false; return ui.stIn.focus(); }
      if (!check([ui.stIn])) return;
      email = ui.stIn.value.trim();
    }
    if (!token) return showNotice(T('error.offline'));
    req('/visitor/chat-ticket', { json: { email: email } }).then((r) => {
      stDone = 1;
      ui.stIn.hidden = true;
      put(ui.stMsg, 'text', T('stuck.done', { ticket: r.ticket.ref, email: email }));
      renderStatus();
    }, (er) => refused(er, ui.stErr));
  }

  function sendCallback(e) {
    e.preventDefault();
    const v = { phone: ui.cf.phone.value.trim() };
    if (ui.cf.times.value.trim()) v.preferred_times = ui.cf.times.value.trim();
    if (ui.cf.note.value.trim()) v.note = ui.cf.note.value.trim();
    ui.cbErr.hidden = true;
    if (!check([ui.cf.phone])) return;
    if (!token) return showNotice(T('error.offline'));
    req('/visitor/callback', { json: v }).then((r) => {
      cbDone = true;
      put(ui.cbOk, 'text', T(v.preferred_times ? 'callback.done_times' : 'callback.done',
        { phone: r.phone || v.phone, times: v.preferred_times }));
      renderStatus();
    }, (er) => refused(er, ui.cbErr));
  }

  // ---------------------------------------------------------------------------
  // My tickets: list, one ticket's public events, reply box
  // ---------------------------------------------------------------------------

  // A ticket state by its name in the visitor's language.
  const stateName = (s) => () => cat['state.' + s] ? t('state.' + s) : String(s || '\u2014').replace(/_/g, ' ');

  function evEl(e) {
    const b = e.body || {};
    const a = e.actor || {};
    const k = e.kind;
    const m = k === 'state' ? { text: () => t('ticket.state_changed', { from: stateName(b.from)(), to: stateName(b.to)() }) }
      : k === 'created' && !b.text ? { text: T('ticket.created') }
      : { from: k === 'transcript' ? b.from : a.type === 'operator' ? 'operator' : 'visitor', author: b.author || a.name,
        text: b.text, att: b.attachments };
    m.ts = e.ts;
    const el = msgEl(m).el;
    el.setAttribute('data-kind', k);
    return el;
  }

  function showTickets(num) {
    ui.chat.hidden = true;
    const tk = ui.tk;
    const list = h('div', { class: 'list' });
    const back = h('button', { type: 'button', class: 'lnk', 'data-testid': 'tickets-back',
      text: T(num ? 'tickets.all' : 'tickets.back'),
      onclick: () => (num ? showTickets() : (tk.hidden = true, ui.chat.hidden = false, keepBottom(), focusMain())) });
    const sc = h('div', { class: 'body' }, [back, list]);
    tk.hidden = false;
    tk.textContent = '';
    tk.appendChild(sc);
    back.focus();  // the view changed under the focus (the list's rows are gone)
    req('/visitor/tickets' + (num ? '/' + num : '')).then((r) => {
      if (!sc.isConnected) return;
      if (!num) {
        r.tickets.forEach((x) => list.appendChild(h('button', { type: 'button', class: 'tkrow', 'data-testid': 'my-ticket',
          onclick: () => showTickets(x.number) }, [h('strong', { text: x.ref + ' ' }), h('span', { text: x.subject }),
          h('small', { text: stateName(x.state) })])));
        if (!r.tickets.length) list.appendChild(h('p', { class: 'intro', text: T('tickets.none') }));
        return;
      }
      const x = r.ticket;
      list.appendChild(h('div', { class: 'tkrow', 'data-testid': 'ticket-head' }, [h('strong', { text: x.ref + ' ' }),
        h('span', { text: x.subject }), h('small', { text: stateName(x.state) })]));
      r.events.forEach((e) => list.appendChild(evEl(e)));
      const ta = h('textarea', { rows: '2', maxlength: MAX_CHARS, placeholder: T('ticket.reply_placeholder'),
        'data-testid': 'ticket-reply-input' });
      tk.appendChild(h('form', { class: 'composer row', onsubmit: (ev) => {
        ev.preventDefault();
        if (ta.value.trim()) {
          req('/visitor/tickets/' + num + '/replies', { json: { text: ta.value.trim(), attachments: [] } })
            .then(() => showTickets(num), (er) => showNotice(errText(er)));
        }
      } }, [ta, h('button', { class: 'send', 'aria-label': T('ticket.send'), title: T('ticket.send'),
        'data-testid': 'ticket-reply-send' }, [icon(ICON_SEND)])]));
      sc.scrollTop = 1e6;
    }, (er) => list.appendChild(msgEl({ text: errText(er) }).el));
  }

  function endChat() {
    if (chatState !== 'waiting' && chatState !== 'assigned') return;
    if (!sendFrame({ type: 'close' })) showNotice(T('error.offline'));
  }

  function newChat() {
    dropSocket();
    clearTimeout(retryTimer);
    retryTimer = 0;
    token = null;
    sessionId = null;
    chatState = null;
    operator = null;
    queuePos = null;
    storedClosed = false;
    outbox = [];
    pendingInfo = null;
    cbOpen = cbDone = false;
    put(ui.cbOk, 'text', '');
    ui.trF.hidden = ui.trMsg.hidden = true;
    clearHistory(false);
    save();
    renderStatus();
    attempt = 0;
    connect();
    renderConn();
    ui.input.focus();
  }

  function onInput() {
    autoGrow();
    if (!ready || !(chatState === 'waiting' || chatState === 'assigned')) return;
    if (!ui.input.value) return;
    const now = Date.now();
    if (now - typingSentAt >= TYPING_THROTTLE && sendFrame({ type: 'typing', active: true })) {
      typingActive = true;
      typingSentAt = now;
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTypingLocal, TYPING_IDLE);
  }

  function stopTypingLocal() {
    clearTimeout(typingIdleTimer);
    if (typingActive) {
      typingActive = false;
      sendFrame({ type: 'typing', active: false });
    }
  }

  function onKeyDown(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendMessage();
    }
  }

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 130) + 'px';
  }

  // ---------------------------------------------------------------------------
  // Knowledge base: while the visitor types the first message (or the offline
  // form's message), up to three articles are suggested under it; one opens in
  // the panel with "Did this answer your question?" Yes (counted: a chat
  // deflected) or No (back to the text). The article's HTML, sanitised by the
  // server, is parsed by DOMParser (inert) and only plain elements are copied
  // from it, text as text and links checked: nothing runs, whatever it holds.
  // ---------------------------------------------------------------------------

  const KB_TAGS = /^(p|br|hr|h[1-6]|ul|ol|li|a|strong|b|em|i|code|pre|blockquote|table|thead|tbody|tr|th|td|del|s|sub|sup|dl|dt|dd)$/;
  const KB_SKIP = /^(script|style|template|iframe|object|embed|noscript|svg|math|form|button|select|textarea|title)$/;
  let kbCtl = null;   // the search in flight (AbortController)
  let kbTimer = 0;
  let kbField = null; // the field the suggestions are for
  let kbArt = null;   // the article shown

  function kbBuild() {
    ui.kbLive = h('p', { class: 'vh', role: 'status', 'data-testid': 'kb-suggest-live' });
    ui.kbList = h('ul', { class: 'kbl', 'aria-labelledby': 'cs-kbh', 'data-testid': 'kb-suggestions' });
    ui.kb = h('div', { class: 'kb', hidden: true }, [ui.kbH = h('h2', { class: 'kbh', id: 'cs-kbh' }), ui.kbList]);
    ui.kbT = h('h2', { class: 'kbt', tabindex: '-1', 'data-testid': 'kb-article-title' });
    ui.kbB = h('div', { class: 'kbb', 'data-testid': 'kb-article-body' });
    ui.kbQ = h('div', { class: 'kbq' }, [h('p', { text: T('kb.ask') }), h('div', { class: 'row' }, [
      h('button', { type: 'button', class: 'btn', 'data-testid': 'kb-yes', text: T('kb.yes'), onclick: () => kbDone(1) }),
      h('button', { type: 'button', class: 'btn kbn', 'data-testid': 'kb-no', text: T('kb.no'), onclick: () => kbDone(0) })])]);
    ui.kbOk = h('p', { class: 'kbq', role: 'status', tabindex: '-1', 'data-testid': 'kb-thanks', text: T('kb.thanks') });
    ui.kbBack = h('button', { type: 'button', class: 'lnk', 'data-testid': 'kb-back', text: T('tickets.back'), onclick: kbClose });
    ui.kbV = h('div', { class: 'chat', hidden: true, 'data-testid': 'kb-article' },
      [h('div', { class: 'body' }, [ui.kbT, ui.kbB, ui.kbQ, ui.kbOk, ui.kbBack])]);
    ui.tk.after(ui.kbV, ui.kbLive);
    ui.input.addEventListener('input', () => kbInput(ui.input));
    ui.of.text.addEventListener('input', () => kbInput(ui.of.text));
  }

  // Typing: a search 250 ms after the last keystroke; a newer one cancels the older.
  function kbInput(f) {
    clearTimeout(kbTimer);
    if (kbCtl) kbCtl.abort();
    const q = f.value.trim().slice(-200);
    ui.kb.hidden = q.length < 3 || (f === ui.input ? ui.pre.hidden : offDone);
    if (!ui.kb.hidden) kbTimer = setTimeout(() => kbSearch(f, q), 250);
  }

  function kbSearch(f, q) {
    const c = kbCtl = new AbortController();
    fetch(API + '/kb/search?source=widget&limit=3&lang=' + lang + '&q=' + encodeURIComponent(q), { signal: c.signal })
      .then((r) => r.json()).then((r) => {
        const list = (r.results || []).slice(0, 3);
        ui.kbList.textContent = '';
        list.forEach((a) => ui.kbList.appendChild(h('li', null, [h('button', { type: 'button', class: 'kbs',
          'data-testid': 'kb-suggestion', 'data-slug': a.slug, onclick: () => kbOpen(a, f) },
        [h('strong', { text: a.title }), a.snippet && h('small', { text: a.snippet })])])));
        if (f === ui.input) ui.composer.appendChild(ui.kb);
        else f.parentNode.after(ui.kb);
        put(ui.kbH, 'text', T('kb.head'));  // (re)bound: a language switch skips texts off the page
        ui.kb.hidden = !list.length;
        ui.kbLive.textContent = list.length ? t('kb.found', { n: list.length }) : '';
      }, () => { /* cancelled, or offline: nothing to suggest */ });
  }

  function kbPath(a) {
    return API + '/kb/articles/' + encodeURIComponent(a.lang) + '/' + encodeURIComponent(a.slug);
  }

  function kbOpen(a, f) {
    kbField = f;
    kbArt = a;
    ui.kbT.textContent = a.title;
    ui.kbB.textContent = '';
    ui.kbQ.hidden = false;
    ui.kbOk.hidden = ui.kbBack.hidden = ui.chat.hidden = true;
    ui.kbV.hidden = false;
    ui.kbT.focus();
    fetch(kbPath(a) + '?source=widget').then((r) => r.json()).then((r) => {
      if (kbArt !== a) return;
      try {
        kbCopy(new DOMParser().parseFromString(String(r.html), 'text/html').body, ui.kbB);
      } catch (e) {
        ui.kbB.textContent = a.snippet || '';
      }
    }, () => showNotice(T('error.generic')));
  }

  // The allowed elements of `from` into `to`, rebuilt: no attribute but a checked link.
  function kbCopy(from, to) {
    from.childNodes.forEach((n) => {
      const tag = n.nodeType === 1 && n.localName;
      if (n.nodeType === 3) to.appendChild(document.createTextNode(n.data));
      else if (tag && !KB_SKIP.test(tag)) {
        let e = to;
        if (KB_TAGS.test(tag)) {
          e = to.appendChild(document.createElement(tag));
          const u = tag === 'a' && n.getAttribute('href');
          if (u) {
            const l = new URL(u, base.origin + basePath + '/');
            if (/^(https?|mailto):$/.test(l.protocol)) {
              e.href = l.href;
              e.target = '_blank';
              e.rel = 'noopener noreferrer nofollow';
            }
          }
        }
        kbCopy(n, e);
      }
    });
  }

  // Yes or No: told to the server (Yes from here is a chat deflected); No goes back.
  function kbDone(yes) {
    fetch(kbPath(kbArt) + '/feedback', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ helped: !!yes, session: sessionId || undefined }) }).catch(() => {});
    if (!yes) return kbClose();
    ui.kbQ.hidden = true;
    ui.kbOk.hidden = ui.kbBack.hidden = false;
    ui.kbOk.focus();
  }

  function kbClose() {
    kbArt = null;
    ui.kbV.hidden = true;
    ui.chat.hidden = false;
    keepBottom();
    (kbField || ui.input).focus();
  }

  // ---------------------------------------------------------------------------
  // Panel
  // ---------------------------------------------------------------------------

  function openPanel() {
    if (!ui.panel) return;
    if (!panelOpen) {
      panelOpen = true;
      ui.panel.hidden = false;
      ui.root.classList.add('open');
      ui.bubble.setAttribute('aria-expanded', 'true');
      ui.bubbleIcon.style.display = 'none';
      ui.bubbleClose.style.display = '';
      rememberOpen(true);
    }
    if (blocked) blocked = false;
    if (!ws) reconnectNow();
    renderConn();
    renderBadge();
    scrollToBottom();
    maybeSendRead();
    setTimeout(() => { if (panelOpen) focusMain(); }, 0);
  }

  function closePanel(focusBubble) {
    if (!panelOpen) return;
    panelOpen = false;
    ui.panel.hidden = true;
    ui.root.classList.remove('open');
    ui.bubble.setAttribute('aria-expanded', 'false');
    ui.bubbleIcon.style.display = '';
    ui.bubbleClose.style.display = 'none';
    rememberOpen(false);
    renderBadge();
    if (focusBubble) ui.bubble.focus();
  }

  // ---------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------

  function start() {
    build();
    // Unsent messages from before a reload are shown at once and sent after
    // the resume (same client_msg_id: the server stores each one once).
    outbox.forEach((m) => addMessage({ from: 'visitor', text: m.text, ts: m.ts, cmid: m.id, state: 'sent', att: m.att }));
    renderStatus();
    renderBadge();

    if (opt.open || wasOpen()) openPanel();
    else if (wanted()) connect();   // resume an ongoing chat (history, unread badge)

    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        maybeSendRead();
        reconnectNow();
      }
    });
    window.addEventListener('online', () => { attempt = 0; reconnectNow(); });
    const pageChanged = () => {
      if (ready) sendFrame({ type: 'info', page_url: location.href.slice(0, 2000) });
    };
    window.addEventListener('popstate', pageChanged);
    window.addEventListener('hashchange', pageChanged);

    setInterval(() => {
      if (!ws || ws.readyState !== 1) return;
      if (Date.now() - lastRx > DEAD_AFTER) {
        // No pong for a long time: the connection is dead without telling us.
        dropSocket();
        scheduleReconnect();
      } else {
        sendFrame({ type: 'ping' });
      }
    }, PING_EVERY);
  }

  window.ChatserverWidget = Object.freeze({
    open: () => openPanel(),
    close: () => closePanel(false),
  });

  // Start in the visitor's language once its catalog is here (at once for the
  // inlined one); after 3 s without it, in the site's, switching when it comes.
  let started = 0;
  const go = () => {
    if (started++) return;
    if (document.body) start();
    else document.addEventListener('DOMContentLoaded', start);
  };
  let saved;
  try { saved = localStorage.getItem(LANG_KEY); } catch (e) { /* storage disabled */ }
  loadLang([saved, data.lang].concat(browserLangs).map(known).filter(Boolean)[0] || I18N.d).catch(() => 0).then(go);
  setTimeout(go, 3000);
})();
