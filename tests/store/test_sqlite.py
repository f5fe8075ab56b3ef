"""SQLite only: the schema and its migrations, commit windows, inline commits,
WAL checkpoints, rowids. The store contract is ``test_contract.py``; the
message journal is ``test_journal.py``."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from chatserver.store.base import MessageRecord, SessionRecord
from chatserver.store.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteStore,
    connect_sync,
    migrate,
)
from chatserver.store.sqlite import commit as commit_module
from chatserver.types import SessionId, SessionState
from tests.waiting import eventually


def msg(session: str, cmid: str | None = None, text: str = "hi", ts: int = 1000) -> MessageRecord:
    return MessageRecord(SessionId(session), 0, ts, "visitor", None, "V", text, cmid)


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


async def test_upgrades_a_version_1_store_keeping_its_data(tmp_path):
    """A store written by the first release (schema 1) is migrated on open:
    old chats and messages stay readable, new tables and columns appear."""
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
            MessageRecord(
                SessionId("s1"),
                0,
                6,
                "visitor",
                None,
                "V",
                "new",
                "c1",
                None,
                {"attachments": [{"id": "a_1"}]},
            )
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


async def test_close_leaves_every_write_in_the_file(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    futures = [store.submit_message(msg("s", f"c{i}")) for i in range(1, 51)]
    await store.close()
    assert all(f.done() and f.exception() is None for f in futures)
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 50
    finally:
        conn.close()


@pytest.mark.parametrize("inline", [False, True], ids=["writer-thread", "inline"])
async def test_commit_window_gathers_writes_into_one_batch(tmp_path, inline):
    # A window far longer than the 20 loop turns below take, even on a busy machine.
    store = SqliteStore(tmp_path / "w.sqlite3", window=0.5, inline=inline, synchronous="NORMAL")
    await store.open()
    # After a quiet spell a write commits at once, alone.
    assert await store.submit_message(msg("s", "first")) == 1
    assert store.batches == 1
    futures = []
    for i in range(20):  # trickling in, one per loop turn, within the window
        futures.append(store.submit_message(msg("s", f"c{i}")))
        await asyncio.sleep(0)
    assert await asyncio.gather(*futures) == list(range(2, 22))
    # Held until the window had passed, then committed together: none alone.
    assert store.batches == 2 and store.last_batch_size == 20
    await store.close()


async def test_commit_window_commits_at_once_after_a_quiet_spell(tmp_path):
    store = SqliteStore(tmp_path / "q.sqlite3", window=0.02, inline=True, synchronous="NORMAL")
    await store.open()
    await store.submit_message(msg("s", "a"))
    # Time must pass here (no condition to wait for): longer than the window.
    await asyncio.sleep(0.05)
    future = store.submit_message(msg("s", "b"))
    await asyncio.sleep(0)  # one loop turn: the commit ran in it
    assert future.done() and future.result() == 2
    assert store.batches == 2
    await store.close()


async def test_inline_store_commits_without_the_thread(tmp_path):
    store = SqliteStore(tmp_path / "i.sqlite3", inline=True, synchronous="NORMAL")
    await store.open()
    seqs = await asyncio.gather(*(store.submit_message(msg("s")) for _ in range(100)))
    assert seqs == list(range(1, 101))
    assert store.batches <= 2
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
    futures = [store.submit_message(msg(f"s{i % 7}", f"c{i}", text, ts=i)) for i in range(300)]
    await asyncio.gather(*futures)
    assert path.stat().st_size == size_before  # all of it is still in the WAL
    await eventually(
        lambda: path.stat().st_size > size_before + 300 * 3000,
        timeout=6.0,
        message="the WAL checkpointed into the database file",
    )
    await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 300
    check.close()


async def test_commits_held_during_checkpoint_rounds_are_all_kept_in_order(tmp_path, monkeypatch):
    """Steady writes across many checkpoint rounds (inline commits are held
    while a RESTART runs): every write is committed, in order, none lost."""
    monkeypatch.setattr(commit_module, "CHECKPOINT_SECONDS", 0.1)
    path = tmp_path / "w.sqlite3"
    store = SqliteStore(path, inline=True, synchronous="NORMAL")
    await store.open()
    try:
        text = "y" * 2000
        seqs: dict[str, list[int]] = {}
        futures = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0  # a safety net: 3 rounds take about 0.3 s
        i = 0
        # One commit about every 0.5 ms, until rounds with commits held ran meanwhile.
        while (store.wal_restarts < 3 or i < 1000) and loop.time() < deadline:
            sid = f"s{i % 11}"
            futures.append(
                store.submit_message(
                    msg(sid, f"c{i}", text, ts=i),
                    lambda f, sid=sid: seqs.setdefault(sid, []).append(f.result()),
                )
            )
            i += 1
            await asyncio.sleep(0.0005)
        await asyncio.gather(*futures)
        assert store.wal_restarts >= 3
        for sid, got in seqs.items():
            assert got == list(range(1, len(got) + 1)), sid  # on_done in commit order
    finally:
        await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == i
    check.close()


async def test_after_a_checkpoint_round_the_wal_starts_over(tmp_path, monkeypatch):
    """The WAL holds what came after the last round, not every commit so far."""
    monkeypatch.setattr(commit_module, "CHECKPOINT_SECONDS", 0.05)
    path = tmp_path / "r.sqlite3"
    store = SqliteStore(path, inline=True, synchronous="NORMAL")
    await store.open()
    side = sqlite3.connect(path, isolation_level=None)
    try:
        text = "z" * 1000
        await asyncio.gather(
            *(store.submit_message(msg(f"s{i % 5}", f"c{i}", text, ts=i)) for i in range(300))
        )
        await eventually(lambda: store.wal_restarts >= 1, message="a RESTART checkpoint")
        await store.submit_message(msg("s0", "after", "after"))
        frames = side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        assert frames < 30, f"the WAL did not start over: {frames} frames"
    finally:
        await store.close()
        side.close()


async def test_inline_commits_wait_while_a_restart_checkpoint_runs(tmp_path, monkeypatch):
    """The event loop never blocks on the RESTART's lock: commits queue up
    meanwhile and are committed, in order, as soon as it ends."""
    monkeypatch.setattr(commit_module, "CHECKPOINT_SECONDS", 0.05)
    original = SqliteStore._checkpoint_sync
    restart_running = threading.Event()
    release = threading.Event()

    def slow_restart(conn: sqlite3.Connection, mode: str) -> bool:
        if mode == "RESTART":
            restart_running.set()
            release.wait(5)
        return original(conn, mode)

    flushes = 0
    flush_inline = SqliteStore._flush_inline

    def counted_flush(self: SqliteStore) -> None:
        nonlocal flushes
        flushes += 1
        flush_inline(self)

    monkeypatch.setattr(SqliteStore, "_checkpoint_sync", staticmethod(slow_restart))
    monkeypatch.setattr(SqliteStore, "_flush_inline", counted_flush)
    store = SqliteStore(tmp_path / "h.sqlite3", inline=True, synchronous="NORMAL")
    await store.open()
    try:
        assert await store.submit_message(msg("s", text="a")) == 1
        await asyncio.to_thread(restart_running.wait, 5)
        before = flushes
        held = [store.submit_message(msg("s", text=t)) for t in ("b", "c")]
        # The flush that would have committed them ran (and would have settled
        # them in that same call, as it did "a"), but found the commits held.
        await eventually(lambda: flushes > before, message="the flush of b and c ran")
        assert not any(f.done() for f in held)
        release.set()
        assert await asyncio.gather(*held) == [2, 3]
    finally:
        release.set()
        await store.close()


async def test_first_session_rowid_finds_the_day_by_binary_search(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    assert await store.first_session_rowid(0.0) == 0  # no sessions at all
    for i in range(200):
        store.submit_session(
            SessionRecord(SessionId(f"s{i}"), f"h{i}", SessionState.NEW, 1000.0 + i)
        )
    await store.submit_session(SessionRecord(SessionId("last"), "hl", SessionState.NEW, 2000.0))
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    rows = conn.execute("SELECT rowid, created_at FROM sessions ORDER BY rowid").fetchall()
    for since in (0.0, 1000.0, 1050.5, 1199.0, 1500.0, 2000.0, 3000.0):
        rowid = await store.first_session_rowid(since)
        assert all(c >= since for r, c in rows if r >= rowid)
        assert all(c < since for r, c in rows if r < rowid)
    conn.close()
    await store.close()
