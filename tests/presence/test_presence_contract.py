"""One contract, every Presence backend: memory always, Redis against a real server."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from chatserver.chat.routing import QueueEntry
from chatserver.presence.memory import MemoryPresence
from chatserver.presence.redis import RedisPresence
from chatserver.types import OperatorId, OperatorStatus, Priority, SessionId
from tests.waiting import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _cleanup(redis: Redis, prefix: str) -> None:
    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
async def backend(request) -> AsyncIterator[Any]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryPresence(clock=clock), clock
        return
    redis = Redis.from_url(REDIS_URL)
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    try:
        yield RedisPresence(redis, prefix=prefix, node_id="n1", ttl=30, clock=clock), clock
    finally:
        await _cleanup(redis, prefix)
        await redis.aclose()


async def online(p, name: str, capacity: int = 2, departments=()) -> OperatorId:
    oid = OperatorId(name)
    await p.register_operator(oid, capacity=capacity, departments=departments)
    await p.set_status(oid, OperatorStatus.ONLINE)
    return oid


def entry(sid: str, at: float, priority=Priority.NORMAL, **kw) -> QueueEntry:
    return QueueEntry(SessionId(sid), at, priority, **kw)


async def test_queue_order_and_positions(backend):
    p, clock = backend
    assert await p.enqueue(entry("a", clock.now + 1)) == 1
    assert await p.enqueue(entry("b", clock.now + 2)) == 2
    assert await p.enqueue(entry("vip", clock.now + 3, Priority.VIP)) == 1
    assert await p.enqueue(entry("back", clock.now + 9, requeued=True)) == 1
    assert [e.session_id for e in await p.queue_snapshot()] == ["back", "vip", "a", "b"]
    assert await p.position(SessionId("a")) == 3
    assert await p.position(SessionId("nope")) is None
    with pytest.raises(ValueError):
        await p.enqueue(entry("a", clock.now))
    assert await p.dequeue(SessionId("vip")) is True
    assert await p.dequeue(SessionId("vip")) is False
    assert [e.session_id for e in await p.queue_snapshot()] == ["back", "a", "b"]
    snap = (await p.queue_snapshot())[0]
    assert snap.requeued and snap.enqueued_at == clock.now + 9


async def test_assignment_respects_status_capacity_and_load(backend):
    p, clock = backend
    for i in range(4):
        await p.enqueue(entry(f"s{i}", clock.now + i))
    assert await p.assign_next() == []
    away = OperatorId("away")
    await p.register_operator(away, capacity=5, departments=())
    await p.set_status(away, OperatorStatus.AWAY)
    assert await p.assign_next() == []
    clock.now += 10
    anna = await online(p, "anna", capacity=2)
    clock.now += 1
    ben = await online(p, "ben", capacity=1)
    got = [(a.session_id, a.operator_id) for a in await p.assign_next()]
    # Least loaded first, ties by longest idle (anna came online first).
    assert got == [("s0", anna), ("s1", ben), ("s2", anna)]
    assert (await p.operator(anna)).load == 2 and (await p.operator(ben)).load == 1
    assert await p.assign_next() == []
    await p.add_load(ben, -1)
    assert [a.session_id for a in await p.assign_next()] == ["s3"]
    await p.add_load(ben, -10)
    assert (await p.operator(ben)).load == 0


async def test_departments_and_preferred_operator(backend):
    p, clock = backend
    billing = await online(p, "billing-op", capacity=3, departments={"billing"})
    await p.enqueue(entry("tech", clock.now + 1, department="technical"))
    await p.enqueue(entry("bill", clock.now + 2, department="billing"))
    got = [(a.session_id, a.operator_id) for a in await p.assign_next()]
    assert got == [("bill", billing)]
    clock.now += 5
    general = await online(p, "general", capacity=3)
    await p.enqueue(entry("pref", clock.now + 1, preferred_operator=billing))
    got = {a.session_id: a.operator_id for a in await p.assign_next()}
    assert got == {"tech": general, "pref": billing}
    assigned = await p.assign_next()
    assert assigned == []


async def test_assignment_carries_the_entry(backend):
    p, clock = backend
    await online(p, "anna")
    await p.enqueue(entry("x", clock.now + 1, Priority.URGENT, department=None, requeued=True))
    (a,) = await p.assign_next()
    assert a.entry.priority is Priority.URGENT and a.entry.requeued
    assert await p.position(SessionId("x")) is None


async def test_offline_operator_gets_nothing(backend):
    p, clock = backend
    anna = await online(p, "anna")
    await p.set_status(anna, OperatorStatus.OFFLINE)
    await p.enqueue(entry("x", clock.now))
    assert await p.assign_next() == []
    assert (await p.operator(anna)).status is OperatorStatus.OFFLINE
    assert await p.operator(OperatorId("ghost")) is None


async def test_visitor_presence(backend):
    p, _ = backend
    a, b = SessionId("a"), SessionId("b")
    await p.visitor_seen(a, "https://shop.example/")
    await p.visitor_seen(b, None)
    assert await p.visitors_connected([a, b, SessionId("c")]) == {a, b}
    await p.visitor_left(a)
    assert await p.visitors_connected([a, b]) == {b}
    assert await p.visitors_connected([]) == set()


# --- Redis only: what only a shared backend has to promise -----------------


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[Redis, str]]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    try:
        yield redis, prefix
    finally:
        await _cleanup(redis, prefix)
        await redis.aclose()


async def status_is(p: RedisPresence, operator_id: OperatorId, status: OperatorStatus) -> bool:
    slot = await p.operator(operator_id)
    return slot is not None and slot.status is status


async def test_redis_operator_expires_without_heartbeat(redis_prefix):
    redis, prefix = redis_prefix
    p = RedisPresence(redis, prefix=prefix, node_id="n1", ttl=1.0)
    anna = await online(p, "anna")
    alive = f"{prefix}:alive:{anna}"
    set_to_expire_at = await redis.pexpiretime(alive)  # absolute, in ms

    # Part of the TTL runs out (seen on the key itself), then a heartbeat renews it:
    # the key now expires later than first set, a fact independent of how long the
    # wait took, and the operator is still online.
    async def ttl_running_out() -> bool:
        return 0 < await redis.pttl(alive) < 900

    await eventually(ttl_running_out, message="the alive key's TTL running out")
    await p.heartbeat()
    assert await redis.pexpiretime(alive) > set_to_expire_at
    assert await status_is(p, anna, OperatorStatus.ONLINE)

    # The node "died": no more heartbeats. Letting the TTL pass is the thing under
    # test, so we wait for its observable result (the operator goes offline).
    await eventually(
        lambda: status_is(p, anna, OperatorStatus.OFFLINE), message="anna offline after TTL"
    )
    await p.enqueue(entry("x", 1.0))
    assert await p.assign_next() == []


async def test_redis_three_nodes_thousand_visitors_concurrently(redis_prefix):
    _, prefix = redis_prefix
    nodes = [
        RedisPresence(
            Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=8)),
            prefix=prefix,
            node_id=f"n{i}",
            ttl=60,
        )
        for i in range(3)
    ]
    try:
        operators = []
        for i in range(20):
            operators.append(await online(nodes[i % 3], f"op{i:02d}", capacity=5))
        assigned: dict[str, str] = {}
        open_chats: dict[str, list[str]] = {o: [] for o in operators}

        def record(assignments):
            for a in assignments:
                assert a.session_id not in assigned, f"{a.session_id} assigned twice"
                assigned[a.session_id] = a.operator_id
                open_chats[a.operator_id].append(a.session_id)

        async def arrive(i: int) -> None:
            node = nodes[i % 3]
            await node.enqueue(entry(f"v{i:04d}", 1000.0 + i / 1000))
            record(await node.assign_next())

        await asyncio.gather(*(arrive(i) for i in range(1000)))
        assert len(assigned) == 100  # 20 operators x capacity 5
        for o in operators:
            slot = await nodes[0].operator(o)
            assert slot.load == len(open_chats[o]) == 5
        assert len(await nodes[1].queue_snapshot()) == 900

        # Chats close on all nodes at once; the queue drains in order.
        rng = random.Random(7)
        while len(assigned) < 1000:

            async def close_one(o: str) -> None:
                if open_chats[o]:
                    open_chats[o].pop(rng.randrange(len(open_chats[o])))
                    node = nodes[rng.randrange(3)]
                    await node.add_load(OperatorId(o), -1)
                    record(await node.assign_next())

            await asyncio.gather(*(close_one(o) for o in operators))
            for o in operators:
                assert (await nodes[2].operator(o)).load == len(open_chats[o]) <= 5
        assert sorted(assigned) == [f"v{i:04d}" for i in range(1000)]
        assert await nodes[0].queue_snapshot() == []
    finally:
        for node in nodes:
            await node.redis.aclose()


# ------------------------------------------------------------- routing policies
async def test_aging_lets_long_waiting_normal_chats_overtake(backend):
    p, clock = backend
    t = clock.now
    # A normal chat that has waited longer than one aging step beats a fresh VIP.
    await p.enqueue(entry("old-normal", t - 700, aging_seconds=600))
    await p.enqueue(entry("vip", t, Priority.VIP, aging_seconds=600))
    await p.enqueue(entry("new-normal", t - 100, aging_seconds=600))
    await p.enqueue(entry("urgent", t, Priority.URGENT, aging_seconds=600))
    order = [e.session_id for e in await p.queue_snapshot()]
    assert order == ["urgent", "old-normal", "vip", "new-normal"]


async def test_levels_route_to_operators_of_that_level(backend):
    p, clock = backend
    first = await online(p, "first", capacity=5)
    second = OperatorId("second")
    await p.register_operator(second, capacity=5, departments=(), levels=(2, 3))
    await p.set_status(second, OperatorStatus.ONLINE)
    await p.enqueue(entry("l2", clock.now, level=2))
    await p.enqueue(entry("l1", clock.now + 1))
    await p.enqueue(entry("l3", clock.now + 2, level=3, department="billing"))
    got = {a.session_id: a.operator_id for a in await p.assign_next()}
    assert got == {"l2": second, "l1": first, "l3": second}
    slots = {s.operator_id: s for s in await p.operators()}
    assert slots[second].levels == frozenset({2, 3}) and slots[second].load == 2


async def test_preferred_operator_waits_within_grace_then_anyone(backend):
    p, clock = backend
    anna = await online(p, "anna", capacity=1)
    bert = await online(p, "bert", capacity=1)
    await p.enqueue(entry("busy", clock.now - 5))
    assert [a.operator_id for a in await p.assign_next()] == [anna]  # anna is full now
    # Vera wants anna (her recurring contact): she waits, the chat behind her is served.
    await p.enqueue(entry("vera", clock.now, preferred_operator=anna,
                          preferred_until=clock.now + 60))
    await p.enqueue(entry("other", clock.now + 1))
    got = [(a.session_id, a.operator_id) for a in await p.assign_next()]
    assert got == [("other", bert)]
    assert [e.session_id for e in await p.queue_snapshot()] == ["vera"]
    # anna frees up within the grace: Vera gets her.
    await p.add_load(anna, -1)
    assert [(a.session_id, a.operator_id) for a in await p.assign_next()] == [("vera", anna)]
    # Past the grace, anyone eligible takes a preferring chat.
    await p.add_load(bert, -1)
    await p.enqueue(entry("late", clock.now, preferred_operator=anna,
                          preferred_until=clock.now - 1))
    assert [a.operator_id for a in await p.assign_next()] == [bert]


async def test_avoided_operator_is_never_chosen(backend):
    p, clock = backend
    anna = await online(p, "anna", capacity=3)
    await p.enqueue(entry("x", clock.now, avoid_operator=anna))
    assert await p.assign_next() == []
    bert = await online(p, "bert", capacity=3)
    assert [a.operator_id for a in await p.assign_next()] == [bert]


async def test_set_load_rebuilds_counted_load(backend):
    p, clock = backend
    anna = await online(p, "anna", capacity=2)
    await p.set_load(anna, 2)
    await p.enqueue(entry("x", clock.now))
    assert await p.assign_next() == []  # full
    await p.set_load(anna, 1)
    assert [a.operator_id for a in await p.assign_next()] == [anna]
    await p.set_load(OperatorId("ghost"), 3)  # unknown operators stay unknown
    assert await p.operator(OperatorId("ghost")) is None


async def test_any_online(backend):
    p, _ = backend
    assert await p.any_online() is False
    anna = OperatorId("anna")
    await p.register_operator(anna, capacity=2, departments=())
    assert await p.any_online() is False  # registered, still offline
    await p.set_status(anna, OperatorStatus.AWAY)
    assert await p.any_online() is False
    await p.set_status(anna, OperatorStatus.ONLINE)
    assert await p.any_online() is True
    await p.set_status(anna, OperatorStatus.OFFLINE)
    assert await p.any_online() is False


async def test_redis_any_online_ignores_an_operator_whose_node_died(redis_prefix):
    redis, prefix = redis_prefix
    p = RedisPresence(redis, prefix=prefix, node_id="n1", ttl=0.3)
    await online(p, "anna")
    assert await p.any_online() is True

    # No heartbeat: the alive key expires (the TTL passing is the thing under test).
    async def nobody_online() -> bool:
        return await p.any_online() is False

    await eventually(nobody_online, message="any_online() False after the TTL")
