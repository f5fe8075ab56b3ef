"""chatserver.transport.wire: the short path for plain data frames, over real sockets,
and byte for byte against uvicorn's own websockets-sansio protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol

from chatserver.config import ConfigError, Settings
from chatserver.transport.wire import PAUSE_AT, SEND_NOWAIT, ChatWebSocketProtocol
from tests.conftest import free_port

MAX = 65536
REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def frame(opcode: Opcode, data: bytes, *, fin: bool = True, rsv1: bool = False,
          mask: bool = True) -> bytes:
    """A client frame as websockets writes it (masked unless told not to);
    ``rsv1`` sets the first reserved bit, which websockets would not write."""
    raw = Frame(opcode, data, fin).serialize(mask=mask)
    return bytes((raw[0] | 0x40,)) + raw[1:] if rsv1 else raw


def text(data: str | bytes, **kw: Any) -> bytes:
    return frame(Opcode.TEXT, data.encode() if isinstance(data, str) else data, **kw)


def server_frame(opcode: Opcode, data: bytes) -> bytes:
    return Frame(opcode, data).serialize(mask=False)


class EchoApp:
    """Accepts, then echoes each message back, by ``send_nowait`` where the
    server offers it; records what it received."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.hold = hold
        self.received: list[str | bytes] = []
        self.protocols: list[Any] = []
        self.disconnects: list[int] = []
        self.short_sends = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})
        nowait = scope["extensions"].get(SEND_NOWAIT)
        self.protocols.append(getattr(nowait, "__self__", None))
        if self.hold is not None:
            await self.hold.wait()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message["code"])
                return
            data = message.get("text")
            if data is None:
                data = message["bytes"]
            self.received.append(data)
            binary = isinstance(data, bytes)
            payload = data if isinstance(data, bytes) else data.encode()
            if nowait is not None and nowait(payload, binary):
                self.short_sends += 1
                continue
            message = {"type": "websocket.send", "bytes" if binary else "text": data}
            try:
                await send(message)
            except (RuntimeError, OSError):
                pass  # the connection failed meanwhile: its close follows


@contextlib.asynccontextmanager
async def serve(app: Any, *, deflate: bool = False,
                protocol: type = ChatWebSocketProtocol) -> AsyncIterator[int]:
    """A real uvicorn server in this event loop; yields its port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=protocol, ws_max_size=MAX,
                            ws_per_message_deflate=deflate, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def open_raw(port: int, extra: bytes = b"") -> tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST + extra)
    response = await reader.readuntil(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101"), response
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(first byte, payload, the whole frame) of a server frame."""
    head = await asyncio.wait_for(reader.readexactly(2), 5)
    assert not head[1] & 0x80, "server frames are not masked"
    length = head[1] & 0x7F
    ext = b""
    if length == 126:
        ext = await reader.readexactly(2)
        length = int.from_bytes(ext, "big")
    elif length == 127:
        ext = await reader.readexactly(8)
        length = int.from_bytes(ext, "big")
    payload = await reader.readexactly(length)
    return head[0], payload, head + ext + payload


async def until(check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - polling the server's own state
            await asyncio.sleep(0.005)


async def test_plain_frames_take_the_short_path_both_ways() -> None:
    app = EchoApp()
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("one") + text("zwei ✓") + frame(Opcode.BINARY, b"\x00\xff")
                     + text(""))
        echoes = [await read_frame(reader) for _ in range(4)]
        assert app.received == ["one", "zwei ✓", b"\x00\xff", ""]
        assert [raw for _, _, raw in echoes] == [
            server_frame(Opcode.TEXT, b"one"),
            server_frame(Opcode.TEXT, "zwei ✓".encode()),
            server_frame(Opcode.BINARY, b"\x00\xff"),
            server_frame(Opcode.TEXT, b""),
        ]
        assert app.protocols[0]._fast is True
        assert app.short_sends == 4
        writer.close()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
async def test_frames_arrive_whole_however_the_bytes_are_cut(size: int) -> None:
    app = EchoApp()
    payload = bytes(i % 251 for i in range(size))
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        data = frame(Opcode.BINARY, payload) + text("after")
        # Cut inside the header, the mask and the payload.
        cuts = sorted({c for c in (1, 3, 6, 11, len(data) // 2, len(data) - 9)
                       if 0 < c < len(data)})
        start = 0
        for cut in [*cuts, len(data)]:
            writer.write(data[start:cut])
            await writer.drain()
            await asyncio.sleep(0.01)
            start = cut
        first, echoed, raw = await read_frame(reader)
        assert (first, echoed) == (0x82, payload)
        assert raw == server_frame(Opcode.BINARY, payload)
        assert (await read_frame(reader))[1] == b"after"
        assert app.received == [payload, "after"]
        writer.close()


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        # The header alone: refused before the payload is read (a server that
        # closes with a megabyte unread resets the connection, close frame and all).
        (frame(Opcode.BINARY, bytes(MAX + 1))[:14], 1009),
        (text(b"\xff\xfe bad utf-8"), 1007),
        (text("not masked", mask=False), 1002),
        (text("reserved bit", rsv1=True), 1002),
        (text("part", fin=False) + text("a new message amid a fragmented one"), 1002),
    ],
    ids=["too-big", "not-utf8", "unmasked", "rsv1", "text-amid-fragments"],
)
async def test_bad_frames_are_refused_as_websockets_refuses_them(bad: bytes, code: int) -> None:
    app = EchoApp()
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("before"))
        assert (await read_frame(reader))[1] == b"before"
        writer.write(text("same write") + bad + text("after"))
        got = [await read_frame(reader)]
        if got[0][0] != 0x88:  # the echo, if it went out before the close
            got.append(await read_frame(reader))
        first, payload, _ = got[-1]
        assert first == 0x88, "a close frame"
        assert int.from_bytes(payload[:2], "big") == code
        await until(lambda: app.disconnects)
        assert app.received == ["before", "same write"], "nothing after the bad frame"
        assert app.disconnects == [code]
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b"", "the server closed the connection"
        writer.close()


@pytest.mark.parametrize("bad", [
    text("not masked", mask=False),
    bytes((0x83, 0x80 | 5)),  # opcode 3 is reserved: refused on its header alone
], ids=["unmasked", "reserved-opcode"])
async def test_a_refused_frame_is_refused_without_waiting_for_more(bad: bytes) -> None:
    app = EchoApp()
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("hi"))
        assert (await read_frame(reader))[1] == b"hi"
        writer.write(bad)  # and nothing after it
        first, payload, _ = await read_frame(reader)
        assert first == 0x88 and int.from_bytes(payload[:2], "big") == 1002
        await until(lambda: app.disconnects)
        assert app.received == ["hi"]
        writer.close()


async def test_control_frames_and_fragments_keep_their_places() -> None:
    app = EchoApp()
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(
            text("A")
            + frame(Opcode.PING, b"p1")
            + text("frag-", fin=False)
            + frame(Opcode.PING, b"p2")
            + frame(Opcode.CONT, b"ment", fin=True)
            + frame(Opcode.PONG, b"unsolicited")
            + frame(Opcode.BINARY, b"B")
        )
        got = [await read_frame(reader) for _ in range(5)]
        pongs = [payload for first, payload, _ in got if first == 0x8A]
        echoes = [payload for first, payload, _ in got if first != 0x8A]
        assert pongs == [b"p1", b"p2"]
        assert echoes == [b"A", b"frag-ment", b"B"]
        assert app.received == ["A", "frag-ment", b"B"]
        # Still on the short path after the parser took its frames.
        assert app.protocols[0]._fast is True
        writer.write(text("C"))
        assert (await read_frame(reader))[1] == b"C"
        writer.close()


async def test_the_closing_handshake() -> None:
    app = EchoApp()
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("hi"))
        assert (await read_frame(reader))[1] == b"hi"
        writer.write(frame(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye"))
        first, payload, _ = await read_frame(reader)
        assert first == 0x88 and int.from_bytes(payload[:2], "big") == 1000
        await until(lambda: app.disconnects)
        assert app.disconnects == [1000]
        assert await reader.read() == b""
        writer.close()


async def test_compressed_connections_use_websockets_for_every_frame() -> None:
    app = EchoApp()
    async with serve(app, deflate=True) as port:
        async with connect(f"ws://127.0.0.1:{port}/ws", compression="deflate") as ws:
            for message in ["grüezi " * 50, b"\x01\x02" * 300, "x"]:
                await ws.send(message)
                assert await ws.recv() == message
        async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
            await ws.send("plain")
            assert await ws.recv() == "plain"
        await until(lambda: len(app.disconnects) == 2)
        deflated, plain = app.protocols
        assert deflated._fast is False and plain._fast is True
        assert app.short_sends == 1


async def test_send_nowait_declines_what_it_must_not_write() -> None:
    hold = asyncio.Event()
    app = EchoApp(hold)
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("wake"))  # the short path starts with the first frame
        await until(lambda: app.protocols and app.protocols[0]._fast)
        proto = app.protocols[0]
        proto.writable.clear()  # as the transport does when it pushes back
        assert proto.send_nowait(b"x", False) is False
        proto.writable.set()
        assert proto.send_nowait(b"y", True) is True
        assert await read_frame(reader) == (0x82, b"y", server_frame(Opcode.BINARY, b"y"))
        writer.close()
        await until(lambda: proto.transport.is_closing())
        assert proto.send_nowait(b"z", False) is False
        hold.set()


async def test_the_handshake_is_not_kept_once_the_short_path_starts() -> None:
    app = EchoApp()
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("wake"))
        assert (await read_frame(reader))[1] == b"wake"
        proto = app.protocols[0]
        assert proto._fast is True
        # The handshake parser's frame held the request (path, headers); the frame
        # parser that replaced it holds none, and parses as before.
        assert proto.request is None and proto.response is None
        parser_frame = proto.conn.parser.gi_frame
        assert parser_frame.f_code is Protocol.parse.__code__
        assert "request" not in parser_frame.f_locals
        writer.write(frame(Opcode.PING, b"p") + text("frag-", fin=False)
                     + frame(Opcode.CONT, b"ment", fin=True))
        got = [await read_frame(reader) for _ in range(2)]
        assert [(first, payload) for first, payload, _ in got] == [
            (0x8A, b"p"), (0x81, b"frag-ment")]
        writer.close()


async def test_reading_pauses_only_while_frames_wait_for_the_app() -> None:
    hold = asyncio.Event()
    app = EchoApp(hold)
    async with serve(app) as port:
        reader, writer = await open_raw(port)
        writer.write(text("0"))
        await until(lambda: app.protocols and app.protocols[0]._fast)
        proto = app.protocols[0]
        assert not proto.read_paused, "one waiting frame does not stop reading"
        writer.write(b"".join(text(str(i)) for i in range(1, 40)))
        await until(lambda: proto.read_paused)
        assert proto.queue.qsize() >= PAUSE_AT
        hold.set()
        echoes = [(await read_frame(reader))[1] for _ in range(40)]
        assert echoes == [str(i).encode() for i in range(40)]
        assert app.received == [str(i) for i in range(40)]
        assert not proto.read_paused
        writer.close()


# --------------------------------------------------------------- differential
class _Transport:
    """Records what a protocol writes; the socket side of a parse-only run."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closing = False
        self.eof = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(
            name, default)


async def _accept_only(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.Event().wait()


async def parse_with(protocol: type, chunks: list[bytes],
                     with_request: bytes = b"") -> tuple[list[Any], bytes, bool]:
    """What ``protocol`` queues for the app and writes back for these bytes
    (``with_request``: sent in the same read as the HTTP request)."""
    config = uvicorn.Config(_accept_only, ws=protocol, ws_max_size=MAX,
                            ws_per_message_deflate=False, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    proto = protocol(config=config, server_state=state, app_state={},
                     _loop=asyncio.get_running_loop())
    transport = _Transport()
    proto.connection_made(transport)
    proto.data_received(REQUEST + with_request)
    for _ in range(10):
        await asyncio.sleep(0)
    assert proto.handshake_complete
    transport.out.clear()
    for chunk in chunks:
        proto.data_received(chunk)
    events = []
    while not proto.queue.empty():
        events.append(proto.queue.get_nowait())
    for task in state.tasks:
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    # Ended from the server's side: uvicorn closes the socket at once; chatserver's
    # layers shut the write side and drain the rest (StockWebSocketProtocol).
    return events, bytes(transport.out), transport.closing or transport.eof


def _message(raw: bytes, *expected: str | bytes) -> tuple[bytes, list[str | bytes]]:
    return raw, list(expected)


# (frames, the messages the app must get from them)
_plain = st.one_of(
    st.text(max_size=200).map(lambda t: _message(text(t), t)),
    st.binary(max_size=200).map(lambda b: _message(frame(Opcode.BINARY, b), b)),
    st.sampled_from([126, 4000, 65535, MAX]).map(
        lambda n: _message(frame(Opcode.BINARY, bytes(n)), bytes(n))),
    st.binary(max_size=125).map(lambda b: _message(frame(Opcode.PING, b))),
    st.binary(max_size=125).map(lambda b: _message(frame(Opcode.PONG, b))),
    st.tuples(st.text(max_size=40), st.text(max_size=40)).map(
        lambda p: _message(text(p[0], fin=False) + frame(Opcode.CONT, p[1].encode()),
                           p[0] + p[1])),
)
# Ends of the stream: nothing, a close, and each refused frame (frames after
# them must not reach the app).
_endings = st.sampled_from([
    b"",
    frame(Opcode.CLOSE, (1001).to_bytes(2, "big")) + text("after"),
    frame(Opcode.BINARY, bytes(MAX + 1)) + text("after"),
    text(b"\xc3\x28"),
    text("unmasked", mask=False) + text("after"),
    text("rsv", rsv1=True) + text("after"),
    text("open", fin=False) + text("closed") + text("after"),
])


def _received(events: list[Any]) -> list[Any]:
    return [e.get("text", e.get("bytes")) for e in events if e["type"] == "websocket.receive"]


def _not_received(events: list[Any]) -> list[Any]:
    """The other events, without repeats: uvicorn queues the disconnect again
    for every read that follows a frame its parser refused."""
    others: list[Any] = []
    for event in events:
        if event["type"] != "websocket.receive" and (not others or others[-1] != event):
            others.append(event)
    return others


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages=st.lists(_plain, max_size=10), ending=_endings,
       fractions=st.lists(st.floats(0, 1), max_size=8))
async def test_the_short_path_answers_as_uvicorn_does(
    messages: list[tuple[bytes, list[str | bytes]]], ending: bytes, fractions: list[float]
) -> None:
    """Any frames, cut into reads anywhere: the app gets every message before
    the first refused frame, in order, and nothing after it; the bytes written
    back (pongs, close frames), the close and the disconnect event are
    uvicorn's own. (uvicorn itself drops the messages that arrived in the same
    read as a frame the parser refuses; the short path delivers them.)"""
    stream = b"".join(raw for raw, _ in messages) + ending
    expected = [m for _, ms in messages for m in ms]
    cuts = sorted({int(f * len(stream)) for f in fractions})
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunks = [c for c in chunks if c]
    ours, out, closed = await parse_with(ChatWebSocketProtocol, chunks)
    theirs, their_out, their_closed = await parse_with(WebSocketsSansIOProtocol, chunks)
    assert _received(ours) == expected
    assert (_not_received(ours), out, closed) == (_not_received(theirs), their_out, their_closed)
    assert not _not_received(ours) or ours[-1]["type"] == "websocket.disconnect"
    got = _received(theirs)
    assert got == expected[: len(got)]
    if not _not_received(theirs):
        assert got == expected


async def test_bytes_that_came_with_the_request_keep_websockets_parsing() -> None:
    """(uvicorn's HTTP side passes the request alone; the protocol does not
    count on it.) Half a frame after the request: the parser holds it, so the
    short path must stay off for the connection."""
    first = text("split across reads")
    chunks = [first[5:], text("next")]
    ours = await parse_with(ChatWebSocketProtocol, chunks, with_request=first[:5])
    theirs = await parse_with(WebSocketsSansIOProtocol, chunks, with_request=first[:5])
    assert ours == theirs
    events = [e for e in ours[0] if e["type"] == "websocket.receive"]
    assert [e["text"] for e in events] == ["split across reads", "next"]


@pytest.mark.parametrize(("setting", "offered"), [(None, False), ("true", True)])
async def test_the_server_offers_compression_only_when_told(
    make_server: Any, setting: str | None, offered: bool
) -> None:
    """`chatserver serve`: no permessage-deflate by default, and chats still work with it."""
    server = make_server(env={"CHATSERVER_WS_COMPRESSION": setting} if setting else None)
    server.start()
    async with connect(f"{server.url}/ws/visitor", compression="deflate") as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        assert ("permessage-deflate" in extensions) is offered
        await ws.send('{"type":"hello"}')
        assert '"type":"welcome"' in str(await ws.recv())
        await ws.send('{"type":"message","client_msg_id":"c1","text":"grüezi"}')
        while '"type":"ack"' not in (frame := str(await ws.recv())):
            pass
        assert '"seq":1' in frame


def test_a_bad_compression_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="CHATSERVER_WS_COMPRESSION"):
        Settings.load(env={"CHATSERVER_WS_COMPRESSION": "maybe"})
