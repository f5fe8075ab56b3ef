"""E-mail channel: parsing, quoting, building, and real SMTP in both directions."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import time
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage

import aiosmtplib
import pytest

from chatserver.mail import (
    InboundMail,
    MailAttachment,
    Mailer,
    MailError,
    OutboundMail,
    SmtpListener,
    build_message,
    html_to_text,
    make_message_id,
    parse_inbound,
    strip_quoted_reply,
    ticket_number_in,
)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n" + bytes(range(256)) + b"\n%%EOF\n"


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
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@chat.example"
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@example.com>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------ parsing


def test_plain_mail() -> None:
    mail = parse_inbound(
        raw(
            """
            From: Max Mustermann <Max.Mustermann@Example.COM>
            To: support@chat.example
            Subject:   Printer   is
             broken
            Message-ID: <abc.123@mail.example.com>
            Date: Mon, 01 Jan 2024 10:00:00 +0100
            Content-Type: text/plain; charset=utf-8

            Hello,

            my printer is broken.

            Max
            """
        )
    )
    assert isinstance(mail, InboundMail)
    assert mail.sender == "max.mustermann@example.com"
    assert mail.sender_name == "Max Mustermann"
    assert mail.subject == "Printer is broken"
    assert mail.message_id == "<abc.123@mail.example.com>"
    assert mail.references == ()
    assert mail.text == "Hello,\n\nmy printer is broken.\n\nMax"
    assert mail.attachments == ()
    assert mail.ticket_number is None
    assert mail.auto_submitted is False


def test_bare_sender_without_name() -> None:
    mail = parse_inbound(raw("From: kunde@example.org\nSubject: x\n\nHi"))
    assert mail.sender == "kunde@example.org"
    assert mail.sender_name is None


def test_multipart_alternative_prefers_plain() -> None:
    msg = make_mail("The plain version")
    msg.add_alternative("<p>The <b>HTML</b> version</p>", subtype="html")
    mail = parse_inbound(msg.as_bytes())
    assert mail.text == "The plain version"
    assert mail.attachments == ()


def test_empty_plain_part_falls_back_to_html() -> None:
    msg = make_mail("\n")
    msg.add_alternative("<p>Only here</p>", subtype="html")
    assert parse_inbound(msg.as_bytes()).text == "Only here"


def test_html_only_drops_script_and_style() -> None:
    html = """<html><head><title>Ignored title</title>
        <style>p { color: red }</style></head><body>
        <p>Hallo&nbsp;Team,</p>
        <script type="text/javascript">alert("stolen cookies");</script>
        <div>Preis: 5&euro; &amp; mehr &lt;script&gt;</div>
        <ul><li>eins</li><li>zwei</li></ul>
        </body></html>"""
    msg = make_mail()
    msg.set_content(html, subtype="html")
    mail = parse_inbound(msg.as_bytes())
    assert "alert" not in mail.text
    assert "stolen" not in mail.text
    assert "color" not in mail.text
    assert "Ignored title" not in mail.text
    assert mail.text == "Hallo Team,\nPreis: 5€ & mehr <script>\n- eins\n- zwei"
    assert mail.attachments == ()


def test_rfc2047_subject_and_sender_name() -> None:
    mail = parse_inbound(
        raw(
            """
            From: =?iso-8859-1?q?J=F6rg_M=FCller?= <joerg@example.de>
            Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=
             =?utf-8?b?IFvDhMOWw5xd?=
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            Sch=F6ne Gr=FC=DFe
            """
        )
    )
    assert mail.sender_name == "Jörg Müller"
    assert mail.subject == "Grüße aus München [ÄÖÜ]"
    assert mail.text == "Schöne Grüße"


def test_raw_utf8_headers_are_decoded() -> None:
    mail = parse_inbound(raw("From: Jürgen Groß <jg@example.de>\nSubject: Störung\n\nText"))
    assert mail.sender_name == "Jürgen Groß"
    assert mail.subject == "Störung"


def test_encoded_line_breaks_in_subject_are_collapsed() -> None:
    mail = parse_inbound(raw("From: a@example.com\nSubject: =?utf-8?q?A=0D=0ABcc:_x=09y?=\n\nb"))
    assert mail.subject == "A Bcc: x y"


def test_bidi_overrides_are_dropped_from_name_and_subject() -> None:
    mail = parse_inbound(
        raw(
            """
            From: =?utf-8?q?Support=E2=80=AEnimda?= <evil@example.com>
            Subject: =?utf-8?q?Rechnung_=E2=80=AEfdp.exe?=

            x
            """
        )
    )
    assert mail.sender_name == "Supportnimda"
    assert mail.subject == "Rechnung fdp.exe"


def test_long_subject_is_truncated() -> None:
    mail = parse_inbound(make_mail(subject="x" * 1000).as_bytes())
    assert len(mail.subject) == 300


def test_attachments_pdf_and_attached_mail() -> None:
    forwarded = make_mail("the forwarded body", subject="Old thread")
    msg = make_mail("See attached")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Rechnung März.pdf")
    msg.add_attachment(forwarded)  # message/rfc822 without a filename
    msg.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    mail = parse_inbound(msg.as_bytes())
    assert mail.text == "See attached"
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Rechnung März.pdf", "application/pdf"),
        ("Old thread.eml", "message/rfc822"),
        ("data.csv", "text/csv"),
    ]
    assert mail.attachments[0].data == PDF
    assert mail.attachments[2].data == b"col1,col2\n1,2\n"
    inner = parse_inbound(mail.attachments[1].data)
    assert inner.subject == "Old thread"
    assert inner.text == "the forwarded body"


def test_single_part_non_text_mail_is_an_attachment() -> None:
    msg = EmailMessage()
    msg["From"] = "scanner@example.com"
    msg["Subject"] = "Scan"
    msg.set_content(PDF, maintype="application", subtype="pdf")
    mail = parse_inbound(msg.as_bytes())
    assert mail.text == ""
    assert mail.attachments == (MailAttachment("attachment", "application/pdf", PDF),)


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ('filename="../../etc/passwd"', "passwd"),
        ('filename="..\\\\..\\\\windows\\\\system.ini"', "system.ini"),
        ('filename="/abs/path/report.pdf"', "report.pdf"),
        ('filename=".."', "attachment"),
        ('filename=""', "attachment"),
        ("filename*=utf-8''evil%E2%80%AEfdp.exe", "evilfdp.exe"),
        ("filename*=utf-8''a%00b%0D%0Ac.txt", "abc.txt"),
        ('filename="  spaced   name.txt  "', "spaced name.txt"),
        (f'filename="{"n" * 300}.pdf"', "n" * 196 + ".pdf"),
    ],
)
def test_attachment_filenames_are_sanitized(param: str, expected: str) -> None:
    mail = parse_inbound(
        raw(
            f"""
            From: a@example.com
            Subject: files
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="XX"

            --XX
            Content-Type: text/plain

            body
            --XX
            Content-Type: application/octet-stream
            Content-Disposition: attachment; {param}
            Content-Transfer-Encoding: base64

            aGVsbG8=
            --XX--
            """
        )
    )
    assert mail.text == "body"
    assert len(mail.attachments) == 1
    att = mail.attachments[0]
    assert att.filename == expected
    assert len(att.filename) <= 200
    assert "/" not in att.filename and "\\" not in att.filename
    assert att.data == b"hello"
    assert att.content_type == "application/octet-stream"


def test_embedded_images_are_not_attachments_but_inline_files_are() -> None:
    mail = parse_inbound(
        raw(
            """
            From: a@example.com
            Subject: screenshot
            Content-Type: multipart/mixed; boundary="M"

            --M
            Content-Type: multipart/alternative; boundary="A"

            --A
            Content-Type: text/plain

            plain body
            --A
            Content-Type: multipart/related; boundary="R"

            --R
            Content-Type: text/html

            <p>html body <img src="cid:logo1"></p>
            --R
            Content-Type: image/png; name="image001.png"
            Content-ID: <logo1>
            Content-Disposition: inline; filename="image001.png"
            Content-Transfer-Encoding: base64

            iVBORw==
            --R--
            --A--
            --M
            Content-Type: image/jpeg; name="IMG_0001.JPG"
            Content-Disposition: inline; filename="IMG_0001.JPG"
            Content-Transfer-Encoding: base64

            /9j/4AAQ
            --M--
            """
        )
    )
    assert mail.text == "plain body"
    # The signature logo is part of the HTML body; the inline photo is a real attachment.
    assert mail.attachments == (
        MailAttachment("IMG_0001.JPG", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10"),
    )


def test_references_and_message_id() -> None:
    mail = parse_inbound(
        raw(
            """
            From: a@example.com
            Subject: Re: x
            Message-ID: bare-id@example.com
            In-Reply-To: <second@chat.example> (sent by ticket system)
            References: <root@chat.example>
             <second@chat.example>   <third@chat.example>

            reply
            """
        )
    )
    assert mail.message_id == "<bare-id@example.com>"
    assert mail.references == (
        "<second@chat.example>",
        "<root@chat.example>",
        "<third@chat.example>",
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("AW: [#100042] Drucker", 100042),
        ("Re: AW: Fwd: [#100042] Drucker geht nicht", 100042),
        ("Re: Re: #100042", 100042),
        ("[Ticket #100043] Hallo", 100043),
        ("Order 12345", None),
        ("Order #12345", None),
        ("#099999", None),
        ("#100000", 100000),
        ("#99999", None),
        ("", None),
        ("Re: #1000421234567890123456 overflow", None),
        ("Re: #100099 see [#100042]", 100042),
        ("Re: [#100042] Please also check #100043 and [#100044]", 100042),
        ("Re: #100050 and #100051", 100050),
        ("Betreff ohne Nummer 100042", None),
    ],
)
def test_ticket_number_in(subject: str, expected: int | None) -> None:
    assert ticket_number_in(subject) == expected


def test_parsed_mail_has_ticket_number() -> None:
    mail = parse_inbound(make_mail(subject="AW: [#100042] Drucker").as_bytes())
    assert mail.ticket_number == 100042


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"Auto-Submitted": "auto-replied"}, True),
        ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, True),
        ({"Auto-Submitted": "no"}, False),
        ({"X-Autoreply": "yes"}, True),
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "junk"}, True),
        ({"Precedence": "auto_reply"}, True),
        ({"Precedence": "first-class"}, False),
        ({"Return-Path": "<>"}, True),
        ({"Return-Path": "<max@example.com>"}, False),
    ],
)
def test_auto_submitted(headers: dict[str, str], expected: bool) -> None:
    assert parse_inbound(make_mail(headers=headers).as_bytes()).auto_submitted is expected


def test_bounce_report_is_auto_submitted() -> None:
    mail = parse_inbound(
        raw(
            """
            From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
            Subject: Undelivered Mail Returned to Sender
            Content-Type: multipart/report; report-type=delivery-status; boundary="B"

            --B
            Content-Type: text/plain

            This is the mail system.
            --B
            Content-Type: message/delivery-status

            Reporting-MTA: dns; mx.example.com

            Final-Recipient: rfc822; gone@example.com
            Action: failed
            --B--
            """
        )
    )
    assert mail.auto_submitted is True
    assert mail.text == "This is the mail system."


# ---------------------------------------------------------------- quoted replies

GMAIL_EN = """Thanks, that fixed it!

Max

On Mon, Jan 1, 2024 at 10:00 AM Support <support@chat.example> wrote:

> Hello Max,
>
> please restart the printer.
> > older quote
"""

GMAIL_WRAPPED = """Works now.

On Mon, Jan 1, 2024 at 10:00 AM Very Long Name Support Team <
support@chat.example> wrote:
> quoted
"""

OUTLOOK_EN = """Still broken.

________________________________
From: Support <support@chat.example>
Sent: Monday, January 1, 2024 10:00 AM
To: Max <max@example.com>
Subject: [#100042] Printer

Hello Max, please restart the printer.
"""

OUTLOOK_DE = """Hallo,

leider immer noch kaputt.

Gruß Max

Von: Support <support@chat.example>
Gesendet: Montag, 1. Januar 2024 10:00
An: Max Mustermann <max@example.com>
Betreff: AW: [#100042] Drucker

Hallo Max, bitte starten Sie den Drucker neu.
"""

OUTLOOK_DE_ORIGINAL = """Danke!

-----Ursprüngliche Nachricht-----
Von: Support <support@chat.example>
Gesendet: Montag, 1. Januar 2024 10:00
Betreff: Drucker

alter Text
"""

OUTLOOK_EN_ORIGINAL = """Thanks!
-----Original Message-----
From: Support
old text
"""

THUNDERBIRD_DE = """Hallo zusammen,

es geht wieder.

Am 01.02.2024 um 10:00 schrieb Support Team:
> Hallo,
> bitte neu starten.
"""

GMAIL_DE = """Super, danke.

Am Mo., 1. Jan. 2024 um 10:00 Uhr schrieb Support <support@chat.example>:

> Bitte neu starten.
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GMAIL_EN, "Thanks, that fixed it!\n\nMax"),
        (GMAIL_WRAPPED, "Works now."),
        (OUTLOOK_EN, "Still broken."),
        (OUTLOOK_DE, "Hallo,\n\nleider immer noch kaputt.\n\nGruß Max"),
        (OUTLOOK_DE_ORIGINAL, "Danke!"),
        (OUTLOOK_EN_ORIGINAL, "Thanks!"),
        (THUNDERBIRD_DE, "Hallo zusammen,\n\nes geht wieder."),
        (GMAIL_DE, "Super, danke."),
        ("Answer one\n> question two\nAnswer two\n> q3\n", "Answer one\nAnswer two"),
        (
            "No quote at all.\nOn the form I wrote: hello",
            "No quote at all.\nOn the form I wrote: hello",
        ),
        ("Meine Antwort steht oben.\r\n\r\n> zitiert\r\n", "Meine Antwort steht oben."),
    ],
)
def test_strip_quoted_reply(text: str, expected: str) -> None:
    assert strip_quoted_reply(text) == expected


def test_strip_quoted_reply_never_returns_empty() -> None:
    only_quote = "> everything\n> is quoted"
    assert strip_quoted_reply(only_quote) == only_quote
    header_first = "On Mon, Jan 1, 2024 at 10:00 AM Bob <b@example.com> wrote:\n> x"
    assert strip_quoted_reply(header_first) == header_first
    assert strip_quoted_reply("") == ""


def test_parse_inbound_strips_quotes_in_html_mail() -> None:
    html = (
        '<div dir="ltr">Neue Antwort<br></div><br><div class="gmail_quote">'
        '<div class="gmail_attr">Am Mo., 1. Jan. 2024 um 10:00 Uhr schrieb Support &lt;'
        's@chat.example&gt;:<br></div><blockquote class="gmail_quote">alter Text</blockquote></div>'
    )
    msg = make_mail()
    msg.set_content(html, subtype="html")
    assert parse_inbound(msg.as_bytes()).text == "Neue Antwort"


def test_parse_inbound_undoes_format_flowed() -> None:
    mail = parse_inbound(
        raw(
            """
            From: a@example.com
            Subject: flowed
            Content-Type: text/plain; charset=utf-8; format=flowed

            This is a long line that the client wrapped\x20
            at seventy-two characters.
            Second paragraph.

            On 01.01.24 10:00, Support wrote:
            > quoted\x20
            > text
            """
        )
    )
    assert mail.text == (
        "This is a long line that the client wrapped at seventy-two characters.\nSecond paragraph."
    )


# -------------------------------------------------------------------- html_to_text


def test_html_to_text_line_breaks_and_entities() -> None:
    html = (
        "<div>Line&nbsp;1</div><div><br></div><div>Line 2<br>Line 3</div>"
        "<p>Para &amp; &quot;quotes&quot; &#252;</p>"
        "<ul><li>one</li><li>two</li></ul>"
        "<blockquote>quoted<br>text</blockquote>after"
        '<p><a href="https://example.com/x">link</a></p>'
        "<table><tr><td>a</td><td>b</td></tr></table>"
        "<pre>  keep\n  indent</pre>"
        "<style>.x{}</style><script>var x = '</div>';</script>"
        "<p>unclosed"
    )
    assert html_to_text(html) == (
        'Line 1\n\nLine 2\nLine 3\nPara & "quotes" ü\n- one\n- two\n'
        "> quoted\n> text\nafter\nlink (https://example.com/x)\na b\n  keep\n  indent\nunclosed"
    )


def test_html_to_text_malformed_input() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<script>never closed <b>bold</b>") == ""
    assert html_to_text("a < b > c &unknown; <") == "a < b > c &unknown; <"


@pytest.mark.parametrize(
    "unit",
    ["<a ", '<a b=">x', "<!--", "<!", "</", "<?", "<", "&#x", "<a ====>", "<p<a<b>>", "<![x>"],
)
def test_html_to_text_stays_fast_on_malformed_markup(unit: str) -> None:
    # Plain html.parser needs minutes for 60 kB of "<a <a <a ..."; the input is defused first.
    html = unit * (60_000 // len(unit))
    started = time.monotonic()
    for wrapped in (html, "<script>" + html, "<a b='" + html, "<pre>" + html):
        html_to_text(wrapped)
    assert time.monotonic() - started < 10


def test_html_to_text_keeps_odd_but_harmless_markup() -> None:
    assert html_to_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
    assert html_to_text("<p>a <!-- hidden <b> --> b</p>") == "a b"
    assert html_to_text("<!DOCTYPE html><p>x</p><?php echo 1 ?>") == "x"
    assert html_to_text('<p title="unbalanced>text</p>') == "text"
    assert html_to_text("<!--[if mso]><p>mso only</p><![endif]--><p>all</p>") == "all"
    assert html_to_text("visible <!-- never closed <p>hidden</p>") == "visible"


# ------------------------------------------------------------------- rejections


def test_garbage_is_rejected() -> None:
    with pytest.raises(MailError):
        parse_inbound(b"\x00\xff\xfe\x01 not a mail \x02\x03" * 10)
    with pytest.raises(MailError):
        parse_inbound(b"")
    with pytest.raises(MailError):
        parse_inbound(b"just some text without any header\n\nmore")


def test_oversized_is_rejected() -> None:
    data = make_mail("x" * 5000).as_bytes()
    with pytest.raises(MailError, match="too big"):
        parse_inbound(data, max_bytes=1000)
    assert parse_inbound(data, max_bytes=len(data)).text == "x" * 5000


@pytest.mark.parametrize(
    "from_header",
    [None, "", "undisclosed-recipients:;", "not an address", "<>", "@example.com", "user@"],
)
def test_missing_or_unusable_from_is_rejected(from_header: str | None) -> None:
    head = "" if from_header is None else f"From: {from_header}\n"
    with pytest.raises(MailError, match="From"):
        parse_inbound(raw(f"{head}Subject: hi\nTo: support@chat.example\n\nbody"))


# ------------------------------------------------------------------------ building


def outbound(**overrides: object) -> OutboundMail:
    fields: dict[str, object] = {
        "to": "Max Müller <max@example.com>",
        "subject": "[#100042] Drucker \u2013 Antwort",
        "text": "Hallo Max,\n\nbitte neu starten. <b>kein HTML</b>\n",
        "message_id": "<reply1@chat.example>",
    }
    fields.update(overrides)
    return OutboundMail(**fields)  # type: ignore[arg-type]


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


def test_mailer_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        Mailer("127.0.0.1", 25, "support@chat.example", starttls=True, use_tls=True)
    with pytest.raises(ValueError):
        Mailer("127.0.0.1", 25, "support@chat.example", username="u")
    with pytest.raises(ValueError):
        Mailer("127.0.0.1", 25, "not an address")


# ------------------------------------------------------------------- real SMTP

Received = list[tuple[bytes, str, list[str]]]


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[SmtpListener, Received]]:
    received: Received = []

    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        received.append((data, mail_from, rcpt_tos))

    listener = SmtpListener(handler, max_bytes=200_000)
    await listener.start()
    try:
        yield listener, received
    finally:
        await listener.stop()


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


async def test_handler_mail_error_is_550() -> None:
    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        raise MailError("no ticket for this sender\r\n(nope)")

    listener = SmtpListener(handler)
    await listener.start()
    try:
        mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
        with pytest.raises(MailError, match="550") as info:
            await mailer.send(outbound())
        assert "no ticket for this sender (nope)" in str(info.value)
        assert f"127.0.0.1:{listener.port}" in str(info.value)
    finally:
        await listener.stop()


async def test_handler_crash_is_451() -> None:
    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        raise RuntimeError("database down")

    listener = SmtpListener(handler)
    await listener.start()
    try:
        mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
        with pytest.raises(MailError, match="451") as info:
            await mailer.send(outbound())
        assert "database down" not in str(info.value)
    finally:
        await listener.stop()


async def test_send_to_closed_port_is_mail_error() -> None:
    port = free_port()
    mailer = Mailer("127.0.0.1", port, "support@chat.example", timeout=5)
    with pytest.raises(MailError, match=f"127.0.0.1:{port}"):
        await mailer.send(outbound())


async def test_raw_aiosmtplib_client(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    data = raw(
        """
        From: Kunde <kunde@example.org>
        To: support@chat.example
        Subject: [#100077] Frage
        Message-ID: <q1@example.org>

        Eine Frage.
        """
    )
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, start_tls=False)
    async with client:
        errors, _ = await client.sendmail(
            "kunde@example.org", ["support@chat.example", "tickets@chat.example"], data
        )
    assert errors == {}
    assert len(received) == 1
    got, mail_from, rcpt_tos = received[0]
    assert mail_from == "kunde@example.org"
    assert rcpt_tos == ["support@chat.example", "tickets@chat.example"]
    assert got == data
    mail = parse_inbound(got)
    assert (mail.ticket_number, mail.text) == (100077, "Eine Frage.")


async def test_stdlib_smtplib_bounce(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    data = raw(
        """
        From: MAILER-DAEMON@mx.example.org
        To: support@chat.example
        Subject: Undelivered Mail
        Auto-Submitted: auto-replied

        Your mail could not be delivered.
        """
    )

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.sendmail("<>", ["support@chat.example"], data)

    await asyncio.to_thread(send)
    assert len(received) == 1
    got, mail_from, rcpt_tos = received[0]
    assert mail_from == ""  # null reverse-path: never answer
    assert rcpt_tos == ["support@chat.example"]
    assert parse_inbound(got).auto_submitted is True


async def test_oversized_mail_is_refused_with_552(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    big = make_mail("y" * 70 + ("\n" + "y" * 70) * 4000).as_bytes(policy=policy.SMTP)
    assert len(big) > 250_000

    def send_without_size_option() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.ehlo()
            client.mail("kunde@example.org")  # no SIZE= announcement: refused after DATA
            client.rcpt("support@chat.example")
            return client.data(big)

    code, message = await asyncio.to_thread(send_without_size_option)
    assert code == 552, message

    # aiosmtplib announces SIZE= and is refused before sending the data.
    mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
    with pytest.raises(MailError, match="552"):
        await mailer.send(outbound(text="z" * 300_000))
    assert received == []


async def test_stop_waits_for_mail_being_handed_over() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    stored: list[bytes] = []

    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        entered.set()
        await release.wait()
        stored.append(data)

    listener = SmtpListener(handler)
    await listener.start()
    mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
    sending = asyncio.create_task(mailer.send(outbound()))
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(listener.stop(grace=30))
    await asyncio.sleep(0.2)
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(sending, 5)  # the sender got its 250
    assert len(stored) == 1


async def test_listener_lifecycle() -> None:
    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        return None

    listener = SmtpListener(handler)
    with pytest.raises(RuntimeError):
        _ = listener.port
    await listener.start()
    with pytest.raises(RuntimeError):
        await listener.start()
    port = listener.port
    assert port > 0
    # An idle client connection must not keep stop() waiting.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220 chatserver")
    await listener.stop()
    assert await reader.read() == b""
    writer.close()
    await listener.stop()  # idempotent
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
