"""What the mail channel passes around: parsed inbound mail, mail to send, attachments.

Plain frozen data, no I/O. Every failure a caller of the mail channel should handle is
a :class:`MailError`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_BYTES", "InboundMail", "MailAttachment", "MailError", "OutboundMail"]

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
"""The largest raw mail accepted by default (parser and SMTP listener)."""


class MailError(Exception):
    """Mail could not be parsed or sent; message says why."""


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """One attached file. Inbound filenames are already sanitized (safe as a bare name)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A parsed incoming mail. Never answer it when ``auto_submitted`` is True.

    ``ticket_number`` comes from the subject, which anyone can write: check that
    ``sender`` belongs to that ticket before attaching the mail to it.
    """

    sender: str
    sender_name: str | None
    subject: str
    message_id: str | None
    references: tuple[str, ...]
    text: str
    attachments: tuple[MailAttachment, ...]
    ticket_number: int | None
    auto_submitted: bool
    # The sender's language (one of chatserver.i18n.LANGUAGES) as its
    # Content-Language, else Accept-Language, names it; None: neither does.
    language: str | None = None
    # The whole text, nothing cut: quotes and forwarded mail kept (``text`` is the
    # new part of a reply, quoted history removed); what a new ticket shows.
    full_text: str = ""


@dataclass(frozen=True, slots=True)
class OutboundMail:
    """A plain-text mail to send. ``references`` are oldest first; the last is replied to."""

    to: str
    subject: str
    text: str
    message_id: str
    references: tuple[str, ...] = ()
    attachments: tuple[MailAttachment, ...] = ()
    reply_to: str | None = None
