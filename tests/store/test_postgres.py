"""What the PostgreSQL store does beyond the shared contract (``test_contract.py``).

Lost connections (PostgreSQL restarted under a node) are replaced, reads and writes go
on; several stores writing many sessions at once number each without gap or
duplicate, even where their batches lock sessions in different orders; a batch is one
transaction, so a failing write's neighbours still commit.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatserver.store.base import DuplicateMessage, MessageRecord, SessionRecord
from chatserver.store.database import Database, connect
from chatserver.store.postgres.store import PostgresStore
from chatserver.types import SessionId, SessionState
from tests.pg import pg_database


def msg(session: str, cmid: str | None = None, sender: str = "visitor") -> MessageRecord:
    return MessageRecord(SessionId(session), 0, 1000, sender, None, "V", "hi", cmid)


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    with pg_database() as database:
        yield database


@pytest.fixture
async def stores(db: Database) -> AsyncIterator[list[PostgresStore]]:
    opened: list[PostgresStore] = []
    for _ in range(3):
        store = PostgresStore(db, max_batch=64)
        await store.open()
        opened.append(store)
    yield opened
    for store in opened:
        if store.healthy:
            await store.close()


def terminate(db: Database, pids: set[int]) -> None:
    with connect(db) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(?)", (pid,))


async def backend_pids(store: PostgresStore) -> set[int]:
    """The server processes of the store's connections (writer, every pooled reader)."""
    assert store._wconn is not None
    pids = {store._wconn.info.backend_pid}
    assert store._pool is not None
    held: list[Any] = []
    for _ in range(store.pool_size):
        conn = await store._pool.getconn()
        held.append(conn)
        pids.add(conn.info.backend_pid)
    for conn in held:
        await store._pool.putconn(conn)
    return pids


async def test_lost_connections_are_replaced(db: Database, stores: list[PostgresStore]) -> None:
    store = stores[0]
    assert await store.submit_message(msg("s", "a")) == 1
    terminate(db, await backend_pids(store))
    # The next write finds its connection gone, reconnects and commits it once.
    assert await store.submit_message(msg("s", "b")) == 2
    rows = await store.messages_after(SessionId("s"), 0, 10)
    assert [r.client_msg_id for r in rows] == ["a", "b"]
    assert store.healthy
    # A resend after the reconnect is still a duplicate.
    with pytest.raises(DuplicateMessage) as err:
        await store.submit_message(msg("s", "b"))
    assert err.value.seq == 2


async def test_many_stores_many_sessions_no_gap_no_duplicate(
    stores: list[PostgresStore],
) -> None:
    sessions = [f"s{i}" for i in range(12)]
    rng = random.Random(7)
    plan = [(rng.randrange(3), rng.choice(sessions), f"c{n}") for n in range(1500)]
    futures = [stores[i].submit_message(msg(sid, cmid)) for i, sid, cmid in plan]
    # Every message of a client is sent twice, by another store: stored once.
    again = [stores[(i + 1) % 3].submit_message(msg(sid, cmid)) for i, sid, cmid in plan[:200]]
    seqs = await asyncio.gather(*futures, *again, return_exceptions=True)
    firsts = seqs[: len(plan)]
    assert all(isinstance(s, int) for s in firsts), [s for s in firsts if not isinstance(s, int)]
    by_session: dict[str, list[int]] = {}
    for (_, sid, _), seq in zip(plan, firsts, strict=True):
        assert isinstance(seq, int)
        by_session.setdefault(sid, []).append(seq)
    # The resends: each either the duplicate of its first, or (if it came first) the
    # first itself with the "first" then the duplicate.
    for (_, sid, cmid), got, first in zip(plan[:200], seqs[len(plan) :], firsts, strict=False):
        assert isinstance(got, DuplicateMessage) or got == first, (sid, cmid, got, first)
    for sid, got in by_session.items():
        stored = await stores[0].messages_after(SessionId(sid), 0, 10_000)
        assert [r.seq for r in stored] == list(range(1, len(stored) + 1)), sid
        assert len(stored) == len(got) and sorted(got) == [r.seq for r in stored], sid


async def test_transitions_race_across_stores_and_sessions(stores: list[PostgresStore]) -> None:
    for i in range(20):
        await stores[0].submit_session(
            SessionRecord(SessionId(f"w{i}"), f"h{i}", SessionState.WAITING, float(i))
        )
    results = await asyncio.gather(
        *(
            store.submit_transition(
                SessionId(f"w{i}"),
                (SessionState.WAITING,),
                state=SessionState.ASSIGNED,
                operator_id=f"o{k}",
            )
            for i in range(20)
            for k, store in enumerate(stores)
        )
    )
    won = [r for r in results if r is not None]
    assert len(won) == 20  # one winner per session, whichever store
    assert all(r.state is SessionState.WAITING and r.operator_id is None for r in won)
    for i in range(20):
        record = await stores[1].session(SessionId(f"w{i}"))
        assert record is not None and record.state is SessionState.ASSIGNED


async def test_a_nul_character_is_stored_as_a_replacement(stores: list[PostgresStore]) -> None:
    # PostgreSQL's text cannot hold NUL (SQLite's can): stored as U+FFFD, never an error.
    store = stores[0]
    await store.submit_session(
        SessionRecord(SessionId("n"), "hn", SessionState.NEW, 1.0, visitor_name="V\x00")
    )
    alone = MessageRecord(SessionId("n"), 0, 1, "visitor", None, "V", "a\x00b", "c\x00")
    assert await store.submit_message(alone) == 1
    batch = [store.submit_message(msg("n", f"k{i}")) for i in range(3)]
    batch.append(
        store.submit_message(MessageRecord(SessionId("n"), 0, 1, "visitor", None, "\x00", "\x00"))
    )
    assert await asyncio.gather(*batch) == [2, 3, 4, 5]
    rows = await store.messages_after(SessionId("n"), 0, 10)
    assert (rows[0].text, rows[0].client_msg_id, rows[4].author) == (
        "a\ufffdb",
        "c\ufffd",
        "\ufffd",
    )
    record = await store.session(SessionId("n"))
    assert record is not None and record.visitor_name == "V\ufffd"
    with pytest.raises(DuplicateMessage):  # the same id again: the same replacement
        await store.submit_message(alone)


async def test_a_message_that_is_not_utf8_fails_alone(stores: list[PostgresStore]) -> None:
    # A lone surrogate cannot be encoded: the batch is refused, each message then tried
    # alone; the others are stored, numbered without a gap.
    store = stores[0]
    await store.submit_session(SessionRecord(SessionId("u"), "hu", SessionState.NEW, 1.0))
    bad = MessageRecord(SessionId("u"), 0, 1, "visitor", None, "V", "a\ud800b", "bad")
    batch = [store.submit_message(msg("u", "k0")), store.submit_message(bad)]
    batch.append(store.submit_message(msg("u", "k1")))
    outcomes = await asyncio.gather(*batch, return_exceptions=True)
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], Exception) and not isinstance(outcomes[1], DuplicateMessage)
    rows = await store.messages_after(SessionId("u"), 0, 10)
    assert [(r.seq, r.client_msg_id) for r in rows] == [(1, "k0"), (2, "k1")]
    assert store.healthy


async def test_one_batch_numbers_each_session_and_answers_its_duplicates(
    stores: list[PostgresStore],
) -> None:
    store = stores[0]
    assert await store.submit_message(msg("a", "old")) == 1
    operator = MessageRecord(SessionId("a"), 0, 1, "operator", "o1", "Sam", "hi", "x")
    batch = [
        msg("a", "x"),  # 2
        msg("b", "x"),  # 1: another session
        operator,  # 3: the same id from another sender
        msg("a", "x"),  # the first of this batch again: its seq, nothing stored
        msg("a", "old"),  # stored before: that seq
        msg("a"),  # 4: no client id
        msg("a"),  # 5: no client id, not a duplicate
        msg("b", "x"),  # duplicate in session b
        msg("b", "y"),  # 2
    ]
    got = await asyncio.gather(*(store.submit_message(m) for m in batch), return_exceptions=True)
    assert store.last_batch_size == len(batch)
    plain = [("dup", g.seq) if isinstance(g, DuplicateMessage) else g for g in got]
    assert plain == [2, 1, 3, ("dup", 2), ("dup", 1), 4, 5, ("dup", 1), 2]
    rows = await store.messages_after(SessionId("a"), 0, 10)
    assert [(r.seq, r.sender, r.client_msg_id) for r in rows] == [
        (1, "visitor", "old"),
        (2, "visitor", "x"),
        (3, "operator", "x"),
        (4, "visitor", None),
        (5, "visitor", None),
    ]


async def test_a_batch_with_other_writes_numbers_its_messages_alike(
    stores: list[PostgresStore],
) -> None:
    # A session and its messages in one batch: the pipelined path, the same numbering.
    store = stores[0]
    futures: list[asyncio.Future[Any]] = [
        store.submit_session(SessionRecord(SessionId("m"), "hm", SessionState.NEW, 1.0))
    ]
    futures += [store.submit_message(msg("m", f"c{i % 3}")) for i in range(5)]
    got = await asyncio.gather(*futures, return_exceptions=True)
    assert store.last_batch_size == 6
    plain = [("dup", g.seq) if isinstance(g, DuplicateMessage) else g for g in got]
    assert plain == [None, 1, 2, 3, ("dup", 1), ("dup", 2)]
    rows = await store.messages_after(SessionId("m"), 0, 10)
    assert [(r.seq, r.client_msg_id) for r in rows] == [(1, "c0"), (2, "c1"), (3, "c2")]
