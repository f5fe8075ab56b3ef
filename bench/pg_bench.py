"""A PostgreSQL-backed node against the SQLite default, in one invocation.

Runs ``bench/loadgen.py``'s chat traffic (visitor/operator pairs, open loop) against two
fresh single nodes in turn, interleaved per repeat:

* ``chat-normal``: the default (SQLite under ``--data-dir``, synchronous NORMAL);
* ``chat-pg``: the same node with ``CHATSERVER_DATABASE_URL`` on PostgreSQL (a schema
  of its own, dropped afterwards; attachments in the database).

and prints, per scenario, the node's CPU per delivered message (all its threads; the
PostgreSQL server's own processes are reported apart, as ``pg_cpu_us_per_msg``), the
end-to-end p50/p99 and the ack p99, and the ratio pg / default of CPU per message.
The goal of issue 22: at most 1.5x the default's CPU per message, p99 at or under
10 ms at 5,000 msg/s::

    .venv/bin/python bench/pg_bench.py --pairs 50 --rate-per-pair 100 --messages 1000 --repeat 3

Every ``bench/loadgen.py`` option applies (``--scenarios`` is ignored), ``--py-spy DIR``
and ``--cprofile DIR`` to both nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import loadgen  # bench/ is on sys.path when this file runs as a script
import psycopg
from psycopg import sql

from chatserver.cli import create_operator
from chatserver.store.database import Database, connect, parse_database_url

PG_URL = os.environ.get("CHATSERVER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCENARIOS = ["chat-normal", "chat-pg"]


def _postgres_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the name) of every ``postgres``
    process on this machine (the postmaster and its children)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            yield int(entry.name), stat[stat.rindex(")") + 2 :].split()


def pg_cpu_ticks() -> int:
    """utime + stime clock ticks of every ``postgres`` process on this machine."""
    return sum(int(fields[11]) + int(fields[12]) for _, fields in _postgres_stats())


def postgres_pids() -> list[int]:
    """Every ``postgres`` process on this machine."""
    return [pid for pid, _ in _postgres_stats()]


@contextlib.contextmanager
def postgres_on_cpu(cpu: int | None) -> Iterator[bool]:
    """With ``cpu``, run every PostgreSQL process on that core for the block (the
    backends a node connects meanwhile inherit it from the postmaster), then give
    each its affinity back; yields whether that could be done (root, or the
    postgres user). ``None``: nothing changes."""
    if cpu is None:
        yield False
        return
    everywhere = set(range(os.cpu_count() or 1))
    saved: dict[int, set[int]] = {}
    try:
        for pid in postgres_pids():
            with contextlib.suppress(ProcessLookupError):
                before = os.sched_getaffinity(pid)
                os.sched_setaffinity(pid, {cpu})
                saved[pid] = before
    except PermissionError:
        print("  cannot pin PostgreSQL (not its owner): --pg-cpu ignored", file=sys.stderr)
    try:
        yield bool(saved)
    finally:
        for pid in postgres_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(pid, saved.get(pid, everywhere))


def add_pg_operators(db: Database, count: int, capacity: int) -> list[str]:
    """Like ``loadgen.add_operators``, into PostgreSQL."""
    first = create_operator(db, "bench0", loadgen.PASSWORD, name="Bench 0", capacity=capacity)
    ids = [first] + [f"o_bench{i:06d}" for i in range(1, count)]
    conn = connect(db)
    try:
        conn.executemany(
            "INSERT INTO operators (id, username, name, password_hash, role, departments,"
            " capacity, created_at, levels) SELECT ?, ?, ?, password_hash, role, departments,"
            " capacity, created_at, levels FROM operators WHERE id = ?",
            [(ids[i], f"bench{i}", f"Bench {i}", first) for i in range(1, count)],
        )
    finally:
        conn.close()
    return ids


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def run_pg(args: argparse.Namespace, work: Path, rep: int) -> dict[str, Any]:
    if args.wait_quiet > 0:
        await loadgen.wait_quiet(args.wait_quiet)
    schema = f"bench_{secrets.token_hex(5)}"
    db = parse_database_url(PG_URL, schema=schema)
    env = {"CHATSERVER_DATABASE_URL": PG_URL, "CHATSERVER_DATABASE_SCHEMA": schema}
    # --py-spy DIR / --cprofile DIR profile this node too (as loadgen's run_one does).
    tag = "chat-pg" if args.repeat == 1 else f"chat-pg-{rep}"
    profile_dir = Path(args.py_spy) if args.py_spy else None
    pstats_out = Path(args.cprofile) / f"{tag}.pstats" if args.cprofile else None
    if pstats_out is not None:
        pstats_out.parent.mkdir(parents=True, exist_ok=True)
        pstats_out.unlink(missing_ok=True)
    server = loadgen.chat_server(
        work / f"chat-pg-{rep}", "NORMAL", pstats_out, args.chat_root, env, "chat-pg"
    )
    server.profile_out = pstats_out
    try:
        server.operator_ids = add_pg_operators(db, args.pairs, 1)
        server.start()
        try:
            before = pg_cpu_ticks()
            result = await loadgen.chat_scenario(server, args, "chat-pg", profile_dir)
            after = pg_cpu_ticks()
        finally:
            server.stop()
    finally:
        drop_schema(schema)
    result["repeat"] = rep
    if pstats_out is not None:
        result["python_calls_per_msg"] = loadgen.summarise_pstats(pstats_out, result["delivered"])
    # Setup and teardown fall inside this window too: an upper bound.
    if result["delivered"]:
        pg_s = (after - before) / loadgen.CLK_TCK
        result["pg_cpu_us_per_msg_upper"] = round(pg_s / result["delivered"] * 1e6, 1)
    log = server.log.read_text()
    if "Traceback" in log:
        result["server_log_tail"] = log[-2000:]
    print(
        f"  chat-pg-{rep}: {result['delivered']}/{result['messages_expected']} delivered,"
        f" {result['server_cpu_us_per_msg']} µs CPU/msg",
        file=sys.stderr,
    )
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="pgbench-", dir=args.data_root))
    results: list[dict[str, Any]] = []
    try:
        for rep in range(args.repeat):
            results.append(await loadgen.run_one(args, "chat-normal", work, rep))
            results.append(await run_pg(args, work, rep))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = loadgen.summarise(results, SCENARIOS)
    pg_upper = [r["pg_cpu_us_per_msg_upper"] for r in results if "pg_cpu_us_per_msg_upper" in r]
    if "chat-pg" in summary and pg_upper:
        summary["chat-pg"]["pg_cpu_us_per_msg_upper"] = statistics.median(pg_upper)
    base, pg = summary.get("chat-normal"), summary.get("chat-pg")
    ratio = (
        round(pg["server_cpu_us_per_msg"] / base["server_cpu_us_per_msg"], 2)
        if base and pg and base["server_cpu_us_per_msg"]
        else None
    )
    return {
        "config": {
            "pairs": args.pairs,
            "messages_per_pair": args.messages,
            "rate_per_pair": args.rate_per_pair,
            "offered_msg_per_s": args.pairs * args.rate_per_pair,
            "repeat": args.repeat,
        },
        "machine": loadgen.machine_info(),
        "code": loadgen.code_info(args.chat_root),
        "results": results,
        "summary": summary,
        "cpu_ratio_pg_vs_default": ratio,
    }


def print_summary(report: dict[str, Any]) -> None:
    cfg = report["config"]
    print(
        f"\n{cfg['pairs']} pairs x {cfg['rate_per_pair']} msg/s ="
        f" {cfg['offered_msg_per_s']:.0f} msg/s offered, {cfg['repeat']} repeat(s)"
    )
    head = ("scenario", "msg/s", "p50 ms", "p99 ms", "ack p99", "µs CPU/msg")
    print(f"{head[0]:<12} {head[1]:>9} {head[2]:>8} {head[3]:>8} {head[4]:>8} {head[5]:>11}")
    for name in SCENARIOS:
        row = report["summary"].get(name)
        if row is None:
            continue
        print(
            f"{name:<12} {row['delivered_per_s']:>9} {row['latency_p50_ms']:>8}"
            f" {row['latency_p99_ms']:>8} {row['ack_p99_ms']!s:>8}"
            f" {row['server_cpu_us_per_msg']:>11}"
        )
    pg = report["summary"].get("chat-pg", {})
    if "pg_cpu_us_per_msg_upper" in pg:
        print(f"PostgreSQL server processes: <= {pg['pg_cpu_us_per_msg_upper']} µs CPU/msg")
    print(f"node CPU per message, pg / default: {report['cpu_ratio_pg_vs_default']}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = loadgen.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    report = asyncio.run(run(args))
    print_summary(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    bad = [
        r for r in report["results"] if r["timed_out"] or r["delivered"] < r["messages_expected"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
