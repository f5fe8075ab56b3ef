"""Mail bookkeeping of :class:`~chatserver.tickets.store.sqlite.TicketStore`: the
:class:`~chatserver.tickets.store.base.MailRecords` half of the contract.

The functions taking a connection run inside a transaction someone else opened
(a ticket's creation or change), so a mail and everything it causes are written
together or not at all: :func:`claim_inbound` refuses a mail taken before,
:func:`record_inbound` marks it taken, :func:`insert_mail` queues an outgoing mail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from chatserver.attachments.blobs import BlobStore
from chatserver.store.database import Connection
from chatserver.tickets.store.base import (
    DuplicateMail,
    InboundKey,
    InboundOutcome,
    OutboxMail,
    QueuedMail,
    ReviewMail,
)

_T = TypeVar("_T")

__all__ = ["MailTables", "claim_inbound", "insert_mail", "record_inbound"]


def claim_inbound(conn: Connection, inbound: InboundKey | None) -> None:
    """Raise :class:`DuplicateMail` if ``inbound`` was taken before (call first in
    the transaction: it then writes nothing)."""
    if inbound is None:
        return
    conn.lock(f"inbound:{inbound.key}")  # the same mail on two nodes at once: taken once
    found = conn.execute(
        "SELECT result, ticket, reason FROM mail_inbound WHERE key = ?", (inbound.key,)
    ).fetchone()
    if found is not None:
        raise DuplicateMail(InboundOutcome(found[0], found[1], found[2]))


def record_inbound(conn: Connection, inbound: InboundKey | None, outcome: InboundOutcome) -> None:
    """Mark ``inbound`` taken as ``outcome``; tie its Message-ID to the ticket."""
    if inbound is None:
        return
    conn.execute(
        "INSERT INTO mail_inbound (key, received_at, result, ticket, reason) VALUES (?,?,?,?,?)",
        (inbound.key, time.time(), outcome.result, outcome.ticket, outcome.reason),
    )
    if inbound.message_id and outcome.ticket is not None and outcome.result != "held":
        conn.execute(
            "INSERT INTO mail_ids (message_id, ticket) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (inbound.message_id, outcome.ticket),
        )


def insert_mail(conn: Connection, mail: QueuedMail) -> int:
    """Queue ``mail`` (due at once); tie its Message-ID and references to its ticket."""
    now = time.time()
    (mail_id,) = conn.execute(
        "INSERT INTO mail_outbox (ticket, to_addr, subject, body, message_id, refs,"
        " attachments, created_at, next_attempt) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
        (
            mail.ticket,
            mail.to_addr,
            mail.subject,
            mail.body,
            mail.message_id,
            json.dumps(list(mail.refs)),
            json.dumps(list(mail.attachments)),
            now,
            now,
        ),
    ).fetchone()
    if mail.ticket is not None:
        for message_id in (mail.message_id, *mail.refs):
            conn.execute(
                "INSERT INTO mail_ids (message_id, ticket) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (message_id, mail.ticket),
            )
    return int(mail_id)


class MailTables:
    """Message ids, the outbox, held mail and taken inbound mail (a part of
    ``TicketStore``, which provides the connection, its thread and the files)."""

    files: BlobStore
    on_mail_result: Callable[[str], None] | None

    async def _run(self, fn: Callable[[], _T]) -> _T:
        raise NotImplementedError

    def _tx(self, fn: Callable[[Connection], _T]) -> _T:
        raise NotImplementedError

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def remember_mail_id(self, message_id: str, number: int) -> None:
        await self._run(
            lambda: self._tx(
                lambda c: c.execute(
                    "INSERT INTO mail_ids (message_id, ticket) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (message_id, number),
                )
            )
        )

    async def ticket_for_mail_ids(self, ids: Sequence[str]) -> int | None:
        if not ids:
            return None
        marks = ",".join("?" * len(ids))
        rows = await self._run(
            lambda: self._q(f"SELECT ticket FROM mail_ids WHERE message_id IN ({marks})", ids)
        )
        return int(rows[0][0]) if rows else None

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
        mail = QueuedMail(ticket, to_addr, subject, body, message_id, list(refs), list(attachments))
        return await self._run(lambda: self._tx(lambda c: insert_mail(c, mail)))

    async def due_mail(self, limit: int = 20) -> list[OutboxMail]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, ticket, to_addr, subject, body, message_id, refs, attachments,"
                " attempts FROM mail_outbox WHERE sent_at IS NULL AND next_attempt <= ?"
                " ORDER BY id LIMIT ?",
                (time.time(), limit),
            )
        )
        return [
            OutboxMail(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]), r[8])
            for r in rows
        ]

    async def mail_sent(self, mail_id: int) -> None:
        await self._run(
            lambda: self._tx(
                lambda c: c.execute(
                    "UPDATE mail_outbox SET sent_at = ?, last_error = NULL WHERE id = ?",
                    (time.time(), mail_id),
                )
            )
        )
        if self.on_mail_result is not None:
            self.on_mail_result("ok")

    async def mail_failed(self, mail_id: int, error: str, retry_in: float) -> None:
        await self._run(
            lambda: self._tx(
                lambda c: c.execute(
                    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
                    " next_attempt = ? WHERE id = ?",
                    (error[:500], time.time() + retry_in, mail_id),
                )
            )
        )
        if self.on_mail_result is not None:
            self.on_mail_result("error")

    async def outbox(self) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, ticket, to_addr, subject, attempts, sent_at, last_error"
                " FROM mail_outbox ORDER BY id"
            )
        )
        keys = ("id", "ticket", "to", "subject", "attempts", "sent_at", "last_error")
        return [dict(zip(keys, r, strict=True)) for r in rows]

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
        storage, _ = await self._run(lambda: self.files.put(raw))

        def insert(conn: Connection) -> int:
            claim_inbound(conn, inbound)
            (review_id,) = conn.execute(
                "INSERT INTO mail_review (received_at, sender, subject, message_id, ticket,"
                " reason, storage) VALUES (?,?,?,?,?,?,?) RETURNING id",
                (time.time(), sender, subject, message_id, ticket, reason, storage),
            ).fetchone()
            record_inbound(conn, inbound, InboundOutcome("held", ticket, reason))
            return int(review_id)

        return await self._run(lambda: self._tx(insert))

    async def review_mails(self) -> list[ReviewMail]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, received_at, sender, subject, message_id, ticket, reason, storage"
                " FROM mail_review ORDER BY id"
            )
        )
        return [ReviewMail(*r) for r in rows]

    async def inbound_outcome(self, key: str) -> InboundOutcome | None:
        rows = await self._run(
            lambda: self._q("SELECT result, ticket, reason FROM mail_inbound WHERE key = ?", (key,))
        )
        return InboundOutcome(rows[0][0], rows[0][1], rows[0][2]) if rows else None
