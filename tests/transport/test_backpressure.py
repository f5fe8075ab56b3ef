"""Connection: direct writes, and the hand-over to the writer task on back-pressure.

While the socket takes data a frame is written in the caller's step; when a send
suspends (uvicorn waits for the transport to drain), the suspended send and every
later frame go through the connection's writer task, in order. On loopback the
kernel buffers megabytes, so the push-back is made here by a WebSocket double
whose ``send`` waits while "paused", exactly as uvicorn's ``send`` waits on its
``writable`` event.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.websockets import WebSocketState

from chatserver.protocol import Outgoing
from chatserver.transport.connection import Connection


class PausableSocket:
    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.application_state = WebSocketState.CONNECTED

    async def send(self, message: dict[str, Any]) -> None:
        """ASGI-style, as ``WebSocket.send`` and the server's own ``send`` take it."""
        await self.writable.wait()
        assert message["type"] == "websocket.send" and "bytes" not in message
        self.sent.append(message["text"])

    async def close(self, code: int = 1000) -> None:
        await self.writable.wait()
        self.closed_with = code
        self.application_state = WebSocketState.DISCONNECTED


def frame(i: int) -> Outgoing:
    return Outgoing({"type": "message", "seq": i})


async def test_frames_are_written_in_the_callers_step_while_the_socket_takes_them():
    ws = PausableSocket()
    conn = Connection(ws, "visitor", binary=False)  # type: ignore[arg-type]
    for i in range(3):
        conn.send(frame(i))
    # No await in between: nothing waited for a task.
    assert [t for t in ws.sent] == [frame(i).text for i in range(3)]
    await conn.finish()


async def test_a_paused_socket_queues_frames_in_order_and_drains_when_resumed():
    ws = PausableSocket()
    conn = Connection(ws, "visitor", binary=False)  # type: ignore[arg-type]
    stalls = Connection.stalls
    conn.send(frame(0))
    ws.writable.clear()  # the transport's buffer is full
    for i in range(1, 50):
        conn.send(frame(i))
    assert Connection.stalls == stalls + 1  # one suspended send; the rest queued behind it
    await asyncio.sleep(0.05)
    assert ws.sent == [frame(0).text]
    ws.writable.set()
    for _ in range(100):
        if len(ws.sent) == 50:
            break
        await asyncio.sleep(0.01)
    assert ws.sent == [frame(i).text for i in range(50)]
    # Drained: the next frame goes out directly again.
    conn.send(frame(50))
    assert ws.sent[-1] == frame(50).text
    await conn.finish()


async def test_a_paused_connection_past_its_outbox_limit_is_closed(monkeypatch: Any):
    monkeypatch.setattr("chatserver.transport.connection.MAX_OUTBOX", 10)
    ws = PausableSocket()
    conn = Connection(ws, "visitor", binary=False)  # type: ignore[arg-type]
    ws.writable.clear()
    for i in range(20):
        conn.send(frame(i))
    assert conn.closed and conn.close_code == 1008
    ws.writable.set()
    await conn.drain(2.0)
    assert ws.closed_with == 1008
    assert ws.sent == [frame(i).text for i in range(11)]  # the suspended one + 10 queued


async def test_close_waits_for_the_frames_before_it():
    ws = PausableSocket()
    conn = Connection(ws, "operator", binary=False)  # type: ignore[arg-type]
    ws.writable.clear()
    conn.send(frame(0))
    conn.send(frame(1))
    conn.close(4001)
    conn.send(frame(2))  # after close: dropped
    ws.writable.set()
    await conn.drain(2.0)
    assert ws.sent == [frame(0).text, frame(1).text]
    assert ws.closed_with == 4001


async def test_open_sockets_close_all_closes_each_and_waits_for_their_handlers():
    from chatserver.transport.connection import OpenSockets

    sockets = OpenSockets()
    sockets_ws = [PausableSocket() for _ in range(3)]
    conns = [Connection(ws, "visitor", binary=False) for ws in sockets_ws]  # type: ignore[arg-type]
    for conn in conns:
        sockets.add(conn)
    stuck = conns[2]

    async def handlers_end() -> None:
        await asyncio.sleep(0.05)
        for conn in conns:
            if conn is not stuck:  # this client never answers the close
                sockets.discard(conn)

    ending = asyncio.create_task(handlers_end())
    loop = asyncio.get_running_loop()
    started = loop.time()
    left = await sockets.close_all(1012, timeout=0.3)
    await ending
    assert left == 1
    assert 0.3 <= loop.time() - started < 1.0  # waited for the stuck one, then gave up
    assert [ws.closed_with for ws in sockets_ws] == [1012, 1012, 1012]
    sockets.discard(stuck)
    started = loop.time()
    assert await sockets.close_all(1012, timeout=5) == 0  # none open: no wait
    assert loop.time() - started < 0.1
    for conn in conns:
        await conn.finish()
