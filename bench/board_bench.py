"""Supervisor board: cost of one tick's aggregation and patch at desk scale.

Builds the board for N operators and M chats (the day's chats, the queue, open
chats, ticket SLA clocks), changes a few operators and queue entries as one
tick would, and diffs; reports the median and worst time per step and the sizes
of the full snapshot and of a typical patch. With ``--store`` it also fills a SQLite store (the
day's chats among ``--history-days`` of older ones, open chats, tickets) and
times the reads one board tick makes::

    .venv/bin/python bench/board_bench.py --operators 500 --chats 5000 --store
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chatserver.store.sqlite import SqliteStore, connect_sync
from chatserver.supervision.board import (
    ChatStat,
    History,
    OpenChat,
    OperatorView,
    QueuedChat,
    SlaClock,
    build_board,
    diff,
    window_starts,
)


def inputs(operators: int, chats: int, now: float, rng: random.Random) -> dict[str, Any]:
    ops = [
        OperatorView(
            f"o_{i:04d}",
            f"Operator {i}",
            "operator",
            rng.choice(["online", "online", "online", "away", "offline"]),
            rng.randint(0, 5),
            5,
            (rng.choice(["technical", "billing"]),),
        )
        for i in range(operators)
    ]
    stats = []
    for _ in range(chats):
        enq = now - rng.uniform(0, 12 * 3600)
        assigned = enq + rng.expovariate(1 / 60) if rng.random() < 0.9 else None
        stats.append(
            ChatStat(
                enq,
                rng.choice(["closed", "closed", "assigned"]) if assigned else "closed",
                assigned is not None,
                assigned,
                assigned + rng.expovariate(1 / 30) if assigned else None,
                rng.random() < 0.05,
            )
        )
    open_chats = [
        OpenChat(
            f"s_{i:05d}",
            "assigned",
            rng.choice(ops).operator_id,
            now - rng.uniform(0, 1800),
            f"Visitor {i}",
            now - rng.uniform(1800, 3600),
            sla_first_due=now + rng.uniform(-600, 1800),
        )
        for i in range(chats // 5)
    ]
    queue = [
        QueuedChat(f"q_{i:05d}", now - rng.uniform(0, 900), rng.choice([None, "billing"]))
        for i in range(chats // 20)
    ]
    sla = [
        SlaClock(f"#{100000 + i}", now - 86400, now + rng.uniform(-3600, 86400))
        for i in range(chats // 5)
    ]
    return {
        "operators": ops,
        "chats": stats,
        "open_chats": open_chats,
        "queue": queue,
        "sla": sla,
    }


async def store_reads(chats: int, history_days: int, rng: random.Random) -> None:
    """Time the reads of one board tick against a store with ``chats`` chats today."""
    tz = ZoneInfo("Europe/Zurich")
    now = time.time()
    _, day_start = window_starts(now, tz)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        conn = connect_sync(path)
        conn.execute("BEGIN")
        older = chats * history_days
        for i in range(older + chats):
            today = i >= older
            created = (
                now - rng.uniform(0, now - day_start)
                if today
                else day_start - (older - i) * (history_days * 86400 / older)
            )
            state = "assigned" if today and rng.random() < 0.1 else "closed"
            conn.execute(
                "INSERT INTO sessions (id, token_hash, state, created_at, enqueued_at,"
                " assigned_at, operator_id, first_response_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"s{i}",
                    f"h{i}",
                    state,
                    created,
                    created + 1,
                    created + 30,
                    f"o{i % 500}" if state == "assigned" else None,
                    created + 60,
                ),
            )
        for n in range(chats // 5):
            conn.execute(
                "INSERT INTO tickets (number, subject, state, priority, priority_rank, department,"
                " level, channel, created_at, updated_at, events, head, sla_first_due,"
                " sla_resolution_due) VALUES (?, 's', 'open', 'normal', 2, 'technical', 1,"
                " 'chat', ?, ?, 0, '', ?, ?)",
                (100000 + n, now - 3600, now, now + 600, now + 86400),
            )
        conn.execute("COMMIT")
        conn.close()
        store = SqliteStore(path)
        await store.open()
        timings: dict[str, list[float]] = {}
        rowid = 0
        for _ in range(10):
            steps = [
                ("first_session_rowid (once a day)", store.first_session_rowid(day_start - 3600)),
                ("open_chats", store.open_chats()),
            ]
            for name, coro in steps:
                started = time.perf_counter()
                result = await coro
                timings.setdefault(name, []).append(time.perf_counter() - started)
                if isinstance(result, int):
                    rowid = result
            for name, coro in (
                ("chat_stats (today)", store.chat_stats(day_start, rowid)),
                ("ticket_sla_clocks", store.ticket_sla_clocks()),
                ("sla_breaches_since", store.sla_breaches_since(day_start)),
            ):
                started = time.perf_counter()
                await coro
                timings.setdefault(name, []).append(time.perf_counter() - started)
        await store.close()
    print(f"store: {chats} chats today, {older} older sessions, {chats // 5} open tickets")
    for name, times in timings.items():
        print(f"  {name:34s} median {statistics.median(times) * 1000:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operators", type=int, default=500)
    parser.add_argument("--chats", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--store", action="store_true", help="also time the store reads")
    parser.add_argument("--history-days", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(1)
    tz = ZoneInfo("Europe/Zurich")
    now = time.time()
    history = History()
    for minute in range(360):
        history.record(now - (360 - minute) * 60, rng.randint(0, 40), rng.uniform(0, 600))
    data = inputs(args.operators, args.chats, now, rng)
    build_times, diff_times, patch_sizes = [], [], []
    old = build_board(now=now, tz=tz, history=history, **data)
    for round_ in range(args.rounds):
        now += 1.0
        ops = list(data["operators"])
        for i in rng.sample(range(len(ops)), 3):  # a few operators change per tick
            o = ops[i]
            ops[i] = OperatorView(
                o.operator_id, o.name, o.role, o.status, (o.load + 1) % 6, o.capacity
            )
        data["operators"] = ops
        queue = list(data["queue"])
        queue.append(QueuedChat(f"new_{round_}", now))
        data["queue"] = queue
        history.record(now, len(queue), 30.0)
        started = time.perf_counter()
        new = build_board(now=now, tz=tz, history=history, **data)
        built = time.perf_counter()
        patch = diff(old, new)
        done = time.perf_counter()
        build_times.append(built - started)
        diff_times.append(done - built)
        patch_sizes.append(len(json.dumps(patch)) if patch else 0)
        old = new
    full = len(json.dumps(old))
    print(f"{args.operators} operators, {args.chats} chats, {args.rounds} ticks")
    for name, times in (("build_board", build_times), ("diff", diff_times)):
        print(
            f"  {name:12s} median {statistics.median(times) * 1000:7.2f} ms"
            f"   max {max(times) * 1000:7.2f} ms"
        )
    print(f"  full snapshot {full / 1024:7.1f} KiB (JSON)")
    print(f"  patch median  {statistics.median(patch_sizes) / 1024:7.1f} KiB")
    if args.store:
        asyncio.run(store_reads(args.chats, args.history_days, random.Random(2)))


if __name__ == "__main__":
    main()
