"""Cutting quoted history off replies (chatserver.mail.quoted_reply)."""

from __future__ import annotations

import pytest

from chatserver.mail.quoted_reply import strip_quoted_reply

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
