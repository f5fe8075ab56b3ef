"""In-process presence: serves exactly one hub node. The embedded default."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from chatserver.chat.routing import Assignment, OperatorSlot, QueueEntry, Router
from chatserver.types import OperatorId, OperatorStatus, SessionId


class MemoryPresence:
    """:class:`~chatserver.presence.base.Presence` around the pure :class:`Router`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.router = Router()
        self._visitors: set[SessionId] = set()
        self._clock = clock

    async def register_operator(
        self,
        operator_id: OperatorId,
        *,
        capacity: int,
        departments: Iterable[str],
        levels: Iterable[int] = (1,),
    ) -> OperatorSlot:
        return self.router.upsert_operator(
            operator_id, capacity=capacity, departments=departments, levels=levels
        )

    async def set_status(self, operator_id: OperatorId, status: OperatorStatus) -> OperatorSlot:
        self.router.set_status(operator_id, status, self._clock())
        return self.router.operators[operator_id]

    async def heartbeat(self) -> None:
        """Nothing to refresh: this process is the only node."""

    async def visitor_seen(self, session_id: SessionId, page_url: str | None) -> None:
        self._visitors.add(session_id)

    async def visitor_left(self, session_id: SessionId) -> None:
        self._visitors.discard(session_id)

    async def visitors_connected(self, session_ids: Iterable[SessionId]) -> set[SessionId]:
        return {s for s in session_ids if s in self._visitors}

    async def add_load(self, operator_id: OperatorId, delta: int) -> None:
        if operator_id in self.router.operators:
            self.router.add_load(operator_id, delta)

    async def set_load(self, operator_id: OperatorId, load: int) -> None:
        if operator_id in self.router.operators:
            self.router.operators[operator_id].load = max(0, load)

    async def operator(self, operator_id: OperatorId) -> OperatorSlot | None:
        return self.router.operators.get(operator_id)

    async def operators(self) -> list[OperatorSlot]:
        return [dataclasses.replace(slot) for slot in self.router.operators.values()]

    async def any_online(self) -> bool:
        return any(s.status is OperatorStatus.ONLINE for s in self.router.operators.values())

    async def enqueue(self, entry: QueueEntry) -> int:
        self.router.enqueue(entry)
        return self.router.position(entry.session_id) or 0

    async def dequeue(self, session_id: SessionId) -> bool:
        return self.router.remove(session_id) is not None

    async def position(self, session_id: SessionId) -> int | None:
        return self.router.position(session_id)

    async def assign_next(self) -> list[Assignment]:
        return self.router.assign_next(self._clock())

    async def queue_snapshot(self) -> list[QueueEntry]:
        return self.router.ordered()
