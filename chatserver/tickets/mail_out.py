"""Mail from the support desk: what a ticket's requester is sent, and its delivery.

Actions put mail in the outbox table of :class:`~chatserver.tickets.store.TicketStore`
(:meth:`Outbox.queue` and the messages built on it); :meth:`Outbox.run` sends what is
due through :class:`~chatserver.mail.mailer.Mailer` and retries failures with
exponential backoff (up to six hours), so a mail server that is down loses nothing.
Without SMTP settings nothing is queued.

Every mail to a customer is written in their language (:meth:`Outbox.language`: the
ticket's, else the customer's, else the desk's ``default_language``) from the
templates of :mod:`chatserver.i18n.mails` (gettext catalogs, docs/i18n.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from chatserver.attachments.blobs import BlobStore, read_all
from chatserver.attachments.files import AttachmentRecord
from chatserver.config import Settings
from chatserver.i18n import mails
from chatserver.i18n.languages import pick
from chatserver.mail.compose import make_message_id
from chatserver.mail.mailer import Mailer
from chatserver.mail.model import MailAttachment, MailError, OutboundMail
from chatserver.tickets import model as T
from chatserver.tickets.store import QueuedMail, TicketRow, TicketStore

log = logging.getLogger("chatserver.tickets.mail_out")

__all__ = ["Outbox"]

MAX_RETRY_SECONDS = 6 * 3600


class Outbox:
    """Queues and delivers the desk's mail; one per node (several may share the store)."""

    def __init__(self, settings: Settings, records: TicketStore, files: BlobStore) -> None:
        self.settings = settings
        self.records = records
        self.files = files
        self.mailer: Mailer | None = None
        if settings.smtp_host:
            self.mailer = Mailer(
                settings.smtp_host,
                settings.smtp_port,
                settings.mail_from,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                use_tls=settings.smtp_tls,
            )
        self.mail_domain = settings.mail_domain  # of the address part, never the name
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        """Is SMTP set up (otherwise every queued mail is dropped)?"""
        return self.mailer is not None

    # ------------------------------------------------------------ queueing
    async def queue(
        self,
        row: TicketRow | None,
        to: str | None,
        subject: str,
        text: str,
        attachments: Sequence[AttachmentRecord] = (),
    ) -> None:
        """Put a mail in the outbox (sent by :meth:`run`); no-op without SMTP or address.

        Mail about a ticket references ``<ticket-N@domain>``, so replies find the ticket
        even when the customer's client drops the number from the subject.
        """
        mail = self.compose(row, to, subject, text, attachments)
        if mail is None:
            return
        await self.records.queue_mail(
            ticket=mail.ticket,
            to_addr=mail.to_addr,
            subject=mail.subject,
            body=mail.body,
            message_id=mail.message_id,
            refs=mail.refs,
            attachments=mail.attachments,
        )
        self.wake()

    def compose(
        self,
        row: TicketRow | None,
        to: str | None,
        subject: str,
        text: str,
        attachments: Sequence[AttachmentRecord] = (),
    ) -> QueuedMail | None:
        """The outbox entry :meth:`queue` writes (None without SMTP or address); no
        I/O, so it can run inside a store transaction (a ``FollowUp``)."""
        if self.mailer is None or not to:
            return None
        refs = [f"<ticket-{row.number}@{self.mail_domain}>"] if row is not None else []
        return QueuedMail(
            ticket=row.number if row is not None else None,
            to_addr=to,
            subject=subject,
            body=text,
            message_id=make_message_id(self.mail_domain),
            refs=refs,
            attachments=[a.attachment_id for a in attachments],
        )

    def wake(self) -> None:
        """Deliver soon: call after a transaction that queued mail committed."""
        self._wake.set()

    @staticmethod
    def subject(row: TicketRow, prefix: str = "") -> str:
        """``[#100042] subject``: the number in brackets is what inbound mail is matched by."""
        return f"{prefix}[{T.ref(row.number)}] {row.subject}"

    async def language(self, row: TicketRow) -> str:
        """The language of mail about ``row``: the ticket's, else its customer's, else
        the desk's ``default_language``."""
        customer = await self.records.customer(row.customer_id) if row.customer_id else None
        return pick(row.lang, (customer or {}).get("lang"), default=self.settings.default_language)

    async def confirm(self, row: TicketRow) -> None:
        """Tell the requester their ticket is open (after it was created), with its
        number and when it was opened (the desk's time zone)."""
        for mail in self.confirmation(row, await self.language(row)):
            await self.queue(row, mail.to_addr, mail.subject, mail.body)

    def confirmation(self, row: TicketRow, lang: str) -> list[QueuedMail]:
        """The confirmation :meth:`confirm` queues, in ``lang``, as outbox entries
        (none without SMTP or address); no I/O, for a store transaction's ``FollowUp``."""
        subject, body = mails.confirmation(
            lang,
            ref=T.ref(row.number),
            subject=row.subject,
            name=row.requester_name,
            opened=row.created_at,
            timezone=self.settings.board_timezone,
        )
        mail = self.compose(row, row.requester_email, subject, body)
        return [mail] if mail is not None else []

    async def reply(self, row: TicketRow, text: str, atts: Sequence[AttachmentRecord]) -> None:
        """Send the requester an operator's public reply, with its attachments."""
        subject, body = mails.public_reply(
            await self.language(row), ref=T.ref(row.number), subject=row.subject, text=text
        )
        await self.queue(row, row.requester_email, subject, body, atts)

    async def feedback_needed(self, row: TicketRow, reason: str | None) -> None:
        """Ask the requester for information (the ticket went to Feedback needed)."""
        subject, body = mails.feedback_needed(
            await self.language(row),
            ref=T.ref(row.number),
            subject=row.subject,
            name=row.requester_name,
            reason=reason,
        )
        await self.queue(row, row.requester_email, subject, body)

    async def transcript(self, to: str, lines: Sequence[str], lang: str) -> None:
        """Send a chat transcript in ``lang``, one line per message."""
        subject, body = mails.transcript(lang, lines)
        await self.queue(None, to, subject, body)

    # ------------------------------------------------------------ delivery
    async def run(self) -> None:
        """Deliver the outbox forever, retrying failed mails with backoff."""
        while True:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("mail delivery failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 5.0)

    async def deliver_due(self) -> int:
        """Send every mail that is due; returns how many went out."""
        if self.mailer is None:
            return 0
        sent = 0
        for mail in await self.records.due_mail():
            atts: list[MailAttachment] = []
            for att_id in mail.attachments:
                record = await self.records.attachment(att_id)
                if record is not None:
                    data = await read_all(
                        self.files, record.storage, limit=self.settings.max_mail_bytes
                    )
                    atts.append(MailAttachment(record.filename, record.content_type, data))
            out = OutboundMail(
                to=mail.to_addr,
                subject=mail.subject,
                text=mail.body,
                message_id=mail.message_id,
                references=tuple(mail.refs),
                attachments=tuple(atts),
            )
            try:
                await self.mailer.send(out)
            except MailError as exc:
                self.failed += 1
                retry = min(self.settings.mail_retry_seconds * 2**mail.attempts, MAX_RETRY_SECONDS)
                log.warning(
                    "mail %d to %s failed (%s); retry in %.0f s",
                    mail.mail_id,
                    mail.to_addr,
                    exc,
                    retry,
                )
                await self.records.mail_failed(mail.mail_id, str(exc), retry)
                continue
            self.sent += 1
            sent += 1
            await self.records.mail_sent(mail.mail_id)
        return sent
