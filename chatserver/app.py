"""Starlette application: routes, WebSocket endpoints and lifespan wiring."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
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
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from . import api, auth
from .attachments import FileStore
from .bus.base import Bus
from .bus.memory import MemoryBus
from .bus.redis import RedisBus
from .config import Settings
from .connection import Connection, OpenSockets
from .errors import CLOSE_RATE_LIMITED, BadFrame, ChatError, HelloRequired, RateLimited
from .hub import Hub
from .mail import MailError, SmtpListener
from .presence.base import Presence
from .presence.memory import MemoryPresence
from .presence.redis import RedisPresence
from .protocol import MSGPACK_SUBPROTOCOL, OPERATOR_FRAMES, VISITOR_FRAMES, decode, validate
from .store.base import OperatorRecord
from .store.sqlite import SqliteStore
from .store.tickets import TicketStore
from .ticketing import TicketService
from .types import OperatorId, Role
from .wire import SEND_NOWAIT

log = logging.getLogger("chatserver.app")

ROOT = Path(__file__).resolve().parent.parent
WIDGET_DIR = ROOT / "widget"
CONSOLE_DIR = ROOT / "operator_console"
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


def operator_origin_allowed(origin: str | None, host: str | None) -> bool:
    """Same origin only: the Origin's host:port must be the Host header."""
    if origin is None:
        return True
    if host is None:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = "443" if parts.scheme == "https" else "80"

    def norm(netloc: str) -> str:
        netloc = netloc.lower()
        return netloc if ":" in netloc.rsplit("]", 1)[-1] else f"{netloc}:{default}"

    return norm(parts.netloc) == norm(host)


async def _receive(receive: Receive, timeout: float | None = None) -> str | bytes | None:
    """Next data frame, or ``None`` when the client is gone."""
    if timeout is None:
        message = await receive()
    else:
        message = await asyncio.wait_for(receive(), timeout)
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
        allowed = operator_origin_allowed(origin, ws.headers.get("host"))
    if not allowed:
        log.warning("refused %s handshake from origin %r", role, origin)
        await ws.close(code=1008)  # before accept: HTTP 403
        return
    binary = MSGPACK_SUBPROTOCOL in ws.scope.get("subprotocols", [])
    await ws.accept(subprotocol=MSGPACK_SUBPROTOCOL if binary else None)
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
            "presence": hub._presence_ok,
            "bus": hub.bus.healthy,
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


async def login(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "bad_request", "message": "body must be JSON"}, 400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "bad_request", "message": "body must be an object"}, 400)
    username, password = body.get("username"), body.get("password")
    if not (isinstance(username, str) and isinstance(password, str)) or not (
        0 < len(username) <= 100 and 0 < len(password) <= 1000
    ):
        return JSONResponse({"error": "bad_request", "message": "username and password"}, 400)
    try:
        token, record = await hub.login(username, password)
    except ChatError:
        return JSONResponse(
            {"error": "invalid_credentials", "message": "wrong username or password"}, 401
        )
    return JSONResponse({"token": token, "operator": record.public()})


async def logout(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def demo_page(request: Request) -> Response:
    return FileResponse(WIDGET_DIR / "demo.html", media_type="text/html")


_WIDGET_CACHE: dict[Path, tuple[tuple[int, int], bytes, str]] = {}


def minified_widget(path: Path = WIDGET_DIR / "widget.js") -> tuple[bytes, str]:
    """The widget as served: ``path`` minified with rjsmin, and its ETag.

    Computed once and cached; computed again when the file's mtime (or size) changes.
    """
    import hashlib

    import rjsmin  # type: ignore[import-untyped]

    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _WIDGET_CACHE.get(path)
    if cached is None or cached[0] != key:
        body = str(rjsmin.jsmin(path.read_text(encoding="utf-8"))).encode()
        etag = '"w-' + hashlib.sha256(body).hexdigest()[:32] + '"'
        cached = _WIDGET_CACHE[path] = (key, body, etag)
    return cached[1], cached[2]


async def widget_js(request: Request) -> Response:
    body, etag = minified_widget()
    headers = {
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "ETag": etag,
    }
    inm = request.headers.get("if-none-match", "")
    if etag in (tag.strip() for tag in inm.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/javascript", headers=headers)


class ConsoleFiles(StaticFiles):
    """The console, with a strict content security policy."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONSOLE_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-cache"
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


# -------------------------------------------------------------- lifespan
async def ensure_demo_operator(store: SqliteStore) -> None:
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
            outcome = await tickets.ingest(raw, mail_from)
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
        store = SqliteStore(
            settings.db_path,
            synchronous=settings.store_synchronous,
            max_batch=settings.store_max_batch,
            inline=(
                settings.store_inline_commit
                if settings.store_inline_commit is not None
                # Nodes sharing the file (Redis) may wait for each other's write
                # lock: that wait belongs on the writer thread, not the event loop.
                else settings.store_synchronous.upper() in ("OFF", "NORMAL")
                and not settings.redis_url
            ),
            window=settings.store_commit_window,
            journal=settings.journal_enabled,
            journal_interval=settings.store_journal_interval,
        )
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
        if store.journal_enabled:
            hub.metrics.watch_journal(store)
        await hub.start()
        if settings.demo_operator:
            await ensure_demo_operator(store)
        files = FileStore(settings.data_dir / "attachments")
        records = TicketStore(settings.db_path, files)
        records.on_ticket_created = hub.metrics.ticket_created
        records.on_mail_result = hub.metrics.mail_result
        await records.open()
        hub.records = records
        tickets = TicketService(settings, store, records, files, hub)
        tickets.on_breach = lambda kind: hub.metrics.sla_breaches_total.labels(kind=kind).inc()
        background = [
            asyncio.create_task(tickets.mail_loop(), name="mail-out"),
            asyncio.create_task(tickets.sla_loop(), name="sla-breaches"),
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
        app.state.smtp = listener
        log.info("chatserver node %s ready (store %s)", hub.node_id, settings.db_path)
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
            await records.close()
            await store.close()
            if redis is not None:
                await redis.aclose()
            log.info("chatserver node %s stopped", hub.node_id)

    routes = [
        Route("/", demo_page),
        Route("/widget.js", widget_js),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        *api.ROUTES,
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
