"""SQLite store: group commit, write isolation, migrations, sharing a file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from chatserver.store.base import MessageRecord, SessionRecord
from chatserver.store.sqlite import (
    SCHEMA_VERSION,
    DuplicateMessage,
    SqliteStore,
    connect_sync,
    migrate,
)
from chatserver.types import SessionId, SessionState


def msg(session: str, seq: int, cmid: str | None = None) -> MessageRecord:
    return MessageRecord(SessionId(session), seq, 1000 + seq, "visitor", None, "V", f"m{seq}", cmid)


async def open_store(tmp_path) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    return store


async def test_many_writes_commit_in_few_batches(tmp_path):
    store = await open_store(tmp_path)
    await store.submit_session(SessionRecord(SessionId("s1"), "h", SessionState.NEW, 0.0))
    futures = [store.submit_message(msg("s1", 0, f"c{i}")) for i in range(1, 1001)]
    assert await asyncio.gather(*futures) == list(range(1, 1001))
    assert store.writes == 1001
    assert store.batches <= 10, f"{store.batches} batches: no group commit"
    rows = await store.messages_after(SessionId("s1"), 990, 100)
    assert [r.seq for r in rows] == list(range(991, 1001))
    assert (await store.session(SessionId("s1"))).last_seq == 1000
    assert (await store.client_msg_ids(SessionId("s1")))[("visitor", "c7")] == 7
    await store.close()


async def test_a_failing_write_does_not_sink_its_batch(tmp_path):
    store = await open_store(tmp_path)
    ok1 = store.submit_message(msg("s1", 0, "a"))
    dup = store.submit_message(msg("s1", 0, "a"))  # same client_msg_id: unique violation
    ok2 = store.submit_message(msg("s1", 0, "b"))
    assert await ok1 == 1
    assert await ok2 == 2  # no gap where the duplicate was refused
    with pytest.raises(DuplicateMessage) as err:
        await dup
    assert err.value.seq == 1
    rows = await store.messages_after(SessionId("s1"), 0, 10)
    assert [(r.seq, r.client_msg_id) for r in rows] == [(1, "a"), (2, "b")]
    await store.close()


async def test_session_updates_and_open_sessions(tmp_path):
    store = await open_store(tmp_path)
    for sid, state in (("a", SessionState.NEW), ("b", SessionState.NEW)):
        await store.submit_session(SessionRecord(SessionId(sid), sid, state, 1.0))
    await store.submit_session_update(SessionId("a"), state=SessionState.WAITING, enqueued_at=5.0)
    with pytest.raises(ValueError):
        store.submit_session_update(SessionId("a"), token_hash="x")
    opened = await store.open_sessions()
    assert [(s.session_id, s.state, s.enqueued_at) for s in opened] == [
        ("a", SessionState.WAITING, 5.0)
    ]
    assert (await store.session_by_token_hash("b")).session_id == "b"
    assert await store.session_by_token_hash("zzz") is None
    await store.close()


async def test_close_flushes_pending_writes(tmp_path):
    store = await open_store(tmp_path)
    futures = [store.submit_message(msg("s", i)) for i in range(1, 51)]
    await store.close()
    assert all(f.done() and f.exception() is None for f in futures)
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 50
    finally:
        conn.close()


def test_migrates_an_empty_file_and_refuses_a_newer_schema(tmp_path):
    conn = connect_sync(tmp_path / "m.sqlite3")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert migrate(conn) == SCHEMA_VERSION  # idempotent
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(RuntimeError, match="newer"):
            migrate(conn)
    finally:
        conn.close()


async def test_two_stores_share_one_file(tmp_path):
    a = await open_store(tmp_path)
    b = await open_store(tmp_path)
    # Both processes' stores write the same sessions: the seqs interleave
    # without collision or gap, because the store numbers inside the write lock.
    seqs = await asyncio.gather(
        *(a.submit_message(msg("x", 0)) for _ in range(200)),
        *(b.submit_message(msg("x", 0)) for _ in range(200)),
        *(b.submit_message(msg("y", 0)) for _ in range(100)),
    )
    assert sorted(seqs[:400]) == list(range(1, 401))
    assert sorted(seqs[400:]) == list(range(1, 101))
    assert len(await a.messages_after(SessionId("y"), 0, 500)) == 100
    await a.close()
    await b.close()


@pytest.mark.parametrize("inline", [False, True], ids=["writer-thread", "inline"])
async def test_commit_window_gathers_writes_into_one_batch(tmp_path, inline):
    store = SqliteStore(tmp_path / "w.sqlite3", window=0.05, inline=inline, synchronous="NORMAL")
    await store.open()
    # After a quiet spell a write commits at once, alone.
    assert await store.submit_message(msg("s", 0, "first")) == 1
    assert store.batches == 1
    futures = []
    for i in range(20):  # trickling in, one per loop turn, within the window
        futures.append(store.submit_message(msg("s", 0, f"c{i}")))
        await asyncio.sleep(0)
    assert not any(f.done() for f in futures)  # held until the window has passed
    assert await asyncio.gather(*futures) == list(range(2, 22))
    assert store.batches == 2
    await store.close()


async def test_commit_window_commits_at_once_after_a_quiet_spell(tmp_path):
    store = SqliteStore(tmp_path / "q.sqlite3", window=0.02, inline=True, synchronous="NORMAL")
    await store.open()
    await store.submit_message(msg("s", 0, "a"))
    await asyncio.sleep(0.05)  # longer than the window: nothing to gather for
    future = store.submit_message(msg("s", 0, "b"))
    await asyncio.sleep(0)  # one loop turn: the commit ran in it
    assert future.done() and future.result() == 2
    assert store.batches == 2
    await store.close()


async def test_inline_store_commits_without_the_thread(tmp_path):
    store = SqliteStore(tmp_path / "i.sqlite3", inline=True, synchronous="NORMAL")
    await store.open()
    seqs = await asyncio.gather(*(store.submit_message(msg("s", 0)) for _ in range(100)))
    assert seqs == list(range(1, 101))
    assert store.batches <= 2
    await store.close()


async def test_upgrades_a_version_1_store_keeping_its_data(tmp_path):
    """A store written by the first release (schema 1) is migrated on open:
    old chats and messages stay readable, new tables and columns appear."""
    from chatserver.store.sqlite import MIGRATIONS

    path = tmp_path / "s.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    for statement in str(MIGRATIONS[0]).split(";"):
        if statement.strip():
            old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    old.execute(
        "INSERT INTO sessions (id, token_hash, state, created_at) VALUES ('s1', 'h', 'closed', 1)"
    )
    old.execute(
        "INSERT INTO messages (session_id, seq, ts, sender, text) VALUES ('s1', 1, 5, 'visitor',"
        " 'from the old release')"
    )
    old.close()
    store = SqliteStore(path)
    await store.open()
    try:
        (row,) = await store.messages_after(SessionId("s1"), 0, 10)
        assert row.text == "from the old release" and row.extra is None
        seq = await store.submit_message(
            MessageRecord(SessionId("s1"), 0, 6, "visitor", None, "V", "new", "c1", None,
                          {"attachments": [{"id": "a_1"}]})
        )
        assert seq == 2
        rows = await store.messages_after(SessionId("s1"), 1, 10)
        assert rows[0].to_frame()["attachments"] == [{"id": "a_1"}]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"tickets", "ticket_events", "attachments", "mail_outbox"} <= tables
    finally:
        conn.close()


async def test_a_duplicate_alone_in_its_batch_is_refused_and_stores_nothing(tmp_path):
    """A batch of one message is one autocommit INSERT: a duplicate fails alone."""
    store = await open_store(tmp_path)
    assert await store.submit_message(msg("s1", 0, "a")) == 1
    with pytest.raises(DuplicateMessage) as err:
        await store.submit_message(msg("s1", 0, "a"))
    assert err.value.seq == 1
    assert await store.submit_message(msg("s1", 0, "b")) == 2
    rows = await store.messages_after(SessionId("s1"), 0, 10)
    assert [(r.seq, r.client_msg_id) for r in rows] == [(1, "a"), (2, "b")]
    await store.close()


@pytest.mark.parametrize("inline", [True, False])
async def test_on_done_runs_in_commit_order_with_the_settled_future(tmp_path, inline):
    store = SqliteStore(tmp_path / "o.sqlite3", inline=inline, synchronous="NORMAL")
    await store.open()
    seen: list[tuple[str, int | str]] = []

    def on_done(name: str):
        def done(fut: asyncio.Future[int]) -> None:
            assert fut.done()
            exc = fut.exception()
            seen.append((name, type(exc).__name__ if exc else fut.result()))

        return done

    futures = [
        store.submit_message(msg("s", 0, "x"), on_done("first")),
        store.submit_message(msg("s", 0, "x"), on_done("duplicate")),
        store.submit_message(msg("t", 0, "y"), on_done("other session")),
        store.submit_message(msg("s", 0, "z"), on_done("second")),
    ]
    await asyncio.gather(*futures, return_exceptions=True)
    assert seen == [
        ("first", 1),
        ("duplicate", "DuplicateMessage"),
        ("other session", 1),
        ("second", 2),
    ]
    await store.close()


async def test_inline_store_checkpoints_the_wal_off_the_event_loop(tmp_path):
    """Commits never checkpoint (not on the loop, not on the writer); a thread copies
    the WAL back into the database file within a couple of seconds."""
    path = tmp_path / "c.sqlite3"
    store = SqliteStore(path, inline=True, synchronous="NORMAL")
    await store.open()
    assert store._wconn is not None
    assert store._wconn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    size_before = path.stat().st_size
    text = "x" * 3000
    futures = [
        store.submit_message(
            MessageRecord(SessionId(f"s{i % 7}"), 0, i, "visitor", None, "V", text, f"c{i}")
        )
        for i in range(300)
    ]
    await asyncio.gather(*futures)
    assert path.stat().st_size == size_before  # all of it is still in the WAL
    for _ in range(60):
        await asyncio.sleep(0.1)
        if path.stat().st_size > size_before + 300 * 3000:
            break
    assert path.stat().st_size > size_before + 300 * 3000, "the WAL was not checkpointed"
    await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 300
    check.close()


async def test_commits_held_during_checkpoint_rounds_are_all_kept_in_order(
    tmp_path, monkeypatch
):
    """Steady writes across many checkpoint rounds (inline commits are held
    while a RESTART runs): every write is committed, in order, none lost."""
    from chatserver.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.1)
    path = tmp_path / "w.sqlite3"
    store = SqliteStore(path, inline=True, synchronous="NORMAL")
    await store.open()
    try:
        text = "y" * 2000
        seqs: dict[str, list[int]] = {}
        futures = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        i = 0
        while loop.time() < deadline:  # one commit about every 0.5 ms
            sid = f"s{i % 11}"
            futures.append(
                store.submit_message(
                    MessageRecord(SessionId(sid), 0, i, "visitor", None, "V", text, f"c{i}"),
                    lambda f, sid=sid: seqs.setdefault(sid, []).append(f.result()),
                )
            )
            i += 1
            await asyncio.sleep(0.0005)
        await asyncio.gather(*futures)
        assert store.wal_restarts >= 3  # rounds with commits held ran meanwhile
        for sid, got in seqs.items():
            assert got == list(range(1, len(got) + 1)), sid  # on_done in commit order
    finally:
        await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == i
    check.close()


async def test_after_a_checkpoint_round_the_wal_starts_over(tmp_path, monkeypatch):
    """The WAL holds what came after the last round, not every commit so far."""
    from chatserver.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.05)
    path = tmp_path / "r.sqlite3"
    store = SqliteStore(path, inline=True, synchronous="NORMAL")
    await store.open()
    side = sqlite3.connect(path, isolation_level=None)
    try:
        text = "z" * 1000
        await asyncio.gather(
            *(
                store.submit_message(
                    MessageRecord(SessionId(f"s{i % 5}"), 0, i, "visitor", None, "V", text, f"c{i}")
                )
                for i in range(300)
            )
        )
        for _ in range(100):
            await asyncio.sleep(0.05)
            if store.wal_restarts >= 1:
                break
        assert store.wal_restarts >= 1
        await store.submit_message(
            MessageRecord(SessionId("s0"), 0, 1, "visitor", None, "V", "after", "after")
        )
        frames = side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        assert frames < 30, f"the WAL did not start over: {frames} frames"
    finally:
        await store.close()
        side.close()


async def test_inline_commits_wait_while_a_restart_checkpoint_runs(tmp_path, monkeypatch):
    """The event loop never blocks on the RESTART's lock: commits queue up
    meanwhile and are committed, in order, as soon as it ends."""
    from chatserver.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.05)
    original = SqliteStore._checkpoint_sync
    restart_running = threading.Event()
    release = threading.Event()

    def slow_restart(conn: sqlite3.Connection, mode: str) -> bool:
        if mode == "RESTART":
            restart_running.set()
            release.wait(5)
        return original(conn, mode)

    monkeypatch.setattr(SqliteStore, "_checkpoint_sync", staticmethod(slow_restart))
    store = SqliteStore(tmp_path / "h.sqlite3", inline=True, synchronous="NORMAL")
    await store.open()
    try:
        first = store.submit_message(MessageRecord(SessionId("s"), 0, 1, "visitor", None, "V", "a"))
        assert await first == 1
        await asyncio.to_thread(restart_running.wait, 5)
        held = [
            store.submit_message(MessageRecord(SessionId("s"), 0, 2, "visitor", None, "V", t))
            for t in ("b", "c")
        ]
        await asyncio.sleep(0.1)  # the loop runs on; the commits wait
        assert not any(f.done() for f in held)
        release.set()
        assert await asyncio.gather(*held) == [2, 3]
    finally:
        release.set()
        await store.close()


async def test_assigned_by_operator_lists_open_assigned_chats_only(tmp_path):
    from chatserver.types import OperatorId

    store = await open_store(tmp_path)
    for sid, state in [("a", SessionState.ASSIGNED), ("b", SessionState.ASSIGNED),
                       ("c", SessionState.CLOSED), ("d", SessionState.WAITING),
                       ("e", SessionState.ASSIGNED)]:
        await store.submit_session(SessionRecord(SessionId(sid), sid, state, 1.0))
    await store.submit_session_update(SessionId("a"), operator_id="anna")
    await store.submit_session_update(SessionId("b"), operator_id="anna")
    await store.submit_session_update(SessionId("c"), operator_id="anna")
    await store.submit_session_update(SessionId("e"), operator_id="ben")
    got = await store.assigned_by_operator()
    assert {k: sorted(v) for k, v in got.items()} == {
        OperatorId("anna"): ["a", "b"],
        OperatorId("ben"): ["e"],
    }
    await store.close()
