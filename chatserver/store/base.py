"""The store contract: the durable source of truth for sessions and messages.

Writes are *submitted* and complete later: every ``submit_*`` method returns an
awaitable that resolves once the write is committed (group commit), so callers
never await one round trip per message and never ack before durability.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from ..types import OperatorId, Priority, SessionId, SessionState


@dataclasses.dataclass(slots=True)
class OperatorRecord:
    operator_id: OperatorId
    username: str
    name: str
    password_hash: str
    role: str
    departments: tuple[str, ...]
    capacity: int
    created_at: float
    levels: tuple[int, ...] = (1,)  # support levels served (1st, 2nd, 3rd)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.operator_id,
            "name": self.name,
            "username": self.username,
            "role": self.role,
            "capacity": self.capacity,
            "departments": list(self.departments),
            "levels": list(self.levels),
        }


@dataclasses.dataclass(slots=True)
class SessionRecord:
    session_id: SessionId
    token_hash: str
    state: SessionState
    created_at: float
    visitor_name: str | None = None
    visitor_email: str | None = None
    page_url: str | None = None
    user_agent: str | None = None
    customer_id: str | None = None
    plan: str | None = None
    priority: Priority = Priority.NORMAL
    department: str | None = None
    operator_id: OperatorId | None = None
    previous_operator: OperatorId | None = None
    assigned_at: float | None = None
    enqueued_at: float | None = None
    closed_at: float | None = None
    visitor_read_seq: int = 0
    operator_read_seq: int = 0
    kind: str = "chat"
    phone: str | None = None
    preferred_times: str | None = None
    level: int = 1
    first_response_at: float | None = None
    sla_first_due: float | None = None
    sla_first_warn: float | None = None
    last_seq: int = 0


@dataclasses.dataclass(slots=True)
class MessageRecord:
    session_id: SessionId
    seq: int
    ts: int
    sender: str
    sender_id: str | None
    author: str | None
    text: str
    client_msg_id: str | None = None
    event: str | None = None
    # Optional extras shown in the frame: "attachments" (list), "ticket" (ref).
    extra: dict[str, Any] | None = None

    def to_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "message",
            "session_id": self.session_id,
            "seq": self.seq,
            "from": self.sender,
            "author": self.author,
            "text": self.text,
            "ts": self.ts,
            "client_msg_id": self.client_msg_id,
        }
        if self.event is not None:
            frame["event"] = self.event
        if self.extra:
            frame.update(self.extra)
        return frame


# Session columns that may be updated through submit_session_update.
SESSION_UPDATABLE = frozenset(
    {
        "state",
        "visitor_name",
        "visitor_email",
        "page_url",
        "user_agent",
        "customer_id",
        "plan",
        "priority",
        "department",
        "operator_id",
        "previous_operator",
        "assigned_at",
        "enqueued_at",
        "closed_at",
        "visitor_read_seq",
        "operator_read_seq",
        "kind",
        "phone",
        "preferred_times",
        "level",
        "first_response_at",
        "sla_first_due",
        "sla_first_warn",
        "csat_score",
        "csat_comment",
        "csat_at",
    }
)


class Store(Protocol):
    async def open(self) -> None:
        """Create or migrate the schema and start the writer."""

    async def close(self) -> None:
        """Flush pending writes and release resources."""

    # -- group-committed writes -------------------------------------------
    def submit_message(
        self,
        message: MessageRecord,
        on_done: Callable[[asyncio.Future[int]], None] | None = None,
    ) -> asyncio.Future[int]:
        """Queue a message insert; the future resolves to its seq when committed.

        The store numbers each session's messages (``message.seq`` is set at
        commit), so any number of processes may write one session. A second
        insert of a sender's ``client_msg_id`` fails with ``DuplicateMessage``.
        ``on_done`` is called with the settled future right when the batch
        settles, in commit order (no extra loop iteration, unlike a done-callback).
        """
        ...

    def submit_session(self, record: SessionRecord) -> asyncio.Future[int]:
        """Queue a session insert."""
        ...

    def submit_session_update(self, session_id: SessionId, **fields: Any) -> asyncio.Future[None]:
        """Queue an update of ``fields`` (names from ``SESSION_UPDATABLE``)."""
        ...

    # -- reads -------------------------------------------------------------
    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None: ...

    async def session(self, session_id: SessionId) -> SessionRecord | None: ...

    async def open_sessions(self) -> list[SessionRecord]:
        """Sessions waiting or assigned, for recovery after a restart."""
        ...

    async def messages_after(
        self, session_id: SessionId, after_seq: int, limit: int
    ) -> list[MessageRecord]: ...

    async def client_msg_ids(self, session_id: SessionId) -> dict[tuple[str, str], int]:
        """``{(sender, client_msg_id): seq}`` of a session, for idempotent resends."""
        ...

    # -- operators ---------------------------------------------------------
    async def add_operator(self, record: OperatorRecord) -> None:
        """Insert an operator; raises ``ValueError`` if the username is taken."""

    async def operator_by_username(self, username: str) -> OperatorRecord | None: ...

    async def operator(self, operator_id: OperatorId) -> OperatorRecord | None: ...

    async def operators(self) -> list[OperatorRecord]: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def setdefault_meta(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` already exists; return the stored value."""
        ...
