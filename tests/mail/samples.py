"""Mail to test with: hand-written raw mail, stdlib messages, outgoing mail."""

from __future__ import annotations

from email.message import EmailMessage

from chatserver.mail.model import OutboundMail

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n" + bytes(range(256)) + b"\n%%EOF\n"

Received = list[tuple[bytes, str, list[str]]]
"""What an SMTP listener's handler was given: (raw mail, MAIL FROM, RCPT TO)."""


def raw(text: str) -> bytes:
    """A hand-written mail: leading indentation removed, CRLF line ends."""
    lines = text.strip("\n").split("\n")
    indent = min(len(line) - len(line.lstrip(" ")) for line in lines if line.strip())
    return "\r\n".join(line[indent:] for line in lines).encode("utf-8") + b"\r\n"


def make_mail(
    body: str = "Hello",
    *,
    subject: str = "Help",
    sender: str = "Max Mustermann <max@example.com>",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A simple plain-text customer mail to the desk."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@chat.example"
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@example.com>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def outbound(**overrides: object) -> OutboundMail:
    """A reply in German to a ticket, with ``overrides`` applied."""
    fields: dict[str, object] = {
        "to": "Max Müller <max@example.com>",
        "subject": "[#100042] Drucker \u2013 Antwort",
        "text": "Hallo Max,\n\nbitte neu starten. <b>kein HTML</b>\n",
        "message_id": "<reply1@chat.example>",
    }
    fields.update(overrides)
    return OutboundMail(**fields)  # type: ignore[arg-type]
