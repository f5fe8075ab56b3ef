"""Inbound mail on tickets: a reply on its ticket, a new ticket, or held for review.

The mail channel's entry into the ticket service, as :mod:`chatserver.web.api` is the
HTTP one: :func:`ingest_mail` is what the SMTP listener and ``chatserver mail ingest``
call with each raw mail. A mail is merged into a ticket only when its sender is that
ticket's requester; the ticket is found by the ``Message-ID``s the desk sent (the
customer's ``In-Reply-To``/``References``), else by the number in the subject.
Anything doubtful (bounces, auto-replies, strangers, unknown numbers) is kept in the
review table, not dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from chatserver.attachments.files import AttachmentRecord, clean_filename, new_attachment_id, sniff
from chatserver.errors import BadFrame, TooLarge, UnsupportedType
from chatserver.mail.model import InboundMail
from chatserver.mail.parse import parse_inbound
from chatserver.tickets import model as T
from chatserver.tickets.fields import MAX_SUBJECT, MAX_TEXT, strip_control
from chatserver.tickets.service import TicketService, state_change
from chatserver.tickets.store import (
    DuplicateMail,
    InboundKey,
    InboundOutcome,
    NewEvent,
    TicketRow,
)

log = logging.getLogger("chatserver.tickets.mail_in")

__all__ = ["ORIGINAL_NAME", "inbound_key", "ingest_mail"]

ORIGINAL_NAME = "original-mail.eml"
"""The file name of the raw mail kept with every mail on a ticket."""


async def ingest_mail(
    service: TicketService, raw: bytes, envelope_from: str | None = None
) -> dict[str, Any]:
    """Take one inbound mail: a reply on its ticket, a new ticket, or held for review.

    Returns ``{"result": "reply"|"created"|"held", "ticket": number|None, "reason"?,
    "duplicate"?}``. Raises :class:`~chatserver.mail.model.MailError` for mail that
    cannot be read at all (nothing is stored).

    Obligations: **atomic** — the ticket (or reply, or held item), its events, its
    attachments' records, the outbox entries it causes and the mark that the mail
    was taken are one transaction; a failure anywhere leaves none of them (files
    written before may stay unused). **Idempotent** — a mail is taken once by its
    Message-ID, else by the SHA-256 of its raw bytes: the same mail again (a retry
    after a crash, a second SMTP delivery, the CLI) returns the first outcome with
    ``"duplicate": True`` and writes nothing. **The original kept** — a new ticket
    or a reply carries the raw mail as an ``.eml`` attachment, its hash in the event.
    """
    # Parsing is CPU-bound (and slow on big or hostile mail): off the event loop.
    mail = await asyncio.to_thread(parse_inbound, raw, max_bytes=service.settings.max_mail_bytes)
    inbound = inbound_key(mail.message_id, mail.sender, raw)
    seen = await service.records.inbound_outcome(inbound.key)
    if seen is not None:
        return await _duplicate(service, seen)
    try:
        return await _take(service, mail, raw, envelope_from, inbound)
    except DuplicateMail as dup:  # the same mail, taken meanwhile by another delivery
        return await _duplicate(service, dup.outcome)


def inbound_key(message_id: str | None, sender: str, raw: bytes) -> InboundKey:
    """The identity of an inbound mail: its Message-ID with its sender (a stranger
    reusing someone's Message-ID does not make their mail a duplicate), else
    ``sha256:`` of its raw bytes with line endings made CRLF (a file and an SMTP
    delivery agree)."""
    if message_id:
        return InboundKey(f"{message_id} {sender}", message_id)
    canonical = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return InboundKey(f"sha256:{hashlib.sha256(canonical).hexdigest()}", None)


async def _duplicate(service: TicketService, seen: InboundOutcome) -> dict[str, Any]:
    """The first outcome again; a ticket's SLA columns are recomputed (they are derived
    after the commit, so a crash right after it is repaired by the retry)."""
    if seen.ticket is not None and seen.result != "held":
        row = await service.records.ticket(seen.ticket)
        if row is not None:
            await service.clocks.refresh(row)
    outcome: dict[str, Any] = {"result": seen.result, "ticket": seen.ticket, "duplicate": True}
    if seen.reason:
        outcome["reason"] = seen.reason
    return outcome


async def _take(
    service: TicketService,
    mail: InboundMail,
    raw: bytes,
    envelope_from: str | None,
    inbound: InboundKey,
) -> dict[str, Any]:
    if mail.auto_submitted or envelope_from == "":  # MAIL FROM:<> is a bounce
        return await _hold(service, mail, raw, None, "automatic reply or bounce", inbound)
    number = await service.records.ticket_for_mail_ids(list(mail.references)[-20:])
    if number is None:
        number = mail.ticket_number
    if number is not None:
        row = await service.records.ticket(number)
        if row is None:
            return await _hold(service, mail, raw, number, f"no ticket {T.ref(number)}", inbound)
        if (row.requester_email or "").lower() != mail.sender:
            reason = f"{mail.sender} is not the requester of {T.ref(number)}"
            return await _hold(service, mail, raw, number, reason, inbound)
        atts, skipped = await _store_attachments(service, f"t:{number}", mail)
        original = await _store_original(service, f"t:{number}", mail, raw)
        # A reply: the quoted history is cut (the whole mail is the .eml, one click away).
        event = _mail_in_event(mail, mail.text, [*atts, original], skipped, original)

        def mutation(current: TicketRow) -> list[NewEvent]:
            after = T.state_after_customer_reply(current.state)
            return [event, *state_change(current.state, after, "e-mail")]

        row, _ = await service.records.mutate(
            number, mutation, adopt=[*atts, original], inbound=inbound
        )
        await service.clocks.refresh(row)
        return {"result": "reply", "ticket": number}
    # A new request by mail: its whole text, forwarded parts and quotes included.
    subject = " ".join(strip_control(mail.subject).split())[:MAX_SUBJECT] or "(no subject)"
    atts, skipped = await _store_attachments(service, "mail", mail)
    original = await _store_original(service, "mail", mail, raw)
    lang = mail.language or service.settings.default_language
    row, _ = await service.records.create(
        subject=subject,
        priority=T.TicketPriority.NORMAL,
        department="technical",
        level=1,
        assignee=None,
        channel="email",
        requester_name=mail.sender_name,
        requester_email=mail.sender,
        customer_id=None,
        session_id=None,
        actor={"type": "customer", "id": None, "name": mail.sender_name or mail.sender},
        events=[_mail_in_event(mail, mail.full_text, [*atts, original], skipped, original)],
        adopt=[*atts, original],
        plan=await service.records.customer_plan(None, mail.sender),
        lang=lang,
        inbound=inbound,
        follow_up=lambda created: service.outbox.confirmation(created, created.lang or lang),
    )
    service.outbox.wake()
    row = await service.clocks.refresh(row)
    return {"result": "created", "ticket": row.number}


async def _hold(
    service: TicketService,
    mail: InboundMail,
    raw: bytes,
    number: int | None,
    reason: str,
    inbound: InboundKey,
) -> dict[str, Any]:
    await service.records.hold_for_review(
        sender=mail.sender,
        subject=mail.subject,
        message_id=mail.message_id,
        ticket=number,
        reason=reason,
        raw=raw,
        inbound=inbound,
    )
    log.warning("mail from %s held for review: %s", mail.sender, reason)
    return {"result": "held", "ticket": number, "reason": reason}


async def _store_original(
    service: TicketService, owner: str, mail: InboundMail, raw: bytes
) -> AttachmentRecord:
    """The raw mail as an ``.eml`` file record for ``owner`` (its row is written by
    the caller's transaction): nothing the parser could not split is lost."""
    storage, digest = await asyncio.to_thread(service.files.put, raw)
    return AttachmentRecord(
        new_attachment_id(),
        owner,
        ORIGINAL_NAME,
        "message/rfc822",
        len(raw),
        digest,
        storage,
        f"mail:{mail.sender}",
        time.time(),
    )


async def _store_attachments(
    service: TicketService, owner: str, mail: InboundMail
) -> tuple[list[AttachmentRecord], list[dict[str, str]]]:
    """Store the files of a mail's acceptable attachments (records for ``owner``,
    not written yet); list the refused ones."""
    stored: list[AttachmentRecord] = []
    skipped: list[dict[str, str]] = []
    for part in mail.attachments:
        name = clean_filename(part.filename)
        try:
            if len(part.data) > service.settings.max_upload_bytes:
                raise TooLarge("larger than the upload limit")
            if not part.data:
                raise BadFrame("empty")
            kind = sniff(part.data, name)
        except (TooLarge, UnsupportedType, BadFrame) as exc:
            skipped.append({"filename": name, "reason": exc.message})
            continue
        storage, digest = await asyncio.to_thread(service.files.put, part.data)
        record = AttachmentRecord(
            new_attachment_id(),
            owner,
            name,
            kind.content_type,
            len(part.data),
            digest,
            storage,
            f"mail:{mail.sender}",
            time.time(),
        )
        stored.append(record)  # its row: in the transaction that takes the mail
    return stored, skipped


def _mail_in_event(
    mail: InboundMail,
    text: str,
    atts: Sequence[AttachmentRecord],
    skipped: list[dict[str, str]],
    original: AttachmentRecord,
) -> NewEvent:
    """The event of a customer's mail on a ticket; ``original`` (the raw mail) is in
    its attachments and, with its SHA-256, under ``original``: the chain covers it."""
    return NewEvent(
        "mail_in",
        {"type": "customer", "id": None, "name": mail.sender_name or mail.sender},
        {
            "text": (text.strip() or "(no text: see the original mail)")[:MAX_TEXT],
            "original": {**original.public(), "sha256": original.sha256},
            "from": mail.sender,
            "subject": mail.subject,
            "message_id": mail.message_id,
            "attachments": [a.public() for a in atts],
            "skipped": skipped,
        },
    )
