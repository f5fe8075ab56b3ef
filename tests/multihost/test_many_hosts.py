"""Many hosts for real: two or three ``chatserver serve`` processes, each with a data
directory of its own (no shared file), one PostgreSQL schema and one Redis prefix of
this test. Each case reads the outcome back from PostgreSQL, the source of truth."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatserver.client import OperatorClient, VisitorClient
from chatserver.store.database import Database
from tests.conftest import ServerProcess
from tests.pg import PG_URL, pg_database
from tests.redis_keys import forget_prefix
from tests.waiting import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"
Hosts = Callable[..., list[ServerProcess]]


@pytest.fixture
def database() -> Iterator[Database]:
    with pg_database() as db:
        yield db


@pytest.fixture
def hosts(make_server: Any, tmp_path: Path, database: Database) -> Iterator[Hosts]:
    """``hosts(n, **env)`` starts n nodes: own data dirs, one schema, one Redis prefix."""
    prefix = f"cst-{uuid.uuid4().hex[:8]}"
    started: list[ServerProcess] = []

    def start(n: int, **env: str) -> list[ServerProcess]:
        nodes = []
        for i in range(n):
            node: ServerProcess = make_server(
                env={
                    "CHATSERVER_REDIS_URL": REDIS_URL,
                    "CHATSERVER_REDIS_PREFIX": prefix,
                    "CHATSERVER_NODE_ID": f"host{i}",
                    "CHATSERVER_RATE_LIMIT_PER_10S": "100000",
                    **env,
                },
                data_dir=tmp_path / f"host{i}",
                database=database,
            )
            node.start()
            nodes.append(node)
        started.extend(nodes)
        return nodes

    yield start
    # The nodes stop before their schema is dropped (make_server's own teardown runs
    # after this one and finds them stopped).
    for node in started:
        node.stop()
    assert len({n.data_dir for n in started}) == len(started)

    forget_prefix(prefix)


def rows(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_URL, **db.pg_kwargs()) as conn:
        return conn.execute(query, params).fetchall()


def stored_messages(db: Database, session_id: str) -> list[tuple[int, str, str]]:
    """(seq, sender, text) of a chat's messages in PostgreSQL, in seq order."""
    return [
        (int(seq), str(sender), str(text))
        for seq, sender, text in rows(
            db,
            "SELECT seq, sender, text FROM messages WHERE session_id = %s ORDER BY seq",
            session_id,
        )
    ]


def assert_gapless(messages: list[tuple[int, str, str]]) -> None:
    seqs = [m[0] for m in messages]
    assert seqs == list(range(1, len(seqs) + 1)), "gap or duplicate seq"


# ------------------------------------------------------------------ one chat, many hosts
async def test_a_chat_across_hosts_loses_and_repeats_nothing(
    hosts: Hosts, database: Database, clients: list[Any]
) -> None:
    a, b, c = hosts(3)
    assert len({n.data_dir for n in (a, b, c)}) == 3
    a.add_operator("anna", name="Anna")
    op = await b.operator("anna")
    v = await a.visitor(name="Vera")
    clients += [op, v]
    first = await v.send("Grüezi from host A")
    assert (await op.next_chat())["session_id"] == v.session_id
    await op.wait_for("message", lambda f: f.get("seq") == first)

    # Both sides write at once from two hosts into one chat: one numbering, in the store.
    async def visitor_burst() -> list[int]:
        return [await v.send(f"v{i}") for i in range(150)]

    async def operator_burst() -> list[int]:
        return [await op.send_to(v.session_id, f"o{i}") for i in range(150)]

    v_acks, o_acks = await asyncio.gather(visitor_burst(), operator_burst())
    assert len(set(v_acks) | set(o_acks)) == 300, "two messages acked with one seq"
    last = max(v_acks + o_acks)
    await op.wait_for("message", lambda f: f.get("seq") == max(v_acks), timeout=20)
    await v.wait_for("message", lambda f: f.get("seq") == max(o_acks), timeout=20)

    # A third host sees the same history when the visitor resumes there.
    v_on_c = await VisitorClient.connect(c.url, token=v.token, last_seq=0)
    clients.append(v_on_c)
    await v_on_c.wait_for("replay_done")

    stored = stored_messages(database, v.session_id)
    assert_gapless(stored)
    texts = Counter(text for _seq, _sender, text in stored)
    for i in range(150):
        assert texts[f"v{i}"] == 1 and texts[f"o{i}"] == 1, i
    by_seq = {seq: text for seq, _s, text in stored}
    assert [by_seq[s] for s in v_acks] == [f"v{i}" for i in range(150)]
    assert [by_seq[s] for s in o_acks] == [f"o{i}" for i in range(150)]
    # Every client got each message once, in order, whichever host it sat on.
    op_seen = [f["seq"] for f in op.seen("message")]
    assert len(op_seen) == len(set(op_seen)) and op_seen == sorted(op_seen)
    assert set(v_acks) <= set(op_seen)
    v_seen = [f["seq"] for f in v.seen("message")]
    assert len(v_seen) == len(set(v_seen)) and set(o_acks) <= set(v_seen)
    replayed = [f["seq"] for f in v_on_c.seen("message")]
    assert replayed == sorted(set(replayed)) and max(replayed) >= last


# ------------------------------------------------------------------ a host dies
async def test_kill_9_of_a_host_requeues_its_chats_on_the_others(
    hosts: Hosts, database: Database, clients: list[Any]
) -> None:
    a, b, c = hosts(3, CHATSERVER_PRESENCE_TTL="1", CHATSERVER_OPERATOR_GRACE_SECONDS="1")
    a.add_operator("anna", name="Anna", capacity=3)
    a.add_operator("carl", name="Carl", capacity=3)
    anna = await b.operator("anna")
    carl = await c.operator("carl", status="away")
    clients.append(carl)
    acked: dict[str, list[int]] = {}
    visitors = []
    # Anna's host b dies; so does the socket of the third visitor, who sat on b too.
    for i, node in enumerate((a, c, b)):
        v = await node.visitor(name=f"V{i}")
        clients.append(v)
        visitors.append(v)
        acked[v.session_id] = [await v.send(f"help {i}")]
        await anna.next_chat()
    for v in visitors:
        for k in range(20):
            acked[v.session_id].append(await anna.send_to(v.session_id, f"answer {k}"))
            acked[v.session_id].append(await v.send(f"more {k}"))

    b.kill9()
    await visitors[2].wait_closed()
    visitors[2] = await VisitorClient.connect(
        a.url, token=visitors[2].token, last_seq=max(acked[visitors[2].session_id])
    )
    clients.append(visitors[2])
    for v in visitors:
        await v.wait_for("message", lambda f: f.get("event") == "requeued", timeout=20)
    await carl.set_status("online")
    taken = {(await carl.next_chat(timeout=20))["session_id"] for _ in visitors}
    assert taken == {v.session_id for v in visitors}
    for v in visitors:
        await carl.wait_for("replay_done", lambda f, s=v.session_id: f["session_id"] == s)
        stored = stored_messages(database, v.session_id)
        assert_gapless(stored)
        seqs = [m[0] for m in stored]
        assert set(acked[v.session_id]) <= set(seqs), "an acked message is gone"
        assert len(acked[v.session_id]) == len(set(acked[v.session_id]))
        texts = Counter(text for _seq, _sender, text in stored)
        assert all(texts[f"more {k}"] == 1 and texts[f"answer {k}"] == 1 for k in range(20))
        history = [f["seq"] for f in carl.seen("message") if f["session_id"] == v.session_id]
        assert set(acked[v.session_id]) <= set(history)
        reply = await carl.send_to(v.session_id, "Carl here")
        got = await v.wait_for("message", lambda f: f["text"] == "Carl here")
        assert got["seq"] == reply
        assert await v.send("thanks, Carl") > reply
    (owner,) = {
        r[0]
        for r in rows(
            database,
            "SELECT operator_id FROM sessions WHERE id = ANY(%s)",
            [v.session_id for v in visitors],
        )
    }
    assert owner == carl.welcome["operator"]["id"]


# ------------------------------------------------------------------ assignment races
async def test_concurrent_arrivals_on_every_host_are_never_assigned_twice(
    hosts: Hosts, database: Database, clients: list[Any]
) -> None:
    nodes = hosts(3)
    ops: list[OperatorClient] = []
    for i in range(6):
        nodes[0].add_operator(f"op{i}", capacity=2)
    for i in range(6):
        ops.append(await nodes[i % 3].operator(f"op{i}"))
    clients.extend(ops)

    async def arrive(i: int) -> VisitorClient:
        v = await VisitorClient.connect(nodes[i % 3].url)
        await v.send(f"visitor {i}")
        return v

    visitors = list(await asyncio.gather(*(arrive(i) for i in range(40))))
    clients.extend(visitors)
    owner: dict[str, str] = {}

    def collect() -> int:
        for op in ops:
            me = op.welcome["operator"]["id"]
            for f in op.seen("chat_assigned"):
                sid = f["chat"]["session_id"]
                assert owner.setdefault(sid, me) == me, f"{sid} assigned twice"
        return len(owner)

    await eventually(lambda: collect() >= 12, timeout=20, interval=0.1, message="12 chats")
    await asyncio.sleep(0.5)  # room for a wrong second assignment to show (none may)
    assert collect() == 12
    load = Counter(owner.values())
    assert set(load.values()) == {2}, load
    stored = rows(database, "SELECT id, operator_id FROM sessions WHERE state = 'assigned'")
    assert {sid: op for sid, op in stored} == owner
    waiting = rows(database, "SELECT COUNT(*) FROM sessions WHERE state = 'waiting'")
    assert waiting == [(28,)]


# ------------------------------------------------------------------ an operator moves
async def test_an_operator_who_returns_on_another_host_keeps_the_chat(
    hosts: Hosts, database: Database, clients: list[Any]
) -> None:
    a, b = hosts(2, CHATSERVER_OPERATOR_GRACE_SECONDS="3")
    a.add_operator("anna", name="Anna")
    a.add_operator("bert", name="Bert")
    anna = await a.operator("anna")
    v = await a.visitor()
    clients.append(v)
    await v.send("help me")
    assert (await anna.next_chat())["session_id"] == v.session_id
    await anna.send_to(v.session_id, "on it")
    # Bert drops after Anna and does not come back: his re-queue is this test's clock.
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
    await w.wait_for("message", lambda f: f.get("event") == "requeued", timeout=20)
    marker = await anna_b.send_to(v.session_id, "still here")
    got = await v.wait_for("message", lambda f: f["text"] == "still here")
    assert got["seq"] == marker
    assert [f for f in v.seen("message") if f.get("event") in ("requeued", "closed")] == []
    await v.send("thanks")
    await anna_b.wait_for("message", lambda f: f["text"] == "thanks")
    ((state, operator_id),) = rows(
        database, "SELECT state, operator_id FROM sessions WHERE id = %s", v.session_id
    )
    assert (state, operator_id) == ("assigned", anna_b.welcome["operator"]["id"])
    assert_gapless(stored_messages(database, v.session_id))
