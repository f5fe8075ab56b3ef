"""What an idle visitor socket holds: a tracemalloc diff over N sockets after hello/welcome.

Starts the chat server under ``bench/tracemalloc_wrap.py``, opens ``--count`` visitor
sockets (Python websockets client, ``--concurrency`` at a time) with ``hello`` ->
``welcome``, keeps them open, and prints the allocations still alive per socket, by line
and by traceback. Not a figure for benchmarks.md (tracing slows the server; the RSS
figure comes from ``bench/loadgen.py --load idle``), a map of where the bytes are::

    .venv/bin/python bench/idle_trace.py --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import loadgen as lg  # noqa: E402
import websockets  # noqa: E402


async def open_all(url: str, count: int, concurrency: int) -> list[Any]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            ws = await websockets.connect(f"{url}/ws/visitor", compression=None)
            await ws.send(json.dumps({"type": "hello", "name": f"v{i}"}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "welcome":
                    return ws

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="idle-trace-"))
    out = work / "snap"
    env = dict(kv.split("=", 1) for kv in args.env)
    server = lg.chat_server(work / "data", "NORMAL", extra_env=env)
    server.argv = [sys.executable, str(ROOT / "bench" / "tracemalloc_wrap.py"), str(out),
                   *server.argv[1:]]

    async def drive() -> None:
        # warm-up: a few sockets, so first-use allocations are not counted
        warm = await open_all(server.url, 50, 8)
        for ws in warm:
            await ws.close()
        await asyncio.sleep(1.0)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.5)
        socks = await open_all(server.url, args.count, args.concurrency)
        await asyncio.sleep(2.0)
        server.proc.send_signal(signal.SIGUSR2)
        for _ in range(200):
            await asyncio.sleep(0.1)
            if out.exists() and out.stat().st_size:
                await asyncio.sleep(0.5)
                break
        for ws in socks:
            await ws.close()

    server.start(timeout=60)
    try:
        asyncio.run(drive())
    finally:
        server.stop()
    snap = tracemalloc.Snapshot.load(str(out))
    snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    total = sum(s.size for s in snap.statistics("filename"))
    n = args.count
    print(f"{total / n / 1024:.2f} KiB per socket traced ({total} B over {n})")
    print("\nby line:")
    for st in snap.statistics("lineno")[: args.top]:
        f = st.traceback[0]
        print(f"{st.size / n:8.0f} B {st.count / n:6.2f} blk  {f.filename}:{f.lineno}")
    print("\nby traceback:")
    for st in snap.statistics("traceback")[: args.top]:
        print(f"{st.size / n:8.0f} B {st.count / n:6.2f} blk")
        for fr in st.traceback.format(limit=-8)[-16:]:
            print("     " + fr)
    print(f"(snapshot {out}; server log {server.log}; {time.strftime('%H:%M:%S')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
