"""Pure chat-session state machine. No I/O.

::

    new ──first message──▶ waiting ──assign──▶ assigned ──close──▶ closed
     │                       ▲  │                 │
     │                       │  └─────close───────┼───────────────▶ closed
     └──────close────────────┼────────────────────┘
                             └──requeue (operator lost)──┘

Every transition is checked; an impossible one raises :class:`InvalidState`
naming the state that was expected.
"""

from __future__ import annotations

import dataclasses

from chatserver.errors import ChatClosed, InvalidState
from chatserver.types import OperatorId, Priority, SessionId, SessionState


@dataclasses.dataclass(slots=True)
class ChatSession:
    session_id: SessionId
    created_at: float
    state: SessionState = SessionState.NEW
    operator_id: OperatorId | None = None
    priority: Priority = Priority.NORMAL
    department: str | None = None
    last_seq: int = 0
    visitor_read_seq: int = 0  # highest seq the visitor has read
    operator_read_seq: int = 0  # highest seq the operator has read
    assigned_at: float | None = None
    closed_at: float | None = None
    previous_operator: OperatorId | None = None
    level: int = 1  # support level the chat is routed to
    kind: str = "chat"  # "chat" or "callback"
    first_response_at: float | None = None
    # Operators-only routing wishes: the visitor asked for someone else.
    avoid_operator: OperatorId | None = None

    def _expect(self, *states: SessionState) -> None:
        if self.state is SessionState.CLOSED and SessionState.CLOSED not in states:
            raise ChatClosed("this chat has ended")
        if self.state not in states:
            names = " or ".join(s.value for s in states)
            raise InvalidState(f"chat is {self.state.value}, expected {names}")

    @property
    def is_open(self) -> bool:
        return self.state is not SessionState.CLOSED

    def start_waiting(self) -> None:
        """First visitor message: the chat joins the queue."""
        self._expect(SessionState.NEW)
        self.state = SessionState.WAITING

    def assign(self, operator_id: OperatorId, now: float) -> None:
        self._expect(SessionState.WAITING)
        self.state = SessionState.ASSIGNED
        self.operator_id = operator_id
        self.assigned_at = now

    def requeue(self) -> OperatorId:
        """The operator was lost; returns who had the chat."""
        self._expect(SessionState.ASSIGNED)
        assert self.operator_id is not None
        previous = self.operator_id
        self.previous_operator = previous
        self.operator_id = None
        self.assigned_at = None
        self.state = SessionState.WAITING
        return previous

    def close(self, now: float) -> SessionState:
        """End the chat; returns the state it was in."""
        self._expect(SessionState.NEW, SessionState.WAITING, SessionState.ASSIGNED)
        before = self.state
        if self.operator_id is not None:
            self.previous_operator = self.operator_id
        self.state = SessionState.CLOSED
        self.closed_at = now
        return before

    def note_seq(self, seq: int) -> None:
        """A message with ``seq`` was stored (seqs are given by the store)."""
        if seq > self.last_seq:
            self.last_seq = seq

    def mark_read(self, by_visitor: bool, seq: int) -> bool:
        """Record a read receipt; ``True`` if it moved forward. ``seq`` is clamped."""
        seq = min(seq, self.last_seq)
        if by_visitor:
            if seq <= self.visitor_read_seq:
                return False
            self.visitor_read_seq = seq
        else:
            if seq <= self.operator_read_seq:
                return False
            self.operator_read_seq = seq
        return True
