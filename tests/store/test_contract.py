"""One contract, every store backend (``backend`` fixture, see ``conftest.py``).

Each test states an obligation of :mod:`chatserver.store.base` and checks it
through the :class:`~chatserver.store.base.Store` interface only; rows another
contract writes (tickets, SLA breaches) are put in with ``backend.insert``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatserver.store.base import (
    DuplicateMessage,
    MessageRecord,
    OperatorRecord,
    SessionRecord,
    Store,
    Transition,
)
from chatserver.types import OperatorId, Priority, SessionId, SessionState


def msg(session: str, cmid: str | None = None, text: str = "hi", **kw: Any) -> MessageRecord:
    return MessageRecord(SessionId(session), 0, 1000, "visitor", None, "V", text, cmid, **kw)


def chat(sid: str, state: SessionState = SessionState.NEW, created: float = 1.0, **kw: Any):
    return SessionRecord(SessionId(sid), f"h-{sid}", state, created, **kw)


# -- messages ----------------------------------------------------------------


async def test_many_writes_commit_in_few_batches(store: Store):
    await store.submit_session(chat("s1"))
    futures = [store.submit_message(msg("s1", f"c{i}")) for i in range(1, 1001)]
    assert await asyncio.gather(*futures) == list(range(1, 1001))
    assert store.writes >= 1001
    assert store.batches <= 10, f"{store.batches} batches: no group commit"
    rows = await store.messages_after(SessionId("s1"), 990, 100)
    assert [r.seq for r in rows] == list(range(991, 1001))
    record = await store.session(SessionId("s1"))
    assert record is not None and record.last_seq == 1000
    assert (await store.client_msg_ids(SessionId("s1")))[("visitor", "c7")] == 7


async def test_a_failing_write_does_not_sink_its_batch(store: Store):
    ok1 = store.submit_message(msg("s1", "a"))
    dup = store.submit_message(msg("s1", "a"))  # same client_msg_id: refused
    ok2 = store.submit_message(msg("s1", "b"))
    assert await ok1 == 1
    assert await ok2 == 2  # no gap where the duplicate was refused
    with pytest.raises(DuplicateMessage) as err:
        await dup
    assert err.value.seq == 1
    rows = await store.messages_after(SessionId("s1"), 0, 10)
    assert [(r.seq, r.client_msg_id) for r in rows] == [(1, "a"), (2, "b")]


async def test_a_duplicate_alone_is_refused_and_stores_nothing(store: Store):
    assert await store.submit_message(msg("s1", "a")) == 1
    with pytest.raises(DuplicateMessage) as err:
        await store.submit_message(msg("s1", "a"))
    assert err.value.seq == 1
    # The same id from another sender, or in another session, is another message.
    other = MessageRecord(SessionId("s1"), 0, 1, "operator", "o1", "Sam", "hi", "a")
    assert await store.submit_message(other) == 2
    assert await store.submit_message(msg("s2", "a")) == 1
    assert await store.submit_message(msg("s1", "b")) == 3
    rows = await store.messages_after(SessionId("s1"), 0, 10)
    assert [(r.seq, r.sender, r.client_msg_id) for r in rows] == [
        (1, "visitor", "a"),
        (2, "operator", "a"),
        (3, "visitor", "b"),
    ]


async def test_on_done_runs_in_commit_order_with_the_settled_future(store: Store):
    seen: list[tuple[str, int | str]] = []

    def on_done(name: str):
        def done(fut: asyncio.Future[int]) -> None:
            assert fut.done()
            exc = fut.exception()
            seen.append((name, type(exc).__name__ if exc else fut.result()))

        return done

    futures = [
        store.submit_message(msg("s", "x"), on_done("first")),
        store.submit_message(msg("s", "x"), on_done("duplicate")),
        store.submit_message(msg("t", "y"), on_done("other session")),
        store.submit_message(msg("s", "z"), on_done("second")),
    ]
    await asyncio.gather(*futures, return_exceptions=True)
    assert seen == [
        ("first", 1),
        ("duplicate", "DuplicateMessage"),
        ("other session", 1),
        ("second", 2),
    ]


async def test_messages_keep_their_fields_and_pages_follow_seq(store: Store):
    extra = {"attachments": [{"id": "a_1", "name": "x.png"}]}
    first = msg("s1", "c1", "with a file", extra=extra)
    assert await store.submit_message(first) == 1
    assert first.seq == 1  # set on the record once stored
    await store.submit_message(
        MessageRecord(SessionId("s1"), 0, 2000, "system", None, None, "closed", None, "closed")
    )
    for i in range(3):
        await store.submit_message(msg("s1", text=f"t{i}"))  # no client_msg_id
    got = await store.messages_after(SessionId("s1"), 0, 2)
    assert [r.seq for r in got] == [1, 2]
    assert got[0].to_frame() == {
        "type": "message",
        "session_id": "s1",
        "seq": 1,
        "from": "visitor",
        "author": "V",
        "text": "with a file",
        "ts": 1000,
        "client_msg_id": "c1",
        "attachments": extra["attachments"],
    }
    assert (got[1].sender, got[1].event, got[1].author, got[1].extra) == (
        "system",
        "closed",
        None,
        None,
    )
    assert [r.text for r in await store.messages_after(SessionId("s1"), 2, 10)] == [
        "t0",
        "t1",
        "t2",
    ]
    assert await store.messages_after(SessionId("s1"), 5, 10) == []
    assert await store.messages_after(SessionId("nobody"), 0, 10) == []
    assert await store.client_msg_ids(SessionId("s1")) == {("visitor", "c1"): 1}


async def test_close_commits_what_was_submitted(backend):
    store = await backend.store()
    assert store.healthy
    futures = [store.submit_message(msg("s", f"c{i}")) for i in range(1, 51)]
    await store.close()
    assert not store.healthy
    assert all(f.done() and f.exception() is None for f in futures)
    after = store.submit_message(msg("s", "late"))
    with pytest.raises(RuntimeError, match="closed"):
        await after
    again = await backend.store()
    rows = await again.messages_after(SessionId("s"), 0, 100)
    assert [r.seq for r in rows] == list(range(1, 51))


async def test_two_stores_share_one_database(shared_backend):
    a = await shared_backend.store()
    b = await shared_backend.store()
    # Both processes' stores write the same sessions: the seqs interleave
    # without collision or gap, because the store numbers inside the write lock.
    seqs = await asyncio.gather(
        *(a.submit_message(msg("x")) for _ in range(200)),
        *(b.submit_message(msg("x")) for _ in range(200)),
        *(b.submit_message(msg("y")) for _ in range(100)),
    )
    assert sorted(seqs[:400]) == list(range(1, 401))
    assert sorted(seqs[400:]) == list(range(1, 101))
    assert len(await a.messages_after(SessionId("y"), 0, 500)) == 100
    # A client_msg_id stored by one store is a duplicate for the other.
    assert await a.submit_message(msg("z", "once")) == 1
    with pytest.raises(DuplicateMessage):
        await b.submit_message(msg("z", "once"))


# -- sessions ----------------------------------------------------------------


async def test_a_session_reads_back_as_written(store: Store):
    record = chat(
        "s1",
        SessionState.WAITING,
        12.5,
        visitor_name="Vera",
        visitor_email="vera@example.com",
        page_url="https://example.com/p",
        user_agent="UA",
        customer_id="c1",
        plan="gold",
        priority=Priority.VIP,
        department="sales",
        enqueued_at=13.0,
        kind="callback",
        phone="+49 1",
        preferred_times="mornings",
        level=2,
        sla_first_due=100.0,
        sla_first_warn=80.0,
    )
    await store.submit_session(record)
    assert await store.session(SessionId("s1")) == record
    assert await store.session_by_token_hash("h-s1") == record
    assert await store.session(SessionId("nope")) is None
    assert await store.session_by_token_hash("nope") is None
    with pytest.raises(Exception):  # noqa: B017 - the backend's own integrity error
        await store.submit_session(chat("s1"))
    await store.submit_message(msg("s1"))
    stored = await store.session(SessionId("s1"))
    assert stored is not None and stored.last_seq == 1


async def test_session_updates_and_open_sessions(store: Store):
    for sid, created in (("a", 2.0), ("b", 1.0), ("c", 3.0)):
        await store.submit_session(chat(sid, created=created))
    await store.submit_session_update(SessionId("a"), state=SessionState.WAITING, enqueued_at=5.0)
    await store.submit_session_update(
        SessionId("b"), state=SessionState.ASSIGNED, operator_id=OperatorId("o1")
    )
    await store.submit_session_update(SessionId("missing"), state=SessionState.CLOSED)
    with pytest.raises(ValueError):
        store.submit_session_update(SessionId("a"), token_hash="x")
    opened = await store.open_sessions()
    assert [(s.session_id, s.state, s.enqueued_at) for s in opened] == [
        ("b", SessionState.ASSIGNED, None),  # oldest created first
        ("a", SessionState.WAITING, 5.0),
    ]
    assert await store.session(SessionId("missing")) is None


async def test_transitions_are_compare_and_set(store: Store):
    sid = SessionId("s1")
    await store.submit_session(chat("s1", SessionState.WAITING))
    assert (
        await store.submit_transition(sid, (SessionState.NEW,), state=SessionState.CLOSED) is None
    )
    done = await store.submit_transition(
        sid, (SessionState.WAITING,), state=SessionState.ASSIGNED, operator_id="o1"
    )
    assert done == Transition(SessionState.WAITING, None)
    wrong_operator = store.submit_transition(
        sid, (SessionState.ASSIGNED,), expect_operator=OperatorId("o2"), state=SessionState.CLOSED
    )
    assert await wrong_operator is None
    closed = await store.submit_transition(
        sid,
        (SessionState.WAITING, SessionState.ASSIGNED),
        expect_operator=OperatorId("o1"),
        state=SessionState.CLOSED,
        closed_at=9.0,
    )
    assert closed == Transition(SessionState.ASSIGNED, OperatorId("o1"))
    record = await store.session(sid)
    assert record is not None and (record.state, record.closed_at) == (SessionState.CLOSED, 9.0)
    missing = store.submit_transition(SessionId("nope"), (SessionState.NEW,), level=2)
    assert await missing is None
    with pytest.raises(ValueError):
        store.submit_transition(sid, (SessionState.CLOSED,), token_hash="x")


async def test_concurrent_transitions_of_two_stores_let_one_win(shared_backend):
    a = await shared_backend.store()
    b = await shared_backend.store()
    await a.submit_session(chat("s1", SessionState.WAITING))
    results = await asyncio.gather(
        *(
            store.submit_transition(
                SessionId("s1"),
                (SessionState.WAITING,),
                state=SessionState.ASSIGNED,
                operator_id=name,
            )
            for store, name in ((a, "oa"), (b, "ob")) * 5
        )
    )
    winners = [i for i, r in enumerate(results) if r is not None]
    assert len(winners) == 1
    record = await b.session(SessionId("s1"))
    assert record is not None
    assert record.operator_id == ("oa", "ob")[winners[0] % 2]


async def test_assigned_sessions_by_operator_list_open_assigned_chats_only(store: Store):
    for sid, state in [
        ("a", SessionState.ASSIGNED),
        ("b", SessionState.ASSIGNED),
        ("c", SessionState.CLOSED),
        ("d", SessionState.WAITING),
        ("e", SessionState.ASSIGNED),
    ]:
        await store.submit_session(chat(sid, state))
    await store.submit_session_update(SessionId("a"), operator_id="anna")
    await store.submit_session_update(SessionId("b"), operator_id="anna")
    await store.submit_session_update(SessionId("c"), operator_id="anna")
    await store.submit_session_update(SessionId("e"), operator_id="ben")
    got = await store.assigned_by_operator()
    assert {k: sorted(v) for k, v in got.items()} == {
        OperatorId("anna"): ["a", "b"],
        OperatorId("ben"): ["e"],
    }
    mine = await store.assigned_sessions(OperatorId("anna"))
    assert sorted(r.session_id for r in mine) == ["a", "b"]
    assert await store.assigned_sessions(OperatorId("nobody")) == []


async def test_past_sessions_and_the_last_operator_of_a_customer(store: Store):
    await asyncio.gather(
        store.submit_session(chat("a", created=1.0, customer_id="c1", previous_operator="o1")),
        store.submit_session(chat("b", created=2.0, customer_id="c1", operator_id="o2")),
        store.submit_session(chat("c", created=3.0, visitor_email="Pat@Example.com")),
        store.submit_session(chat("d", created=4.0, customer_id="c1")),
    )
    past = await store.past_sessions("c1", "pat@example.com", exclude=SessionId("b"))
    assert [r.session_id for r in past] == ["d", "a"]  # by id first; newest first
    one = await store.past_sessions("c1", None, exclude=SessionId("b"), limit=1)
    assert [r.session_id for r in one] == ["d"]
    by_mail = await store.past_sessions(None, "PAT@example.com", exclude=SessionId("x"))
    assert [r.session_id for r in by_mail] == ["c"]
    assert await store.past_sessions(None, None, exclude=SessionId("x")) == []
    assert await store.last_operator_of_customer("c1", SessionId("d")) == "o2"
    assert await store.last_operator_of_customer("c1", SessionId("b")) == "o1"
    assert await store.last_operator_of_customer("c9", SessionId("b")) is None


async def test_the_first_response_recorded_stays(store: Store):
    await store.submit_session(chat("s1", SessionState.ASSIGNED))
    await store.submit_first_response(SessionId("s1"), 140.0)
    await store.submit_first_response(SessionId("s1"), 999.0)
    record = await store.session(SessionId("s1"))
    assert record is not None and record.first_response_at == 140.0


# -- operators and meta ---------------------------------------------------------


def operator(oid: str, username: str, **kw: Any) -> OperatorRecord:
    base: dict[str, Any] = {
        "name": username.title(),
        "password_hash": "hash",
        "role": "operator",
        "departments": (),
        "capacity": 3,
        "created_at": 1.0,
    }
    return OperatorRecord(OperatorId(oid), username, **{**base, **kw})


async def test_operators(store: Store):
    assert await store.operators() == []
    zed = operator("o1", "zed", departments=("sales", "technical"), levels=(1, 3), role="admin")
    await store.add_operator(zed)
    await store.add_operator(operator("o2", "amy"))
    with pytest.raises(ValueError):
        await store.add_operator(operator("o3", "zed"))
    assert await store.operator(OperatorId("o1")) == zed
    assert await store.operator_by_username("zed") == zed
    assert await store.operator(OperatorId("o3")) is None
    assert await store.operator_by_username("nobody") is None
    assert [o.username for o in await store.operators()] == ["amy", "zed"]


async def test_operators_changes_moves_with_every_account_change(shared_backend):
    """Any change to an operator, by any store on the database (another node, the
    CLI), moves the number; writes elsewhere (chats, messages, meta) do not."""
    a = await shared_backend.store()
    b = await shared_backend.store()
    seen = [await a.operators_changes()]

    async def moved() -> bool:
        now = await a.operators_changes()
        assert now == await b.operators_changes()
        changed = now != seen[-1]
        seen.append(now)
        return changed

    await b.add_operator(operator("o1", "zed"))
    assert await moved()
    await a.submit_session(chat("s1"))
    await a.submit_message(msg("s1"))
    await a.set_meta("k", "v")
    assert not await moved()
    assert await b.update_operator(OperatorId("o1"), capacity=5) is not None
    assert await moved()
    await b.set_operator_lang(OperatorId("o1"), "de")
    assert await moved()
    await b.update_operator(OperatorId("o1"), revoke=True)
    assert await moved()
    # Refused or empty: nothing changed, nothing moves.
    with pytest.raises(ValueError):
        await a.add_operator(operator("o2", "zed"))
    assert await b.update_operator(OperatorId("nobody"), capacity=2) is None
    assert not await moved()
    # A writer beside the stores (the CLI's plain SQL) moves it too.
    shared_backend.insert(
        "operators",
        id="o9",
        username="cli",
        name="Cli",
        password_hash="h",
        role="operator",
        capacity=1,
        created_at=1.0,
    )
    assert await moved()


async def test_meta(store: Store):
    assert await store.get_meta("k") is None
    await store.set_meta("k", "one")
    await store.set_meta("k", "two")
    assert await store.get_meta("k") == "two"
    assert await store.setdefault_meta("k", "three") == "two"
    assert await store.setdefault_meta("new", "first") == "first"
    assert await store.get_meta("new") == "first"


async def test_the_first_default_wins_across_stores(shared_backend):
    a = await shared_backend.store()
    b = await shared_backend.store()
    got = await asyncio.gather(
        *(s.setdefault_meta("secret", v) for s, v in ((a, "from-a"), (b, "from-b")) * 3)
    )
    assert len(set(got)) == 1
    assert await a.get_meta("secret") == await b.get_meta("secret") == got[0]


# -- chat notes -------------------------------------------------------------------


async def test_notes_are_numbered_per_chat_inside_the_write_lock(store: Store):
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
    assert await store.notes(SessionId("none")) == []
    await store.ping()


async def test_consults_name_the_colleague_asked(store: Store):
    await store.submit_session(chat("open", SessionState.ASSIGNED))
    await store.submit_session(chat("done", SessionState.CLOSED))
    for sid in ("open", "done"):
        await store.submit_note(SessionId(sid), 1.0, "consult", "o1", "Sam", "?", to=("o2", "Kim"))
    (note,) = await store.notes(SessionId("open"))
    assert note["to"] == {"id": "o2", "name": "Kim"}
    assert await store.consulted(SessionId("open"), OperatorId("o2"))
    assert not await store.consulted(SessionId("open"), OperatorId("o1"))
    assert await store.consulted_open(OperatorId("o2")) == ["open"]
    assert await store.consulted_open(OperatorId("o1")) == []


# -- the supervisor board ---------------------------------------------------------


def add_ticket(backend, number: int, state: str = "open", **cols: Any) -> None:
    backend.insert(
        "tickets",
        **{
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
        },
    )


async def test_chat_stats_of_a_window(backend):
    store = await backend.store()

    def session(sid: str, state: SessionState, enqueued: float | None, **kw) -> SessionRecord:
        return chat(sid, state, (enqueued or 0) - 1, enqueued_at=enqueued, **kw)

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
    add_ticket(backend, 100001, session_id="served")
    add_ticket(backend, 100002, session_id="missed", channel="form")  # not from the chat
    stats = sorted(await store.chat_stats(100.0), key=lambda s: s.enqueued_at)
    assert [(s.enqueued_at, s.state, s.ever_assigned, s.escalated) for s in stats] == [
        (110.0, "closed", True, True),
        (120.0, "closed", False, False),
        (130.0, "assigned", True, False),
        (140.0, "waiting", True, False),
    ]
    assert stats[2].assigned_at == 131.0 and stats[2].first_response_at == 140.0
    # From the day's first position on: the same rows.
    rowid = await store.first_session_rowid(100.0)
    assert len(await store.chat_stats(100.0, rowid)) == 4
    open_chats = {c.session_id: c for c in await store.open_chats()}
    assert set(open_chats) == {"live", "requeued"}
    assert open_chats["live"].operator_id == "o1" and open_chats["live"].first_response_at == 140.0


async def test_the_first_session_position_never_hides_a_session(store: Store):
    assert await store.first_session_rowid(0.0) == 0  # no sessions at all
    for i in range(60):
        store.submit_session(chat(f"s{i}", created=1000.0 + i, enqueued_at=1000.0 + i))
    await store.submit_session(chat("last", created=2000.0, enqueued_at=2000.0))
    for since in (0.0, 1000.0, 1030.5, 1059.0, 1500.0, 2000.0, 3000.0):
        position = await store.first_session_rowid(since)
        narrowed = sorted(s.enqueued_at for s in await store.chat_stats(since, position))
        assert narrowed == sorted(s.enqueued_at for s in await store.chat_stats(since))
        assert all(at >= since for at in narrowed)


async def test_ticket_sla_clocks_and_breaches(backend):
    store = await backend.store()
    add_ticket(backend, 1, sla_first_due=100.0, sla_first_warn=80.0, sla_resolution_due=500.0)
    add_ticket(
        backend,
        2,
        sla_first_due=100.0,
        first_response_at=90.0,
        sla_breached="resolution",
        sla_resolution_due=200.0,
    )
    add_ticket(backend, 3, state="feedback_needed", sla_resolution_due=300.0, paused_since=250.0)
    add_ticket(backend, 4, state="closed", sla_first_due=1.0)  # closed: no clocks
    add_ticket(backend, 5, sla_breached="first_response resolution")
    add_ticket(backend, 6)  # no plan targets: no clocks
    for ref, kind, due, recorded_at in (
        ("#2", "resolution", 200, 210),
        ("s_x", "first_response", 5, 6),
        ("#9", "resolution", 1, 50),
    ):
        backend.insert("sla_breaches", ref=ref, kind=kind, due=due, recorded_at=recorded_at)
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


async def test_satisfaction_scores_since(store: Store):
    for sid, score, at in (("a", 5, 10.0), ("b", 2, 20.0), ("c", None, None)):
        await store.submit_session(chat(sid, SessionState.CLOSED))
        if score is not None:
            await store.submit_session_update(
                SessionId(sid), csat_score=score, csat_comment="ok", csat_at=at
            )
    assert sorted(await store.csat_since(0.0)) == [2, 5]
    assert await store.csat_since(15.0) == [2]
    assert await store.csat_since(30.0) == []


async def test_every_batch_is_observed(store: Store):
    seen: list[tuple[int, float]] = []
    store.on_batch = lambda size, seconds: seen.append((size, seconds))
    batches, writes = store.batches, store.writes
    await asyncio.gather(*(store.submit_session(chat(f"s{i}")) for i in range(300)))
    assert len(seen) == store.batches - batches >= 1
    assert sum(size for size, _ in seen) == store.writes - writes == 300
    assert all(seconds >= 0 for _, seconds in seen)
