"""In-process bus. Alone, a node publishes to nobody; nodes sharing a
:class:`MemoryBroker` (tests) hear each other. Never loses a note."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from chatserver.bus.base import OnNote, OnResync


class MemoryBroker:
    def __init__(self) -> None:
        self.subscribers: defaultdict[str, set[MemoryBus]] = defaultdict(set)


class MemoryBus:
    """:class:`~chatserver.bus.base.Bus` within one process."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()
        self._on_note: OnNote | None = None
        self.published = 0

    @property
    def healthy(self) -> bool:
        return True

    async def start(self, on_note: OnNote, on_resync: OnResync) -> None:
        self._on_note = on_note

    async def close(self) -> None:
        for subscribers in self.broker.subscribers.values():
            subscribers.discard(self)

    async def subscribe(self, channel: str) -> None:
        self.broker.subscribers[channel].add(self)

    async def unsubscribe(self, channel: str) -> None:
        subscribers = self.broker.subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(self)
            if not subscribers:
                del self.broker.subscribers[channel]

    def publish(self, channel: str, payload: bytes) -> None:
        subscribers = self.broker.subscribers.get(channel)
        if not subscribers:
            return
        loop = asyncio.get_running_loop()
        for bus in subscribers:
            if bus is not self and bus._on_note is not None:
                self.published += 1
                loop.call_soon(bus._on_note, channel, payload)
