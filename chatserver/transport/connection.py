"""One client connection: frames handed to the socket at once, or queued behind a writer task.

The hub never awaits a client's socket. While the socket takes data, a frame
is handed to it in the caller's step (no task switch per frame; the WebSocket
layer's ``send_nowait`` writes a turn's frames in one system call). When the
transport pushes back (its buffer is full) or a write is already under way,
frames queue in the connection's outbox and a writer task sends them in order,
so a slow client delays only itself; one whose outbox overflows is closed. The
outbox and the writer task are made on first need: most sockets never need them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any, ClassVar

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chatserver.protocol import Outgoing

log = logging.getLogger("chatserver.transport.connection")

MAX_OUTBOX = 10_000

_SEND_FAILED = (WebSocketDisconnect, RuntimeError, OSError)

# An ASGI ``send``: takes a message dict such as {"type": "websocket.send", ...}.
Send = Callable[[dict[str, Any]], Awaitable[None]]
# chatserver.transport.wire's scope extension: write a data frame now, or return False.
SendNowait = Callable[[bytes, bool], bool]


@types.coroutine
def _finish(coro: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, None, None]:
    """Await the rest of a send that ``coro.send(None)`` started and that
    suspended on the future ``waiting`` (the transport's flow control)."""
    yield waiting
    yield from coro.__await__()


class Connection:
    """A visitor or operator socket as the hub sees it."""

    __slots__ = (
        "_busy",
        "_closed",
        "_cursor",
        "_held",
        "_nowait",
        "_outbox",
        "_rate_count",
        "_rate_window",
        "_send",
        "_stalled",
        "_task",
        "_wake",
        "binary",
        "close_code",
        "conn_id",
        "role",
        "ws",
    )

    _ids: ClassVar[Iterator[int]] = iter(range(1, 1 << 62))
    # Direct writes the transport suspended (back-pressure), all connections.
    stalls: ClassVar[int] = 0

    def __init__(
        self,
        ws: WebSocket,
        role: str,
        *,
        binary: bool,
        send: Send | None = None,
        send_nowait: SendNowait | None = None,
    ) -> None:
        """``send`` is the server's ASGI send for data frames (default:
        ``ws.send``); passing the raw one skips Starlette's per-frame checks.
        ``send_nowait``, the scope extension of chatserver.transport.wire, writes frames
        while it accepts them; the rest take ``send``."""
        self.ws = ws
        self._send: Send = send if send is not None else ws.send
        self._nowait = send_nowait
        self.role = role
        self.binary = binary
        self.conn_id = next(Connection._ids)
        # The outbox, its event and the writer task are made when first needed
        # (see _writer): most sockets never queue a frame.
        self._outbox: collections.deque[Outgoing | int] | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # True while the writer task owns the socket: frames queue behind it.
        self._busy = False
        # A direct write that the transport suspended: (coroutine, future).
        self._stalled: tuple[Coroutine[Any, Any, None], Any] | None = None
        self.close_code: int | None = None
        # While a session is replaying, its live messages are held back
        # (seq, frame) and released after the replay, skipping those the
        # replay already sent.
        self._held: dict[str, list[tuple[int, Outgoing]]] = {}
        # Highest seq sent per session: nothing at or below it is sent twice.
        self._cursor: dict[str, int] = {}
        self._rate_window = 0.0
        self._rate_count = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, out: Outgoing) -> None:
        """Queue a frame. Never blocks; drops the client if it cannot keep up."""
        if self._busy or self._closed:
            self._enqueue(out)
            return
        nowait = self._nowait
        if nowait is not None and nowait(out.payload(self.binary), self.binary):
            return
        # Written in this step; handed to the writer task if the transport suspends.
        coro: Any = self._send(out.message(self.binary))
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except _SEND_FAILED:
            self._closed = True
            if self._outbox is not None:
                self._outbox.clear()
            return
        Connection.stalls += 1
        self._busy = True
        self._stalled = (coro, waiting)
        self._writer()

    def _writer(self) -> collections.deque[Outgoing | int]:
        """The outbox; starts the writer task (once) and wakes it."""
        if self._task is None:
            self._outbox = collections.deque()
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._write_loop(), name=f"conn-{self.conn_id}")
        assert self._outbox is not None and self._wake is not None
        self._wake.set()
        return self._outbox

    def _enqueue(self, out: Outgoing) -> None:
        if self._closed:
            return
        if self._outbox is not None and len(self._outbox) >= MAX_OUTBOX:
            log.warning("connection %s cannot keep up; closing", self.conn_id)
            self.close(1008)
            return
        self._writer().append(out)

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.send(Outgoing(frame))

    def deliver(self, session_id: str, seq: int, out: Outgoing) -> None:
        """Queue a stored message; held back while that session is replaying."""
        held = self._held.get(session_id)
        if held is not None:
            held.append((seq, out))
        elif seq > self._cursor.get(session_id, 0):
            self._cursor[session_id] = seq
            self.send(out)

    def send_replayed(self, session_id: str, seq: int, out: Outgoing) -> None:
        """Send a message of a replay, unless this connection already got it."""
        if seq > self._cursor.get(session_id, 0):
            self.send(out)

    def start_replay(self, session_id: str) -> None:
        self._held.setdefault(session_id, [])

    def end_replay(self, session_id: str, last_sent_seq: int) -> int:
        """Release held-back messages newer than the replay; returns the last seq sent."""
        for seq, out in self._held.pop(session_id, []):
            if seq > last_sent_seq:
                self.send(out)
                last_sent_seq = seq
        self._cursor[session_id] = max(self._cursor.get(session_id, 0), last_sent_seq)
        return last_sent_seq

    def forget(self, session_id: str) -> None:
        """Forget what was sent of ``session_id``: a later replay sends it all again."""
        self._cursor.pop(session_id, None)

    def close(self, code: int = 1000) -> None:
        """Close after the frames already queued have been sent."""
        if self._closed:
            return
        self._closed = True
        self.close_code = code
        self._busy = True
        self._writer().append(code)

    def allow(self, limit_per_10s: int) -> int:
        """Rate limiting: 0 ok, 1 over the limit, 2 far over it (close)."""
        now = time.monotonic()
        if now - self._rate_window > 10.0:
            self._rate_window = now
            self._rate_count = 0
        self._rate_count += 1
        if self._rate_count <= limit_per_10s:
            return 0
        return 2 if self._rate_count > 2 * limit_per_10s else 1

    async def _write_loop(self) -> None:
        ws = self.ws
        wake, outbox = self._wake, self._outbox
        assert wake is not None and outbox is not None
        try:
            while True:
                await wake.wait()
                wake.clear()
                if self._stalled is not None:
                    coro, waiting = self._stalled
                    self._stalled = None
                    await _finish(coro, waiting)
                while outbox:
                    item = outbox.popleft()
                    if isinstance(item, int):
                        if ws.application_state is WebSocketState.CONNECTED:
                            with contextlib.suppress(Exception):
                                await ws.close(item)
                        return
                    await self._send(item.message(self.binary))
                if not self._closed:
                    self._busy = False
        except _SEND_FAILED:
            self._closed = True
        finally:
            self._busy = True
            outbox.clear()
            if self._stalled is not None:
                self._stalled[0].close()
                self._stalled = None

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until a queued close has been sent (or the socket died)."""
        if self._task is None:
            return  # nothing was ever queued, no close either
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def finish(self) -> None:
        """Stop the writer (after the socket is gone)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class OpenSockets:
    """Every accepted WebSocket of a node until its handler ends."""

    def __init__(self) -> None:
        self._conns: set[Connection] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, conn: Connection) -> None:
        self._conns.add(conn)
        self._empty.clear()

    def discard(self, conn: Connection) -> None:
        self._conns.discard(conn)
        if not self._conns:
            self._empty.set()

    async def close_all(self, code: int, timeout: float) -> int:
        """Close every socket with ``code`` and wait (up to ``timeout``) until
        their handlers end; returns how many were still open.

        Run before the server drops its connections: a client whose close
        handshake completed sees ``code``, while a socket torn down with its
        client's frames still unread is reset (1006 on the client's side).
        """
        for conn in list(self._conns):
            conn.close(code)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), timeout)
        return len(self._conns)
