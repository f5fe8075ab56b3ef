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
  plain function ``(payload: bytes, binary: bool) -> bool`` that writes a
  data frame to the transport at once and returns True, or returns False
  (nothing written) when the frame must take the ASGI ``send`` path instead:
  the transport pushes back, the connection is closing, or an extension is
  in use.

Frames written and read are byte for byte the ones websockets would write and
accept; ``tests/test_wire.py`` checks both paths against raw sockets.
"""

from __future__ import annotations

from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

SEND_NOWAIT = "chatserver.send_nowait"
"""The ASGI scope extension that holds :meth:`ChatWebSocketProtocol.send_nowait`."""

PAUSE_AT = 16
"""Frames waiting for the app at which the socket stops being read."""

_OPEN = State.OPEN
_TEXT_FIN = 0x81
_BINARY_FIN = 0x82
_MASKED = 0x80
# Continuation, text, binary, close, ping, pong.
_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    """``uvicorn.Config(ws=ChatWebSocketProtocol)``: see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # None: undecided (handshake not done); True: the short path is on.
        self._fast: bool | None = None
        # After the HTTP request, the parser had no bytes of a frame.
        self._clean_start = False
        # Bytes of an incomplete frame, waiting for the rest.
        self._partial = b""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            extensions = cast(dict[str, Any], self.scope["extensions"])
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
        self.transport.write(header + payload)
        return True

    def data_received(self, data: bytes) -> None:
        fast = self._fast
        if not fast:
            if fast is None and self.handshake_complete:
                fast = self._fast = self._may_go_fast()
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
