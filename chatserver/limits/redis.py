"""Counters in Redis: every node sharing the Redis counts together.

Keys: ``{prefix}:lim:<key>`` (a string counter with the window as its expiry). One Lua
script checks every quota and then counts all of them, so concurrent takes on any
number of nodes never exceed a limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from chatserver.limits.base import Quota

__all__ = ["RedisLimiter"]

# KEYS: the counters. ARGV: per key limit, window (ms), cost.
# Returns -1 when taken, else the refusing key's remaining window in ms.
_TAKE = """
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local limit = tonumber(ARGV[base + 1])
  local cost = tonumber(ARGV[base + 3])
  local count = tonumber(redis.call('GET', key) or '0')
  if count + cost > limit then
    local ttl = redis.call('PTTL', key)
    if ttl <= 0 then ttl = tonumber(ARGV[base + 2]) end
    return ttl
  end
end
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local cost = tonumber(ARGV[base + 3])
  local count = redis.call('INCRBY', key, cost)
  if count == cost or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[base + 2])
  end
end
return -1
"""


class RedisLimiter:
    """:class:`~chatserver.limits.base.Limiter` on a Redis shared by the nodes."""

    def __init__(self, redis: Redis, prefix: str = "cs") -> None:
        self.redis = redis
        self.prefix = prefix
        self._take = redis.register_script(_TAKE)

    async def take(self, quotas: Sequence[Quota]) -> float | None:
        if not quotas:
            return None
        keys = [f"{self.prefix}:lim:{q.key}" for q in quotas]
        args: list[Any] = []
        for q in quotas:
            args += [q.limit, max(1, round(q.window * 1000)), q.cost]
        result = int(await self._take(keys=keys, args=args))
        return None if result < 0 else max(result, 1) / 1000

    async def close(self) -> None:
        """The Redis client is the caller's."""
