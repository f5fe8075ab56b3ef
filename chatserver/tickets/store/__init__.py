"""Ticket storage: the contract and its SQLite implementation.

- :mod:`~chatserver.tickets.store.base`: the records and the
  :class:`~chatserver.tickets.store.base.TicketStorage` contract (obligations)
- :mod:`~chatserver.tickets.store.sqlite`: :class:`TicketStore`, on the store's SQLite file
- :mod:`~chatserver.tickets.store.audit`: checking histories, projections and files

``from chatserver.tickets.store import TicketStore, TicketRow, NewEvent, ...``
names them all.
"""

from __future__ import annotations

from chatserver.tickets.store.base import (
    DuplicateChatTicket,
    DuplicateMail,
    FollowUp,
    InboundKey,
    InboundOutcome,
    Mutation,
    NewEvent,
    OutboxMail,
    QueuedMail,
    ReviewMail,
    TicketRow,
    TicketStorage,
)
from chatserver.tickets.store.sqlite import TicketStore

__all__ = [
    "DuplicateChatTicket",
    "DuplicateMail",
    "FollowUp",
    "InboundKey",
    "InboundOutcome",
    "Mutation",
    "NewEvent",
    "OutboxMail",
    "QueuedMail",
    "ReviewMail",
    "TicketRow",
    "TicketStorage",
    "TicketStore",
]
