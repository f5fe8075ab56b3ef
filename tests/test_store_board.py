"""SQLite store: the supervisor board's reads, chat notes, first responses, batch hook."""

from __future__ import annotations

import asyncio
import sqlite3

from chatserver.store.base import SessionRecord
from chatserver.store.sqlite import SqliteStore
from chatserver.types import OperatorId, SessionId, SessionState


async def open_store(tmp_path) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    return store


def raw(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "s.sqlite3", isolation_level=None)


def add_ticket(conn: sqlite3.Connection, number: int, state: str = "open", **cols) -> None:
    base = {
        "number": number,
        "subject": "s",
        "state": state,
        "priority": "normal",
        "priority_rank": 2,
        "department": "technical",
        "level": 1,
        "channel": "chat",
        "created_at": 0.0,
        "updated_at": 0.0,
        "events": 0,
        "head": "",
        **cols,
    }
    names = ", ".join(base)
    marks = ", ".join("?" * len(base))
    conn.execute(f"INSERT INTO tickets ({names}) VALUES ({marks})", tuple(base.values()))


async def test_first_session_rowid_finds_the_day_by_binary_search(tmp_path):
    store = await open_store(tmp_path)
    assert await store.first_session_rowid(0.0) == 0  # no sessions at all
    for i in range(200):
        store.submit_session(
            SessionRecord(SessionId(f"s{i}"), f"h{i}", SessionState.NEW, 1000.0 + i)
        )
    await store.submit_session(SessionRecord(SessionId("last"), "hl", SessionState.NEW, 2000.0))
    conn = raw(tmp_path)
    rows = conn.execute("SELECT rowid, created_at FROM sessions ORDER BY rowid").fetchall()
    for since in (0.0, 1000.0, 1050.5, 1199.0, 1500.0, 2000.0, 3000.0):
        rowid = await store.first_session_rowid(since)
        assert all(c >= since for r, c in rows if r >= rowid)
        assert all(c < since for r, c in rows if r < rowid)
    conn.close()
    await store.close()


async def test_chat_stats_of_a_window(tmp_path):
    store = await open_store(tmp_path)

    def session(sid: str, state: SessionState, enqueued: float | None, **kw) -> SessionRecord:
        return SessionRecord(
            SessionId(sid), f"h-{sid}", state, (enqueued or 0) - 1, enqueued_at=enqueued, **kw
        )

    await asyncio.gather(
        store.submit_session(session("old", SessionState.CLOSED, 10.0)),
        store.submit_session(session("new-only", SessionState.NEW, None)),
        store.submit_session(
            session(
                "served",
                SessionState.CLOSED,
                110.0,
                assigned_at=115.0,
                operator_id=None,
                previous_operator=OperatorId("o1"),
            )
        ),
        store.submit_session(session("missed", SessionState.CLOSED, 120.0)),
        store.submit_session(
            session(
                "live",
                SessionState.ASSIGNED,
                130.0,
                assigned_at=131.0,
                operator_id=OperatorId("o1"),
            )
        ),
        store.submit_session(
            session("requeued", SessionState.WAITING, 140.0, previous_operator=OperatorId("o2"))
        ),
    )
    await store.submit_first_response(SessionId("live"), 140.0)
    await store.submit_first_response(SessionId("live"), 999.0)  # the first one stays
    conn = raw(tmp_path)
    add_ticket(conn, 100001, session_id="served")
    conn.close()
    stats = sorted(await store.chat_stats(100.0), key=lambda s: s.enqueued_at)
    assert [(s.enqueued_at, s.state, s.ever_assigned, s.escalated) for s in stats] == [
        (110.0, "closed", True, True),
        (120.0, "closed", False, False),
        (130.0, "assigned", True, False),
        (140.0, "waiting", True, False),
    ]
    assert stats[2].assigned_at == 131.0 and stats[2].first_response_at == 140.0
    # From a rowid on: the same rows when the rowid is the day's first.
    rowid = await store.first_session_rowid(100.0)
    assert len(await store.chat_stats(100.0, rowid)) == 4
    open_chats = {c.session_id: c for c in await store.open_chats()}
    assert set(open_chats) == {"live", "requeued"}
    assert open_chats["live"].operator_id == "o1" and open_chats["live"].first_response_at == 140.0
    await store.close()


async def test_ticket_sla_clocks_and_breaches(tmp_path):
    store = await open_store(tmp_path)
    conn = raw(tmp_path)
    add_ticket(conn, 1, sla_first_due=100.0, sla_first_warn=80.0, sla_resolution_due=500.0)
    add_ticket(
        conn,
        2,
        sla_first_due=100.0,
        first_response_at=90.0,
        sla_breached="resolution",
        sla_resolution_due=200.0,
    )
    add_ticket(conn, 3, state="feedback_needed", sla_resolution_due=300.0, paused_since=250.0)
    add_ticket(conn, 4, state="closed", sla_first_due=1.0)  # closed: no clocks
    add_ticket(conn, 5, sla_breached="first_response resolution")
    add_ticket(conn, 6)  # no plan targets: no clocks
    conn.execute(
        "INSERT INTO sla_breaches (ref, kind, due, recorded_at) VALUES"
        " ('#2', 'resolution', 200, 210), ('s_x', 'first_response', 5, 6),"
        " ('#9', 'resolution', 1, 50)"
    )
    conn.close()
    clocks = [
        (c.ref, c.due, c.recorded, c.paused, c.met_at, c.warn)
        for c in await store.ticket_sla_clocks()
    ]
    assert sorted(clocks, key=repr) == sorted(
        [
            ("#1", 100.0, False, False, None, 80.0),
            ("#1", 500.0, False, False, None, None),
            ("#2", 100.0, False, False, 90.0, None),
            ("#2", 200.0, True, False, None, None),  # recorded as breached
            ("#3", 300.0, False, True, None, None),  # paused
            ("#5", None, True, False, None, None),  # both kinds recorded
            ("#5", None, True, False, None, None),
        ],
        key=repr,
    )
    assert await store.sla_breaches_since(10.0) == {"resolution": 2}
    assert await store.sla_breaches_since(0.0) == {"resolution": 2, "first_response": 1}
    await store.close()


async def test_notes_are_numbered_per_chat_inside_the_write_lock(tmp_path):
    store = await open_store(tmp_path)
    sid, other = SessionId("s1"), SessionId("s2")
    await asyncio.gather(
        *(store.submit_note(sid, 10.0 + i, "whisper", "o1", "Sam", f"note {i}") for i in range(5)),
        store.submit_note(other, 1.0, "whisper", "o2", "Kim", "elsewhere"),
    )
    notes = await store.notes(sid)
    assert [(n["n"], n["text"]) for n in notes] == [(i + 1, f"note {i}") for i in range(5)]
    assert notes[0] == {
        "n": 1,
        "ts": 10_000,
        "kind": "whisper",
        "author": {"id": "o1", "name": "Sam"},
        "text": "note 0",
        "to": None,
    }
    assert [n["n"] for n in await store.notes(other)] == [1]
    assert [n["n"] for n in await store.notes(sid, limit=2)] == [4, 5]  # the last ones
    await store.ping()
    await store.close()


async def test_every_batch_is_observed(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    seen: list[tuple[int, float]] = []
    store.on_batch = lambda size, seconds: seen.append((size, seconds))
    await store.open()
    await asyncio.gather(
        *(
            store.submit_session(SessionRecord(SessionId(f"s{i}"), f"h{i}", SessionState.NEW, 0.0))
            for i in range(300)
        )
    )
    await store.close()
    assert len(seen) == store.batches
    assert sum(size for size, _ in seen) == store.writes
    assert all(seconds >= 0 for _, seconds in seen)
