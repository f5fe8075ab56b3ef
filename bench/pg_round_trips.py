"""Round trips per group commit of the PostgreSQL store, through a delaying proxy.

    .venv/bin/python bench/pg_round_trips.py [--delay-ms 50] [--url postgresql://...]

Puts a TCP proxy that delays every chunk by ``--delay-ms`` in each direction between
:class:`~chatserver.store.postgres.store.PostgresStore` and PostgreSQL, then commits
batches of 1 and 100 messages (over 7 sessions) and prints each batch's time in
round trips (time / (2 x delay)): about 1 means the whole batch, its ``BEGIN`` and
``COMMIT`` went out in one pipelined exchange. A schema of its own, dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatserver.store.base import MessageRecord
from chatserver.store.database import parse_database_url
from chatserver.store.postgres.store import PostgresStore
from chatserver.types import SessionId


def _proxy(delay: float, host: str, port: int) -> object:
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + delay, data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        queue.put_nowait((0.0, b""))
        await sender

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        try:
            await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        except (ConnectionError, asyncio.CancelledError):
            pass  # the bench ends

    return handle


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    delay = args.delay_ms / 1000
    target = urllib.parse.urlsplit(args.url)
    server = await asyncio.start_server(
        _proxy(delay, target.hostname or "127.0.0.1", target.port or 5432),  # type: ignore[arg-type]
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    schema = f"bench_rt_{secrets.token_hex(4)}"
    proxied = args.url.replace(target.netloc, f"{target.username or 'postgres'}@127.0.0.1:{port}")
    store = PostgresStore(parse_database_url(proxied, schema=schema))
    await store.open()
    try:
        for size in (1, 1, 100, 100, 100):
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    store.submit_message(
                        MessageRecord(SessionId(f"s{i % 7}"), 0, 1, "visitor", None, "V", "x")
                    )
                    for i in range(size)
                )
            )
            spent = time.perf_counter() - started
            print(f"batch of {size:3}: {spent / (2 * delay):.2f} round trips")
    finally:
        await store.close()
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
