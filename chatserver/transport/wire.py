"""uvicorn's websockets-sansio protocol with a short path for plain data frames.

Every chat message costs a frame received and two sent (the ack, the
delivery), so the WebSocket layer's own cost per frame is most of the
server's. :class:`ChatWebSocketProtocol` is uvicorn's ``websockets-sansio``
protocol (``uvicorn --ws websockets-sansio``) with three changes:

* **Receiving.** Once the handshake is done, a complete, unfragmented, masked
  text or binary frame within the size limit is unmasked (websockets' C
  ``apply_mask``) and queued for the app directly. Any other frame (ping,
  pong, close, fragments, a frame over ``ws_max_size``, a text frame that is
  not UTF-8) goes to websockets' own parser, complete and in order, so
  websockets decides and answers exactly as without this class (1009, 1007,
  1002, pongs, the closing handshake). Connections with an extension
  (permessage-deflate) use the parser for everything.
* **Back-pressure without two system calls per frame.** uvicorn stops reading
  the socket after every frame and resumes once the app took it (two
  ``epoll_ctl`` calls per frame); here reading stops only while
  :data:`PAUSE_AT` frames wait for the app.
* **Sending.** The ASGI scope's extension ``chatserver.send_nowait`` is a
  plain function ``(payload: bytes, binary: bool) -> bool`` that queues a
  data frame for the transport and returns True, or returns False (nothing
  queued) when the frame must take the ASGI ``send`` path instead: the
  transport pushes back, the connection is closing, or an extension is in
  use. The frames a connection gets in one turn of the event loop go out in
  one ``transport.write`` at the start of the next (one system call, not one
  per frame: under load a visitor gets several acks at once, an operator
  several messages); anything else written to the socket (the ASGI ``send``,
  a close, the answer to a client's close) first writes what is queued, so
  frames keep their order.

Frames written and read are byte for byte the ones websockets would write and
accept; ``tests/transport/test_wire.py`` checks both paths against raw sockets.

The class leans on uvicorn's and websockets' internals (the names in
:data:`BASE_METHODS`, :data:`BASE_ATTRIBUTES`, :data:`PARSER_ATTRIBUTES`).
``pyproject.toml`` pins both to versions the suite has passed; where they are
installed anyway in versions without those names, :func:`wire_supported` says
what is missing and :func:`choose_ws_protocol` runs uvicorn's stock protocol
instead, after one warning. This module imports in any case: the app reads
:data:`SEND_NOWAIT` from it, and treats a scope without it as the stock
protocol's (every frame through the ASGI ``send``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, cast

import uvicorn
import websockets

# Guarded: without these the module still imports, and wire_supported() names
# what failed (the class below is then defined on a stand-in and never used).
_import_error: str | None = None
try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.protocol import Protocol, State

    try:
        from websockets.speedups import apply_mask
    except ImportError:  # pragma: no cover - websockets built without its C extension
        from websockets.utils import apply_mask
    _OPEN = State.OPEN
    _frame_parser = Protocol.parse
except (ImportError, AttributeError) as exc:  # pragma: no cover - see test_wire_fallback.py
    _import_error = f"{type(exc).__name__}: {exc}"
    WebSocketsSansIOProtocol = asyncio.Protocol  # type: ignore[misc,assignment]

log = logging.getLogger("chatserver.transport.wire")

SEND_NOWAIT = "chatserver.send_nowait"
"""The ASGI scope extension that holds :meth:`ChatWebSocketProtocol.send_nowait`."""

PAUSE_AT = 16
"""Frames waiting for the app at which the socket stops being read."""

STOCK_WS_PROTOCOL = "websockets-sansio"
"""uvicorn's name of the protocol :class:`ChatWebSocketProtocol` extends: the fallback."""

BASE_METHODS = (
    "data_received",
    "handle_close",
    "handle_connect",
    "handle_events",
    "handle_parser_exception",
    "receive",
    "send",
    "shutdown",
)
"""Methods of uvicorn's ``WebSocketsSansIOProtocol`` the class overrides or calls
(and ``__init__``, which the probe calls with uvicorn's keywords plus ``_loop``)."""

BASE_ATTRIBUTES = (
    "close_sent",
    "config",
    "conn",
    "handshake_complete",
    "handshake_initiated",
    "logger",
    "loop",
    "queue",
    "read_paused",
    "transport",
    "writable",
)
"""Attributes a ``WebSocketsSansIOProtocol`` has once made, which the class reads or sets
(besides ``scope``, made by the handshake, and ``config.ws_max_size``)."""

PARSER_ATTRIBUTES = (
    "current_size",
    "extensions",
    "parser",
    "parser_exc",
    "reader",
    "receive_data",
    "send_close",
    "state",
)
"""What the class uses of websockets' ``ServerProtocol`` (uvicorn's ``conn``), besides
``reader.buffer``: ``current_size`` is None between messages (websockets >= 16); ``parser``
is the generator ``receive_data`` advances, replaced after the handshake by a new one of
``websockets.protocol.Protocol.parse`` (the frame parser ``ServerProtocol.parse`` ends in)."""

_TEXT_FIN = 0x81
_BINARY_FIN = 0x82
_MASKED = 0x80
# Continuation, text, binary, close, ping, pong.
_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))


DRAIN_TIMEOUT = 2.0
"""Seconds a failed connection (a message over ``ws_max_size``, ...) is read and discarded
after its close frame, waiting for the client to end the closing handshake."""

DRAIN_NAMES = ("handle_parser_exception", "data_received")
"""Methods of uvicorn's protocol :class:`StockWebSocketProtocol` overrides (it also sets
``close_sent``, ``close_timer`` and ``read_paused``, and reads ``conn.close_sent``)."""


class StockWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's stock ``websockets-sansio`` protocol, except that a connection websockets
    fails (a message over ``ws_max_size``, fragmented or not: 1009; a protocol error:
    1002) is closed so that the client receives the close frame.

    uvicorn writes the close frame and closes the socket at once; the rest of a large
    message is still arriving, and a socket closed with unread data sends a TCP reset,
    which makes the client lose the close frame (it sees 1006). Here, after the close
    frame, the write side is shut (FIN, as websockets asks of a failing server) and
    whatever arrives is read and discarded until the client closes its side, or for at
    most :data:`DRAIN_TIMEOUT` seconds.
    """

    _draining = False

    def handle_parser_exception(self) -> None:
        if self._draining:
            return
        self._draining = True
        close = self.conn.close_sent
        code = close.code if close is not None else 1002
        reason = close.reason if close is not None else ""
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        output = self.conn.data_to_send()
        self.transport.write(b"".join(output))
        self.close_sent = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # As a close timer, so that uvicorn does not close the socket when the app ends;
        # cancelled in connection_lost once the client has closed its side.
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = asyncio.get_running_loop().call_later(
            DRAIN_TIMEOUT, self.transport.close
        )

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return  # the rest of what the client sent before it read our close frame
        super().data_received(data)


class Inbox:
    """The frames waiting for the app: the part of ``asyncio.Queue`` uvicorn's protocol
    uses (``put_nowait``, ``get``, ``get_nowait``, ``qsize``, ``empty``), for one
    consumer, in two slots instead of four deques (about 2.5 KiB less per idle socket).
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Any] | None = None  # made on the first frame
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        items = self._items
        if items is None:
            items = self._items = collections.deque()
        items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self.get_nowait()

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items


class Flag:
    """The part of ``asyncio.Event`` uvicorn's protocol uses for ``writable`` (``set``,
    ``clear``, ``is_set``, ``wait``), without a deque per socket until someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter
        return True


class ChatWebSocketProtocol(StockWebSocketProtocol):
    """``uvicorn.Config(ws=ChatWebSocketProtocol)``: see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Lighter stand-ins for uvicorn's asyncio.Queue and asyncio.Event (idle memory).
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        # None: undecided (handshake not done); True: the short path is on.
        self._fast: bool | None = None
        # After the HTTP request, the parser had no bytes of a frame.
        self._clean_start = False
        # Bytes of an incomplete frame, waiting for the rest.
        self._partial = b""
        # Frames queued by send_nowait for _flush_out (None: none, nothing scheduled).
        self._out: list[bytes] | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            scope = cast(dict[str, Any], self.scope)
            extensions = scope.get("extensions")
            if extensions is None:  # optional in ASGI; uvicorn has always set it
                extensions = scope["extensions"] = {}
            extensions[SEND_NOWAIT] = self.send_nowait

    def send_nowait(self, payload: bytes, binary: bool) -> bool:
        """Write one data frame now; False (nothing written) when the caller
        must use the ASGI ``send`` instead."""
        if not self._fast or self.close_sent or not self.writable.is_set():
            return False
        if self.conn.state is not _OPEN or self.transport.is_closing():
            return False
        n = len(payload)
        first = _BINARY_FIN if binary else _TEXT_FIN
        if n < 126:
            header = bytes((first, n))
        elif n < 65536:
            header = bytes((first, 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((first, 127)) + n.to_bytes(8, "big")
        out = self._out
        if out is None:
            self._out = [header + payload]
            self.loop.call_soon(self._flush_out)
        else:
            out.append(header + payload)
        return True

    def _flush_out(self) -> None:
        """Write the frames :meth:`send_nowait` queued, in one ``transport.write``;
        dropped when the connection closed meanwhile (as websockets would)."""
        out = self._out
        if out is None:
            return
        self._out = None
        if self.close_sent or self.conn.state is not _OPEN or self.transport.is_closing():
            return
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def send(self, message: Any) -> None:
        if self._out is not None:
            self._flush_out()
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # Accepted (or refused): the handshake's request and response, with
            # their headers, are not read again (the scope has its own copy).
            self.request = self.response = None  # type: ignore[assignment]

    def handle_close(self, event: Any) -> None:
        if self._out is not None:
            self._flush_out()  # before the answer to the client's close
        super().handle_close(event)

    def shutdown(self) -> None:
        if self._out is not None:
            self._flush_out()
        super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        fast = self._fast
        if not fast:
            if fast is None and self.handshake_complete:
                fast = self._fast = self._may_go_fast()
                if fast:
                    self._restart_parser()
            if not fast:
                initiated = self.handshake_initiated
                super().data_received(data)
                if fast is None:
                    # The short path needs websockets' parser at a frame
                    # boundary: nothing may follow the HTTP request before our
                    # 101 (a client must wait for it anyway).
                    self._clean_start = (
                        not initiated
                        and self.handshake_initiated
                        and data.endswith(b"\r\n\r\n")
                        and not self.conn.reader.buffer
                    )
                return
        if self._partial:
            data = self._partial + data
            self._partial = b""
        end = len(data)
        pos = 0
        queue = self.queue
        max_size = self.config.ws_max_size
        while end - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - head < 2:
                    break
                length = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif length == 127:
                if end - head < 8:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if length > max_size or b0 & 0x70 or b0 & 0x0F not in _OPCODES or not b1 & _MASKED:
                # Too big, reserved bits, an unknown opcode, not masked: let
                # websockets refuse it now (1009, 1002); it gets the rest.
                self._to_parser(data[pos:], final=True)
                return
            stop = head + 4 + length
            if stop > end:
                break
            if (
                (b0 == _TEXT_FIN or b0 == _BINARY_FIN)
                and not self.close_sent
                and self.conn.state is _OPEN
                and self.conn.current_size is None  # no fragmented message open
            ):
                payload = apply_mask(data[head + 4 : stop], data[head : head + 4])
                if b0 == _TEXT_FIN:
                    try:
                        text = payload.decode()
                    except UnicodeDecodeError:
                        self._refuse_text()
                        return
                    queue.put_nowait({"type": "websocket.receive", "text": text})
                else:
                    queue.put_nowait({"type": "websocket.receive", "bytes": payload})
            elif not self._to_parser(data[pos:stop], final=False):
                return
            pos = stop
        if pos < end:
            self._partial = data[pos:]
        if not self.read_paused and queue.qsize() >= PAUSE_AT:
            self.read_paused = True
            self.transport.pause_reading()

    def _may_go_fast(self) -> bool:
        return (
            self._clean_start
            and not self.conn.extensions
            and self.conn.state is _OPEN
            and not self.conn.reader.buffer
        )

    def _restart_parser(self) -> None:
        """Free what the handshake left in websockets' parser (idle memory).

        The parser's (empty) buffer still holds the handshake's allocation, and its
        generator (``ServerProtocol.parse``) keeps the parsed HTTP request, path and
        headers, in its frame for the connection's life. It has parsed no frame yet
        (:meth:`_may_go_fast`: nothing followed the request) and waits for the first
        byte, so a new frame parser (``Protocol.parse``, where the old one continues)
        started now is in the same state.
        """
        conn = self.conn
        conn.reader.buffer = bytearray()
        conn.parser = _frame_parser(conn)
        next(conn.parser)

    def _refuse_text(self) -> None:
        """Close with 1007, as uvicorn does for a text message that is not UTF-8."""
        self._fast = False
        self.logger.info("Invalid UTF-8 sequence received from client.")
        self.conn.send_close(1007)
        self.handle_parser_exception()

    def _to_parser(self, chunk: bytes, *, final: bool) -> bool:
        """Hand complete frames (or, ``final``, all the rest of the stream) to
        websockets; False when the connection is failing."""
        if final:
            self._fast = False
        self.conn.receive_data(chunk)
        if self.conn.parser_exc is not None:
            self._fast = False
            self.handle_parser_exception()
            return False
        self.handle_events()
        return True

    async def receive(self) -> Any:
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() < PAUSE_AT // 2:
            self.read_paused = False
            self.transport.resume_reading()
        return message


# ------------------------------------------------------------ the fallback
async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    """The app of the probe's throwaway config; never called."""


# asyncio.Protocol's no-op methods (data_received...) do not count as uvicorn's.
_ASYNCIO_BASES = frozenset(asyncio.Protocol.__mro__)


def _defines(protocol: type[asyncio.Protocol], method: str) -> bool:
    return any(
        callable(vars(cls).get(method))
        for cls in protocol.__mro__
        if cls not in _ASYNCIO_BASES
    )


def _missing(protocol: type[asyncio.Protocol]) -> list[str]:
    """The names of BASE_*, PARSER_ATTRIBUTES and ``config.ws_max_size`` that
    ``protocol`` (uvicorn's ``WebSocketsSansIOProtocol``) lacks, found on the
    class and on one instance made as uvicorn makes it, with a throwaway config
    and an event loop that never runs (no socket, no task)."""
    name = protocol.__name__
    missing = [f"{name}.{attr}" for attr in BASE_METHODS if not _defines(protocol, attr)]
    if missing:
        return missing
    from uvicorn.server import ServerState

    config = uvicorn.Config(_no_app, ws=protocol, lifespan="off", log_config=None)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        make: Any = protocol
        made = make(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    finally:
        loop.close()
    missing = [f"{name}().{attr}" for attr in BASE_ATTRIBUTES if not hasattr(made, attr)]
    if not hasattr(getattr(made, "config", None), "ws_max_size"):
        missing.append("uvicorn.Config.ws_max_size")
    conn: Any = getattr(made, "conn", None)
    parser = f"websockets {type(conn).__name__}"
    missing += [f"{parser}.{attr}" for attr in PARSER_ATTRIBUTES if not hasattr(conn, attr)]
    if hasattr(conn, "reader") and not hasattr(conn.reader, "buffer"):
        missing.append(f"{parser}.reader.buffer")
    return missing


def wire_supported(protocol: type[asyncio.Protocol] | None = None) -> str | None:
    """None when the installed uvicorn and websockets have everything
    :class:`ChatWebSocketProtocol` uses, by feature, not by version number;
    otherwise one line naming what is missing (for the start-up warning).

    ``protocol``: the parent class to inspect (default: uvicorn's
    ``WebSocketsSansIOProtocol``). Names that exist but changed meaning are not
    detected: the version pins in ``pyproject.toml`` cover those.
    """
    if _import_error is not None:
        return _import_error
    try:
        missing = _missing(protocol or WebSocketsSansIOProtocol)
    except Exception as exc:
        return f"{type(exc).__name__} while making a protocol: {exc}"
    return "missing " + ", ".join(missing) if missing else None


def choose_ws_protocol(setting: str) -> type[asyncio.Protocol] | str:
    """The ``ws=`` for ``uvicorn.Config`` under the ``ws_protocol`` setting.

    ``"chat"``: :class:`ChatWebSocketProtocol` if :func:`wire_supported`, else
    :data:`STOCK_WS_PROTOCOL` after logging one warning that names what is
    missing (each call checks and warns again: call it once per start).
    ``"stock"``: :data:`STOCK_WS_PROTOCOL`, without a check or a warning.
    """
    if setting == "stock":
        return stock_protocol()
    why = wire_supported()
    if why is None:
        return ChatWebSocketProtocol
    log.warning(
        "chatserver.transport.wire cannot run on uvicorn %s with websockets %s (%s);"
        " serving WebSockets with uvicorn's stock %s protocol instead: no short frame"
        " path, no %s",
        getattr(uvicorn, "__version__", "?"),
        getattr(websockets, "__version__", "?"),
        why,
        STOCK_WS_PROTOCOL,
        SEND_NOWAIT,
    )
    return stock_protocol()


def stock_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's stock protocol for ``ws=``: :class:`StockWebSocketProtocol` (the stock
    one with the closing drain) where uvicorn has the methods it overrides
    (:data:`DRAIN_NAMES`), else :data:`STOCK_WS_PROTOCOL` itself."""
    if _import_error is not None:
        return STOCK_WS_PROTOCOL
    if not all(_defines(WebSocketsSansIOProtocol, name) for name in DRAIN_NAMES):
        return STOCK_WS_PROTOCOL
    return StockWebSocketProtocol
