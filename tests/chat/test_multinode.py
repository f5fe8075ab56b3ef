"""Several real ``chatserver serve`` nodes sharing one Redis and one SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from chatserver.client import VisitorClient
from chatserver.presence.redis import RedisPresence
from chatserver.types import OperatorId
from tests.conftest import free_port
from tests.redis_keys import forget_prefix
from tests.waiting import eventually, eventually_sync

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def cluster(make_server, tmp_path):
    """``cluster(n, **env)`` starts n nodes on one data dir and one Redis prefix."""
    prefix = f"cst-{uuid.uuid4().hex[:8]}"

    def start(n: int, redis_url: str = REDIS_URL, **env: str):
        nodes = []
        for i in range(n):
            node = make_server(
                env={
                    "CHATSERVER_REDIS_URL": redis_url,
                    "CHATSERVER_REDIS_PREFIX": prefix,
                    "CHATSERVER_NODE_ID": f"node{i}",
                    "CHATSERVER_RATE_LIMIT_PER_10S": "100000",
                    **env,
                },
                data_dir=tmp_path / "shared",
            )
            node.start()
            nodes.append(node)
        return nodes

    yield start

    forget_prefix(prefix)


async def test_visitor_and_operator_on_different_nodes(cluster, clients):
    a, b = cluster(2)
    a.add_operator("anna", name="Anna")
    op = await b.operator("anna")
    v = await a.visitor(name="Vera")
    clients += [op, v]
    seq = await v.send("Grüezi from node A")
    chat = await op.next_chat()
    assert chat["session_id"] == v.session_id
    assert chat["visitor"]["connected"] is True  # connected to node A, seen from B
    got = await op.wait_for("message", lambda f: f["from"] == "visitor")
    assert (got["seq"], got["text"]) == (seq, "Grüezi from node A")
    assigned = await v.wait_for("state", lambda f: f["state"] == "assigned")
    assert assigned["operator"]["name"] == "Anna"
    reply = await op.send_to(v.session_id, "Hello from node B")
    assert (await v.wait_for("message", lambda f: f["from"] == "operator"))["seq"] == reply
    # typing and receipts cross too
    await v.send_frame({"type": "typing", "active": True})
    assert (await op.wait_for("typing"))["from"] == "visitor"
    await op.send_frame({"type": "typing", "session_id": v.session_id, "active": True})
    assert (await v.wait_for("typing"))["from"] == "operator"
    await v.send_frame({"type": "read", "seq": reply})
    assert (await op.wait_for("read"))["seq"] == reply
    # both sides see one gap-free sequence
    await v.send("and once more")
    await op.wait_for("message", lambda f: f["text"] == "and once more")
    op_seqs = [f["seq"] for f in op.seen("message")] + [reply]  # its own: acked, not echoed
    assert sorted(op_seqs) == list(range(1, max(op_seqs) + 1)), [
        (g.get("type"), g.get("seq"), g.get("event"), g.get("text"))
        for g in (f.get("was", f) for f in op.frames)
    ]
    # the visitor's page change and presence reach the operator's node
    await v.send_frame({"type": "info", "page_url": "https://shop.example/checkout"})
    info = await op.wait_for("visitor", lambda f: f["page_url"] == "https://shop.example/checkout")
    assert info["connected"] is True
    # closing on B reaches the visitor on A
    await op.send_frame({"type": "close_chat", "session_id": v.session_id})
    await v.wait_for("state", lambda f: f["state"] == "closed")


async def test_visitor_presence_across_nodes(cluster, clients):
    a, b = cluster(2)
    a.add_operator("anna")
    op = await b.operator("anna")
    clients.append(op)
    v = await a.visitor()
    await v.send("hi")
    await op.next_chat()
    token = v.token
    await v.close()
    gone = await op.wait_for("visitor", lambda f: f["connected"] is False)
    assert gone["session_id"] == v.session_id
    # Back on the operator's own node this time.
    v2 = await VisitorClient.connect(b.url, token=token, last_seq=2)
    clients.append(v2)
    back = await op.wait_for("visitor", lambda f: f["connected"] is True)
    assert back["session_id"] == v.session_id
    # A fresh console on node A sees the visitor as connected (presence in Redis).
    op2 = await a.operator("anna", status=None)
    clients.append(op2)
    (chat,) = op2.welcome["chats"]
    assert chat["visitor"]["connected"] is True


async def test_bus_subscriber_killed_mid_traffic_loses_nothing(cluster, clients):
    a, b = cluster(2)
    a.add_operator("anna")
    op = await b.operator("anna")
    v = await a.visitor()
    clients += [op, v]
    await v.send("start")
    await op.next_chat()
    admin = Redis.from_url(REDIS_URL)
    try:
        sent = []
        for i in range(120):
            sent.append(await v.send(f"m{i}"))
            if i in (30, 80):
                await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    finally:
        await admin.aclose()
    await op.wait_for("message", lambda f: f["seq"] == sent[-1], timeout=15)
    seqs = [f["seq"] for f in op.seen("message")]
    assert seqs == list(range(1, sent[-1] + 1)), "gap, duplicate or disorder"


async def test_kill_9_of_operator_node_requeues_to_other_node(cluster, clients):
    a, b, c = cluster(3, CHATSERVER_PRESENCE_TTL="1", CHATSERVER_OPERATOR_GRACE_SECONDS="1")
    a.add_operator("anna", name="Anna")
    a.add_operator("carl", name="Carl")
    anna = await b.operator("anna")
    carl = await c.operator("carl", status="away")
    clients.append(carl)
    v = await a.visitor()
    clients.append(v)
    acked = [await v.send("help me")]
    await anna.next_chat()
    acked.append(await anna.send_to(v.session_id, "on it"))
    b.kill9()
    note = await v.wait_for("message", lambda f: f.get("event") == "requeued", timeout=15)
    assert "Anna" in note["text"]
    await v.wait_for("state", lambda f: f["state"] == "waiting")
    await carl.set_status("online")
    chat = await carl.next_chat()
    assert chat["session_id"] == v.session_id
    await carl.wait_for("replay_done", lambda f: f["session_id"] == v.session_id)
    history = [f["seq"] for f in carl.seen("message")]
    assert set(acked) <= set(history)


async def test_operator_back_on_another_node_within_grace_keeps_chats(cluster, clients):
    """Anna drops on node A and says hello on node B within the grace: A stands down."""
    a, b = cluster(2, CHATSERVER_OPERATOR_GRACE_SECONDS="4")
    a.add_operator("anna", name="Anna")
    a.add_operator("bert", name="Bert")
    anna = await a.operator("anna")
    v = await a.visitor()
    clients.append(v)
    await v.send("help me")
    assert (await anna.next_chat())["session_id"] == v.session_id
    # Bert takes a second chat on A; his drop (after Anna's) is the clock of this test:
    # his chat is re-queued only after a grace that started after Anna's.
    bert = await a.operator("bert")
    w = await a.visitor()
    clients.append(w)
    await w.send("me too")
    assert (await bert.next_chat())["session_id"] == w.session_id
    last = max(f["seq"] for f in anna.seen("message"))
    await anna.close()
    await bert.close()
    anna_b = await b.operator("anna", status=None, sessions={v.session_id: last})
    clients.append(anna_b)
    assert [c["session_id"] for c in anna_b.welcome["chats"]] == [v.session_id]
    # Bert's grace ran out (so Anna's would have too): his visitor is told.
    await w.wait_for("message", lambda f: f.get("event") == "requeued")
    # Anna still owns her chat and reaches her visitor; the marker is the last word.
    marker = await anna_b.send_to(v.session_id, "still here (marker)")
    got = await v.wait_for("message", lambda f: f["text"] == "still here (marker)")
    assert got["seq"] == marker
    notices = [f for f in v.seen("message") if f.get("event") in ("requeued", "closed")]
    assert notices == [], notices
    states = [f["state"] for f in v.seen("state")]
    assert set(states[states.index("assigned") :]) == {"assigned"}, states
    assert not [f for f in anna_b.seen("chat_removed") if f["session_id"] == v.session_id]
    await v.send("thanks")
    await anna_b.wait_for("message", lambda f: f["text"] == "thanks")


async def test_visitor_of_dead_node_resumes_on_another(cluster, clients):
    a, b = cluster(2)
    a.add_operator("anna")
    op = await b.operator("anna")
    clients.append(op)
    v = await a.visitor()
    await v.send("before the crash")
    await op.next_chat()
    token = v.token
    a.kill9()
    sent = [await op.send_to(v.session_id, f"while you were away {i}") for i in range(3)]
    v2 = await VisitorClient.connect(b.url, token=token, last_seq=1)
    clients.append(v2)
    await v2.wait_for("replay_done")
    got = [f["seq"] for f in v2.seen("message")]
    assert set(sent) <= set(got) and got == sorted(set(got))
    assert await v2.send("I'm back") > sent[-1]
    await op.wait_for("message", lambda f: f["text"] == "I'm back")


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of our own that the test may stop and start."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (CI installs it)"
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )

        def answers() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                return True
            return False

        eventually_sync(answers, timeout=10, interval=0.05, message="redis-server answering")
        return proc

    state = {"proc": start()}

    class Handle:
        url = f"redis://127.0.0.1:{port}/0"

        def stop(self) -> None:
            state["proc"].kill()
            state["proc"].wait(5)

        def restart(self) -> None:
            state["proc"] = start()

    yield Handle()
    state["proc"].kill()
    state["proc"].wait(5)


async def health_is(node, status: str) -> bool:
    async with httpx.AsyncClient() as http:
        health = (await http.get(node.http_url + "/healthz", timeout=5)).json()
    return bool(health["status"] == status)


async def test_redis_down_degrades_and_recovers(cluster, private_redis, clients):
    (a,) = cluster(1, redis_url=private_redis.url)
    a.add_operator("anna", capacity=1)
    op = await a.operator("anna")
    clients.append(op)
    v1 = await a.visitor()
    clients.append(v1)
    await v1.send("hello")
    await op.next_chat()

    private_redis.stop()
    # The chat the node holds keeps working.
    assert await v1.send("still here?") > 0
    await op.send_to(v1.session_id, "yes, still here")
    await eventually(lambda: health_is(a, "degraded"), timeout=10, message="/healthz degraded")
    # A new visitor is told clearly, and nothing is corrupted.
    v2 = await a.visitor()
    clients.append(v2)
    await v2.send("anyone?")
    err = await v2.wait_for("error", timeout=10)
    assert err["code"] == "unavailable" and "cannot connect you" in err["message"]

    private_redis.restart()
    await eventually(lambda: health_is(a, "ok"), timeout=20, message="/healthz ok again")
    # Redis came back empty: Anna's load is rebuilt from the store, so she (capacity 1,
    # one open chat) does not get the waiting visitor on top. Seen in Redis itself,
    # through the presence API: her load is 1 and he is queued again, not assigned.
    presence = RedisPresence(
        Redis.from_url(private_redis.url),
        prefix=a.env["CHATSERVER_REDIS_PREFIX"],
        node_id="test-observer",
    )
    anna_id = OperatorId(op.welcome["operator"]["id"])

    async def rebuilt() -> bool:
        slot = await presence.operator(anna_id)
        queued = [e.session_id for e in await presence.queue_snapshot()]
        return slot is not None and slot.load == 1 and v2.session_id in queued

    try:
        await eventually(rebuilt, timeout=10, message="Anna's load 1 and the visitor queued")
    finally:
        await presence.redis.aclose()
    assert not [f for f in op.seen("chat_assigned") if f["chat"]["session_id"] == v2.session_id]
    # The waiting visitor is queued again and served when capacity frees.
    await op.send_frame({"type": "close_chat", "session_id": v1.session_id})
    chat = await op.next_chat(timeout=15)
    assert chat["session_id"] == v2.session_id


@pytest.mark.timeout(300)
async def test_three_nodes_thousand_visitors(cluster, clients):
    # Every assignment is a few commits on the one shared SQLite file; NORMAL
    # (inline commits, no fsync) keeps the write lock short across three nodes.
    nodes = cluster(3, CHATSERVER_STORE_SYNCHRONOUS="NORMAL")
    ops = []
    for i in range(20):
        nodes[0].add_operator(f"op{i:02d}", capacity=5)
    for i in range(20):
        ops.append(await nodes[i % 3].operator(f"op{i:02d}"))
    clients.extend(ops)

    async def arrive(i: int) -> VisitorClient:
        v = await VisitorClient.connect(nodes[i % 3].url)
        await v.send(f"visitor {i}")
        return v

    visitors = []
    for start in range(0, 1000, 100):
        visitors += await asyncio.gather(*(arrive(i) for i in range(start, start + 100)))
    clients.extend(visitors)

    assigned: dict[str, str] = {}

    def collect() -> None:
        for op in ops:
            for f in op.seen("chat_assigned"):
                sid = f["chat"]["session_id"]
                assert (
                    assigned.setdefault(sid, op.welcome["operator"]["id"])
                    == op.welcome["operator"]["id"]
                ), f"{sid} assigned twice"

    # Every operator fills up (100 slots); the console frames may lag under load.
    def filled() -> bool:
        collect()
        return len(assigned) >= 100

    await eventually(filled, timeout=20, interval=0.2, message="100 chats assigned")
    assert len(assigned) == 100
    # Close chats on every node until the queue has drained.
    closed: set[str] = set()
    deadline = asyncio.get_running_loop().time() + 240
    while asyncio.get_running_loop().time() < deadline:
        collect()
        for op in ops:
            # What the console holds: assigned, not taken back (chat_removed), not closed.
            mine = dict.fromkeys(f["chat"]["session_id"] for f in op.seen("chat_assigned"))
            removed = {f.get("session_id") for f in op.seen("chat_removed")}
            open_now = [s for s in mine if s not in closed and s not in removed]
            assert len(open_now) <= 5, "operator over capacity"
            for sid in open_now:
                closed.add(sid)
                await op.send_frame({"type": "close_chat", "session_id": sid})
        if len(closed) == 1000:
            break
        await asyncio.sleep(0.3)
    collect()
    errors = [e for op in ops for e in op.seen("error")]
    assert len(assigned) == 1000, (len(closed), errors[:5])
    assert sorted(assigned) == sorted(v.session_id for v in visitors)
