"""Who is asking, and what they may see: tickets and chats looked up with a check.

A lookup that fails the check raises :class:`~chatserver.errors.NotFound`, the same
as for something that does not exist, so a refusal tells nothing about other people's
tickets and chats.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chatserver.errors import BadFrame, NotFound
from chatserver.store.base import OperatorRecord, SessionRecord, Store
from chatserver.tickets import model as T
from chatserver.tickets.store import TicketRow, TicketStore
from chatserver.types import Role, SessionId

__all__ = ["OperatorActor", "Principal", "TicketAccess", "VisitorActor"]


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorActor:
    """A logged-in operator; supervisors and admins see every chat."""

    record: OperatorRecord

    @property
    def supervises(self) -> bool:
        return self.record.role in (Role.SUPERVISOR.value, Role.ADMIN.value)

    def actor(self) -> dict[str, Any]:
        """The ``actor`` of the events this operator causes."""
        return {"type": "operator", "id": self.record.operator_id, "name": self.record.name}


@dataclasses.dataclass(frozen=True, slots=True)
class VisitorActor:
    """A visitor, known by their chat session (and its customer id, if any)."""

    session: SessionRecord

    def actor(self) -> dict[str, Any]:
        """The ``actor`` of the events this visitor causes."""
        return {"type": "customer", "id": None, "name": self.session.visitor_name or "Visitor"}


Principal = OperatorActor | VisitorActor


class TicketAccess:
    """Lookups of tickets and chats on behalf of a :data:`Principal`.

    Operators may open every ticket, and the chats they take or took part in (all chats
    when they supervise). Visitors may open the tickets of their session or customer id.
    """

    def __init__(self, store: Store, records: TicketStore) -> None:
        self.store = store
        self.records = records

    async def ticket(self, number: Any) -> TicketRow:
        """The ticket ``number`` (``100042``, ``"100042"`` or ``"#100042"``), or NotFound."""
        parsed = T.parse_number(str(number)) if isinstance(number, (str, int)) else None
        row = await self.records.ticket(parsed) if parsed is not None else None
        if row is None:
            raise NotFound("no such ticket")
        return row

    @staticmethod
    def visitor_owns(session: SessionRecord, row: TicketRow) -> bool:
        """Is ``row`` the ticket of this chat, or of the same customer?"""
        if row.session_id == session.session_id:
            return True
        return session.customer_id is not None and row.customer_id == session.customer_id

    async def visitor_ticket(self, who: VisitorActor, number: Any) -> TicketRow:
        """The ticket if the visitor owns it, else NotFound."""
        row = await self.ticket(number)
        if not self.visitor_owns(who.session, row):
            raise NotFound("no such ticket")
        return row

    async def ticket_for(self, who: Principal, number: Any) -> TicketRow:
        """The ticket if ``who`` may open it, else NotFound."""
        if isinstance(who, VisitorActor):
            return await self.visitor_ticket(who, number)
        return await self.ticket(number)

    async def session_for_operator(self, who: OperatorActor, session_id: Any) -> SessionRecord:
        """The chat if the operator takes or took part in it (or supervises), else NotFound."""
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 64:
            raise BadFrame("session_id is missing")
        session = await self.store.session(SessionId(session_id))
        if session is None:
            raise NotFound("no such chat")
        if not self.operator_sees(who, session):
            raise NotFound("no such chat")
        return session

    @staticmethod
    def operator_sees(who: OperatorActor, session: SessionRecord) -> bool:
        """May the operator see this chat (and its attachments)?"""
        mine = who.record.operator_id in (session.operator_id, session.previous_operator)
        return mine or who.supervises
