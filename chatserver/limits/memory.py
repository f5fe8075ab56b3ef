"""In-process counters: the embedded default (one node)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from chatserver.limits.base import Quota

__all__ = ["MemoryLimiter"]

# Expired windows are dropped once this many keys are held.
PRUNE_AT = 10_000


class MemoryLimiter:
    """:class:`~chatserver.limits.base.Limiter` in a dict: key -> (window end, count)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.windows: dict[str, tuple[float, int]] = {}

    async def take(self, quotas: Sequence[Quota]) -> float | None:
        now = self.clock()
        if len(self.windows) >= PRUNE_AT:
            self.windows = {k: v for k, v in self.windows.items() if v[0] > now}
        current: list[tuple[float, int]] = []
        for quota in quotas:
            end, count = self.windows.get(quota.key, (0.0, 0))
            if end <= now:
                end, count = now + quota.window, 0
            if count + quota.cost > quota.limit:
                return max(end - now, 0.001)
            current.append((end, count))
        for quota, (end, count) in zip(quotas, current, strict=True):
            self.windows[quota.key] = (end, count + quota.cost)
        return None

    async def close(self) -> None:
        self.windows.clear()
