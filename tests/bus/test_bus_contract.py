"""One contract, every Bus: memory always, Redis against a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from chatserver.bus.memory import MemoryBroker, MemoryBus
from chatserver.bus.redis import RedisBus
from tests.waiting import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


class Node:
    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.notes: list[tuple[str, bytes]] = []
        self.resyncs = 0
        self.changed = asyncio.Event()

    def on_note(self, channel: str, payload: bytes) -> None:
        self.notes.append((channel, payload))
        self.changed.set()

    async def on_resync(self) -> None:
        self.resyncs += 1
        self.changed.set()

    async def wait(self, predicate, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


@pytest.fixture(params=["memory", "redis"])
async def nodes(request) -> AsyncIterator[tuple[Node, Node]]:
    if request.param == "memory":
        broker = MemoryBroker()
        a, b = Node(MemoryBus(broker)), Node(MemoryBus(broker))
    else:
        prefix = f"cstest-{uuid.uuid4().hex[:8]}"
        a = Node(RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="a"))
        b = Node(RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="b"))
    for n in (a, b):
        await n.bus.start(n.on_note, n.on_resync)
    if request.param == "redis":
        # Both subscriber connections are up (each holds its node channel).
        await listening(a.bus, "_node", 2)
    yield a, b
    for n in (a, b):
        await n.bus.close()
        if isinstance(n.bus, RedisBus):
            await n.bus.redis.aclose()


async def listeners(bus: Any, channel: str) -> int:
    """How many buses the broker delivers ``channel`` to (what Redis itself reports)."""
    if isinstance(bus, RedisBus):
        ((_, count),) = await bus.redis.pubsub_numsub(bus.prefix + channel)
        return int(count)
    return len(bus.broker.subscribers.get(channel, ()))


async def listening(bus: Any, channel: str, count: int) -> None:
    """Wait until the broker has ``count`` subscribers on ``channel`` (a subscribe or
    unsubscribe took effect there, not just in the bus's own bookkeeping)."""

    async def check() -> bool:
        return await listeners(bus, channel) == count

    await eventually(check, message=f"{count} subscriber(s) on {channel}")


async def flushed(bus: Any, count: int) -> None:
    """Wait until ``count`` notes went out to the broker (Redis publishes in the
    background; the memory bus hands notes over in ``publish`` itself)."""
    if isinstance(bus, RedisBus):
        await eventually(lambda: bus.published >= count, message=f"{count} notes published")


async def test_notes_reach_other_subscribers_in_order_not_the_publisher(nodes):
    a, b = nodes
    await a.bus.subscribe("s:1")
    await b.bus.subscribe("s:1")
    await listening(b.bus, "s:1", 2)
    for i in range(500):
        a.bus.publish("s:1", f"n{i}".encode())
    a.bus.publish("s:other", b"nobody listens")
    await b.wait(lambda: len(b.notes) == 500)
    assert b.notes == [("s:1", f"n{i}".encode()) for i in range(500)]
    # The publisher hears nothing of its own: b's marker, published after b got
    # all 500, reaches a after any echo of them would have.
    b.bus.publish("s:1", b"marker")
    await a.wait(lambda: len(a.notes) > 0)
    assert a.notes == [("s:1", b"marker")]
    assert a.bus.healthy and b.bus.healthy


async def test_unsubscribe_stops_notes(nodes):
    a, b = nodes
    await b.bus.subscribe("s:2")
    await b.bus.subscribe("s:2")  # idempotent
    await listening(b.bus, "s:2", 1)
    a.bus.publish("s:2", b"one")
    await b.wait(lambda: len(b.notes) == 1)
    await b.bus.unsubscribe("s:2")
    await listening(b.bus, "s:2", 0)
    a.bus.publish("s:2", b"two")
    a.bus.publish("s:3", b"three")
    await flushed(a.bus, 3)  # published (to nobody) before b subscribes
    await b.bus.subscribe("s:3")
    await listening(b.bus, "s:3", 1)
    a.bus.publish("s:3", b"four")
    # "four" went out after "two" and "three": had either reached b, it would be
    # here before "four".
    await b.wait(lambda: len(b.notes) == 2)
    assert [p for _, p in b.notes] == [b"one", b"four"]


async def test_redis_publishes_are_pipelined():
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    bus = RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="x")
    node = Node(bus)
    await bus.start(node.on_note, node.on_resync)
    try:
        for i in range(1000):
            bus.publish(f"s:{i % 10}", b"x")
        await flushed(bus, 1000)
        assert bus.published == 1000
        assert bus.round_trips <= 3, bus.round_trips
    finally:
        await bus.close()
        await bus.redis.aclose()


async def test_redis_subscriber_killed_resyncs_and_keeps_working():
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    a = Node(RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="a"))
    b = Node(RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="b"))
    admin = Redis.from_url(REDIS_URL)
    for n in (a, b):
        await n.bus.start(n.on_note, n.on_resync)
    try:
        await b.bus.subscribe("s:k")
        await listening(b.bus, "s:k", 1)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await b.wait(lambda: b.resyncs >= 1)
        # The reconnected subscriber listens to the channel again.
        await listening(b.bus, "s:k", 1)
        a.bus.publish("s:k", b"after")
        await b.wait(lambda: ("s:k", b"after") in b.notes)
        assert b.bus.healthy
    finally:
        for n in (a, b):
            await n.bus.close()
            await n.bus.redis.aclose()
        await admin.aclose()


async def test_subscribing_while_the_bus_connects_is_not_lost():
    """A channel subscribed before the subscriber connection is up (the hub does this
    at start) must be listened to once it is."""
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    a = Node(RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="a"))
    b = Node(RedisBus(Redis.from_url(REDIS_URL), prefix=prefix, node_id="b"))
    try:
        await a.bus.start(a.on_note, a.on_resync)
        await b.bus.start(b.on_note, b.on_resync)
        # Let the reader start connecting, then subscribe while that is in flight.
        await asyncio.sleep(0)
        await b.bus.subscribe("early")

        async def keep_publishing() -> None:
            while not b.notes:
                a.bus.publish("early", b"hello")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(keep_publishing(), 5.0)
        assert b.notes[0] == ("early", b"hello")
    finally:
        for n in (a, b):
            await n.bus.close()
            await n.bus.redis.aclose()
