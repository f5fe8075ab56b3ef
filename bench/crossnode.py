"""Cross-node relay vs same-node relay, two chatserver nodes sharing one Redis.

    python bench/crossnode.py [--pairs 50] [--messages 200] [--rate-per-pair 20]

Starts two ``chatserver serve`` nodes on one data dir and one Redis (a private key
prefix on ``--redis-url``), then runs the same paced traffic twice: visitors and
operators on the same node, and visitors on node A with their operators on node B.
Reports end-to-end latency (visitor send -> operator receive) p50/p99, the extra
p99 of the cross-node path, and Redis round trips per message, read from the
nodes' ``/healthz`` counters (bus publishes and pipelined round trips).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatserver.cli import create_operator  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(data: Path, redis_url: str, prefix: str, name: str) -> tuple[Any, int]:
    port = free_port()
    env = {
        **os.environ,
        "CHATSERVER_REDIS_URL": redis_url,
        "CHATSERVER_REDIS_PREFIX": prefix,
        "CHATSERVER_NODE_ID": name,
        "CHATSERVER_DEMO_OPERATOR": "false",
        "CHATSERVER_LOG_LEVEL": "warning",
        "CHATSERVER_RATE_LIMIT_PER_10S": "10000000",
    }
    log = (data / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatserver", "serve", "--port", str(port), "--data-dir", str(data)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"node {name} did not start")


def stats(port: int) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{port}/healthz").json()["stats"])


async def open_pair(v_port: int, o_port: int, username: str) -> tuple[Any, Any, str]:
    async with httpx.AsyncClient() as http:
        login = await http.post(
            f"http://127.0.0.1:{o_port}/api/login", json={"username": username, "password": "pw"}
        )
    token = login.json()["token"]
    op = await connect(f"ws://127.0.0.1:{o_port}/ws/operator")
    await op.send(json.dumps({"type": "hello", "token": token, "status": "online"}))
    v = await connect(f"ws://127.0.0.1:{v_port}/ws/visitor")
    await v.send(json.dumps({"type": "hello"}))
    welcome = json.loads(await v.recv())
    await v.send(json.dumps({"type": "message", "client_msg_id": "start", "text": "start"}))
    while True:  # until the chat is assigned to this operator
        frame = json.loads(await op.recv())
        if frame["type"] == "chat_assigned":
            break
    return v, op, welcome["session_id"]


async def run(pairs: list[tuple[Any, Any, str]], messages: int, rate: float) -> list[float]:
    latencies: list[float] = []

    interval = 1.0 / rate
    begin = time.perf_counter()

    async def visitor(v: Any, k: int) -> None:
        # Pairs are phase-shifted evenly over the interval (as in loadgen.py):
        # a steady stream, not a burst of every pair at once.
        start = begin + k * interval / len(pairs)
        for i in range(messages):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            text = f"{time.perf_counter_ns()} message {i}"
            await v.send(json.dumps({"type": "message", "client_msg_id": f"m{i}", "text": text}))

    async def drain_visitor(v: Any) -> None:
        acks = 0
        while acks < messages:
            frame = json.loads(await v.recv())
            if frame["type"] == "ack" and frame["client_msg_id"].startswith("m"):
                acks += 1

    async def operator(op: Any) -> None:
        got = 0
        while got < messages:
            frame = json.loads(await op.recv())
            if (
                frame["type"] == "message"
                and frame["from"] == "visitor"
                and " message " in frame["text"]
            ):
                sent = int(frame["text"].split(" ", 1)[0])
                latencies.append((time.perf_counter_ns() - sent) / 1e6)
                got += 1

    await asyncio.gather(
        *(visitor(v, k) for k, (v, _, _) in enumerate(pairs)),
        *(drain_visitor(v) for v, _, _ in pairs),
        *(operator(op) for _, op, _ in pairs),
    )
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def scenario(
    name: str, v_port: int, o_port: int, users: list[str], ports: list[int], args: Any
) -> dict[str, Any]:
    pairs = [await open_pair(v_port, o_port, u) for u in users]
    before = [stats(p) for p in ports]
    started = time.perf_counter()
    latencies = await run(pairs, args.messages, args.rate_per_pair)
    elapsed = time.perf_counter() - started
    after = [stats(p) for p in ports]
    for v, op, sid in pairs:
        await op.send(json.dumps({"type": "close_chat", "session_id": sid}))
        # Log off (no 30 s reconnect grace whose expiry would land in the next run).
        await op.send(json.dumps({"type": "status", "status": "offline"}))
        await v.close()
        await op.close()
    delivered = len(latencies)
    published = sum(
        a["bus_published"] - b["bus_published"] for a, b in zip(after, before, strict=True)
    )
    trips = sum(
        a["bus_round_trips"] - b["bus_round_trips"] for a, b in zip(after, before, strict=True)
    )
    return {
        "scenario": name,
        "delivered": delivered,
        "msgs_per_s": round(delivered / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
        "bus_publishes_per_msg": round(published / delivered, 3),
        "redis_round_trips_per_msg": round(trips / delivered, 3),
    }


async def main() -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate-per-pair", type=float, default=20.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="run both layouts this many times, interleaved; report the medians",
    )
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="crossnode-"))
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    users = [f"op{i}" for i in range(args.pairs * 2 * args.repeat)]
    for user in users:
        create_operator(data / "chatserver.sqlite3", user, "pw", capacity=1)
    nodes = [start_node(data, args.redis_url, prefix, n) for n in ("A", "B")]
    ports = [port for _, port in nodes]
    runs: list[dict[str, Any]] = []
    try:
        for rep in range(args.repeat):
            base = rep * args.pairs * 2
            same_users = users[base : base + args.pairs]
            cross_users = users[base + args.pairs : base + 2 * args.pairs]
            runs.append(await scenario("same-node", ports[0], ports[0], same_users, ports, args))
            runs.append(await scenario("cross-node", ports[0], ports[1], cross_users, ports, args))
    finally:
        for proc, _ in nodes:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(data, ignore_errors=True)
    print(
        f"{args.pairs} pairs x {args.messages} msgs at {args.rate_per_pair}/s per pair, "
        f"2 nodes, Redis {args.redis_url}, {args.repeat} run(s) of each layout, interleaved"
    )
    print(f"{'scenario':<12}{'msg/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'pub/msg':>9}{'RTT/msg':>9}")
    for r in runs:
        print(
            f"{r['scenario']:<12}{r['msgs_per_s']:>8}{r['p50_ms']:>9}{r['p99_ms']:>9}"
            f"{r['bus_publishes_per_msg']:>9}{r['redis_round_trips_per_msg']:>9}"
        )
    same_p99 = [r["p99_ms"] for r in runs if r["scenario"] == "same-node"]
    cross_p99 = [r["p99_ms"] for r in runs if r["scenario"] == "cross-node"]
    if args.repeat > 1:
        per_run = ", ".join(f"{c - s:+.2f}" for s, c in zip(same_p99, cross_p99, strict=True))
        print(f"extra p99 per run: {per_run} ms")
    extra = statistics.median(cross_p99) - statistics.median(same_p99)
    print(
        f"extra p99 cross-node (median p99 {statistics.median(cross_p99):.2f} vs "
        f"{statistics.median(same_p99):.2f} ms): {extra:+.2f} ms (goal <= 5 ms)"
    )
    rows = runs
    return rows


if __name__ == "__main__":
    results = asyncio.run(main())
    if "--json" in sys.argv:
        Path(sys.argv[sys.argv.index("--json") + 1]).write_text(json.dumps(results, indent=2))
