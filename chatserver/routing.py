"""Pure routing core: the waiting queue and the choice of operator. No I/O.

The :class:`Router` holds operator slots (status, load, capacity, departments)
and the waiting queue. Callers feed it events (an operator changed status, a
chat closed, a visitor started a chat) and then ask :meth:`Router.assign_next`
which chats to hand to which operators; it reserves capacity as it answers, so
the caller only has to carry the decisions out.

Queue order: re-queued chats first (they were already served once), then
priority class (urgent, VIP, normal), then oldest first. An operator is
eligible when online, below capacity and serving the entry's department; among
eligible operators the preferred one (recurring contact) wins, else the
least-loaded, ties broken by longest idle.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Iterator

from .types import OperatorId, OperatorStatus, Priority, SessionId


@dataclasses.dataclass(slots=True)
class OperatorSlot:
    operator_id: OperatorId
    capacity: int
    status: OperatorStatus = OperatorStatus.OFFLINE
    load: int = 0
    departments: frozenset[str] = frozenset()
    idle_since: float = 0.0  # when the operator last got a chat or came online

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)

    def serves(self, department: str | None) -> bool:
        return department is None or not self.departments or department in self.departments


@dataclasses.dataclass(slots=True)
class QueueEntry:
    session_id: SessionId
    enqueued_at: float
    priority: Priority = Priority.NORMAL
    department: str | None = None
    requeued: bool = False
    preferred_operator: OperatorId | None = None
    # Shown in the operators' queue list; no part of the order.
    name: str | None = None
    preview: str | None = None

    def sort_key(self) -> tuple[int, int, float]:
        return (0 if self.requeued else 1, int(self.priority), self.enqueued_at)


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    session_id: SessionId
    operator_id: OperatorId
    entry: QueueEntry


class Router:
    """Queue plus operator slots. Every method is O(log n) or O(operators)."""

    def __init__(self) -> None:
        self.operators: dict[OperatorId, OperatorSlot] = {}
        # One heap per department (None: any operator); lazy deletion.
        self._heaps: dict[str | None, list[tuple[tuple[int, int, float], int, QueueEntry]]] = {}
        self._entries: dict[SessionId, QueueEntry] = {}
        self._counter = itertools.count()

    # -- operators ---------------------------------------------------------
    def upsert_operator(
        self,
        operator_id: OperatorId,
        *,
        capacity: int,
        departments: Iterable[str] = (),
    ) -> OperatorSlot:
        slot = self.operators.get(operator_id)
        if slot is None:
            slot = OperatorSlot(operator_id, capacity, departments=frozenset(departments))
            self.operators[operator_id] = slot
        else:
            slot.capacity = capacity
            slot.departments = frozenset(departments)
        return slot

    def set_status(self, operator_id: OperatorId, status: OperatorStatus, now: float) -> None:
        slot = self.operators[operator_id]
        if status is OperatorStatus.ONLINE and slot.status is not OperatorStatus.ONLINE:
            slot.idle_since = now
        slot.status = status

    def add_load(self, operator_id: OperatorId, delta: int) -> None:
        """Change an operator's load (e.g. ``-1`` when one of their chats closes)."""
        slot = self.operators[operator_id]
        slot.load = max(0, slot.load + delta)

    def eligible(self, department: str | None) -> Iterator[OperatorSlot]:
        for slot in self.operators.values():
            if slot.status is OperatorStatus.ONLINE and slot.free > 0 and slot.serves(department):
                yield slot

    def choose_operator(self, entry: QueueEntry) -> OperatorSlot | None:
        best: OperatorSlot | None = None
        for slot in self.eligible(entry.department):
            if slot.operator_id == entry.preferred_operator:
                return slot
            if best is None or (slot.load, slot.idle_since, slot.operator_id) < (
                best.load,
                best.idle_since,
                best.operator_id,
            ):
                best = slot
        return best

    # -- queue -------------------------------------------------------------
    def enqueue(self, entry: QueueEntry) -> None:
        if entry.session_id in self._entries:
            raise ValueError(f"{entry.session_id} is already queued")
        self._entries[entry.session_id] = entry
        heap = self._heaps.setdefault(entry.department, [])
        heapq.heappush(heap, (entry.sort_key(), next(self._counter), entry))

    def remove(self, session_id: SessionId) -> QueueEntry | None:
        """Take a chat out of the queue (visitor left); ``None`` if not queued."""
        return self._entries.pop(session_id, None)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: SessionId) -> QueueEntry | None:
        return self._entries.get(session_id)

    def _head(self, department: str | None) -> QueueEntry | None:
        heap = self._heaps.get(department)
        while heap:
            entry = heap[0][2]
            if self._entries.get(entry.session_id) is entry:
                return entry
            heapq.heappop(heap)
        return None

    def position(self, session_id: SessionId) -> int | None:
        """1-based place in service order (O(n)); ``None`` if not queued."""
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        key = (*entry.sort_key(), entry.session_id)
        return 1 + sum(1 for e in self._entries.values() if (*e.sort_key(), e.session_id) < key)

    def ordered(self) -> list[QueueEntry]:
        """All waiting entries in service order (O(n log n); for snapshots)."""
        return sorted(
            self._entries.values(),
            key=lambda e: (*e.sort_key(), e.session_id),
        )

    def assign_next(self, now: float) -> list[Assignment]:
        """Hand waiting chats to free operators, best entry first, until either runs out.

        Capacity is reserved (load incremented) for every returned assignment.
        """
        result: list[Assignment] = []
        blocked: set[str | None] = set()
        while True:
            best: QueueEntry | None = None
            for department in list(self._heaps):
                if department in blocked:
                    continue
                head = self._head(department)
                if head is None:
                    continue
                if best is None or (head.sort_key(), head.session_id) < (
                    best.sort_key(),
                    best.session_id,
                ):
                    best = head
            if best is None:
                return result
            slot = self.choose_operator(best)
            if slot is None:
                blocked.add(best.department)
                continue
            del self._entries[best.session_id]
            slot.load += 1
            slot.idle_since = now
            result.append(Assignment(best.session_id, slot.operator_id, best))
