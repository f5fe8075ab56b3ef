"""Forgetting what a test left in the shared Redis under its own key prefix."""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

REDIS_URL = "redis://127.0.0.1:6379/0"


async def forget_prefix_async(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under ``prefix:`` (from a running event loop)."""
    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def forget_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """As :func:`forget_prefix_async`, from a sync fixture's teardown; a Redis that is
    gone by then is not the test's failure."""
    with contextlib.suppress(Exception):
        asyncio.run(forget_prefix_async(prefix, url))
