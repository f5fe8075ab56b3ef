"""The ticket storage contract: its records and what every implementation promises.

:class:`TicketStorage` is what the ticket service, the hub (attachments of
chats) and the CLI need of ticket storage, made of one Protocol per concern:
:class:`AttachmentRecords`, :class:`TicketRecords`, :class:`CustomerRecords`,
:class:`MailRecords`. :class:`~chatserver.tickets.store.sqlite.TicketStore`
implements it on the store's SQLite file; a PostgreSQL implementation shares
the database of its :class:`~chatserver.store.base.Store` the same way (the
supervisor board reads tickets' SLA columns through the store).

Obligations every implementation keeps (each method adds its own):

- **One transaction per call.** Every method that writes commits before it
  returns, all of it or nothing; several processes may share the storage, and
  what must not clash (ticket numbers, event numbers, recorded breaches) is
  decided inside the database's write lock.
- **An append-only history.** A ticket is its chain of events (see
  :mod:`chatserver.tickets.model`): events and attachment records are never
  changed or deleted (the database refuses it), each event carries the hash
  of the one before, and the ``tickets`` row is a projection of the events
  that :meth:`TicketRecords.verify` checks against them.
- **A crash** leaves every call either done or not done at all; attachment
  files copied for a ticket whose transaction failed may stay behind unused.
- **Errors.** Missing tickets raise ``KeyError`` where a method says so, a
  second ticket of one chat :class:`DuplicateChatTicket`, and a database
  failure the backend's own error; a mutation's :class:`~chatserver.errors.ChatError`
  passes through unchanged (and nothing is written).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chatserver.attachments.files import AttachmentRecord
from chatserver.tickets.model import TicketPriority, TicketState


@dataclasses.dataclass(slots=True)
class TicketRow:
    """A ticket's current state (the projection of its events) and SLA columns."""

    number: int
    subject: str
    state: TicketState
    priority: TicketPriority
    department: str
    level: int
    assignee: str | None
    channel: str
    requester_name: str | None
    requester_email: str | None
    customer_id: str | None
    session_id: str | None
    created_at: float
    updated_at: float
    events: int
    head: str
    plan: str | None = None
    sla_first_due: float | None = None
    sla_first_warn: float | None = None
    sla_resolution_due: float | None = None
    sla_resolution_warn: float | None = None
    first_response_at: float | None = None
    resolved_at: float | None = None
    paused_since: float | None = None
    sla_breached: str = ""
    # The customer's language (docs/i18n.md): of the chat it came from, the offline
    # form or the inbound mail; None: not known (mail goes out in the customer's or
    # the desk's language).
    lang: str | None = None


@dataclasses.dataclass(slots=True)
class NewEvent:
    """An event to append; ``n``, ``ts`` and hashes are filled in by the store."""

    kind: str
    actor: dict[str, Any]
    body: dict[str, Any]
    internal: bool = False
    ts: float | None = None


# A mutation runs inside the ticket's transaction: it sees the current row and
# returns the events to append (it may raise a ChatError to refuse).
Mutation = Callable[[TicketRow], list[NewEvent]]


@dataclasses.dataclass(slots=True)
class OutboxMail:
    """A queued outgoing mail, as :meth:`MailRecords.due_mail` hands it out."""

    mail_id: int
    ticket: int | None
    to_addr: str
    subject: str
    body: str
    message_id: str
    refs: list[str]
    attachments: list[str]
    attempts: int


@dataclasses.dataclass(slots=True)
class ReviewMail:
    """An inbound mail held for a human (``storage``: its raw bytes in the file store)."""

    review_id: int
    received_at: float
    sender: str
    subject: str
    message_id: str | None
    ticket: int | None
    reason: str
    storage: str


class DuplicateChatTicket(Exception):
    """The chat already became a ticket (a chat becomes one at most once)."""


@dataclasses.dataclass(slots=True)
class QueuedMail:
    """A mail for the outbox, written in the transaction of what caused it."""

    ticket: int | None
    to_addr: str
    subject: str
    body: str
    message_id: str
    refs: list[str] = dataclasses.field(default_factory=list)
    attachments: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class InboundKey:
    """What makes an inbound mail the same mail again (``key``): its ``Message-ID``
    and sender, else ``sha256:<hex>`` of its raw bytes (line endings as CRLF)."""

    key: str
    message_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What an inbound mail became: ``result`` "created", "reply" or "held"."""

    result: str
    ticket: int | None
    reason: str | None = None


class DuplicateMail(Exception):
    """This inbound mail was taken before (:attr:`outcome` says as what); nothing
    was written."""

    def __init__(self, outcome: InboundOutcome) -> None:
        super().__init__(f"mail already taken: {outcome.result} {outcome.ticket}")
        self.outcome = outcome


# Runs inside the transaction with the ticket as it is after the change: the mails
# the change causes (written in the same transaction, or nothing is).
FollowUp = Callable[[TicketRow], list[QueuedMail]]


class AttachmentRecords(Protocol):
    """Records of uploaded files; ``owner`` is ``"s:<session id>"`` or ``"t:<number>"``."""

    async def add_attachment(self, record: AttachmentRecord) -> None:
        """Insert a record (its file is stored already); its id must be new."""

    async def attachment(self, attachment_id: str) -> AttachmentRecord | None: ...

    async def attachments_of(self, owner: str, ids: Sequence[str]) -> list[AttachmentRecord]:
        """The attachments among ``ids`` that belong to ``owner``, in the order of ``ids``
        (others' ids are left out, never an error)."""
        ...

    async def all_attachments_of(self, owner: str) -> list[AttachmentRecord]:
        """Every attachment of ``owner``, oldest first."""
        ...


class TicketRecords(Protocol):
    """Tickets and their hash-chained histories."""

    async def create(
        self,
        *,
        subject: str,
        priority: TicketPriority,
        department: str,
        level: int,
        assignee: str | None,
        channel: str,
        requester_name: str | None,
        requester_email: str | None,
        customer_id: str | None,
        session_id: str | None,
        actor: dict[str, Any],
        events: list[NewEvent],
        carry: Sequence[AttachmentRecord] = (),
        adopt: Sequence[AttachmentRecord] = (),
        state: TicketState = TicketState.OPEN,
        plan: str | None = None,
        reason: str | None = None,
        lang: str | None = None,
        inbound: InboundKey | None = None,
        follow_up: FollowUp | None = None,
    ) -> tuple[TicketRow, dict[str, str]]:
        """Create a ticket, numbered one above the highest so far (at least
        ``FIRST_NUMBER``: never a number used before; on PostgreSQL from a
        sequence, where a creation that fails after numbering leaves a gap), with its ``created``
        event followed by ``events``, in one transaction.

        Each attachment in ``carry`` is copied (file and record) into the ticket;
        the returned map gives each old attachment id its new one, and ids in
        ``events`` are rewritten to the copies. Records in ``adopt`` (files
        stored, no record yet) become the ticket's as they are. A second ticket
        of one chat (``channel`` "chat", same ``session_id``) raises
        :class:`DuplicateChatTicket` and creates nothing. ``lang`` is the
        customer's language (:attr:`TicketRow.lang`).

        With ``inbound`` (a mail that opens the ticket): :class:`DuplicateMail`
        and nothing written if that mail was taken before; else it is recorded
        as taken (and its Message-ID tied to the ticket) in the same
        transaction. ``follow_up``'s mails are queued in it too.
        """
        ...

    async def mutate(
        self,
        number: int,
        mutation: Mutation,
        *,
        adopt: Sequence[AttachmentRecord] = (),
        inbound: InboundKey | None = None,
        follow_up: FollowUp | None = None,
    ) -> tuple[TicketRow, list[dict[str, Any]]]:
        """Run ``mutation`` on the current row inside the ticket's transaction,
        append the events it returns and update the projection; return the new
        row and the stored events. ``KeyError`` if there is no such ticket.
        ``adopt``, ``inbound`` and ``follow_up`` as for :meth:`create`, all in
        the one transaction."""
        ...

    async def set_sla(self, number: int, **fields: Any) -> None:
        """Store derived SLA columns (``sla_*_due``/``warn``, ``first_response_at``,
        ``resolved_at``, ``paused_since``; others: ``ValueError``)."""

    async def record_breaches(self, now: float) -> list[tuple[str, str, float]]:
        """Record every first-response or resolution clock (of tickets not closed,
        and of open chats) that ran out before ``now``, each once across all
        processes; return the newly recorded ``(ref, kind, due)``."""
        ...

    async def ticket(self, number: int) -> TicketRow | None: ...

    async def ticket_for_session(self, session_id: str) -> TicketRow | None:
        """The ticket the chat became, if it did."""
        ...

    async def tickets_of_email(self, email: str) -> list[TicketRow]:
        """The 20 newest tickets requested from ``email``."""
        ...

    async def events(self, number: int, *, internal: bool = True) -> list[dict[str, Any]]:
        """The ticket's history in order (without internal notes unless ``internal``)."""
        ...

    async def search(
        self,
        *,
        states: Sequence[str] = (),
        department: str | None = None,
        level: int | None = None,
        assignee: str | None = None,
        unassigned: bool = False,
        customer_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[TicketRow], int]:
        """A page of the tickets matching every filter given (``customer_id``
        and ``session_id``: either), urgent first, then oldest first; and how
        many match in all."""
        ...

    async def verify(self) -> list[str]:
        """Check every ticket's chain, projection and attachment files; list the
        problems found (none: an empty list)."""
        ...


class CustomerRecords(Protocol):
    """Customers, their time accounts, and canned responses."""

    async def customer(self, customer_id: str) -> dict[str, Any] | None: ...

    async def customer_plan(self, customer_id: str | None, email: str | None) -> str | None:
        """The plan of a known customer (by id, else by e-mail, case-insensitive)."""
        ...

    async def add_time(
        self,
        *,
        operator_id: str,
        customer_id: str | None,
        ticket: int | None,
        session_id: str | None,
        seconds: int,
        note: str,
    ) -> int:
        """Append a time entry (append-only); return its id."""
        ...

    async def canned(
        self,
        department: str | None,
        lang: str | None = None,
        *,
        viewer: str | None = None,
        q: str | None = None,
    ) -> list[dict[str, Any]]:
        """Canned responses for everyone and for ``department``, by title; with
        ``lang``, only those in that language and those for every language; the team's
        and ``viewer``'s own (personal ones of others never); with ``q``, only those
        whose title, shortcut or text contains it (case-insensitive)."""
        ...

    async def canned_one(self, canned_id: int) -> dict[str, Any] | None:
        """One canned response by id (None: no such)."""
        ...

    async def add_canned(
        self,
        department: str | None,
        title: str,
        text: str,
        lang: str | None = None,
        *,
        owner: str | None = None,
        shortcut: str | None = None,
    ) -> dict[str, Any]:
        """Store a canned response (``lang`` None: for every language; ``owner`` None:
        the team's, else the operator's personal one)."""
        ...

    async def update_canned(self, canned_id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Change the given fields (department, title, text, lang, shortcut; values
        already checked); the response as now stored, None if there is no such."""
        ...

    async def delete_canned(self, canned_id: int) -> bool:
        """Delete a canned response; False if there was no such."""
        ...


class MailRecords(Protocol):
    """Mail bookkeeping: message ids of ticket threads, the outbox, held mail."""

    async def remember_mail_id(self, message_id: str, number: int) -> None:
        """Tie a mail's Message-ID to a ticket (a known id is kept as it is)."""

    async def ticket_for_mail_ids(self, ids: Sequence[str]) -> int | None:
        """The ticket one of ``ids`` (References, In-Reply-To) belongs to."""
        ...

    async def queue_mail(
        self,
        *,
        ticket: int | None,
        to_addr: str,
        subject: str,
        body: str,
        message_id: str,
        refs: Sequence[str] = (),
        attachments: Sequence[str] = (),
    ) -> int:
        """Put a mail in the outbox, due at once (and remember its Message-ID
        for ``ticket``) in one transaction; return its id."""
        ...

    async def due_mail(self, limit: int = 20) -> list[OutboxMail]:
        """Unsent mail whose next attempt is due, oldest first."""
        ...

    async def mail_sent(self, mail_id: int) -> None: ...

    async def mail_failed(self, mail_id: int, error: str, retry_in: float) -> None:
        """Count a failed attempt and retry ``retry_in`` seconds from now."""

    async def outbox(self) -> list[dict[str, Any]]: ...

    async def hold_for_review(
        self,
        *,
        sender: str,
        subject: str,
        message_id: str | None,
        ticket: int | None,
        reason: str,
        raw: bytes,
        inbound: InboundKey | None = None,
    ) -> int:
        """Keep an inbound mail (its bytes in the file store) for a human; return its
        id. With ``inbound``: :class:`DuplicateMail` if it was taken before, else it
        is recorded as taken in the same transaction."""
        ...

    async def inbound_outcome(self, key: str) -> InboundOutcome | None:
        """What the inbound mail with :attr:`InboundKey.key` ``key`` became, if it
        was taken."""
        ...

    async def review_mails(self) -> list[ReviewMail]: ...


class TicketStorage(AttachmentRecords, TicketRecords, CustomerRecords, MailRecords, Protocol):
    """Everything callers need of ticket storage (see the module's obligations)."""

    async def open(self) -> None:
        """Connect (migrating the schema if needed)."""

    async def close(self) -> None:
        """Release the connection; calls in progress finish first."""
