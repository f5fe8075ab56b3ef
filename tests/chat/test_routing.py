"""Pure routing core: queue order and operator choice, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.chat.routing import QueueEntry, Router
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


# -- order across pools (departments and levels each have their own queue) -------------------


def test_operator_of_two_departments_gets_the_oldest_chat_of_either():
    for first, second in (("billing", "technical"), ("technical", "billing")):
        r = Router()
        # The newer chat's pool is created first: pool order must not decide.
        r.enqueue(entry("newer", 20, department=first))
        r.enqueue(entry("older", 10, department=second))
        op(r, "both", capacity=1, departments={"billing", "technical"})
        assert [a.session_id for a in r.assign_next(30)] == ["older"]
        assert [e.session_id for e in r.ordered()] == ["newer"]


def test_chats_of_several_pools_are_served_in_one_order():
    r = Router()
    r.enqueue(entry("t-3", 3, department="technical"))
    r.enqueue(entry("b-2", 2, department="billing"))
    r.enqueue(entry("t-1", 1, department="technical"))
    r.enqueue(entry("s-4", 4, department="sales"))
    r.enqueue(entry("b-0", 0, department="billing"))
    r.enqueue(entry("l2-5", 5, level=2))
    expected = ["b-0", "t-1", "b-2", "t-3", "s-4", "l2-5"]
    assert [e.session_id for e in r.ordered()] == expected
    assert [r.position(SessionId(n)) for n in expected] == [1, 2, 3, 4, 5, 6]
    anna = OperatorId("anna")
    r.upsert_operator(anna, capacity=10, levels=(1, 2))
    r.set_status(anna, OperatorStatus.ONLINE, 0)
    assert [a.session_id for a in r.assign_next(10)] == expected


def test_across_pools_priority_and_requeue_come_before_age():
    r = Router()
    r.enqueue(entry("normal-old", 1, department="billing"))
    r.enqueue(entry("vip-new", 100, Priority.VIP, department="technical"))
    r.enqueue(entry("requeued", 300, department="sales", requeued=True))
    op(r, "any", capacity=1)
    assert [a.session_id for a in r.assign_next(400)] == ["requeued"]
    r.add_load(OperatorId("any"), -1)
    assert [a.session_id for a in r.assign_next(401)] == ["vip-new"]
    r.add_load(OperatorId("any"), -1)
    assert [a.session_id for a in r.assign_next(402)] == ["normal-old"]


def test_aging_lets_an_old_normal_chat_of_another_pool_go_before_a_new_vip():
    r = Router()
    # A VIP chat has a head start of aging_seconds (600) over a normal one.
    r.enqueue(entry("normal", 0, department="billing"))
    r.enqueue(entry("vip", 601, Priority.VIP, department="technical"))
    r.enqueue(entry("vip-early", 599, Priority.VIP, department="sales"))
    op(r, "any", capacity=3)
    assert [a.session_id for a in r.assign_next(700)] == ["vip-early", "normal", "vip"]


def test_equal_age_across_pools_is_served_by_session_id():
    r = Router()
    r.enqueue(entry("b", 5, department="technical"))
    r.enqueue(entry("a", 5, department="billing"))
    r.enqueue(entry("c", 5, department="sales"))
    op(r, "any", capacity=3)
    assert [a.session_id for a in r.assign_next(10)] == ["a", "b", "c"]


# -- operators -------------------------------------------------------------------------------


def test_upsert_updates_an_operator_and_keeps_status_and_load():
    r = Router()
    anna = op(r, "anna", capacity=1, departments={"billing"}, now=3)
    r.add_load(anna, 1)
    slot = r.upsert_operator(anna, capacity=3, departments=["technical"], levels=[1, 2])
    assert slot is r.operators[anna]
    assert (slot.capacity, slot.departments, slot.levels) == (3, {"technical"}, {1, 2})
    assert (slot.status, slot.load, slot.idle_since, slot.free) == (OperatorStatus.ONLINE, 1, 3, 2)
    r.enqueue(entry("tech", 1, department="technical", level=2))
    r.enqueue(entry("bill", 2, department="billing"))
    assert [(a.session_id, a.operator_id) for a in r.assign_next(5)] == [("tech", anna)]


def test_support_levels_route_to_operators_of_that_level():
    r = Router()
    first = OperatorId("first")
    r.upsert_operator(first, capacity=5)  # level 1 by default
    second = OperatorId("second")
    r.upsert_operator(second, capacity=5, levels=(2,))
    for oid in (first, second):
        r.set_status(oid, OperatorStatus.ONLINE, 0)
    r.enqueue(entry("l2", 1, level=2))
    r.enqueue(entry("l1", 2))
    r.enqueue(entry("l3", 3, level=3))
    got = [(a.session_id, a.operator_id) for a in r.assign_next(5)]
    assert got == [("l2", second), ("l1", first)]
    assert [e.session_id for e in r.ordered()] == ["l3"]  # nobody serves level 3
    assert r.operators[second].serves(None, 2) and not r.operators[second].serves(None, 1)


def test_longest_idle_is_counted_from_coming_online_not_from_repeated_online():
    r = Router()
    # Names in the opposite order of idle time, so that the id tie-break cannot pass for it.
    zoe = op(r, "zoe", now=1)
    amy = op(r, "amy", now=5)
    r.set_status(zoe, OperatorStatus.ONLINE, 9)  # already online: still idle since 1
    r.enqueue(entry("a", 10))
    assert [a.operator_id for a in r.assign_next(10)] == [zoe]
    r.add_load(zoe, -1)  # zoe is idle again, since 10; amy since 5
    r.enqueue(entry("b", 11))
    assert [a.operator_id for a in r.assign_next(11)] == [amy]
    r.add_load(amy, -1)
    # Away and back: idle since the return (20), so zoe (since 10) is next.
    r.set_status(amy, OperatorStatus.AWAY, 15)
    assert r.operators[amy].idle_since == 11
    r.set_status(amy, OperatorStatus.ONLINE, 20)
    assert r.operators[amy].idle_since == 20
    r.enqueue(entry("c", 21))
    assert [a.operator_id for a in r.assign_next(21)] == [zoe]


# -- queue bookkeeping -----------------------------------------------------------------------


def test_membership_lookup_and_double_enqueue():
    r = Router()
    e = entry("a", 1)
    r.enqueue(e)
    assert SessionId("a") in r and SessionId("b") not in r
    assert r.get(SessionId("a")) is e and r.get(SessionId("b")) is None
    assert len(r) == 1
    with pytest.raises(ValueError, match="a is already queued"):
        r.enqueue(entry("a", 2))
    assert r.remove(SessionId("a")) is e
    assert SessionId("a") not in r and len(r) == 0


# -- the visitor's wishes: a preferred operator for a while, or anyone but one ---------------


def test_a_chat_waits_for_its_preferred_operator_until_the_grace_ends():
    r = Router()
    anna = op(r, "anna", now=0)
    ben = op(r, "ben", now=1)
    r.set_status(ben, OperatorStatus.AWAY, 2)
    r.enqueue(entry("regular", 1, preferred_operator=ben, preferred_until=100))
    r.enqueue(entry("new", 2))
    # Only the chat waiting for ben waits; the one behind it goes to anna.
    assert r.choose_operator(r.ordered()[0], 50) is None
    assert [(a.session_id, a.operator_id) for a in r.assign_next(50)] == [("new", anna)]
    assert [e.session_id for e in r.ordered()] == ["regular"]
    assert r.assign_next(99.5) == []  # still held, and not lost from the queue
    assert SessionId("regular") in r
    # At the end of the grace anyone may take it.
    assert [(a.session_id, a.operator_id) for a in r.assign_next(100)] == [("regular", anna)]


def test_the_preferred_operator_gets_the_chat_when_back_within_the_grace():
    r = Router()
    op(r, "anna", now=0)  # idle longest and first in the operators' order
    ben = op(r, "ben", now=1)
    r.set_status(ben, OperatorStatus.AWAY, 2)
    r.enqueue(entry("regular", 1, preferred_operator=ben, preferred_until=100))
    assert r.assign_next(10) == []
    r.set_status(ben, OperatorStatus.ONLINE, 20)
    assert [(a.session_id, a.operator_id) for a in r.assign_next(30)] == [("regular", ben)]
    # After the grace the preferred operator still wins while eligible.
    r.enqueue(entry("late", 40, preferred_operator=ben, preferred_until=50))
    assert [(a.session_id, a.operator_id) for a in r.assign_next(60)] == [("late", ben)]


def test_a_held_chat_does_not_block_its_pool_for_good():
    r = Router()
    ben = op(r, "ben", capacity=1, now=0)
    r.add_load(ben, 1)  # busy
    r.enqueue(entry("regular", 1, preferred_operator=ben, preferred_until=100))
    r.enqueue(entry("other", 2))
    assert r.assign_next(10) == []  # nobody free at all
    anna = op(r, "anna", capacity=1, now=11)
    assert [(a.session_id, a.operator_id) for a in r.assign_next(12)] == [("other", anna)]
    r.add_load(ben, -1)
    assert [(a.session_id, a.operator_id) for a in r.assign_next(13)] == [("regular", ben)]


def test_a_chat_without_a_preferred_operator_never_waits():
    r = Router()
    anna = op(r, "anna")
    r.enqueue(entry("a", 1, preferred_until=100))
    assert [(a.session_id, a.operator_id) for a in r.assign_next(5)] == [("a", anna)]


def test_the_operator_to_avoid_is_skipped_wherever_they_stand():
    r = Router()
    anna = op(r, "anna", now=0)  # idle longest and first in order
    ben = op(r, "ben", now=1)
    r.enqueue(entry("a", 1, avoid_operator=anna))
    assert [(a.session_id, a.operator_id) for a in r.assign_next(5)] == [("a", ben)]
    r.enqueue(entry("b", 6, avoid_operator=ben))
    r.add_load(ben, 1)
    assert [(a.session_id, a.operator_id) for a in r.assign_next(7)] == [("b", anna)]
    r.enqueue(entry("c", 8, avoid_operator=anna, preferred_operator=anna))
    r.set_status(ben, OperatorStatus.AWAY, 9)
    assert r.assign_next(10) == []  # only anna is free, and the visitor asked for someone else


def test_a_chat_avoiding_the_only_free_operator_does_not_hold_up_the_others():
    # Bug fixed: the pool was blocked for the round, so "b" waited although anna was free.
    r = Router()
    anna = op(r, "anna")
    r.enqueue(entry("a", 1, avoid_operator=anna))
    r.enqueue(entry("b", 2))
    r.enqueue(entry("c", 3))
    assert [(a.session_id, a.operator_id) for a in r.assign_next(5)] == [("b", anna), ("c", anna)]
    assert [e.session_id for e in r.ordered()] == ["a"]
    ben = op(r, "ben", now=6)
    assert [(a.session_id, a.operator_id) for a in r.assign_next(7)] == [("a", ben)]
