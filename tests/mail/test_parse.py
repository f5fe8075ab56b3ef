"""Parsing inbound mail (chatserver.mail.parse): headers, bodies, attachments, bounces."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from chatserver.mail.model import InboundMail, MailAttachment, MailError
from chatserver.mail.parse import parse_inbound, ticket_number_in
from tests.mail.samples import PDF, make_mail, raw


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
