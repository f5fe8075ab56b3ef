"""Sending over real SMTP (chatserver.mail.mailer) to the built-in listener."""

from __future__ import annotations

import pytest

from chatserver.mail.listener import SmtpListener
from chatserver.mail.mailer import Mailer
from chatserver.mail.model import MailAttachment, MailError
from chatserver.mail.parse import parse_inbound
from tests.conftest import free_port
from tests.mail.samples import PDF, Received, outbound


def test_mailer_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        Mailer("127.0.0.1", 25, "support@chat.example", starttls=True, use_tls=True)
    with pytest.raises(ValueError):
        Mailer("127.0.0.1", 25, "support@chat.example", username="u")
    with pytest.raises(ValueError):
        Mailer("127.0.0.1", 25, "not an address")


async def test_mailer_to_listener_round_trip(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    mailer = Mailer("127.0.0.1", listener.port, "Support Team <support@chat.example>")
    mail = outbound(
        references=("<cust1@example.com>",),
        attachments=(MailAttachment("scan.pdf", "application/pdf", PDF),),
    )
    await mailer.send(mail)
    assert len(received) == 1
    data, mail_from, rcpt_tos = received[0]
    assert mail_from == "support@chat.example"
    assert rcpt_tos == ["max@example.com"]
    parsed = parse_inbound(data)
    assert parsed.sender == "support@chat.example"
    assert parsed.sender_name == "Support Team"
    assert parsed.subject == mail.subject
    assert parsed.text == mail.text.strip()
    assert parsed.message_id == mail.message_id
    assert parsed.references == ("<cust1@example.com>",)
    assert parsed.ticket_number == 100042
    assert parsed.auto_submitted is False
    assert parsed.attachments == (MailAttachment("scan.pdf", "application/pdf", PDF),)


async def test_send_to_closed_port_is_mail_error() -> None:
    port = free_port()
    mailer = Mailer("127.0.0.1", port, "support@chat.example", timeout=5)
    with pytest.raises(MailError, match=f"127.0.0.1:{port}"):
        await mailer.send(outbound())
