"""A chat whose visitor asked for another operator waits alone: the chats behind it in the
same queue still go to the operator it avoids. Memory and Redis backends alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from chatserver.chat.routing import QueueEntry
from chatserver.presence.memory import MemoryPresence
from chatserver.presence.redis import RedisPresence
from chatserver.types import OperatorId, OperatorStatus, SessionId

REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = 1_700_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def presence(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryPresence(clock=lambda: NOW)
        return
    redis = Redis.from_url(REDIS_URL)
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    try:
        yield RedisPresence(redis, prefix=prefix, node_id="n1", ttl=30, clock=lambda: NOW)
    finally:
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def online(p: Any, name: str) -> OperatorId:
    oid = OperatorId(name)
    await p.register_operator(oid, capacity=3, departments=())
    await p.set_status(oid, OperatorStatus.ONLINE)
    return oid


async def test_a_chat_avoiding_the_only_free_operator_does_not_block_its_queue(
    presence: Any,
) -> None:
    anna = await online(presence, "anna")
    await presence.enqueue(QueueEntry(SessionId("a"), NOW - 30, avoid_operator=anna))
    await presence.enqueue(QueueEntry(SessionId("b"), NOW - 20))
    await presence.enqueue(QueueEntry(SessionId("c"), NOW - 10))
    got = [(a.session_id, a.operator_id) for a in await presence.assign_next()]
    assert got == [("b", anna), ("c", anna)]
    assert [e.session_id for e in await presence.queue_snapshot()] == ["a"]
    bert = await online(presence, "bert")
    assert [(a.session_id, a.operator_id) for a in await presence.assign_next()] == [("a", bert)]
