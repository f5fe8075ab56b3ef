"""One client connection: an outbox drained by its own writer task.

The hub never awaits a client's socket: it appends encoded frames to the
connection's outbox. A writer task per connection sends them in order, so a
slow client delays only itself; one whose outbox overflows is closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .protocol import Outgoing

log = logging.getLogger("chatserver.connection")

MAX_OUTBOX = 10_000


class Connection:
    """A visitor or operator socket as the hub sees it."""

    __slots__ = (
        "_closed",
        "_cursor",
        "_held",
        "_outbox",
        "_rate_count",
        "_rate_window",
        "_task",
        "_wake",
        "binary",
        "close_code",
        "conn_id",
        "role",
        "ws",
    )

    _ids = iter(range(1, 1 << 62))

    def __init__(self, ws: WebSocket, role: str, *, binary: bool) -> None:
        self.ws = ws
        self.role = role
        self.binary = binary
        self.conn_id = next(Connection._ids)
        self._outbox: collections.deque[Outgoing | int] = collections.deque()
        self._wake = asyncio.Event()
        self._closed = False
        self.close_code: int | None = None
        # While a session is replaying, its live messages are held back
        # (seq, frame) and released after the replay, skipping those the
        # replay already sent.
        self._held: dict[str, list[tuple[int, Outgoing]]] = {}
        # Highest seq sent per session: nothing at or below it is sent twice.
        self._cursor: dict[str, int] = {}
        self._rate_window = 0.0
        self._rate_count = 0
        self._task = asyncio.create_task(self._write_loop(), name=f"conn-{self.conn_id}")

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, out: Outgoing) -> None:
        """Queue a frame. Never blocks; drops the client if it cannot keep up."""
        if self._closed:
            return
        if len(self._outbox) >= MAX_OUTBOX:
            log.warning("connection %s cannot keep up; closing", self.conn_id)
            self.close(1008)
            return
        self._outbox.append(out)
        self._wake.set()

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
        self._outbox.append(code)
        self._wake.set()

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
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox:
                    item = self._outbox.popleft()
                    if isinstance(item, int):
                        if ws.application_state is WebSocketState.CONNECTED:
                            with contextlib.suppress(Exception):
                                await ws.close(item)
                        return
                    if self.binary:
                        await ws.send_bytes(item.binary)
                    else:
                        await ws.send_text(item.text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True
        finally:
            self._outbox.clear()

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until a queued close has been sent (or the socket died)."""
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def finish(self) -> None:
        """Stop the writer (after the socket is gone)."""
        self._closed = True
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
