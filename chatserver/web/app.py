"""Starlette application: routes, WebSocket endpoints and lifespan wiring."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from chatserver.attachments.choose import blob_store
from chatserver.audit.keys import load_key
from chatserver.audit.seals import Sealer
from chatserver.bus.base import Bus
from chatserver.bus.memory import MemoryBus
from chatserver.bus.redis import RedisBus
from chatserver.chat.hub import Hub
from chatserver.config import Settings
from chatserver.errors import CLOSE_RATE_LIMITED, BadFrame, ChatError, HelloRequired, RateLimited
from chatserver.i18n.languages import LANGUAGES
from chatserver.kb.service import KnowledgeBase
from chatserver.kb.store.backends import make_kb_store
from chatserver.mail.listener import SmtpListener
from chatserver.mail.model import MailError
from chatserver.operators import auth
from chatserver.presence.base import Presence
from chatserver.presence.memory import MemoryPresence
from chatserver.presence.redis import RedisPresence
from chatserver.protocol import (
    MSGPACK_SUBPROTOCOL,
    OPERATOR_FRAMES,
    VISITOR_FRAMES,
    decode,
    validate,
)
from chatserver.store.backends import make_store
from chatserver.store.base import OperatorRecord, OperatorStore
from chatserver.store.sqlite import SqliteStore
from chatserver.supervision.service import Supervision
from chatserver.tickets.mail_in import ingest_mail
from chatserver.tickets.service import TicketService
from chatserver.tickets.store import TicketStore
from chatserver.transport.connection import Connection, OpenSockets
from chatserver.transport.wire import SEND_NOWAIT
from chatserver.types import OperatorId, Role, SessionId
from chatserver.web import api, help_pages, kb, openapi, static, team
from chatserver.web.widget_build import I18N_MARKS, widget_code

log = logging.getLogger("chatserver.web.app")

ROOT = Path(__file__).resolve().parents[2]


def _asset_dir(name: str) -> Path:
    """``widget/`` or ``operator_console/``: a wheel carries it inside this package
    (setup.py maps the checkout's top-level folder to ``chatserver/web/<name>``); a
    source checkout or an editable install has it at the top of the checkout."""
    installed = Path(__file__).resolve().parent / name
    return installed if installed.is_dir() else ROOT / name


WIDGET_DIR = _asset_dir("widget")
CONSOLE_DIR = _asset_dir("operator_console")
HELLO_TIMEOUT = 15.0
READY_TIMEOUT = 1.0  # /readyz: seconds the store and Redis have to answer

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


# ----------------------------------------------------------------- helpers
def _origin_of(ws: WebSocket) -> str | None:
    return ws.headers.get("origin")


def visitor_origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """Browsers always send Origin; programmatic clients may omit it."""
    if origin is None or "*" in allowed:
        return True
    return origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}


def operator_origin_allowed(origin: str | None, host: str | None, scheme: str) -> bool:
    """Same origin only: the Origin's scheme, host and port must be the request's.

    ``scheme`` is the request's as the server sees it (``http``/``ws`` or
    ``https``/``wss``: uvicorn takes it from ``X-Forwarded-Proto`` only when the peer is
    one of ``trusted_proxies``); ``host`` the Host header. A port left out is the
    scheme's default on both sides.
    """
    if origin is None:
        return True
    if host is None:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    secure = scheme in ("https", "wss")
    if parts.scheme != ("https" if secure else "http"):
        return False
    default = "443" if secure else "80"

    def norm(netloc: str) -> str:
        netloc = netloc.lower()
        return netloc if ":" in netloc.rsplit("]", 1)[-1] else f"{netloc}:{default}"

    return norm(parts.netloc) == norm(host)


async def _receive(receive: Receive, timeout: float | None = None) -> str | bytes | None:
    """Next data frame, or ``None`` when the client is gone."""
    if timeout is None:
        message = await receive()
    else:
        # asyncio.timeout, not wait_for: no task per connection (the hello's wait).
        async with asyncio.timeout(timeout):
            message = await receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    return text if text is not None else message.get("bytes") or b""


def _fail(conn: Connection, exc: ChatError, fallback_close: int | None = None) -> bool:
    """Report ``exc`` to the client; ``True`` if the connection must end."""
    conn.send_frame(exc.to_frame())
    code = exc.close_code or fallback_close
    if code is not None:
        conn.close(code)
        return True
    return False


# The cyclic GC's youngest-generation threshold once serving (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


# ------------------------------------------------------------ WebSockets
async def _serve(ws: WebSocket, role: str, receive: Receive, send: Send) -> None:
    """Serve one socket; ``receive`` and ``send`` are the server's own, used
    for data frames after the handshake (Starlette's ``ws`` for the rest)."""
    hub: Hub = ws.app.state.hub
    settings: Settings = ws.app.state.settings
    origin = _origin_of(ws)
    if role == "visitor":
        allowed = visitor_origin_allowed(origin, settings.visitor_allowed_origins)
    else:
        allowed = operator_origin_allowed(
            origin, ws.headers.get("host"), ws.scope.get("scheme", "ws")
        )
    if not allowed:
        log.warning("refused %s handshake from origin %r", role, origin)
        await ws.close(code=1008)  # before accept: HTTP 403
        return
    binary = MSGPACK_SUBPROTOCOL in ws.scope.get("subprotocols", [])
    await ws.accept(subprotocol=MSGPACK_SUBPROTOCOL if binary else None)
    # Nothing reads the handshake's headers after this (origin, host and subprotocol
    # are read above); kept, they would stay for the socket's life (idle memory).
    ws.scope["headers"] = []
    vars(ws).pop("_headers", None)
    extensions = ws.scope.get("extensions") or {}
    conn = Connection(ws, role, binary=binary, send=send,
                      send_nowait=extensions.get(SEND_NOWAIT))
    sockets: OpenSockets = ws.app.state.sockets
    sockets.add(conn)
    schemas = VISITOR_FRAMES if role == "visitor" else OPERATOR_FRAMES
    max_text = settings.max_message_chars
    # Operators juggle several chats at once: a wider frame budget.
    rate_limit = settings.rate_limit_per_10s * (1 if role == "visitor" else 5)
    holder: Any = None
    connections = hub.metrics.connections.labels(role=role)
    messages_in = hub.metrics.messages_in_total.labels(role=role)
    connections.inc()
    try:
        try:
            data = await _receive(receive, HELLO_TIMEOUT)
        except TimeoutError:
            _fail(conn, HelloRequired("no hello within 15 s"))
            return
        if data is None:
            return
        try:
            frame = decode(data)
            if frame["type"] != "hello":
                raise HelloRequired("the first frame must be hello")
            frame = validate(frame, schemas, max_text)
            if role == "visitor":
                holder = await hub.visitor_hello(conn, frame)
            else:
                holder = await hub.operator_hello(conn, frame)
        except ChatError as exc:
            _fail(conn, exc, fallback_close=HelloRequired.close_code)
            return
        del data, frame  # not kept while the socket idles
        while not conn.closed:
            # _receive inlined: one coroutine less per frame.
            message = await receive()
            data = message.get("text")
            if data is None:
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes") or b""
            verdict = conn.allow(rate_limit)
            if verdict:
                # Name the refused message, so its sender knows to resend it later.
                ref = None
                with contextlib.suppress(ChatError):
                    cmid = decode(data).get("client_msg_id")
                    ref = cmid if isinstance(cmid, str) else None
                refusal = RateLimited("too many frames; slow down", ref=ref)
                if _fail(conn, refusal, CLOSE_RATE_LIMITED if verdict == 2 else None):
                    break
                continue
            try:
                frame = validate(decode(data), schemas, max_text)
                if frame["type"] == "hello":
                    raise BadFrame("hello was already received")
                if frame["type"] == "message":
                    messages_in.value += 1  # .inc(), inlined
                if role == "visitor":
                    await hub.visitor_frame(conn, holder, frame)
                else:
                    await hub.operator_frame(conn, holder, frame)
            except ChatError as exc:
                if _fail(conn, exc):
                    break
    except Exception:
        log.exception("%s connection failed", role)
        conn.close(1011)
    finally:
        connections.dec()
        if holder is not None:
            with contextlib.suppress(Exception):
                if role == "visitor":
                    await hub.visitor_gone(conn, holder)
                else:
                    await hub.operator_gone(conn, holder)
        if conn.closed and conn.close_code is not None:
            await conn.drain(2.0)  # let our close frame (and what precedes it) go out
        sockets.discard(conn)
        await conn.finish()


class _SocketApp:
    """The ASGI app of a WebSocket route (Starlette passes a non-function
    endpoint the raw ``receive`` and ``send``): data frames then skip the
    state checks and wrappers of :class:`WebSocket`, twice per message."""

    def __init__(self, role: str) -> None:
        self.role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _serve(WebSocket(scope, receive=receive, send=send), self.role, receive, send)


visitor_endpoint = _SocketApp("visitor")
operator_endpoint = _SocketApp("operator")
_SOCKET_APPS: dict[str, _SocketApp] = {
    "/ws/visitor": visitor_endpoint,
    "/ws/operator": operator_endpoint,
}


class ChatApp(Starlette):
    """The Starlette app, with its two chat sockets served ahead of the
    middleware stack: they need none of it (CORS and the error pages are
    HTTP's; :func:`_serve` checks the origin and handles its own errors), and
    every frame in and out would pass through each layer's wrappers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            endpoint = _SOCKET_APPS.get(path)
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


# ------------------------------------------------------------------- HTTP
async def healthz(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    store_ok = hub.store.healthy
    status = "ok" if store_ok and not hub.degraded else "degraded"
    return JSONResponse(
        {
            "status": status,
            "node": hub.node_id,
            "store": store_ok,
            "presence": hub.presence_ok,
            "bus": hub.bus.healthy,
            "ws_protocol": request.app.state.ws_protocol,
            "stats": hub.stats(),
        },
        status_code=200 if store_ok else 503,
    )


async def _probe(coro: Awaitable[Any]) -> str:
    """``ok``, or what went wrong, within :data:`READY_TIMEOUT`."""
    try:
        await asyncio.wait_for(coro, READY_TIMEOUT)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


async def readyz(request: Request) -> Response:
    """Readiness: the store answers a read and Redis (if configured) a PING."""
    hub: Hub = request.app.state.hub
    redis: Redis | None = request.app.state.redis
    checks: dict[str, str] = {}
    if not hub.store.healthy:
        checks["store"] = "the store writer stopped"
        probes = [] if redis is None else [_probe(redis.ping())]
        found = await asyncio.gather(*probes)
    else:
        probes = [_probe(hub.store.ping())]
        if redis is not None:
            probes.append(_probe(redis.ping()))
        found = await asyncio.gather(*probes)
        checks["store"] = found.pop(0)
    if redis is not None:
        checks["redis"] = found[-1]
    failed = sorted(name for name, result in checks.items() if result != "ok")
    return JSONResponse(
        {
            "status": "unready" if failed else "ready",
            "node": hub.node_id,
            "checks": checks,
            "failed": failed,
        },
        status_code=503 if failed else 200,
    )


async def metrics(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    body, content_type = hub.metrics.render()
    return Response(body, headers={"Content-Type": content_type})


async def openapi_json(request: Request) -> Response:
    """``GET /api/openapi.json``: the OpenAPI 3.1 description (chatserver.web.openapi)."""
    return JSONResponse(openapi.spec())


async def demo_page(request: Request) -> Response:
    return FileResponse(WIDGET_DIR / "demo.html", media_type="text/html")


_WIDGET_CACHE: dict[tuple[Path, str], tuple[tuple[object, ...], bytes, str]] = {}
_CATALOG_CACHE: dict[Path, tuple[tuple[tuple[int, int], ...], dict[str, tuple[bytes, str]]]] = {}
# What widget.js has where the served copy carries its language data (the terser
# build has it in double quotes: widget_build.I18N_MARKS).
I18N_MARK = I18N_MARKS[0]


def widget_catalogs(folder: Path = WIDGET_DIR / "i18n") -> dict[str, tuple[bytes, str]]:
    """Each language's widget catalog (``<folder>/<lang>.json``) as served: compact
    JSON, and its version (a hash of it, in the URL the widget fetches it from).

    Cached; read again when a file's mtime (or size) changes.
    """
    import hashlib

    paths = [folder / f"{lang}.json" for lang in LANGUAGES]
    key = tuple((st.st_mtime_ns, st.st_size) for st in (p.stat() for p in paths))
    cached = _CATALOG_CACHE.get(folder)
    if cached is None or cached[0] != key:
        catalogs = {}
        for lang, path in zip(LANGUAGES, paths, strict=True):
            text = json.loads(path.read_text(encoding="utf-8"))
            body = json.dumps(text, ensure_ascii=False, separators=(",", ":")).encode()
            catalogs[lang] = (body, hashlib.sha256(body).hexdigest()[:12])
        cached = _CATALOG_CACHE[folder] = (key, catalogs)
    return cached[1]


def minified_widget(
    path: Path = WIDGET_DIR / "widget.js", language: str = LANGUAGES[0]
) -> tuple[bytes, str]:
    """The widget as served: ``path`` minified (:func:`widget_code`: the checked-in
    terser build ``dist/widget.min.js`` while it is current, else rjsmin), and its ETag.

    Where the source has :data:`I18N_MARK`, the served copy has ``language`` (the
    site's default) inlined: ``{"d": language, "l": {lang: [name, version]},
    "c": catalog}`` from the catalogs beside it (:func:`widget_catalogs`), so one
    language needs no second request and there is no second copy of a catalog.

    Computed once and cached; computed again when the file's, its build's or a
    catalog's mtime (or size) changes.
    """
    import hashlib

    code, _ = widget_code(path)
    folder = path.parent / "i18n"
    catalogs = widget_catalogs(folder) if folder.is_dir() else {}
    key = (code, *(version for _, version in catalogs.values()))
    cached = _WIDGET_CACHE.get((path, language))
    if cached is None or cached[0] != key:
        body = code
        mark = next((m for m in I18N_MARKS if m in body), None)
        if catalogs and mark is not None:
            names = {lang: json.loads(text)["lang.name"] for lang, (text, _) in catalogs.items()}
            data = {
                "d": language,
                "l": {lang: [names[lang], version] for lang, (_, version) in catalogs.items()},
                "c": json.loads(catalogs[language][0]),
            }
            inline = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
            body = body.replace(mark, inline, 1)
        etag = '"w-' + hashlib.sha256(body).hexdigest()[:32] + '"'
        cached = _WIDGET_CACHE[(path, language)] = (key, body, etag)
    return cached[1], cached[2]


async def widget_catalog(request: Request) -> Response:
    """``GET /widget/i18n/<lang>.json``: a widget catalog. The widget asks with
    ``?v=<version>`` (from widget.js), a URL whose content never changes: cached
    for a year. Other requests: five minutes, like widget.js."""
    catalogs = widget_catalogs()
    name = request.path_params["name"]
    lang = name.removesuffix(".json")
    if lang == name or lang not in catalogs:
        return JSONResponse({"error": "not_found", "message": "no such catalog"}, 404)
    body, version = catalogs[lang]
    encoded = static.encode(body, "application/json", f'"c-{version}"')
    fixed = request.query_params.get("v") == version
    cache = static.IMMUTABLE if fixed else static.REVALIDATE
    return static.respond(request.headers, encoded, cache, method=request.method)


async def widget_js(request: Request) -> Response:
    """``GET /widget.js``: compressed (chatserver.web.static); ``?v=<version>`` (the
    hash the ETag starts with, 12 hex digits) is cached for a year, the plain URL
    revalidated with its ETag each time."""
    body, etag = minified_widget(language=request.app.state.settings.default_language)
    encoded = static.encode(body, "application/javascript", etag)
    version = request.query_params.get("v")
    cache = static.IMMUTABLE if version == encoded.version else static.REVALIDATE
    return static.respond(request.headers, encoded, cache, method=request.method)


async def favicon(request: Request) -> Response:
    """``GET /favicon.ico`` (and ``/favicon.svg``): the SVG icon ``widget/favicon.svg``."""
    encoded = static.file_asset(str(WIDGET_DIR / "favicon.svg"))
    cache = "public, max-age=86400"
    return static.respond(request.headers, encoded, cache, method=request.method)


class ConsoleFiles(static.CompressedFiles):
    """The console, compressed and cached (chatserver.web.static), with a strict
    content security policy."""

    extra_headers = {
        "Content-Security-Policy": CONSOLE_CSP,
        "Referrer-Policy": "no-referrer",
    }

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONSOLE_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


class NodeServer(uvicorn.Server):
    """uvicorn's server, except that on SIGTERM/SIGINT the app first closes its
    WebSockets with 1012 (see :meth:`OpenSockets.close_all`); uvicorn then
    drops what is left."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        left = await app.state.sockets.close_all(1012, 3.0) if isinstance(app, Starlette) else 0
        if left:
            log.warning("%d WebSocket(s) did not answer the close in time", left)
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """As uvicorn's, but a stop asked for by SIGTERM (how service managers stop a
        server) exits 0 when the shutdown was clean: uvicorn raises every caught
        signal again after its shutdown, so the process ended "killed by SIGTERM"."""
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
            captured.remove(sig)


# -------------------------------------------------------------- lifespan
async def ensure_demo_operator(store: OperatorStore) -> None:
    """On first start (no operators at all), create ``demo`` and log its password."""
    if await store.operators():
        return
    password = secrets.token_urlsafe(9)
    record = OperatorRecord(
        operator_id=OperatorId("o_" + secrets.token_hex(6)),
        username="demo",
        name="Demo Operator",
        password_hash=await asyncio.to_thread(auth.hash_password, password),
        role=Role.ADMIN.value,
        departments=(),
        capacity=5,
        created_at=time.time(),
    )
    try:
        await store.add_operator(record)
    except ValueError:
        return
    log.warning(
        "created demo operator — log in at /console/ as username 'demo' password %r", password
    )


def _ingest_handler(tickets: TicketService) -> Any:
    async def handle(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        try:
            outcome = await ingest_mail(tickets, raw, mail_from)
        except MailError:
            raise
        except ChatError as exc:
            raise MailError(exc.message) from exc
        log.info("inbound mail from %s: %s", mail_from, outcome)

    return handle


def create_app(settings: Settings | None = None) -> ChatApp:
    settings = settings or Settings.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = settings.database  # SQLite (default) or PostgreSQL: --database-url
        store = make_store(settings)
        audit_key = load_key(settings)  # a bad key file stops the start, before anything
        await store.open()
        redis: Redis | None = None
        presence: Presence
        bus: Bus
        if settings.redis_url:
            redis = Redis.from_pool(
                BlockingConnectionPool.from_url(
                    settings.redis_url,
                    max_connections=32,
                    timeout=5,
                    socket_connect_timeout=2,
                    socket_timeout=5,
                )
            )
            node_id = settings.node_id or f"{socket.gethostname()}-{os.getpid()}"
            settings_node = settings.replace(node_id=node_id)
            presence = RedisPresence(
                redis, prefix=settings.redis_prefix, node_id=node_id, ttl=settings.presence_ttl
            )
            redis_bus = RedisBus(redis, prefix=settings.redis_prefix, node_id=node_id)
            bus = redis_bus
            hub = Hub(settings_node, store, presence, bus, shared=True)
            redis_bus.on_lag = hub.metrics.bus_lag_seconds.observe
        else:
            hub = Hub(settings, store, MemoryPresence(), MemoryBus())
        store.on_batch = hub.metrics.observe_batch
        if isinstance(store, SqliteStore) and store.journal_enabled:
            hub.metrics.watch_journal(store)
        await hub.start()
        if settings.demo_operator:
            await ensure_demo_operator(store)
        # Attachment bytes: in PostgreSQL with that store, else a directory (docs/scaling.md).
        files = blob_store(settings, database)
        await files.open()
        records = TicketStore(database, files)
        records.on_ticket_created = hub.metrics.ticket_created
        records.on_mail_result = hub.metrics.mail_result
        await records.open()
        hub.records = records
        # Seals closed chats and signs ticket heads (docs/operations.md), off the hot path.
        sealer = Sealer(database, audit_key, store)
        await sealer.open()
        hub.on_chat_closed = sealer.chat_closed
        tickets = TicketService(settings, store, records, files, hub)
        # The knowledge base (chatserver.kb): its own connections, off the chat path; on
        # the store's database (SQLite file or PostgreSQL: one knowledge base for every node).
        kb_store = make_kb_store(settings)
        await kb_store.open()

        async def session_exists(session_id: str) -> bool:
            return await store.session(SessionId(session_id)) is not None

        knowledge = KnowledgeBase(kb_store, sessions=session_exists)
        if isinstance(hub.supervision, Supervision):
            hub.supervision.kb_counts = knowledge.board_counts
        breaches = hub.metrics.sla_breaches_total
        tickets.clocks.on_breach = lambda kind: breaches.labels(kind=kind).inc()
        background = [
            asyncio.create_task(tickets.outbox.run(), name="mail-out"),
            asyncio.create_task(tickets.clocks.loop(), name="sla-breaches"),
            asyncio.create_task(sealer.run(), name="audit-seals"),
            asyncio.create_task(knowledge.run(), name="kb-counters"),
        ]
        listener: SmtpListener | None = None
        if settings.smtp_listen_port is not None:
            listener = SmtpListener(
                _ingest_handler(tickets),
                host=settings.smtp_listen_host,
                port=settings.smtp_listen_port,
                max_bytes=settings.max_mail_bytes,
            )
            await listener.start()
            log.info("SMTP listener on %s:%d", settings.smtp_listen_host, listener.port)
        app.state.hub = hub
        app.state.redis = redis
        app.state.tickets = tickets
        app.state.kb = knowledge
        app.state.smtp = listener
        log.info(
            "chatserver node %s ready (store %s, WebSocket layer %s)",
            hub.node_id,
            database.describe(),
            app.state.ws_protocol,
        )
        # Everything made so far lives as long as the process: keep it out of the
        # cyclic GC's full collections, whose pauses grow with the heap (tail latency).
        gc.collect()
        gc.freeze()
        # Nearly every object a message makes is freed by its reference count, so a
        # young-generation collection mostly finds nothing to do: run one per 10 000
        # allocations instead of 700 (fewer, not longer, collections; fewer full ones).
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.stop()
            await sealer.close()
            await kb_store.close()
            await records.close()
            await files.close()
            await store.close()
            if redis is not None:
                await redis.aclose()
            log.info("chatserver node %s stopped", hub.node_id)

    routes = [
        Route("/", demo_page),
        Route("/widget.js", widget_js),
        Route("/widget/i18n/{name}", widget_catalog),
        Route("/favicon.ico", favicon),
        Route("/favicon.svg", favicon),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *team.ROUTES,  # /api/login, /api/logout, the admins' /api/operators/...
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
        *api.ROUTES,
        *kb.ROUTES,  # /api/kb/... (chatserver.web.kb)
        *help_pages.ROUTES,  # /help/... (chatserver.web.help_pages)
        WebSocketRoute("/ws/visitor", visitor_endpoint),
        WebSocketRoute("/ws/operator", operator_endpoint),
        Mount("/console", ConsoleFiles(directory=CONSOLE_DIR, html=True, check_dir=False)),
    ]
    middleware = [
        # The widget calls the visitor API from the host site's origin; tokens
        # travel in the Authorization header, never in cookies.
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.visitor_allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )
    ]
    app = ChatApp(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.settings = settings
    # Every accepted WebSocket until its handler ends (NodeServer closes them).
    app.state.sockets = OpenSockets()
    # The WebSocket layer serving the app, "chat" or "stock" (uvicorn's), as
    # `chatserver serve` chose it (chatserver.transport.wire.choose_ws_protocol);
    # None when the app is served some other way.
    app.state.ws_protocol = None
    return app


# Attributes every LogRecord has; anything else came in through ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``exc``, and
    every ``extra=`` field of the call (``session_id``, ``operator_id``, …)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
