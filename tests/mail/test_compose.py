"""Building outgoing mail (chatserver.mail.compose): plain text only, no header injection."""

from __future__ import annotations

from email import policy

import pytest

from chatserver.mail.compose import build_message, make_message_id
from chatserver.mail.model import MailAttachment, MailError
from chatserver.mail.parse import parse_inbound
from tests.mail.samples import PDF, make_mail, outbound


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hello\r\nBcc: x@evil.example"},
        {"subject": "Hello\nBcc: x@evil.example"},
        {"to": "max@example.com\r\nBcc: x@evil.example"},
        {"to": "max@example.com, other@example.com"},
        {"to": "not an address"},
        {"reply_to": "a@example.com\nBcc: x@evil.example"},
        {"message_id": "<id@x>\r\nBcc: x@evil.example"},
        {"message_id": "no-brackets@x"},
        {"references": ("<ok@x>", "<bad@x>\nBcc: x@evil.example")},
    ],
)
def test_build_rejects_header_injection(overrides: dict[str, object]) -> None:
    with pytest.raises(MailError):
        build_message(outbound(**overrides), "support@chat.example")


def test_build_rejects_bad_sender() -> None:
    with pytest.raises(MailError):
        build_message(outbound(), "support@chat.example\r\nBcc: x@evil.example")


def test_build_strips_control_chars_from_subject() -> None:
    msg = build_message(outbound(subject="A\x00B\x1b[31mC\tD\u2028E\u202eF"), "s@chat.example")
    assert msg["Subject"] == "AB[31mC D EF"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # emoji joined by ZWJ
    assert build_message(outbound(subject=family), "s@chat.example")["Subject"] == family


def test_build_headers_and_plain_text_only() -> None:
    msg = build_message(
        outbound(
            references=("<root@chat.example>", "<cust1@example.com>"),
            reply_to="Support <support+100042@chat.example>",
        ),
        "Support Team <support@chat.example>",
    )
    assert msg["From"] == "Support Team <support@chat.example>"
    assert msg["To"] == "Max Müller <max@example.com>"
    assert msg["Subject"] == "[#100042] Drucker \u2013 Antwort"
    assert msg["Message-ID"] == "<reply1@chat.example>"
    assert msg["In-Reply-To"] == "<cust1@example.com>"
    assert msg["References"] == "<root@chat.example> <cust1@example.com>"
    assert msg["Reply-To"] == "Support <support+100042@chat.example>"
    assert msg["X-Chatserver"] == "1"
    assert msg["Date"] is not None
    assert msg["Auto-Submitted"] is None
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == "Hallo Max,\n\nbitte neu starten. <b>kein HTML</b>\n"
    data = msg.as_bytes(policy=policy.SMTP)
    assert data.isascii()  # 7-bit clean: headers RFC 2047, body quoted-printable
    assert b"text/html" not in data
    assert b"\r\nBcc" not in data


def test_build_without_references_has_no_threading_headers() -> None:
    msg = build_message(outbound(), "support@chat.example")
    assert msg["In-Reply-To"] is None
    assert msg["References"] is None
    assert msg["Reply-To"] is None


def test_built_attachments_round_trip_through_parse() -> None:
    attached_mail = make_mail("original body", subject="Original").as_bytes()
    mail = outbound(
        attachments=(
            MailAttachment("Rechnung März.pdf", "application/pdf", PDF),
            MailAttachment("../../etc/passwd", "Text/Plain", b"root:x:0:0\n"),
            MailAttachment("orig.eml", "message/rfc822", attached_mail),
            MailAttachment("weird.bin", "not a type", b"\x00\x01"),
        )
    )
    msg = build_message(mail, "support@chat.example")
    assert "text/html" not in {part.get_content_type() for part in msg.walk()}
    parsed = parse_inbound(msg.as_bytes(policy=policy.SMTP))
    assert parsed.subject == mail.subject
    assert parsed.text == mail.text.strip()
    assert parsed.message_id == mail.message_id
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("Rechnung März.pdf", "application/pdf"),
        ("passwd", "text/plain"),
        ("orig.eml", "message/rfc822"),
        ("weird.bin", "application/octet-stream"),
    ]
    assert parsed.attachments[0].data == PDF
    assert parsed.attachments[1].data == b"root:x:0:0\n"
    assert parse_inbound(parsed.attachments[2].data).subject == "Original"
    assert parsed.attachments[3].data == b"\x00\x01"


def test_make_message_id() -> None:
    first = make_message_id("chat.example")
    assert first.startswith("<") and first.endswith("@chat.example>")
    assert first != make_message_id("chat.example")
    assert len(first.split("@")[0]) == 33  # "<" + 32 hex digits
    for bad in ("", "a b", "x@y", "a>b"):
        with pytest.raises(ValueError):
            make_message_id(bad)
