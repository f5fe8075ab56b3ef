"""The four loads of issue 23, driven by ``bench/loadgen.py --load NAME``.

Each load runs the chat server and two relays (``bench/relay.py`` on uvicorn's stock
protocol, and ``--wire`` on the chat server's WebSocket layer, a subclass of uvicorn's
``websockets-sansio`` protocol) in one invocation, a fresh server per run, with the
runs interleaved over ``--repeat`` rounds. The clients are a Node program
(``bench/node/loadgen.mjs``, the ``ws`` package; ``npm ci`` runs when
``bench/node/node_modules`` is missing), pinned to one core with ``taskset``; the
server is pinned to the other. The generator reports its own CPU: a run where it
used a whole core measured the generator, not the server (flagged ``GEN-BOUND``).

Loads (visitor → operator, 100-byte JSON messages; the relays forward a → b):

* ``saturation``: closed loop, 200 chats x 500 messages, 8 in flight per chat:
  server CPU per message, msg/s, p99 (send to receipt).
* ``open-loop``: 5 000 msg/s over 500 chats for 10 s, each message on a fixed
  schedule; latency from the scheduled send time, so a server that falls behind
  is charged for the wait (no coordinated omission).
* ``connect``: 10 000 new visitor sockets with ``hello`` → ``welcome`` (relays: a
  frame and its ack, ``relay.py --ack``), then all closed and resumed with their
  session tokens: connects and resumes per second, server CPU per connect.
* ``idle``: 10 000 visitor sockets open and idle after ``hello``/``welcome``:
  server RSS delta per connection.

``RLIMIT_NOFILE`` is raised to its hard limit for this process, the servers and the
generator (10 000 sockets each). Figures are printed as a table; ``--json`` saves them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
import loadgen as lg  # noqa: E402
import pg_bench  # noqa: E402

from chatserver.operators import auth  # noqa: E402
from chatserver.store.database import parse_database_url  # noqa: E402
from chatserver.types import OperatorId  # noqa: E402

LOADS = ("saturation", "open-loop", "connect", "idle")
SERVERS = ("relay", "relay-wire", "chat", "chat-asyncio", "chat-head", "chat-pg")
# chat-pg: the working tree on PostgreSQL (CHATSERVER_BENCH_PG_URL, a schema of its own,
# dropped after the run), the database server's CPU reported apart (pg_cpu_us_per_msg).
# chat-asyncio: the working tree with CHATSERVER_EVENT_LOOP=asyncio; chat-head: the
# chatserver package of ``--head-rev`` (default HEAD, exported), with uvloop hidden from
# it (bench/no_uvloop), as the code ran before the event loop became a setting.
DEFAULTS: dict[str, dict[str, Any]] = {
    "saturation": {"chats": 200, "messages": 500, "window": 8},
    "open-loop": {"chats": 500, "rate": 5000.0, "duration": 10.0},
    "connect": {"count": 10_000, "concurrency": 64},
    "idle": {"count": 10_000, "concurrency": 64},
}
GEN_BOUND = 0.9  # the generator above this share of its core: it may be the limit



def mark_phase(args: argparse.Namespace, phase: str) -> None:
    """With bench/looplag's ``LOOPLAG_OUT`` in ``--chat-env``: append the wall-clock
    time of the measured phase's start or end there, to tell its stalls from setup's."""
    out = dict(args.chat_env).get("LOOPLAG_OUT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(["phase", phase, time.time()]) + "\n")

def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules" / "ws").is_dir():
        return
    print("  bench/node/node_modules missing: npm ci", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_cpu_ns(pid: int) -> int:
    return sum(lg.thread_runtime_ns(pid).values())


def idle_cores(before: list[int], after: list[int]) -> float:
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d) or 1
    return (1 - (d[3] + d[4] + d[7]) / total) * (os.cpu_count() or 1)


def make_server(name: str, load: str, work: Path, rep: int, args: argparse.Namespace
                ) -> lg.ServerProcess:
    ack = load in ("connect", "idle")  # a relay's hello/welcome: a frame and its ack
    if name == "relay":
        server = lg.relay_server(work, ack=ack)
    elif name == "relay-wire":
        server = lg.relay_server(work, ack=ack, wire=True)
    else:
        env = dict(args.chat_env)
        root = args.chat_root
        schema = None
        if name == "chat-asyncio":
            env["CHATSERVER_EVENT_LOOP"] = "asyncio"
        elif name == "chat-pg":
            schema = f"bench_{secrets.token_hex(5)}"
            env["CHATSERVER_DATABASE_URL"] = pg_bench.PG_URL
            env["CHATSERVER_DATABASE_SCHEMA"] = schema
        elif name == "chat-head":
            root = work / "head"
            if not root.exists():
                lg.export_commit(args.head_rev, root)
            env["PYTHONPATH"] = os.pathsep.join([str(root), str(ROOT / "bench" / "no_uvloop")])
        server = lg.chat_server(work / f"{name}-{load}-{rep}", "NORMAL", root=root,
                                extra_env=env, name=name)
        server.pg_schema = schema
    server.argv = ["taskset", "-c", str(args.server_cpu), *server.argv]
    return server


class Generator:
    """The Node process and its line protocol (see bench/node/loadgen.mjs)."""

    def __init__(self, job: dict[str, Any], cpu: int) -> None:
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), "node", str(NODE_DIR / "loadgen.mjs"), json.dumps(job)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def read(self, tag: str) -> Any:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the generator exited (code {self.proc.wait()}) before {tag}")
            head, _, rest = line.strip().partition(" ")
            if head == tag:
                return json.loads(rest) if rest else None
            print(f"  generator: {line.rstrip()}", file=sys.stderr)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("GO\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.wait(60)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_py_spy(server: lg.ServerProcess, name: str, load: str, args: argparse.Namespace
                 ) -> list[subprocess.Popen[bytes]]:
    """``--py-spy DIR``: record the server's measured phase (its figures are then not valid)."""
    if not args.py_spy:
        return []
    out = Path(args.py_spy)
    out.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.pid),
         "--format", "raw", "--rate", "250", "--nonblocking",
         "-o", str(out / f"{load}-{name}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )]


_ADD_OPERATORS = """
import json, sqlite3, sys
from pathlib import Path
from chatserver.cli import create_operator
db, count, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
first = create_operator(Path(db), "bench0", password, name="Bench 0", capacity=1)
ids = [first] + [f"o_bench{i:06d}" for i in range(1, count)]
conn = sqlite3.connect(db)
with conn:
    conn.executemany(
        "INSERT INTO operators (id, username, name, password_hash, role, departments,"
        " capacity, created_at) SELECT ?, ?, ?, password_hash, role, departments, capacity,"
        " created_at FROM operators WHERE id = ?",
        [(ids[i], f"bench{i}", f"Bench {i}", first) for i in range(1, count)])
print(json.dumps(ids))
"""


def operator_tokens(server: lg.ServerProcess, count: int) -> list[str]:
    """``count`` operators of capacity 1 made by the server's own code (its schema)."""
    issuer = auth.OperatorTokens(lg.SECRET_KEY.encode(), 3600)
    schema = getattr(server, "pg_schema", None)
    if schema is not None:
        pg_db = parse_database_url(pg_bench.PG_URL, schema=schema)
        return [issuer.issue(OperatorId(o)) for o in pg_bench.add_pg_operators(pg_db, count, 1)]
    db = server.log.parent / "chatserver.sqlite3"
    db.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-c", _ADD_OPERATORS, str(db), str(count), lg.PASSWORD],
        env=server.env, cwd=server.cwd, capture_output=True, text=True,
    )
    if made.returncode:
        raise RuntimeError(f"{server.name}: making operators failed:\n{made.stderr[-3000:]}")
    ids = json.loads(made.stdout)
    return [issuer.issue(OperatorId(o)) for o in ids]


def run_traffic(server: lg.ServerProcess, name: str, load: str, args: argparse.Namespace
                ) -> dict[str, Any]:
    chats = args.chats
    if load == "saturation":
        messages, window, rate = args.messages, args.window, 0.0
    else:
        messages = max(1, round(args.rate * args.duration / chats))
        window, rate = 0, args.rate
    job = {"mode": "traffic", "kind": "chat" if name.startswith("chat") else "relay",
           "url": server.url, "chats": chats, "messages": messages, "window": window,
           "rate": rate, "size": 100, "timeout_s": args.timeout,
           "tokens": operator_tokens(server, chats) if name.startswith("chat") else []}
    server.start(timeout=120)
    gen = Generator(job, args.gen_cpu)
    try:
        gen.read("READY")
        tools = start_py_spy(server, name, load, args)
        pg0 = pg_bench.pg_cpu_ticks() if getattr(server, "pg_schema", None) else 0
        cpu0, mach0, t0 = server_cpu_ns(server.pid), lg.machine_cpu(), time.perf_counter()
        mark_phase(args, "go")
        gen.go()
        gen.read("DONE")
        cpu1, mach1, t1 = server_cpu_ns(server.pid), lg.machine_cpu(), time.perf_counter()
        mark_phase(args, "done")
        pg1 = pg_bench.pg_cpu_ticks() if getattr(server, "pg_schema", None) else 0
        lg.stop_tools(tools)
        result = gen.read("RESULT")
    finally:
        gen.close()
        server.stop()
    wall = t1 - t0
    cpu = (cpu1 - cpu0) / 1e9
    gen_cores = result["generator_cores"]
    result.update(
        server_cpu_s=round(cpu, 3),
        server_cores=round(cpu / wall, 3),
        server_cpu_us_per_msg=round(cpu * 1e6 / max(1, result["delivered"]), 2),
        other_cores=round(max(0.0, idle_cores(mach0, mach1) - cpu / wall - gen_cores), 2),
        generator_cores=round(gen_cores, 3),
    )
    if getattr(server, "pg_schema", None):
        pg_s = (pg1 - pg0) / os.sysconf("SC_CLK_TCK")
        result["pg_cpu_us_per_msg"] = round(pg_s * 1e6 / max(1, result["delivered"]), 1)
    return result


def run_connect(server: lg.ServerProcess, name: str, load: str, args: argparse.Namespace
                ) -> dict[str, Any]:
    job = {"mode": "connect", "kind": "chat" if name.startswith("chat") else "relay",
           "url": server.url, "count": args.count, "concurrency": args.concurrency,
           "resume": load == "connect"}
    server.start(timeout=120)
    gen = Generator(job, args.gen_cpu)
    out: dict[str, Any] = {}
    try:
        gen.read("READY")
        time.sleep(0.5)
        rss0 = rss_kib(server.pid)
        tools = start_py_spy(server, name, load, args)
        cpu0, mach0 = server_cpu_ns(server.pid), lg.machine_cpu()
        gen.go()
        phase = gen.read("PHASE")
        cpu1, mach1 = server_cpu_ns(server.pid), lg.machine_cpu()
        lg.stop_tools(tools)
        time.sleep(1.0)  # let the last hellos' follow-up work settle
        rss1 = rss_kib(server.pid)
        out["connect"] = phase_figures(phase, cpu1 - cpu0, mach0, mach1)
        out["rss_before_kib"] = rss0
        out["rss_idle_kib"] = rss1
        out["kib_per_idle_connection"] = round((rss1 - rss0) / args.count, 2)
        gen.go()
        if load == "connect":
            gen.read("PHASE")  # all closed
            gen.go()
            cpu0, mach0 = server_cpu_ns(server.pid), lg.machine_cpu()
            phase = gen.read("PHASE")
            cpu1, mach1 = server_cpu_ns(server.pid), lg.machine_cpu()
            out["resume"] = phase_figures(phase, cpu1 - cpu0, mach0, mach1)
            gen.go()
        gen.read("RESULT")
    finally:
        gen.close()
        server.stop()
    return out


def phase_figures(phase: dict[str, Any], cpu_ns: int, mach0: list[int], mach1: list[int]
                  ) -> dict[str, Any]:
    wall = phase["wall_s"]
    cpu = cpu_ns / 1e9
    count = phase["count"]
    return {
        **phase,
        "server_cpu_us_per_connect": round(cpu * 1e6 / count, 1),
        "per_s_per_core": round(count / cpu) if cpu else None,
        "server_cores": round(cpu / wall, 3),
        "generator_cores": round(phase["generator_cores"], 3),
        "other_cores": round(max(0.0, idle_cores(mach0, mach1) - cpu / wall
                                 - phase["generator_cores"]), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    nofile = raise_nofile()
    ensure_node_modules()
    os.sched_setaffinity(0, {args.gen_cpu})
    work = Path(tempfile.mkdtemp(prefix="chatbench-node-"))
    results: list[dict[str, Any]] = []
    load = args.load
    try:
        for rep in range(args.repeat):
            for name in args.servers:
                if args.wait_quiet > 0:
                    import asyncio
                    asyncio.run(lg.wait_quiet(args.wait_quiet, args.quiet_cores))
                server = make_server(name, load, work, rep, args)
                load_avg = os.getloadavg()
                try:
                    if load in ("saturation", "open-loop"):
                        pin = args.pg_cpu if name == "chat-pg" else None
                        with pg_bench.postgres_on_cpu(pin) as pinned:
                            result = run_traffic(server, name, load, args)
                        if pinned:
                            result["pg_cpu"] = pin
                    else:
                        result = run_connect(server, name, load, args)
                finally:
                    schema = getattr(server, "pg_schema", None)
                    if schema is not None:
                        pg_bench.drop_schema(schema)
                result.update(server=name, repeat=rep, load_avg_1m=round(load_avg[0], 2))
                log = server.log.read_text()
                if "Traceback" in log:
                    result["server_log_tail"] = log[-2000:]
                results.append(result)
                print(f"  {load} {name} #{rep}: {brief(load, result)}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"load": load, "config": {k: getattr(args, k) for k in DEFAULTS[load]},
            "repeat": args.repeat, "nofile": nofile, "machine": lg.machine_info(),
            "code": lg.code_info(args.chat_root), "results": results}


def brief(load: str, r: dict[str, Any]) -> str:
    if load in ("saturation", "open-loop"):
        return (f"{r['delivered']}/{r['expected']} in {r['wall_s']} s, {r['delivered_per_s']}"
                f" msg/s, {r['server_cpu_us_per_msg']} µs/msg, p99 {r['latency_ms']['p99']} ms,"
                f" generator {r['generator_cores']} cores, others {r['other_cores']}"
                + (f", PostgreSQL {r['pg_cpu_us_per_msg']} µs/msg" if "pg_cpu_us_per_msg" in r
                   else "")
                + (f" (on core {r['pg_cpu']})" if "pg_cpu" in r else ""))
    c = r["connect"]
    text = (f"{c['per_s']} connects/s ({c['server_cpu_us_per_connect']} µs CPU each,"
            f" {c['per_s_per_core']}/s per core), {r['kib_per_idle_connection']} KiB idle each,"
            f" generator {c['generator_cores']}")
    if "resume" in r:
        s = r["resume"]
        text += (f"; {s['per_s']} resumes/s ({s['server_cpu_us_per_connect']} µs CPU,"
                 f" {s['per_s_per_core']}/s per core)")
    return text


def _median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _median_of(results: list[dict[str, Any]], *path: str) -> float | None:
    vals: list[float] = []
    for r in results:
        v: Any = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(float(v))
    return _median(vals)


def summarise(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Median per server; ``ratio``: its median per-round ratio to the stock relay."""
    load = report["load"]
    key = (("server_cpu_us_per_msg",) if load in ("saturation", "open-loop")
           else ("connect", "server_cpu_us_per_connect"))
    by_round = {(r["server"], r["repeat"]): r for r in report["results"]}
    rows = []
    for name in dict.fromkeys(r["server"] for r in report["results"]):
        runs = [r for r in report["results"] if r["server"] == name]
        ratios = []
        for r in runs:
            base = by_round.get(("relay", r["repeat"]))
            if base is not None:
                a, b = _median_of([r], *key), _median_of([base], *key)
                if a and b:
                    ratios.append(a / b)
        row: dict[str, Any] = {"server": name, "runs": len(runs), "ratio_to_relay": _median(ratios)}
        if load in ("saturation", "open-loop"):
            for col, path in (("us_per_msg", ("server_cpu_us_per_msg",)),
                              ("msg_per_s", ("delivered_per_s",)),
                              ("p50_ms", ("latency_ms", "p50")),
                              ("p99_ms", ("latency_ms", "p99")),
                              ("server_cores", ("server_cores",)),
                              ("generator_cores", ("generator_cores",)),
                              ("other_cores", ("other_cores",)),
                              ("pg_us_per_msg", ("pg_cpu_us_per_msg",))):
                row[col] = _median_of(runs, *path)
            if row["pg_us_per_msg"] is None:
                del row["pg_us_per_msg"]
        else:
            for col, path in (("connects_per_s", ("connect", "per_s")),
                              ("us_per_connect", ("connect", "server_cpu_us_per_connect")),
                              ("connects_per_s_per_core", ("connect", "per_s_per_core")),
                              ("connect_p99_ms", ("connect", "latency_ms", "p99")),
                              ("kib_per_idle_conn", ("kib_per_idle_connection",)),
                              ("resumes_per_s", ("resume", "per_s")),
                              ("us_per_resume", ("resume", "server_cpu_us_per_connect")),
                              ("resumes_per_s_per_core", ("resume", "per_s_per_core")),
                              ("generator_cores", ("connect", "generator_cores")),
                              ("other_cores", ("connect", "other_cores"))):
                row[col] = _median_of(runs, *path)
        row["load_avg_1m"] = _median_of(runs, "load_avg_1m")
        bad = [r for r in runs if r.get("timed_out") or r.get("errors")
               or r.get("delivered", 0) < r.get("expected", 0)]
        row["incomplete_runs"] = len(bad)
        row["gen_bound"] = (row.get("generator_cores") or 0) > GEN_BOUND
        rows.append(row)
    return rows


def print_table(report: dict[str, Any]) -> None:
    rows = summarise(report)
    report["summary"] = rows
    cols = [c for c in dict.fromkeys(k for row in rows for k in row) if c != "server"]
    print(f"\n{report['load']}: {report['config']}, {report['repeat']} round(s), medians;"
          f" load average at start {os.getloadavg()}")
    print("| server | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append("—" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v)))
        print(f"| {row['server']} | " + " | ".join(cells) + " |")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadgen.py --load", description=__doc__.split("\n\n")[0])
    p.add_argument("--load", choices=LOADS, required=True)
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"comma-separated, of {', '.join(SERVERS)}")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--chats", type=int)
    p.add_argument("--messages", type=int, help="saturation: messages per chat")
    p.add_argument("--window", type=int, help="saturation: messages in flight per chat")
    p.add_argument("--rate", type=float, help="open-loop: msg/s in total")
    p.add_argument("--duration", type=float, help="open-loop: seconds")
    p.add_argument("--count", type=int, help="connect/idle: sockets")
    p.add_argument("--concurrency", type=int, help="connect/idle: connects in flight")
    p.add_argument("--server-cpu", type=int, default=0, help="the server's core (taskset)")
    p.add_argument("--gen-cpu", type=int, default=1, help="the generator's core")
    p.add_argument("--pg-cpu", type=int, default=None,
                   help="chat-pg: run PostgreSQL's processes on this core for the round (as"
                        " on a host of its own; needs root or the postgres user); default:"
                        " wherever the scheduler puts them")
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="wait up to S s for other processes to use under --quiet-cores")
    p.add_argument("--quiet-cores", type=float, default=0.3)
    p.add_argument("--chat-root", type=Path, default=ROOT)
    p.add_argument("--head-rev", default="HEAD", help="the code of the chat-head server")
    p.add_argument("--chat-env", metavar="KEY=VALUE", action="append", default=[],
                   help="environment of the chat server (e.g. CHATSERVER_EVENT_LOOP=asyncio)")
    p.add_argument("--py-spy", metavar="DIR", default=None,
                   help="record each server's measured phase with py-spy (raw folded stacks)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    for key, value in DEFAULTS[args.load].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for key in ("chats", "messages", "window", "rate", "duration", "count", "concurrency"):
        if not hasattr(args, key) or getattr(args, key) is None:
            setattr(args, key, None)
    args.servers = [s for s in args.servers.split(",") if s]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}")
    env = []
    for item in args.chat_env:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--chat-env wants KEY=VALUE, not {item!r}")
        env.append((key, value))
    args.chat_env = env
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report = run(args)
    print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if any(r["incomplete_runs"] for r in report["summary"]) else 0
