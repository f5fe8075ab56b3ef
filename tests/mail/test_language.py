"""The language of an inbound mail: Content-Language, else Accept-Language."""

from __future__ import annotations

import pytest

from chatserver.mail.parse import parse_inbound
from tests.mail.samples import make_mail, raw


@pytest.mark.parametrize(
    ("headers", "language"),
    [
        ({"Content-Language": "fr-CH"}, "fr"),
        ({"Content-Language": "es, it"}, "it"),
        ({"Accept-Language": "it-CH;q=0.9, de;q=0.95"}, "de"),
        ({"Content-Language": "es", "Accept-Language": "fr"}, "fr"),
        ({"Content-Language": "en-GB", "Accept-Language": "fr"}, "en"),
        ({"Content-Language": "x\x00y;;q=", "Accept-Language": ";;,,"}, None),
        ({}, None),
    ],
)
def test_language_of_a_mail(headers: dict[str, str], language: str | None) -> None:
    msg = make_mail("Bonjour")
    for name, value in headers.items():  # after set_content, which drops Content-* headers
        msg[name] = value
    assert parse_inbound(msg.as_bytes()).language == language


def test_language_of_the_text_part() -> None:
    mail = raw(
        """
        From: jean@client.ch
        To: support@chat.example
        Subject: Question
        MIME-Version: 1.0
        Content-Type: multipart/alternative; boundary="b"

        --b
        Content-Type: text/plain; charset=utf-8
        Content-Language: fr

        Bonjour
        --b--
        """
    )
    assert parse_inbound(mail).language == "fr"
