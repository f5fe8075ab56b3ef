"""The presence contract: operator presence, the waiting queue and assignment.

Queue and operator capacity live behind one interface because assignment must
be atomic across both: :meth:`Presence.assign_next` picks entries and
operators and reserves capacity in one step, so no chat is handed out twice
and no operator is pushed over capacity, however many hub nodes ask at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from chatserver.chat.routing import Assignment, OperatorSlot, QueueEntry
from chatserver.types import OperatorId, OperatorStatus, SessionId


class Presence(Protocol):
    async def register_operator(
        self,
        operator_id: OperatorId,
        *,
        capacity: int,
        departments: Iterable[str],
        levels: Iterable[int] = (1,),
    ) -> OperatorSlot:
        """Make the operator known (status unchanged if already known)."""
        ...

    async def set_status(self, operator_id: OperatorId, status: OperatorStatus) -> OperatorSlot:
        """Set status; an operator must be registered first."""
        ...

    async def heartbeat(self) -> None:
        """Keep this node's operators alive; called every few seconds by the hub."""
        ...

    async def visitor_seen(self, session_id: SessionId, page_url: str | None) -> None:
        """A visitor of ``session_id`` is connected to this node; expires unless heartbeated."""
        ...

    async def visitor_left(self, session_id: SessionId) -> None:
        """The visitor's last connection on this node closed."""
        ...

    async def visitors_connected(self, session_ids: Iterable[SessionId]) -> set[SessionId]:
        """Which of ``session_ids`` have a visitor connected to any node."""
        ...

    async def add_load(self, operator_id: OperatorId, delta: int) -> None:
        """Adjust load, e.g. ``-1`` when a chat closes or is re-queued; never below 0."""
        ...

    async def set_load(self, operator_id: OperatorId, load: int) -> None:
        """Set an operator's load to a counted value (rebuilding after Redis lost its data)."""
        ...

    async def operator(self, operator_id: OperatorId) -> OperatorSlot | None: ...

    async def operators(self) -> list[OperatorSlot]:
        """Every registered operator (status ``offline`` once their node stopped heartbeating)."""
        ...

    async def any_online(self) -> bool:
        """Whether some operator is online (and heartbeating): one cheap call with a
        one-value answer, for checks that run every second on every node."""
        ...

    async def enqueue(self, entry: QueueEntry) -> int:
        """Add a waiting chat; returns its 1-based position."""
        ...

    async def dequeue(self, session_id: SessionId) -> bool:
        """Remove a waiting chat; ``False`` if it was not queued."""
        ...

    async def position(self, session_id: SessionId) -> int | None: ...

    async def assign_next(self) -> list[Assignment]:
        """Atomically pair waiting chats with eligible operators, reserving capacity."""
        ...

    async def queue_snapshot(self) -> list[QueueEntry]:
        """Every waiting entry in service order."""
        ...
