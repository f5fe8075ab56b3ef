"""The login guard's policy on both failure counters (one contract, two backends)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from chatserver.config import Settings
from chatserver.errors import LoginThrottled
from chatserver.operators.throttle import LoginGuard, MemoryFailures, RedisFailures, backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap():
    assert [backoff(n, 3, 1.0, 10.0) for n in range(1, 9)] == [0, 0, 0, 1, 2, 4, 8, 10]
    assert backoff(10_000, 3, 1.0, 900.0) == 900.0


@pytest.fixture(params=["memory", "redis"])
async def guard(request) -> AsyncIterator[tuple[LoginGuard, Clock]]:
    clock = Clock()
    settings = Settings(
        login_throttle_free=2,
        login_throttle_address_free=4,
        login_throttle_base_seconds=10,
        login_throttle_max_seconds=40,
    )
    if request.param == "memory":
        yield LoginGuard(settings, MemoryFailures(clock), clock), clock
        return
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"cst-{uuid.uuid4().hex[:8]}"
    yield LoginGuard(settings, RedisFailures(redis, prefix, clock), clock), clock
    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_account_locks_after_the_free_failures(guard):
    g, clock = guard
    await g.check("Anna", "10.0.0.1")
    assert await g.failed("Anna", "10.0.0.1") == 0
    assert await g.failed("anna", "10.0.0.2") == 0  # usernames count case-blind
    assert await g.failed("anna", "10.0.0.3") == clock.now + 10
    with pytest.raises(LoginThrottled) as refused:
        await g.check("anna", "10.0.0.9")
    assert refused.value.retry_after == 10 and "account" in refused.value.message
    assert await g.account_locks(["anna", "ben"]) == {"anna": clock.now + 10}
    clock.now += 10.5
    await g.check("anna", "10.0.0.9")  # the lock passed
    assert await g.failed("anna", "10.0.0.4") == clock.now + 20  # and doubles
    await g.succeeded("anna")  # a success forgets the account's failures
    await g.check("anna", "10.0.0.9")
    assert await g.failed("anna", "10.0.0.5") == 0


async def test_address_locks_across_usernames(guard):
    g, clock = guard
    for i in range(4):
        assert await g.failed(f"user{i}", "10.9.9.9") == 0
    assert await g.failed("user4", "10.9.9.9") == clock.now + 10
    with pytest.raises(LoginThrottled) as refused:
        await g.check("ben", "10.9.9.9")
    assert "address" in refused.value.message
    await g.check("ben", "10.9.9.8")
    await g.succeeded("user4")  # does not unlock the address
    with pytest.raises(LoginThrottled):
        await g.check("ben", "10.9.9.9")
