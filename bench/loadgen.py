"""Load generator: chatserver vs a bare Starlette relay, in one run.

Opens N visitor/operator pairs through ``/ws/visitor`` and ``/ws/operator`` of a
real ``chatserver serve`` subprocess, and N a/b pairs through the bare relay
(``bench/relay.py``, another subprocess, same uvicorn settings), sends the same
traffic through both and reports, per scenario:

* delivered messages per second,
* end-to-end latency p50/p99 (sender's ``send`` call to the peer's receipt;
  the send timestamp ``time.perf_counter_ns()`` travels in the message text),
* for the chat server also the ack latency (send to durable ``ack``),
* server CPU per delivered message: CPU time of the server process, all its
  threads (``/proc/<pid>/task/*/schedstat``, cross-checked against the tick
  counts of ``/proc/<pid>/stat``), over the measured phase only — setup,
  login and connecting are excluded — divided by delivered messages,
* the ratio chatserver / relay of CPU per message (target: at most 1.5).

Scenarios: ``relay``, ``relay-ack`` (the relay also answers each frame with an
ack frame to its sender: the floor of any server that acks every message with
a frame of its own), ``relay-wire`` and ``relay-ack-wire`` (the same on the chat server's own
WebSocket layer, ``chatserver.transport.wire``, instead of uvicorn's stock protocol),
``chat-normal`` and ``chat-full`` (the chat server with
``CHATSERVER_STORE_SYNCHRONOUS`` NORMAL or FULL).

Traffic: each pair sends ``--messages`` messages at ``--rate-per-pair`` msg/s,
open loop (sends are scheduled on a clock, never wait for replies). With
``--direction both`` (default) half go visitor→operator and half
operator→visitor, each side at half the rate. ``--rate-per-pair 0`` is the
saturation mode: every sender keeps up to ``--window`` messages in flight
(sent, not yet delivered to the peer) and sends as fast as that allows.

Everything client-side runs in this one process (one core of the machine);
the servers are separate processes::

    .venv/bin/python bench/loadgen.py --pairs 50 --messages 200 --rate-per-pair 20
    .venv/bin/python bench/loadgen.py --pairs 50 --messages 1000 --rate-per-pair 0 --window 32

``--load saturation|open-loop|connect|idle`` runs one of the four loads of issue 23
instead (a Node load generator, the server and the generator pinned to one core each;
see ``bench/loadgen_node.py``)::

    .venv/bin/python bench/loadgen.py --load saturation --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatserver.cli import create_operator  # noqa: E402
from chatserver.operators import auth  # noqa: E402
from chatserver.store.sqlite import connect_sync  # noqa: E402
from chatserver.types import OperatorId  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-password"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
SETTLE_SECONDS = 1.5  # > queue_update_interval: the post-assignment queue broadcast is done
SCENARIOS = ("relay", "relay-ack", "relay-wire", "relay-ack-wire", "chat-full", "chat-normal",
             "chat-b")
# Baselines on the chat server's own WebSocket layer: its ratio to them is reported too.
WIRE_BASES = ("relay-wire", "relay-ack-wire")
SETUP_TIMEOUT = 20.0
NOISY_CORES = 0.2  # other processes busier than this during a run make it "noisy"
NOISY_STEAL = 0.05  # so does a hypervisor stealing more than this share of the CPUs


def is_noisy(result: dict[str, Any]) -> bool:
    return ((result.get("other_processes_cores") or 0) > NOISY_CORES
            or (result.get("machine_steal") or 0) > NOISY_STEAL)

_loads = json.loads
_now = time.perf_counter_ns


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(user, sys) CPU seconds of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def thread_runtime_ns(pid: int) -> dict[int, int]:
    """Nanoseconds on CPU per live thread (``/proc/<pid>/task/*/schedstat``).

    Finer than the clock ticks of ``stat``; the server's threads (event loop,
    aiosqlite workers, the to_thread pool) live for the whole run, so the sum
    over live threads is the process's CPU time.
    """
    out: dict[int, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0])
    return out


def machine_cpu() -> list[int]:
    """``/proc/stat``'s ``cpu`` line: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def proc_io(pid: int) -> dict[str, int]:
    """``/proc/<pid>/io`` counters (syscalls and bytes); empty if unreadable."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return {k: int(v) for k, v in (line.split(": ") for line in f)}
    except OSError:
        return {}


class ServerProcess:
    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.cwd = cwd
        self.argv = argv
        self.env = env
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.operator_ids: list[str] = []
        self.profile_out: Path | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.http_url + "/healthz", timeout=0.5).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


def _python(profile_out: Path | None) -> list[str]:
    """The interpreter, under ``bench/cprofile_wrap.py`` when profiling."""
    if profile_out is None:
        return [sys.executable]
    return [sys.executable, str(ROOT / "bench" / "cprofile_wrap.py"), str(profile_out)]


def chat_server(
    data_dir: Path, synchronous: str, profile_out: Path | None = None, root: Path = ROOT,
    extra_env: dict[str, str] | None = None, name: str | None = None,
) -> ServerProcess:
    """``python -m chatserver serve`` run from ``root`` (another checkout for A/B runs)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CHATSERVER_DEMO_OPERATOR": "false",
        "CHATSERVER_LOG_LEVEL": "warning",
        "CHATSERVER_RATE_LIMIT_PER_10S": "10000000",
        "CHATSERVER_STORE_SYNCHRONOUS": synchronous,
        "CHATSERVER_SECRET_KEY": SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        **(extra_env or {}),
    }
    argv = [*_python(profile_out), "-m", "chatserver", "serve", "--port", str(port),
            "--data-dir", str(data_dir)]
    return ServerProcess(name or f"chat-{synchronous.lower()}", argv, env, port,
                         data_dir / "server.log", cwd=root)


def relay_server(log_dir: Path, profile_out: Path | None = None,
                 ack: bool = False, wire: bool = False) -> ServerProcess:
    port = free_port()
    argv = [*_python(profile_out), str(ROOT / "bench" / "relay.py"), "--port", str(port)]
    if ack:
        argv.append("--ack")
    if wire:
        argv.append("--wire")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    name = "relay" + ("-ack" if ack else "") + ("-wire" if wire else "")
    return ServerProcess(name, argv, env, port, log_dir / f"{name}.log")


def add_operators(db_path: Path, count: int, capacity: int) -> list[str]:
    """``count`` operator accounts; returns their ids.

    The first is made with :func:`chatserver.cli.create_operator`; the others
    copy its row (same password hash) because an argon2 hash costs ~0.1 s.
    """
    first = create_operator(db_path, "bench0", PASSWORD, name="Bench 0", capacity=capacity)
    ids = [first] + [f"o_bench{i:06d}" for i in range(1, count)]
    conn = connect_sync(db_path)
    try:
        conn.executemany(
            "INSERT INTO operators (id, username, name, password_hash, role, departments,"
            " capacity, created_at) SELECT ?, ?, ?, password_hash, role, departments, capacity,"
            " created_at FROM operators WHERE id = ?",
            [(ids[i], f"bench{i}", f"Bench {i}", first) for i in range(1, count)],
        )
    finally:
        conn.close()
    return ids


# -------------------------------------------------------------- measurement
@dataclass
class Stats:
    expected: int
    expected_acks: int
    delivered: int = 0
    acks: int = 0
    latencies: list[int] = field(default_factory=list)
    ack_latencies: list[int] = field(default_factory=list)
    lags: list[int] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.delivered >= self.expected and self.acks >= self.expected_acks:
            self.done.set()


class Conn:
    """A client socket whose frames go to a swappable handler."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.handle: Callable[[str | bytes], None] = self._to_inbox
        self.task = asyncio.create_task(self._read())

    def _to_inbox(self, data: str | bytes) -> None:
        self.inbox.put_nowait(_loads(data))

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in self.ws:
                self.handle(data)

    async def expect(
        self, kind: str, pred: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Next frame of type ``kind`` (matching ``pred``); earlier ones are dropped."""

        async def find() -> dict[str, Any]:
            while True:
                frame = await self.inbox.get()
                if frame.get("type") == "error":
                    raise RuntimeError(f"server error during setup: {frame}")
                if frame.get("type") == kind and (pred is None or pred(frame)):
                    return frame
        return await asyncio.wait_for(find(), SETUP_TIMEOUT)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        self.task.cancel()
        # asyncio.wait, not a suppressed await: a cancel of *this* task must propagate.
        await asyncio.wait([self.task])


def measuring_handler(
    stats: Stats, peer_window: asyncio.Semaphore | None
) -> Callable[[str | bytes], None]:
    """Handler for the measured phase: latency of ``B<ns> …`` messages, acks."""
    lat = stats.latencies.append
    ack_lat = stats.ack_latencies.append
    release = peer_window.release if peer_window is not None else None

    def handle(data: str | bytes) -> None:
        now = _now()
        frame = _loads(data)
        kind = frame.get("type")
        if kind == "message":
            text = frame.get("text", "")
            if text[:1] != "B":
                return  # a system message, not benchmark traffic
            lat(now - int(text[1 : text.index(" ")]))
            stats.delivered += 1
            if release is not None:
                release()
            stats.check()
        elif kind == "ack":
            cmid = frame.get("client_msg_id") or ""
            if cmid[:1] == "B":
                ack_lat(now - int(cmid[cmid.index(".") + 1 :]))
                stats.acks += 1
                stats.check()
        elif kind == "error":
            stats.errors.append(frame)

    return handle


@dataclass
class Side:
    """One sending end of a pair: its socket, frame template and message count."""

    conn: Conn
    template: str  # % (k, ts_ns, ts_ns)
    count: int
    phase: float  # fraction of the send interval to offset this sender by
    window: asyncio.Semaphore | None = None


def message_template(pad: str, session_id: str | None) -> str:
    sid = f'"session_id":"{session_id}",' if session_id is not None else ""
    return '{"type":"message",' + sid + '"client_msg_id":"B%d.%d","text":"B%d ' + pad + '"}'


async def paced_sender(side: Side, start_ns: int, interval_ns: int, stats: Stats) -> None:
    send = side.conn.ws.send
    template = side.template
    lags = stats.lags.append
    first = start_ns + int(side.phase * interval_ns)
    for k in range(side.count):
        target = first + k * interval_ns
        now = _now()
        if target > now:
            await asyncio.sleep((target - now) / 1e9)
            now = _now()
        lags(now - target)
        await send(template % (k, now, now))


async def window_sender(side: Side) -> None:
    send = side.conn.ws.send
    template = side.template
    window = side.window
    assert window is not None
    for k in range(side.count):
        await window.acquire()
        now = _now()
        await send(template % (k, now, now))


def start_tools(server: ServerProcess, args: argparse.Namespace, profile_dir: Path | None,
                scenario: str) -> list[subprocess.Popen[bytes]]:
    """Start py-spy and/or the ``--attach`` command on the server."""
    tools: list[subprocess.Popen[bytes]] = []
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        tools.append(subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.pid),
             "--format", "raw", *args.py_spy_args.split(),
             "-o", str(profile_dir / f"{scenario}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
    if args.attach:
        tools.append(subprocess.Popen(
            args.attach.format(pid=server.pid, scenario=scenario), shell=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
    return tools


def stop_tools(tools: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT each tool's process group (so a shell's children get it too); wait."""
    for tool in tools:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(tool.pid, signal.SIGINT)
    for tool in tools:
        with contextlib.suppress(subprocess.TimeoutExpired):
            tool.wait(30)


def percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index] / 1e6  # ns -> ms


async def run_traffic(
    server: ServerProcess, sides: list[tuple[Side, Side]], args: argparse.Namespace,
    acks_expected: bool, profile_dir: Path | None, scenario: str,
) -> dict[str, Any]:
    """Switch every socket to measuring, send, wait for delivery; returns figures.

    ``sides`` lists (sender, receiver) per direction of every pair.
    """
    total = sum(s.count for s, _ in sides)
    stats = Stats(expected=total, expected_acks=total if acks_expected else 0)
    saturate = args.rate_per_pair <= 0
    if saturate:
        for sender, _ in sides:
            sender.window = asyncio.Semaphore(args.window)
    # Every Conn hears from exactly one peer side; its handler releases that
    # side's window when one of its messages arrives.
    for sender, receiver in sides:
        receiver.conn.handle = measuring_handler(stats, sender.window)
    # Senders that never receive (direction v2o) still need ack counting.
    for sender, _ in sides:
        if sender.conn.handle == sender.conn._to_inbox:
            sender.conn.handle = measuring_handler(stats, None)

    attached = start_tools(server, args, profile_dir, scenario)
    if attached:
        await asyncio.sleep(1.0)
    if server.profile_out is not None:
        os.kill(server.pid, signal.SIGUSR1)

    pid = server.pid
    io0 = proc_io(pid)
    mach0 = machine_cpu()
    user0, sys0 = proc_cpu_split(pid)
    run0 = thread_runtime_ns(pid)
    lg0 = time.process_time()
    t0 = _now()
    if saturate:
        tasks = [asyncio.create_task(window_sender(s)) for s, _ in sides]
    else:
        per_side_rate = args.rate_per_pair / (2 if args.direction == "both" else 1)
        interval_ns = int(1e9 / per_side_rate)
        start = _now() + 50_000_000
        tasks = [asyncio.create_task(paced_sender(s, start, interval_ns, stats)) for s, _ in sides]
    timeout = args.timeout
    timed_out = False
    try:
        await asyncio.wait_for(stats.done.wait(), timeout)
    except TimeoutError:
        timed_out = True
    t1 = _now()
    lg1 = time.process_time()
    run1 = thread_runtime_ns(pid)
    user1, sys1 = proc_cpu_split(pid)
    mach1 = machine_cpu()
    io1 = proc_io(pid)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if server.profile_out is not None:
        os.kill(server.pid, signal.SIGUSR2)
    stop_tools(attached)

    wall = (t1 - t0) / 1e9
    per_thread = {tid: ns - run0.get(tid, 0) for tid, ns in run1.items()}
    cpu = sum(per_thread.values()) / 1e9
    main_cpu = per_thread.get(pid, 0) / 1e9
    user_cpu, sys_cpu = user1 - user0, sys1 - sys0
    ticks_cpu = user_cpu + sys_cpu
    mach = [b - a for a, b in zip(mach0, mach1, strict=True)]
    mach_total = sum(mach) or 1
    lat = sorted(stats.latencies)
    ack = sorted(stats.ack_latencies)
    lags = sorted(stats.lags)
    delivered = stats.delivered
    result: dict[str, Any] = {
        "scenario": scenario,
        "messages_expected": total,
        "delivered": delivered,
        "acked": stats.acks if acks_expected else None,
        "timed_out": timed_out,
        "errors": stats.errors[:5],
        "error_count": len(stats.errors),
        "wall_s": round(wall, 3),
        "delivered_per_s": round(delivered / wall, 1) if wall else None,
        "latency_ms": {q: round(percentile(lat, f), 3)
                       for q, f in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
        "ack_latency_ms": ({"p50": round(percentile(ack, 0.50), 3),
                            "p99": round(percentile(ack, 0.99), 3)} if acks_expected else None),
        "send_lag_ms": ({"p50": round(percentile(lags, 0.50), 3),
                         "p99": round(percentile(lags, 0.99), 3)} if lags else None),
        "server_cpu_s": round(cpu, 4),
        "server_cpu_s_from_stat_ticks": round(ticks_cpu, 3),
        "server_cpu_main_thread_s": round(main_cpu, 3),
        "server_cpu_other_threads_s": round(cpu - main_cpu, 3),
        "server_cpu_util": round(cpu / wall, 3) if wall else None,
        "server_cpu_us_per_msg": round(cpu / delivered * 1e6, 2) if delivered else None,
        # The same split into user and kernel time (clock ticks of /proc/<pid>/stat):
        # the kernel part is socket sends, epoll and the store's file writes.
        "server_user_us_per_msg": round(user_cpu / delivered * 1e6, 1) if delivered else None,
        "server_sys_us_per_msg": round(sys_cpu / delivered * 1e6, 1) if delivered else None,
        # read()/write() on files only (socket send/recv are not counted here).
        "server_file_syscalls_per_msg": (
            round(((io1.get("syscr", 0) - io0.get("syscr", 0))
                   + (io1.get("syscw", 0) - io0.get("syscw", 0))) / delivered, 2)
            if delivered and io0 else None),
        "server_file_bytes_written_per_msg": (
            round((io1.get("wchar", 0) - io0.get("wchar", 0)) / delivered, 1)
            if delivered and io0 else None),
        # Whole machine over the measured phase: busy (not idle/iowait) and stolen shares,
        # and the cores used by other processes (neither the server nor this one).
        "machine_busy": round(1 - (mach[3] + mach[4]) / mach_total, 3),
        "machine_steal": round(mach[7] / mach_total, 3),
        "other_processes_cores": round(max(0.0, (1 - (mach[3] + mach[4] + mach[7]) / mach_total)
                                           * (os.cpu_count() or 1)
                                           - cpu / wall - (lg1 - lg0) / wall), 2) if wall else None,
        "loadgen_cpu_s": round(lg1 - lg0, 3),
        "loadgen_cpu_util": round((lg1 - lg0) / wall, 3) if wall else None,
    }
    return result


# ---------------------------------------------------------------- scenarios
def _ws_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "compression": "deflate" if args.deflate else None,
        "ping_interval": None,
        "max_size": 2**22,
        "open_timeout": 20,
    }


async def _gather_limited(coros: list[Any], limit: int = 25) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with sem:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


def _split(messages: int, direction: str) -> tuple[int, int]:
    """Messages sent (a→b, b→a) by one pair."""
    if direction == "both":
        return (messages + 1) // 2, messages // 2
    return messages, 0


def _sides(a: Conn, b: Conn, tmpl_a: str, tmpl_b: str, index: int, pairs: int,
           args: argparse.Namespace) -> list[tuple[Side, Side]]:
    n_ab, n_ba = _split(args.messages, args.direction)
    phase = index / pairs  # spread the pairs evenly over one send interval
    side_a = Side(a, tmpl_a, n_ab, phase)
    side_b = Side(b, tmpl_b, n_ba, (phase + 0.5) % 1.0)
    out: list[tuple[Side, Side]] = [(side_a, side_b)]
    if n_ba:
        out.append((side_b, side_a))
    return out


async def chat_scenario(server: ServerProcess, args: argparse.Namespace, scenario: str,
                        profile_dir: Path | None) -> dict[str, Any]:
    pairs = args.pairs
    pad = "x" * max(0, args.size - 22)
    tokens_issuer = auth.OperatorTokens(SECRET_KEY.encode(), 3600)
    op_ids = server.operator_ids
    # One real login proves the accounts work; the other tokens are issued
    # with the node secret (an argon2 verify per login costs ~0.1 s of setup).
    async with httpx.AsyncClient() as http:
        response = await http.post(server.http_url + "/api/login",
                                   json={"username": "bench0", "password": PASSWORD})
        response.raise_for_status()
    tokens = [response.json()["token"]] + [tokens_issuer.issue(OperatorId(o)) for o in op_ids[1:]]
    kw = _ws_kwargs(args)

    async def operator(token: str) -> Conn:
        conn = Conn(await connect(server.url + "/ws/operator", **kw))
        await conn.ws.send(json.dumps({"type": "hello", "token": token, "status": "online"}))
        await conn.expect("welcome")
        return conn

    async def visitor(index: int) -> tuple[Conn, str]:
        conn = Conn(await connect(server.url + "/ws/visitor", **kw))
        await conn.ws.send(json.dumps({"type": "hello", "name": f"pair-{index}"}))
        welcome = await conn.expect("welcome")
        await conn.ws.send(json.dumps({"type": "message", "client_msg_id": "setup",
                                       "text": f"hello from pair {index}"}))
        await conn.expect("ack", lambda f: f.get("client_msg_id") == "setup")
        return conn, str(welcome["session_id"])

    operators = await _gather_limited([operator(t) for t in tokens])
    visitors = await _gather_limited([visitor(i) for i in range(pairs)])
    by_name: dict[str, Conn] = {}
    for op in operators:
        assigned = await op.expect("chat_assigned")
        by_name[assigned["chat"]["visitor"]["name"]] = op
    await asyncio.sleep(SETTLE_SECONDS)
    sides: list[tuple[Side, Side]] = []
    for index, (vconn, session_id) in enumerate(visitors):
        oconn = by_name[f"pair-{index}"]
        sides += _sides(vconn, oconn, message_template(pad, None),
                        message_template(pad, session_id), index, pairs, args)
    try:
        return await run_traffic(server, sides, args, True, profile_dir, scenario)
    finally:
        await asyncio.gather(*(c.close() for c, _ in visitors), *(o.close() for o in operators))


async def relay_scenario(server: ServerProcess, args: argparse.Namespace, scenario: str,
                         profile_dir: Path | None) -> dict[str, Any]:
    pairs = args.pairs
    pad = "x" * max(0, args.size - 22)
    kw = _ws_kwargs(args)

    async def pair(index: int) -> tuple[Conn, Conn]:
        a = Conn(await connect(f"{server.url}/ws/a/p{index}", **kw))
        b = Conn(await connect(f"{server.url}/ws/b/p{index}", **kw))
        await a.ws.send(json.dumps({"type": "setup", "from": "a"}))
        await b.expect("setup")
        await b.ws.send(json.dumps({"type": "setup", "from": "b"}))
        await a.expect("setup")
        return a, b

    conns = await _gather_limited([pair(i) for i in range(pairs)])
    await asyncio.sleep(SETTLE_SECONDS)
    # Same frames as the chat clients send (b's carry a session id of the same length).
    fake_session = "s_" + "0" * 16
    sides: list[tuple[Side, Side]] = []
    for index, (a, b) in enumerate(conns):
        sides += _sides(a, b, message_template(pad, None), message_template(pad, fake_session),
                        index, pairs, args)
    try:
        return await run_traffic(server, sides, args, scenario.startswith("relay-ack"),
                                 profile_dir, scenario)
    finally:
        await asyncio.gather(*(c.close() for ab in conns for c in ab))


async def wait_quiet(limit_s: float, max_cores: float = NOISY_CORES) -> float:
    """Wait (up to ``limit_s``) until other processes use < ``max_cores``; returns their use."""
    deadline = time.monotonic() + limit_s
    while True:
        before = machine_cpu()
        await asyncio.sleep(1.0)
        after = machine_cpu()
        d = [b - a for a, b in zip(before, after, strict=True)]
        total = sum(d) or 1
        busy = (1 - (d[3] + d[4] + d[7]) / total) * (os.cpu_count() or 1)
        steal = d[7] / total
        if (busy < max_cores and steal < NOISY_STEAL) or time.monotonic() >= deadline:
            return busy
        print(f"  waiting for a quiet machine: other processes use {busy:.2f} cores, "
              f"steal {steal:.0%}", file=sys.stderr)


async def run_one(args: argparse.Namespace, scenario: str, work: Path, rep: int) -> dict[str, Any]:
    """Start a fresh server for ``scenario``, measure it, stop it."""
    if args.wait_quiet > 0:
        await wait_quiet(args.wait_quiet)
    profile_dir = Path(args.py_spy) if args.py_spy else None
    tag = scenario if args.repeat == 1 else f"{scenario}-{rep}"
    pstats_out = Path(args.cprofile) / f"{tag}.pstats" if args.cprofile else None
    if pstats_out is not None:
        pstats_out.parent.mkdir(parents=True, exist_ok=True)
        pstats_out.unlink(missing_ok=True)
    if scenario.startswith("relay"):
        server = relay_server(work, pstats_out, ack=scenario.startswith("relay-ack"),
                              wire=scenario.endswith("-wire"))
    elif scenario == "chat-b":
        # The A/B side: chat-normal from --chat-b-root/--chat-b-commit with --chat-b-env.
        server = chat_server(work / f"{scenario}-{rep}", "NORMAL", pstats_out,
                             args.chat_b_root or args.chat_root, args.chat_b_env, "chat-b")
    else:
        sync = scenario.split("-", 1)[1].upper()
        server = chat_server(work / f"{scenario}-{rep}", sync, pstats_out, args.chat_root)
    if not scenario.startswith("relay"):
        server.operator_ids = add_operators(server.log.parent / "chatserver.sqlite3", args.pairs, 1)
    server.profile_out = pstats_out
    server.start()
    try:
        if scenario.startswith("relay"):
            result = await relay_scenario(server, args, scenario, profile_dir)
        else:
            result = await chat_scenario(server, args, scenario, profile_dir)
    finally:
        server.stop()
    result["repeat"] = rep
    if pstats_out is not None:
        result["python_calls_per_msg"] = summarise_pstats(pstats_out, result["delivered"])
    log = server.log.read_text()
    if "Traceback" in log:
        result["server_log_tail"] = log[-2000:]
    print(f"  {tag}: {result['delivered']}/{result['messages_expected']} delivered in "
          f"{result['wall_s']} s, {result['server_cpu_us_per_msg']} µs CPU/msg", file=sys.stderr)
    return result


def export_commit(rev: str, dest: Path) -> str:
    """``git archive REV chatserver`` into ``dest`` (a frozen copy to benchmark);
    returns the commit's short hash."""
    archive = subprocess.run(["git", "archive", rev, "chatserver"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="chatbench-", dir=args.data_root))
    commit = None
    if args.chat_commit:
        args.chat_root = work / "src"
        commit = export_commit(args.chat_commit, args.chat_root)
    if args.chat_b_commit:
        args.chat_b_root = work / "src-b"
        export_commit(args.chat_b_commit, args.chat_b_root)
    code = code_info(args.chat_root)
    if commit is not None:
        code["commit"], code["uncommitted"] = commit, []
    results: list[dict[str, Any]] = []
    # Repeats are interleaved (relay, chat, chat, relay, ...) so that slow
    # drifts of the machine hit every scenario alike.
    try:
        for rep in range(args.repeat):
            for scenario in args.scenarios:
                results.append(await run_one(args, scenario, work, rep))
        if code_info(args.chat_root)["chatserver_sha256"] != code["chatserver_sha256"]:
            # Each scenario starts a fresh server from the files as they are then.
            code["changed_during_run"] = True
    finally:
        if args.keep_data:
            print(f"  data and server logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarise(results, args.scenarios)
    return {
        "config": {
            "pairs": args.pairs, "messages_per_pair": args.messages,
            "rate_per_pair": args.rate_per_pair, "window": args.window,
            "direction": args.direction, "size": args.size, "deflate": args.deflate,
            "repeat": args.repeat,
            "mode": "saturation" if args.rate_per_pair <= 0 else "paced",
        },
        "machine": machine_info(),
        "code": code,
        "results": results,
        "summary": summary,
        "ratios": {k: v["cpu_ratio_vs_relay"] for k, v in summary.items()
                   if v.get("cpu_ratio_vs_relay") is not None and k != "relay"},
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    """Median of ``key`` over the runs that have it (reports saved before it existed lack it)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(_median(values), 1) if values else None


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def round_ratios(results: list[dict[str, Any]], scenario: str,
                 base: str = "relay") -> dict[str, Any] | None:
    """CPU per message of ``scenario`` over ``base``'s (the relay's) in the same round.

    Pairing each run with the relay run of its own round takes out the
    machine's slow drifts, which move both alike. Returns the ratios, their
    mean and its 95 % confidence interval (Student's t), or ``None`` without
    two rounds. Rounds where either run was noisy are left out when at least
    two quiet ones remain.
    """
    relay = {r["repeat"]: r for r in results if r["scenario"] == base and r["delivered"]}
    pairs = [(r, relay[r["repeat"]]) for r in results
             if r["scenario"] == scenario and r["delivered"] and r["repeat"] in relay]
    quiet = [(a, b) for a, b in pairs if not is_noisy(a) and not is_noisy(b)]
    pairs = quiet if len(quiet) >= 2 else pairs
    ratios = [a["server_cpu_us_per_msg"] / b["server_cpu_us_per_msg"] for a, b in pairs
              if a["server_cpu_us_per_msg"] and b["server_cpu_us_per_msg"]]
    if len(ratios) < 2:
        return None
    n = len(ratios)
    mean = sum(ratios) / n
    sd = (sum((x - mean) ** 2 for x in ratios) / (n - 1)) ** 0.5
    half = (_T95[n - 2] if n - 2 < len(_T95) else 1.96) * sd / n**0.5
    return {"ratios": [round(x, 3) for x in ratios], "mean": round(mean, 3),
            "ci95": [round(mean - half, 3), round(mean + half, 3)]}


def summarise(results: list[dict[str, Any]], scenarios: list[str]) -> dict[str, dict[str, Any]]:
    """Medians over the repeats of each scenario, and the CPU ratio to the relay.

    Runs during which other processes used more than ``NOISY_CORES`` are left
    out when there is at least one quiet run of that scenario.
    """
    out: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        every = [r for r in results if r["scenario"] == scenario and r["delivered"]]
        quiet = [r for r in every if not is_noisy(r)]
        runs = quiet or every
        if not runs:
            continue
        cpu = [r["server_cpu_us_per_msg"] for r in runs]
        out[scenario] = {
            "runs": len(runs),
            "noisy_runs_left_out": len(every) - len(runs),
            "delivered": runs[0]["delivered"],
            "delivered_per_s": round(_median([r["delivered_per_s"] for r in runs]), 1),
            "latency_p50_ms": round(_median([r["latency_ms"]["p50"] for r in runs]), 3),
            "latency_p99_ms": round(_median([r["latency_ms"]["p99"] for r in runs]), 3),
            "ack_p50_ms": (round(_median([r["ack_latency_ms"]["p50"] for r in runs]), 3)
                           if runs[0]["ack_latency_ms"] else None),
            "ack_p99_ms": (round(_median([r["ack_latency_ms"]["p99"] for r in runs]), 3)
                           if runs[0]["ack_latency_ms"] else None),
            "server_cpu_util": round(_median([r["server_cpu_util"] for r in runs]), 3),
            "server_cpu_us_per_msg": round(_median(cpu), 1),
            "server_cpu_us_per_msg_min": min(cpu),
            "server_cpu_us_per_msg_max": max(cpu),
            "server_user_us_per_msg": _median_of(runs, "server_user_us_per_msg"),
            "server_sys_us_per_msg": _median_of(runs, "server_sys_us_per_msg"),
            "loadgen_cpu_util": round(_median([r["loadgen_cpu_util"] for r in runs]), 3),
            "other_processes_cores_max": max(r.get("other_processes_cores") or 0 for r in runs),
        }
    relay = out.get("relay")
    for name, row in out.items():
        row["cpu_ratio_vs_relay"] = (
            round(row["server_cpu_us_per_msg"] / relay["server_cpu_us_per_msg"], 2)
            if relay and relay["server_cpu_us_per_msg"] else None)
        if name != "relay":
            row["cpu_ratio_per_round"] = round_ratios(results, name)
        for base in WIRE_BASES:
            if base in out and name.startswith("chat"):
                # Against a relay on the chat server's own WebSocket layer, too.
                row[f"cpu_ratio_per_round_vs_{base}"] = round_ratios(results, name, base)
    return out


def summarise_pstats(path: Path, delivered: int, top: int = 30) -> float | None:
    """Write ``<path>.txt`` (top functions by own time, calls per message);
    returns Python-level calls per delivered message on the event-loop thread."""
    import pstats

    for _ in range(100):  # the server writes it on SIGUSR2
        if path.exists():
            break
        time.sleep(0.05)
    else:
        return None
    time.sleep(0.2)
    stats = pstats.Stats(str(path))
    rows = []
    total_calls = 0
    total_time = 0.0
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in entries:
        total_calls += nc
        total_time += tt
        short = "/".join(Path(filename).parts[-2:]) if filename != "~" else ""
        rows.append((tt, nc, ct, f"{name} ({short}:{line})" if short else name))
    rows.sort(reverse=True)
    per_msg = total_calls / max(1, delivered)
    lines = [f"{path.name}: {total_calls} calls = {per_msg:.1f} per message; "
             f"own time {total_time:.2f} s (cProfile overhead included)",
             f"{'own %':>6} {'calls/msg':>9} {'cum %':>6}  function"]
    for tt, nc, ct, label in rows[:top]:
        lines.append(f"{100 * tt / total_time:6.1f} {nc / max(1, delivered):9.2f} "
                     f"{100 * ct / total_time:6.1f}  {label}")
    path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    return round(total_calls / max(1, delivered), 1)


def code_info(root: Path) -> dict[str, Any]:
    """Which chatserver was measured: git commit, uncommitted files, source hash."""
    import hashlib

    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    digest = hashlib.sha256()
    for path in sorted((root / "chatserver").rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted": [line.strip() for line in
                        git("status", "--porcelain", "--", "chatserver").splitlines()],
        "chatserver_sha256": digest.hexdigest()[:16],
    }


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}


def print_table(report: dict[str, Any]) -> None:
    c = report["config"]
    m = report["machine"]
    rate = (f"max (window {c['window']})" if c["mode"] == "saturation"
            else f"{c['rate_per_pair']:g} msg/s")
    print(f"\n{c['pairs']} pairs x {c['messages_per_pair']} msgs, rate/pair {rate}, "
          f"direction {c['direction']}, ~{c['size']} B text, deflate {c['deflate']}, "
          f"repeat {c['repeat']}; {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}")
    code = report["code"]
    dirty = f", uncommitted: {' '.join(code['uncommitted'])}" if code["uncommitted"] else ""
    print(f"chatserver at {code['commit']} (sources {code['chatserver_sha256']}){dirty}")
    if code.get("changed_during_run"):
        print("!! the chatserver sources changed during the run: the scenarios measured "
              "different code (use --chat-commit to measure a frozen commit)")
    head = (f"{'scenario':<14} {'msg/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ack p50':>7} "
            f"{'ack p99':>7} {'srv CPU':>7} {'µs/msg':>7} {'usr/sys':>9} {'ratio':>6} "
            f"{'lg CPU':>6}")

    def row(name: str, rate: float, p50: float, p99: float, a50: float | None, a99: float | None,
            util: float, us: float, ratio: float | None, lg: float, extra: str = "",
            split: tuple[float | None, float | None] = (None, None)) -> str:
        nan = float("nan")
        usr_sys = f"{split[0]:.0f}/{split[1]:.0f}" if None not in split else "-"
        return (f"{name:<14} {rate:>7.0f} {p50:>7.2f} {p99:>7.2f} "
                f"{a50 if a50 is not None else nan:>7.2f} {a99 if a99 is not None else nan:>7.2f} "
                f"{util:>7.0%} {us:>7.1f} {usr_sys:>9} "
                f"{(f'{ratio:.2f}' if ratio is not None else '-'):>6} {lg:>6.0%}{extra}")

    if c["repeat"] > 1:
        print("every run:")
        print(head)
        print("-" * len(head))
        relay_by_rep = {r["repeat"]: r for r in report["results"] if r["scenario"] == "relay"}
        for r in report["results"]:
            base = relay_by_rep.get(r["repeat"])
            us = r["server_cpu_us_per_msg"]
            ratio = (us / base["server_cpu_us_per_msg"]
                     if base and us and base["server_cpu_us_per_msg"] else None)
            ack = r["ack_latency_ms"] or {}
            lat = r["latency_ms"]
            print(row(f"{r['scenario']}#{r['repeat']}", r["delivered_per_s"], lat["p50"],
                      lat["p99"], ack.get("p50"), ack.get("p99"), r["server_cpu_util"],
                      us, ratio, r["loadgen_cpu_util"],
                      split=(r.get("server_user_us_per_msg"), r.get("server_sys_us_per_msg"))))
        print("median of the runs (quiet runs only, where there are any):")
    print(head)
    print("-" * len(head))
    for name, s in report["summary"].items():
        low, high = s["server_cpu_us_per_msg_min"], s["server_cpu_us_per_msg_max"]
        spread = f"  (µs/msg {low:.0f}-{high:.0f})" if s["runs"] > 1 else ""
        print(row(name, s["delivered_per_s"], s["latency_p50_ms"], s["latency_p99_ms"],
                  s["ack_p50_ms"], s["ack_p99_ms"], s["server_cpu_util"],
                  s["server_cpu_us_per_msg"], s["cpu_ratio_vs_relay"], s["loadgen_cpu_util"],
                  spread, (s.get("server_user_us_per_msg"), s.get("server_sys_us_per_msg"))))
    bases = [("the relay", "cpu_ratio_per_round"),
             *((base, f"cpu_ratio_per_round_vs_{base}") for base in WIRE_BASES)]
    for name, s in report["summary"].items():
        for label, key in bases:
            per_round = s.get(key)
            if per_round:
                low, high = per_round["ci95"]
                print(f"  {name}: per-round ratio to {label} {per_round['mean']:.2f} "
                      f"(95 % CI {low:.2f}-{high:.2f}; "
                      f"{' '.join(f'{x:.2f}' for x in per_round['ratios'])})")
    noisy = [f"{r['scenario']}#{r['repeat']} (others {r['other_processes_cores']:.2f} cores, "
             f"steal {r['machine_steal']:.0%})" for r in report["results"] if is_noisy(r)]
    if noisy:
        print(f"  !! noisy runs (other processes > {NOISY_CORES} cores or steal > "
              f"{NOISY_STEAL:.0%}): " + ", ".join(noisy)
              + "; left out of the medians where a quiet run exists")
    for r in report["results"]:
        if r["timed_out"] or r["error_count"] or r["delivered"] < r["messages_expected"]:
            print(f"  !! {r['scenario']}#{r['repeat']}: delivered {r['delivered']}/"
                  f"{r['messages_expected']}, timed out {r['timed_out']}, "
                  f"errors {r['error_count']} {r['errors'][:2]}")
    print("srv CPU / lg CPU: share of one core used by the server / the load generator while "
          "measuring; µs/msg: server CPU (all threads) per delivered message; usr/sys: the same "
          "split into user and kernel time (clock ticks, so coarser); ratio: µs/msg relative "
          "to the relay (target <= 1.5)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=50,
                   help="visitor/operator (and relay a/b) pairs, each its own two sockets")
    p.add_argument("--messages", type=int, default=200, help="messages per pair")
    p.add_argument("--rate-per-pair", type=float, default=20.0,
                   help="messages per second per pair; 0 = saturation (window-limited)")
    p.add_argument("--window", type=int, default=32,
                   help="saturation mode: messages in flight per sender")
    p.add_argument("--direction", choices=("both", "v2o"), default="both",
                   help="both: half visitor→operator, half operator→visitor; v2o: visitor only")
    p.add_argument("--size", type=int, default=100, help="approximate message text length")
    p.add_argument("--deflate", action="store_true",
                   help="negotiate permessage-deflate (what browsers do); default off")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every scenario N times (interleaved, fresh server each); "
                        "the summary shows medians")
    p.add_argument("--chat-root", type=Path, default=ROOT,
                   help="source tree to run the chat server from (e.g. an exported older "
                        "commit for an A/B comparison; default: this checkout)")
    p.add_argument("--chat-commit", metavar="REV", default=None,
                   help="benchmark this git commit's chatserver/ (exported to a temp dir, so "
                        "edits to the working tree during the run do not leak in)")
    p.add_argument("--wait-quiet", type=float, default=120.0, metavar="S",
                   help="before each scenario wait up to S seconds for other processes to "
                        "use < 0.2 cores and steal < 5%% (0: do not wait)")
    p.add_argument("--timeout", type=float, default=120.0, help="max seconds of the measured phase")
    p.add_argument("--data-root", default=None,
                   help="where the temp data dirs go (default $TMPDIR)")
    p.add_argument("--keep-data", action="store_true",
                   help="keep the temp dir (SQLite files, server logs) after the run")
    p.add_argument("--py-spy", metavar="DIR", default=None,
                   help="profile each server with py-spy (raw folded stacks into DIR); "
                        "profiled runs are not for the CPU figures")
    p.add_argument("--py-spy-args", default="--rate 250 --threads --gil --nonblocking",
                   help="extra py-spy record options (default: %(default)s)")
    p.add_argument("--cprofile", metavar="DIR", default=None,
                   help="run each server under cProfile for the measured phase (pstats and a "
                        "top-functions .txt into DIR); slows the server, not for the CPU figures")
    p.add_argument("--attach", metavar="CMD", default=None,
                   help="shell command run during each measured phase and stopped with SIGINT "
                        "after it; {pid} and {scenario} are filled in, e.g. "
                        "'strace -c -f -o /tmp/{scenario}.strace -p {pid}'")
    p.add_argument("--chat-b-root", metavar="DIR", type=Path, default=None,
                   help="scenario chat-b: run chat-normal from this source tree (A/B in one run)")
    p.add_argument("--chat-b-commit", metavar="REV", default=None,
                   help="scenario chat-b: run chat-normal from this git commit")
    p.add_argument("--chat-b-env", metavar="KEY=VALUE", action="append", default=[],
                   help="scenario chat-b: an extra environment variable of its server "
                        "(repeatable), e.g. CHATSERVER_STORE_JOURNAL_INTERVAL=1")
    p.add_argument("--from-json", metavar="PATH", action="append", default=[],
                   help="measure nothing: print (and with --json rewrite) a saved report; "
                        "given several times, pool their rounds (same code and settings)")
    p.add_argument("--json", metavar="PATH", default=None, help="write the report as JSON")
    args = p.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if args.cprofile:  # absolute: the chat server may run from another directory
        args.cprofile = os.path.abspath(args.cprofile)
    for s in args.scenarios:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    env_b = {}
    for item in args.chat_b_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--chat-b-env wants KEY=VALUE, not {item!r}")
        env_b[key] = value
    args.chat_b_env = env_b
    return args


def pool_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report of the rounds of several saved ones (rounds renumbered,
    each still paired with its own relay run); the first one's header."""
    pooled = dict(reports[0])
    results: list[dict[str, Any]] = []
    scenarios: list[str] = []
    for index, report in enumerate(reports):
        if report["code"].get("chatserver_sha256") != reports[0]["code"].get("chatserver_sha256"):
            print(f"!! report {index + 1} measured other chatserver sources than the first",
                  file=sys.stderr)
        offset = max((r["repeat"] for r in results), default=-1) + 1
        results += [{**r, "repeat": r["repeat"] + offset} for r in report["results"]]
        scenarios += [s for s in report["summary"] if s not in scenarios]
    pooled["results"] = results
    pooled["scenarios"] = scenarios
    if len(reports) > 1:
        pooled["config"] = {**pooled["config"], "repeat": len({r["repeat"] for r in results}),
                            "pooled_reports": len(reports)}
    return pooled


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--load" or a.startswith("--load=") for a in argv):
        # The four loads of issue 23, with a Node load generator: bench/loadgen_node.py.
        import loadgen_node

        return loadgen_node.main(argv)
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.from_json:
        report = pool_reports([json.loads(Path(p).read_text()) for p in args.from_json])
        report["summary"] = summarise(report["results"], report["scenarios"])
        report["ratios"] = {k: v["cpu_ratio_vs_relay"] for k, v in report["summary"].items()
                            if v.get("cpu_ratio_vs_relay") is not None and k != "relay"}
    else:
        report = asyncio.run(run(args))
    print_table(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    bad = [r for r in report["results"]
           if r["timed_out"] or r["delivered"] < r["messages_expected"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
