"""One contract, every Limiter: memory always, Redis against a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from chatserver.limits.base import Quota
from chatserver.limits.memory import MemoryLimiter
from chatserver.limits.redis import RedisLimiter
from tests.waiting import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def pair(request: Any) -> AsyncIterator[tuple[Any, Any, str]]:
    """Two limiters that share their counts (two nodes), and the backend's name."""
    if request.param == "memory":
        one = MemoryLimiter()
        yield one, one, "memory"
        return
    prefix = f"cstest-{uuid.uuid4().hex[:8]}"
    clients = [Redis.from_url(REDIS_URL) for _ in range(2)]
    yield RedisLimiter(clients[0], prefix), RedisLimiter(clients[1], prefix), "redis"
    keys = [k async for k in clients[0].scan_iter(f"{prefix}:*")]
    if keys:
        await clients[0].delete(*keys)
    for c in clients:
        await c.aclose()


async def test_counts_up_to_the_limit_then_refuses_with_the_time_left(pair: Any) -> None:
    a, b, _ = pair
    q = Quota("s:1", limit=3, window=60)
    assert await a.take([q]) is None
    assert await b.take([q]) is None
    assert await a.take([q]) is None
    retry = await b.take([q])
    assert retry is not None and 0 < retry <= 60
    # Another key is counted apart.
    assert await a.take([Quota("s:2", limit=3, window=60)]) is None


async def test_all_or_nothing_over_several_quotas(pair: Any) -> None:
    a, b, _ = pair
    session = Quota("s:1", limit=5, window=60)
    email = Quota("e:x@example.ch", limit=1, window=3600)
    assert await a.take([session, email]) is None
    retry = await b.take([session, email])
    assert retry is not None and 60 < retry <= 3600  # the refusing quota's window
    # The refused take counted nothing on the session: four more fit, not three.
    for _ in range(4):
        assert await a.take([session]) is None
    assert await a.take([session]) is not None


async def test_costs_count_bytes_and_a_cost_over_the_limit_is_refused(pair: Any) -> None:
    a, b, _ = pair
    assert await a.take([Quota("b:1", limit=100, window=60, cost=60)]) is None
    assert await b.take([Quota("b:1", limit=100, window=60, cost=41)]) is not None
    assert await b.take([Quota("b:1", limit=100, window=60, cost=40)]) is None
    assert await a.take([Quota("b:2", limit=100, window=60, cost=101)]) is not None
    assert await a.take([Quota("z", limit=0, window=60)]) is not None
    assert await a.take([]) is None


async def test_concurrent_takes_never_exceed_the_limit(pair: Any) -> None:
    a, b, _ = pair
    q = Quota("race", limit=10, window=60)
    results = await asyncio.gather(*(lim.take([q]) for lim in [a, b] * 25))
    assert sum(1 for r in results if r is None) == 10


async def test_a_new_window_starts_after_the_old_one_ends(pair: Any) -> None:
    a, b, backend = pair
    if backend == "memory":
        clock = Clock()
        a = b = MemoryLimiter(clock)
        q = Quota("w", limit=1, window=10)
        assert await a.take([q]) is None
        assert await b.take([q]) == pytest.approx(10)
        clock.now += 10
        assert await b.take([q]) is None
    else:
        q = Quota("w", limit=1, window=0.05)
        assert await a.take([q]) is None
        # Redis expires the window by itself; wait for it to be gone.
        key = f"{a.prefix}:lim:w"
        async def gone() -> bool:
            return not await a.redis.exists(key)

        await eventually(gone, message="the window expired")
        assert await b.take([q]) is None
