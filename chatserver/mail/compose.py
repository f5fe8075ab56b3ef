"""Building outgoing mail: plain text only, never HTML, safe against header injection.

:func:`build_message` turns an :class:`~chatserver.mail.model.OutboundMail` into the
:class:`~email.message.EmailMessage` that :class:`~chatserver.mail.mailer.Mailer` sends.
No I/O.
"""

from __future__ import annotations

import email.headerregistry
import email.utils
import re
import secrets
import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser

from chatserver.mail.model import MailError, OutboundMail
from chatserver.mail.sanitize import LINE_BREAKS, POLICY, clean_body, one_line, safe_filename

__all__ = ["address_of", "build_message", "make_message_id"]

_MSGID_FULL = re.compile(r"<[^<>\s\x00-\x1f\x7f]+>")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def make_message_id(domain: str) -> str:
    """A fresh ``<random-hex@domain>`` Message-ID."""
    domain = domain.strip()
    if not domain or any(ch.isspace() or ch in "<>@" or ord(ch) < 32 for ch in domain):
        raise ValueError(f"bad message-id domain: {domain!r}")
    return f"<{secrets.token_hex(16)}@{domain}>"


def _reject_line_breaks(value: str, field: str) -> None:
    if any(ch in LINE_BREAKS or unicodedata.category(ch) == "Cc" for ch in value):
        raise MailError(f"{field} must not contain line breaks or control characters")


def address_of(value: str, field: str) -> str:
    """The bare address of a single-address header value ("Name <a@b>" or "a@b")."""
    _reject_line_breaks(value, field)
    header = POLICY.header_factory(field, value)
    addresses: tuple[email.headerregistry.Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise MailError(f"{field} is not a single mail address: {value!r}")
    return str(addresses[0].addr_spec)


def build_message(mail: OutboundMail, sender: str) -> EmailMessage:
    """The plain-text UTF-8 message for ``mail``, From ``sender`` (``a@b`` or ``Name <a@b>``).

    Raises MailError for line breaks in addresses or subject, bad addresses or bad
    message ids. Other control characters in the subject are dropped.
    """
    address_of(mail.to, "To")
    address_of(sender, "From")
    if mail.reply_to is not None:
        address_of(mail.reply_to, "Reply-To")
    if "\r" in mail.subject or "\n" in mail.subject:
        raise MailError("subject must not contain line breaks")
    subject = one_line(mail.subject)
    for msgid in (mail.message_id, *mail.references):
        if not _MSGID_FULL.fullmatch(msgid):
            raise MailError(f"bad message id: {msgid!r}")

    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = mail.to
    if mail.reply_to is not None:
        msg["Reply-To"] = mail.reply_to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = mail.message_id
    if mail.references:
        msg["In-Reply-To"] = mail.references[-1]
        msg["References"] = " ".join(mail.references)
    msg["X-Chatserver"] = "1"

    body = clean_body(mail.text)
    if not body.endswith("\n"):
        body += "\n"
    # Non-ASCII text goes quoted-printable so the mail stays 7-bit clean for any relay.
    cte = None if body.isascii() else "quoted-printable"
    msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)

    for att in mail.attachments:
        filename = safe_filename(att.filename)
        ctype = att.content_type.strip().lower()
        if ctype == "message/rfc822":
            inner = BytesParser(policy=POLICY).parsebytes(att.data)
            if inner.keys():
                msg.add_attachment(inner, filename=filename)
                continue
        if not _CONTENT_TYPE.fullmatch(ctype) or ctype.split("/")[0] in ("multipart", "message"):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=filename)
    return msg
