"""Pure routing core: the waiting queue and the choice of operator. No I/O.

The :class:`Router` holds operator slots (status, load, capacity, departments)
and the waiting queue. Callers feed it events (an operator changed status, a
chat closed, a visitor started a chat) and then ask :meth:`Router.assign_next`
which chats to hand to which operators; it reserves capacity as it answers, so
the caller only has to carry the decisions out.

Queue order: re-queued chats first (they were already served once), then
priority class (urgent, VIP, normal), then oldest first, with aging: a chat of
a lower class that has waited ``aging_seconds`` longer than one of the class
above goes first, so nobody starves. An operator is eligible when online,
below capacity, serving the entry's department and support level, and not the
operator the visitor asked to avoid; among eligible operators the preferred
one (recurring contact) wins, else the least-loaded, ties broken by longest
idle. Until ``preferred_until`` a chat with a preferred operator waits for
that operator only (the entries behind it are served meanwhile), and a chat
that only the operator it avoids could take waits alone the same way.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Iterator

from chatserver.types import OperatorId, OperatorStatus, Priority, SessionId


@dataclasses.dataclass(slots=True)
class OperatorSlot:
    operator_id: OperatorId
    capacity: int
    status: OperatorStatus = OperatorStatus.OFFLINE
    load: int = 0
    departments: frozenset[str] = frozenset()
    idle_since: float = 0.0  # when the operator last got a chat or came online
    levels: frozenset[int] = frozenset({1})

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)

    def serves(self, department: str | None, level: int = 1) -> bool:
        return level in self.levels and (
            department is None or not self.departments or department in self.departments
        )


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
    level: int = 1  # support level: 1st level gets new chats
    aging_seconds: float = 600.0  # head start of each priority class over the next
    preferred_until: float = 0.0  # wait this long for the preferred operator only
    avoid_operator: OperatorId | None = None  # the visitor asked for someone else
    # Shown in the queue list only: "chat" or "callback", plan, first-response due time.
    kind: str = "chat"
    plan: str | None = None
    sla_due: float | None = None

    def sort_key(self) -> tuple[int, float]:
        """Re-queued first, then effective age: priority classes are a head start."""
        return (
            0 if self.requeued else 1,
            self.enqueued_at + int(self.priority) * self.aging_seconds,
        )

    @property
    def pool(self) -> str:
        """The queue partition: operators serve pools by department and level."""
        return f"{self.department or ''}@{self.level}"


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    session_id: SessionId
    operator_id: OperatorId
    entry: QueueEntry


class Router:
    """Queue plus operator slots. Every method is O(log n) or O(operators)."""

    def __init__(self) -> None:
        self.operators: dict[OperatorId, OperatorSlot] = {}
        # One heap per pool (department and level); lazy deletion.
        self._heaps: dict[str, list[tuple[tuple[int, float], int, QueueEntry]]] = {}
        self._entries: dict[SessionId, QueueEntry] = {}
        self._counter = itertools.count()

    # -- operators ---------------------------------------------------------
    def upsert_operator(
        self,
        operator_id: OperatorId,
        *,
        capacity: int,
        departments: Iterable[str] = (),
        levels: Iterable[int] = (1,),
    ) -> OperatorSlot:
        slot = self.operators.get(operator_id)
        if slot is None:
            slot = OperatorSlot(
                operator_id,
                capacity,
                departments=frozenset(departments),
                levels=frozenset(levels),
            )
            self.operators[operator_id] = slot
        else:
            slot.capacity = capacity
            slot.departments = frozenset(departments)
            slot.levels = frozenset(levels)
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

    def eligible(self, department: str | None, level: int = 1) -> Iterator[OperatorSlot]:
        for slot in self.operators.values():
            if (
                slot.status is OperatorStatus.ONLINE
                and slot.free > 0
                and slot.serves(department, level)
            ):
                yield slot

    def choose_operator(self, entry: QueueEntry, now: float = 0.0) -> OperatorSlot | None:
        """The operator for ``entry``, or ``None`` (nobody eligible, or it waits for
        its preferred operator)."""
        best: OperatorSlot | None = None
        hold = entry.preferred_operator is not None and now < entry.preferred_until
        for slot in self.eligible(entry.department, entry.level):
            if slot.operator_id == entry.avoid_operator:
                continue
            if slot.operator_id == entry.preferred_operator:
                return slot
            if hold:
                continue
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
        heap = self._heaps.setdefault(entry.pool, [])
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

    def _head(self, pool: str) -> QueueEntry | None:
        heap = self._heaps.get(pool)
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
        blocked: set[str] = set()
        # Entries waiting for their preferred operator, set aside for this round.
        held: list[tuple[str, tuple[tuple[int, float], int, QueueEntry]]] = []
        try:
            return self._assign(now, result, blocked, held)
        finally:
            for pool, item in held:
                heapq.heappush(self._heaps[pool], item)

    def _assign(
        self,
        now: float,
        result: list[Assignment],
        blocked: set[str],
        held: list[tuple[str, tuple[tuple[int, float], int, QueueEntry]]],
    ) -> list[Assignment]:
        while True:
            best: QueueEntry | None = None
            for pool in list(self._heaps):
                if pool in blocked:
                    continue
                head = self._head(pool)
                if head is None:
                    continue
                if best is None or (head.sort_key(), head.session_id) < (
                    best.sort_key(),
                    best.session_id,
                ):
                    best = head
            if best is None:
                return result
            slot = self.choose_operator(best, now)
            if slot is None:
                if best.avoid_operator is not None or (
                    best.preferred_operator is not None and now < best.preferred_until
                ):
                    # Only this entry waits (for its preferred operator, or for one other
                    # than the operator it avoids); the ones behind it may be served.
                    held.append((best.pool, heapq.heappop(self._heaps[best.pool])))
                else:
                    blocked.add(best.pool)
                continue
            del self._entries[best.session_id]
            slot.load += 1
            slot.idle_since = now
            result.append(Assignment(best.session_id, slot.operator_id, best))
