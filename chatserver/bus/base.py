"""The bus contract: best-effort fan-out between hub nodes.

The bus carries "deliver this" and "this changed" notes between nodes. It may
lose or repeat notes (a Redis restart, a killed subscriber); the store stays the
source of truth, and receivers detect seq gaps and refill from it. So the bus
only has to be fast: :meth:`Bus.publish` never waits, and notes published in one
event-loop tick go to Redis in one pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

# Called with (channel, payload) for every note on a subscribed channel.
OnNote = Callable[[str, bytes], None]
# Called after the bus (re)connected: notes may have been missed meanwhile.
OnResync = Callable[[], Awaitable[None]]


class Bus(Protocol):
    @property
    def healthy(self) -> bool:
        """``False`` while the bus cannot deliver (e.g. Redis is down)."""
        ...

    async def start(self, on_note: OnNote, on_resync: OnResync) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, channel: str) -> None:
        """Receive notes published on ``channel`` from now on (idempotent)."""

    async def unsubscribe(self, channel: str) -> None: ...

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a note for every subscriber of ``channel`` on other nodes; never blocks."""
