"""The limiter contract: counters in fixed windows, shared by every node that shares them.

Quotas and rate limits (offline form, callbacks, uploads, visitor replies; see
``chatserver.web.quotas``) are counts per key (a session, a client address, an e-mail
address) within a window. :meth:`Limiter.take` checks several counts and takes from all
of them in one atomic step, or from none: a refused request uses up nothing.

Two implementations behind the one interface, one contract test
(``tests/limits/test_limiter_contract.py``): :class:`~chatserver.limits.memory.MemoryLimiter`
(one node, the embedded default) and :class:`~chatserver.limits.redis.RedisLimiter`
(nodes sharing Redis count together).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

__all__ = ["Limiter", "Quota"]


@dataclasses.dataclass(frozen=True, slots=True)
class Quota:
    """``cost`` more against ``key``, of which at most ``limit`` per ``window`` seconds.

    A window starts at the first take of a key and lasts ``window`` seconds (fixed
    windows, not sliding). ``limit`` 0 refuses everything.
    """

    key: str
    limit: int
    window: float
    cost: int = 1


class Limiter(Protocol):
    async def take(self, quotas: Sequence[Quota]) -> float | None:
        """Take each quota's ``cost`` if every one of them stays within its ``limit``.

        Returns ``None`` when taken (all counted, atomically, across every node sharing
        the limiter), else the seconds until the first refusing quota's window ends
        (> 0), and nothing is counted.
        """
        ...

    async def close(self) -> None:
        """Release resources (the Redis client belongs to the caller)."""
        ...
