"""Pure routing core: queue order and operator choice, no I/O."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.routing import QueueEntry, Router
from chatserver.types import OperatorId, OperatorStatus, Priority, SessionId


def op(
    router: Router,
    name: str,
    capacity: int = 2,
    status=OperatorStatus.ONLINE,
    departments=(),
    now: float = 0.0,
) -> OperatorId:
    oid = OperatorId(name)
    router.upsert_operator(oid, capacity=capacity, departments=departments)
    router.set_status(oid, status, now)
    return oid


def entry(name: str, at: float, priority=Priority.NORMAL, **kw) -> QueueEntry:
    return QueueEntry(SessionId(name), at, priority, **kw)


def test_oldest_first_within_a_priority_class():
    r = Router()
    for i, name in enumerate(["c", "a", "b"]):
        r.enqueue(entry(name, at=10 + i))
    assert [e.session_id for e in r.ordered()] == ["c", "a", "b"]
    assert [r.position(SessionId(n)) for n in "cab"] == [1, 2, 3]


def test_urgent_and_vip_before_normal_and_requeued_before_all():
    r = Router()
    r.enqueue(entry("normal-old", 1))
    r.enqueue(entry("vip", 5, Priority.VIP))
    r.enqueue(entry("urgent", 9, Priority.URGENT))
    r.enqueue(entry("requeued", 20, requeued=True))
    assert [e.session_id for e in r.ordered()] == ["requeued", "urgent", "vip", "normal-old"]
    op(r, "anna", capacity=10)
    assert [a.session_id for a in r.assign_next(100)] == ["requeued", "urgent", "vip", "normal-old"]


def test_nothing_assigned_without_an_online_operator_below_capacity():
    r = Router()
    r.enqueue(entry("a", 1))
    op(r, "away", status=OperatorStatus.AWAY)
    op(r, "off", status=OperatorStatus.OFFLINE)
    full = op(r, "full", capacity=1)
    r.add_load(full, 1)
    assert r.assign_next(5) == []
    assert len(r) == 1


def test_least_loaded_first_then_longest_idle():
    r = Router()
    busy = op(r, "busy", capacity=5, now=0)
    idle_long = op(r, "idle-long", capacity=5, now=1)
    idle_short = op(r, "idle-short", capacity=5, now=2)
    r.add_load(busy, 1)
    r.enqueue(entry("a", 10))
    r.enqueue(entry("b", 11))
    r.enqueue(entry("c", 12))
    got = [(a.session_id, a.operator_id) for a in r.assign_next(20)]
    # a and b go to the two unloaded operators, longest idle first; then all
    # carry one chat and "busy" has been idle longest (assignment resets idle).
    assert got == [("a", idle_long), ("b", idle_short), ("c", busy)]


def test_capacity_is_reserved_and_released():
    r = Router()
    anna = op(r, "anna", capacity=2)
    for i in range(3):
        r.enqueue(entry(f"s{i}", i))
    assert [a.session_id for a in r.assign_next(10)] == ["s0", "s1"]
    assert r.operators[anna].load == 2 and len(r) == 1
    r.add_load(anna, -1)
    assert [a.session_id for a in r.assign_next(11)] == ["s2"]
    r.add_load(anna, -5)
    assert r.operators[anna].load == 0


def test_departments_do_not_block_each_other():
    r = Router()
    op(r, "billing-op", departments={"billing"})
    r.enqueue(entry("tech-first", 1, department="technical"))
    r.enqueue(entry("billing-second", 2, department="billing"))
    got = [(a.session_id, a.operator_id) for a in r.assign_next(5)]
    assert got == [("billing-second", "billing-op")]
    assert r.ordered()[0].session_id == "tech-first"
    generalist = op(r, "generalist")
    assert [(a.session_id, a.operator_id) for a in r.assign_next(6)] == [("tech-first", generalist)]


def test_preferred_operator_wins_when_eligible():
    r = Router()
    op(r, "anna", now=0)
    ben = op(r, "ben", now=5)
    r.enqueue(entry("a", 1, preferred_operator=ben))
    assert r.assign_next(10)[0].operator_id == ben


def test_remove_and_reenqueue():
    r = Router()
    r.enqueue(entry("a", 1))
    r.enqueue(entry("b", 2))
    assert r.remove(SessionId("a")) is not None
    assert r.remove(SessionId("a")) is None
    assert r.position(SessionId("a")) is None
    r.enqueue(entry("a", 1, requeued=True))
    assert [e.session_id for e in r.ordered()] == ["a", "b"]
    op(r, "x", capacity=1)
    assert r.assign_next(3)[0].session_id == "a"


@settings(max_examples=200, deadline=None)
@given(
    capacities=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    events=st.lists(
        st.one_of(
            st.tuples(st.just("enqueue"), st.integers(0, 2), st.sampled_from([None, "t", "b"])),
            st.tuples(st.just("close"), st.integers(0, 40), st.none()),
            st.tuples(st.just("status"), st.integers(0, 4), st.sampled_from(list(OperatorStatus))),
        ),
        max_size=60,
    ),
)
def test_never_over_capacity_and_each_chat_assigned_once(capacities, events):
    r = Router()
    ops = [
        op(r, f"o{i}", capacity=c, departments={"t"} if i % 2 else ())
        for i, c in enumerate(capacities)
    ]
    assigned: dict[str, OperatorId] = {}
    open_chats: dict[OperatorId, list[str]] = {o: [] for o in ops}
    counter = 0
    for t, (kind, arg, extra) in enumerate(events):
        if kind == "enqueue":
            counter += 1
            r.enqueue(entry(f"s{counter}", t, Priority(arg), department=extra))
        elif kind == "close":
            owner = ops[arg % len(ops)]
            if open_chats[owner]:
                open_chats[owner].pop(0)
                r.add_load(owner, -1)
        else:
            r.set_status(ops[arg % len(ops)], extra, t)
        for a in r.assign_next(t):
            assert a.session_id not in assigned, "assigned twice"
            assigned[a.session_id] = a.operator_id
            open_chats[a.operator_id].append(a.session_id)
            slot = r.operators[a.operator_id]
            assert slot.status is OperatorStatus.ONLINE
            assert slot.serves(a.entry.department)
        for o in ops:
            slot = r.operators[o]
            assert slot.load == len(open_chats[o]) <= slot.capacity
        # No eligible operator is idle while a chat it could serve waits.
        for e in r.ordered():
            assert r.choose_operator(e) is None
