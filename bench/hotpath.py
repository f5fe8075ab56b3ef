"""The server's own per-message path, in-process: no sockets, no uvicorn.

A visitor and an operator (real ``Hub``, real ``SqliteStore`` with its journal
in a temp dir, ``Connection`` objects whose ASGI ``send`` does nothing) chat;
each message is decoded, validated, stored in the journal, acked and
delivered exactly as in ``app._serve``, and the journal is copied into SQLite
as the server does. Prints CPU per message (all threads, copies included)
and the GC collections of the measured phase; ``--profile`` adds a cProfile
table. Next to ``loadgen.py`` it shows how much of a message's cost is this
code and how much the sockets and uvicorn::

    .venv/bin/python bench/hotpath.py --messages 30000 [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from chatserver.cli import create_operator
from chatserver.config import Settings
from chatserver.protocol import OPERATOR_FRAMES, VISITOR_FRAMES, decode, validate
from chatserver.transport.connection import Connection
from chatserver.web.app import create_app

MAX_TEXT = 4000
WARM_UP = 2000


class _Socket:
    """What a ``Connection`` needs of Starlette's WebSocket besides ``send``."""

    application_state = None

    async def close(self, code: int = 1000) -> None:
        pass


sent = 0


async def _send(message: dict[str, Any]) -> None:
    global sent
    sent += 1


async def main(messages: int, profile: bool) -> None:
    global sent
    data_dir = Path(tempfile.mkdtemp(prefix="hotpath-"))
    settings = Settings.load(env={}, data_dir=data_dir, demo_operator=False)
    create_operator(settings.db_path, "op", "secret", name="Op")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        hub = app.state.hub
        visitor = Connection(_Socket(), "visitor", binary=False, send=_send)
        hello = {"type": "hello"}
        live = await hub.visitor_hello(visitor, validate(hello, VISITOR_FRAMES, MAX_TEXT))
        token, _ = await hub.login("op", "secret")
        operator = Connection(_Socket(), "operator", binary=False, send=_send)
        hello = {"type": "hello", "token": token, "status": "online"}
        op = await hub.operator_hello(operator, validate(hello, OPERATOR_FRAMES, MAX_TEXT))
        first = {"type": "message", "client_msg_id": "first", "text": "hello"}
        await hub.visitor_frame(visitor, live, validate(first, VISITOR_FRAMES, MAX_TEXT))
        await asyncio.sleep(0.3)  # assigned to the operator
        assert live.chat.operator_id is not None, live.chat.state
        sid = live.session_id
        text = "x" * 60
        total = WARM_UP + messages
        # Half from the visitor, half from the operator, like loadgen's "both".
        frames = [
            f'{{"type":"message","session_id":"{sid}","client_msg_id":"o-{i:08d}-aaaa-bbbb",'
            f'"text":"{text} {i}"}}'
            if i & 1
            else f'{{"type":"message","client_msg_id":"v-{i:08d}-aaaa-bbbb","text":"{text} {i}"}}'
            for i in range(total)
        ]

        async def run(start: int, stop: int) -> None:
            for i in range(start, stop):
                if i & 1:
                    frame = validate(decode(frames[i]), OPERATOR_FRAMES, MAX_TEXT)
                    await hub.operator_frame(operator, op, frame)
                else:
                    frame = validate(decode(frames[i]), VISITOR_FRAMES, MAX_TEXT)
                    await hub.visitor_frame(visitor, live, frame)

        await run(0, WARM_UP)
        await hub.store.sync_journal()
        sent = 0
        collections = [s["collections"] for s in gc.get_stats()]
        profiler = cProfile.Profile() if profile else None
        cpu0 = time.process_time()
        if profiler is not None:
            profiler.enable()
        for start in range(WARM_UP, total, 250):
            await run(start, min(total, start + 250))
            await asyncio.sleep(0)  # the journal copy runs when it is due
        await hub.store.sync_journal()
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - cpu0
        gcs = [s["collections"] - c for s, c in zip(gc.get_stats(), collections, strict=True)]
    print(f"{messages} messages, {sent} frames sent: {cpu / messages * 1e6:.1f} µs CPU per "
          f"message (copies into SQLite included); GC collections by generation {gcs}")
    if profiler is not None:
        stats = pstats.Stats(profiler)
        print(f"{stats.total_calls / messages:.1f} calls per message")
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.profile))
