"""Login throttling: exponential backoff per account and per client address.

After ``free`` failed logins for a key (an account's username, or a client address)
every further failure locks the key for ``base * 2**(n - free - 1)`` seconds, at most
``max``; while a key is locked every login for it is refused (HTTP 429 with
``Retry-After``) without checking the password, and refused attempts do not count.
Failures are forgotten ``window`` seconds after the last one; a successful login
forgets its account's failures (not its address's: one good account must not reset a
guessing address). Unknown usernames count like known ones.

Two backends behind :class:`FailureCounter`: :class:`MemoryFailures` (one node, the
embedded default) and :class:`RedisFailures` (nodes sharing Redis see one count).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from redis.asyncio import Redis

from chatserver.config import Settings
from chatserver.errors import LoginThrottled


def backoff(failures: int, free: int, base: float, cap: float) -> float:
    """Seconds a key is locked after its ``failures``-th failure (0: not locked)."""
    if failures <= free:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - free - 1, 40)))


class FailureCounter(Protocol):
    """Failed-login counts by key; every method is atomic per key across nodes."""

    async def fail(self, key: str, free: int, base: float, cap: float, window: float) -> float:
        """Count one failure for ``key``; return the time it is locked until (0: not)."""
        ...

    async def locked_until(self, keys: list[str]) -> list[float]:
        """For each key, the time it is locked until (0 when not locked or unknown)."""
        ...

    async def clear(self, key: str) -> None:
        """Forget ``key``'s failures."""


class MemoryFailures:
    """In-process counts: the embedded default (one node)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # key -> (failures, locked until, forget at)
        self.entries: dict[str, tuple[int, float, float]] = {}

    def _get(self, key: str, now: float) -> tuple[int, float, float] | None:
        entry = self.entries.get(key)
        if entry is not None and entry[2] <= now:
            del self.entries[key]
            return None
        return entry

    async def fail(self, key: str, free: int, base: float, cap: float, window: float) -> float:
        now = self.clock()
        if len(self.entries) > 100_000:  # a scan of addresses: drop the forgotten ones
            self.entries = {k: e for k, e in self.entries.items() if e[2] > now}
        failures, until, _ = self._get(key, now) or (0, 0.0, 0.0)
        failures += 1
        wait = backoff(failures, free, base, cap)
        if wait:
            until = now + wait
        self.entries[key] = (failures, until, now + window)
        return until

    async def locked_until(self, keys: list[str]) -> list[float]:
        now = self.clock()
        return [(self._get(key, now) or (0, 0.0, 0.0))[1] for key in keys]

    async def clear(self, key: str) -> None:
        self.entries.pop(key, None)


# KEYS[1]: the counter hash. ARGV: now, free, base, cap, window (seconds).
_FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local locked = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local free = tonumber(ARGV[2])
if n > free then
  local wait = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free - 1, 40))
  locked = tonumber(ARGV[1]) + wait
  redis.call('HSET', KEYS[1], 'until', tostring(locked))
end
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5]) * 1000))
return tostring(locked)
"""


class RedisFailures:
    """Counts in Redis hashes ``{prefix}:login:{key}`` (``n``, ``until``), expiring
    ``window`` after the last failure: every node sharing Redis sees one count."""

    def __init__(
        self, redis: Redis, prefix: str = "cs", clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self._fail = redis.register_script(_FAIL)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:login:{key}"

    async def fail(self, key: str, free: int, base: float, cap: float, window: float) -> float:
        raw = await self._fail(
            keys=[self._key(key)], args=[repr(self.clock()), free, base, cap, window]
        )
        return float(raw)

    async def locked_until(self, keys: list[str]) -> list[float]:
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self._key(key), "until")
            found = await pipe.execute()
        return [float(v) if v else 0.0 for v in found]

    async def clear(self, key: str) -> None:
        await self.redis.delete(self._key(key))


def account_key(username: str) -> str:
    return "u:" + username.strip().lower()[:100]


def address_key(address: str) -> str:
    return "a:" + address[:100]


class LoginGuard:
    """The login policy of :mod:`chatserver.operators.throttle` on one counter."""

    def __init__(
        self,
        settings: Settings,
        counter: FailureCounter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.counter = counter
        self.clock = clock

    async def check(self, username: str, address: str) -> None:
        """Raise :class:`LoginThrottled` (with ``retry_after``) if the account or the
        address is locked now."""
        locks = await self.counter.locked_until([account_key(username), address_key(address)])
        wait = max(locks) - self.clock()
        if wait > 0:
            which = "account" if locks[0] >= locks[1] else "address"
            raise LoginThrottled(
                f"too many failed logins for this {which}; try again in {math.ceil(wait)} s",
                retry_after=max(1, math.ceil(wait)),
            )

    async def failed(self, username: str, address: str) -> float:
        """Count a failure for both keys; returns the later lock time (0: none)."""
        s = self.settings
        window, base, cap = (
            s.login_throttle_window_seconds,
            s.login_throttle_base_seconds,
            s.login_throttle_max_seconds,
        )
        account = await self.counter.fail(
            account_key(username), s.login_throttle_free, base, cap, window
        )
        address_lock = await self.counter.fail(
            address_key(address), s.login_throttle_address_free, base, cap, window
        )
        return max(account, address_lock)

    async def succeeded(self, username: str) -> None:
        await self.counter.clear(account_key(username))

    async def account_locks(self, usernames: Iterable[str]) -> dict[str, float]:
        """``{username: locked until}`` for the accounts locked now."""
        names = list(usernames)
        found = await self.counter.locked_until([account_key(n) for n in names])
        now = self.clock()
        return {name: until for name, until in zip(names, found, strict=True) if until > now}
