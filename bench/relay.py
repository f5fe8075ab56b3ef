"""A bare Starlette WebSocket relay: the baseline for ``bench/loadgen.py``.

Clients connect to ``/ws/a/{pair}`` and ``/ws/b/{pair}``; every data frame one
side sends is forwarded unchanged to the other side of the same pair. Nothing
else: no JSON parsing, no validation, no storage, no acks. Frames that arrive
before the peer has connected are held and flushed when it connects.

With ``--ack`` it also answers every forwarded text frame with a small ack
frame to its sender, ``{"type":"ack","client_msg_id":...}`` (the id cut out of
the frame by a string search, no JSON parsing). That is the floor of any
server that acks each message with a frame of its own, as the chat protocol
does: one received frame and two sent ones, and no other work.

It is served by uvicorn with its stock ``websockets-sansio`` protocol, the same
max frame size and ``log_config=None``. With ``--wire`` it runs on the chat
server's own WebSocket layer instead (``chatserver.transport.wire``: the short path for
plain data frames, frames forwarded through its ``send_nowait``, no
permessage-deflate), so that the difference between the two is what the chat
server's routing, validation, persistence and acks cost over the same framing::

    python bench/relay.py --port 8100 [--ack] [--wire] [--loop uvloop]

The event loop is asyncio's unless ``--loop`` says otherwise (uvicorn's ``auto`` would
pick uvloop once it is installed, and the baseline would move with it).
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from chatserver.transport.wire import SEND_NOWAIT, ChatWebSocketProtocol

# Same as chatserver.config.Settings.max_frame_bytes.
MAX_FRAME_BYTES = 64 * 1024


class _Pair:
    __slots__ = ("held", "sides")

    def __init__(self) -> None:
        self.sides: list[WebSocket | None] = [None, None]
        # Frames sent to a side that has not connected yet.
        self.held: list[list[str | bytes]] = [[], []]


_pairs: dict[str, _Pair] = {}
# Set by --ack: answer each forwarded text frame with an ack to its sender.
_ACK = False
# Set by --wire: chatserver.transport.wire's WebSocket layer, frames sent by its send_nowait.
_WIRE = False
_CMID = '"client_msg_id":"'


def _ack_frame(text: str) -> str:
    """The ack for ``text``: its client_msg_id found by a string search."""
    start = text.find(_CMID)
    if start < 0:
        return '{"type":"ack"}'
    start += len(_CMID)
    return '{"type":"ack","client_msg_id":"' + text[start : text.index('"', start)] + '"}'


async def _send(ws: WebSocket, data: str | bytes) -> None:
    if _WIRE:
        binary = isinstance(data, bytes)
        nowait = ws.scope["extensions"].get(SEND_NOWAIT)
        if nowait is not None and nowait(data if binary else data.encode(), binary):
            return
    if isinstance(data, str):
        await ws.send_text(data)
    else:
        await ws.send_bytes(data)


async def _relay(ws: WebSocket, me: int) -> None:
    pair_id = ws.path_params["pair"]
    pair = _pairs.get(pair_id)
    if pair is None:
        pair = _pairs[pair_id] = _Pair()
    other = 1 - me
    await ws.accept()
    pair.sides[me] = ws
    held, pair.held[me] = pair.held[me], []
    for data in held:
        await _send(ws, data)
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            data = text if text is not None else message.get("bytes") or b""
            peer = pair.sides[other]
            if peer is None:
                pair.held[other].append(data)
            else:
                await _send(peer, data)
            if _ACK and isinstance(data, str):
                await _send(ws, _ack_frame(data))
    finally:
        if pair.sides[me] is ws:
            pair.sides[me] = None
        if pair.sides[other] is None and _pairs.get(pair_id) is pair:
            del _pairs[pair_id]


async def side_a(ws: WebSocket) -> None:
    await _relay(ws, 0)


async def side_b(ws: WebSocket) -> None:
    await _relay(ws, 1)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "pairs": len(_pairs)})


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        WebSocketRoute("/ws/a/{pair}", side_a),
        WebSocketRoute("/ws/b/{pair}", side_b),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--ack", action="store_true",
                        help="answer every forwarded text frame with an ack frame to its sender")
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop", "auto"),
                        help="uvicorn's event loop (default asyncio: the stock baseline"
                        " of docs/benchmarks.md, whatever is installed)")
    parser.add_argument("--wire", action="store_true",
                        help="run on chatserver.transport.wire's WebSocket layer, not uvicorn's")
    args = parser.parse_args()
    global _ACK, _WIRE
    _ACK = args.ack
    _WIRE = args.wire
    logging.basicConfig(level=args.log_level.upper())
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws=ChatWebSocketProtocol if args.wire else "websockets-sansio",
        loop=args.loop,
        ws_per_message_deflate=not args.wire,
        ws_max_size=MAX_FRAME_BYTES,
        log_config=None,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
