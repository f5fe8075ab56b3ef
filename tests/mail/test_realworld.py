"""Real-world shaped mail through the parser: forwards kept whole, replies cut, 8-bit
headers read as their clients meant them, broken multiparts still readable."""

from __future__ import annotations

import pytest

from chatserver.mail.headers8bit import utf8_headers
from chatserver.mail.parse import parse_inbound
from tests.mail.realworld import (
    BROKEN_BOUNDARY,
    ERROR_LINE,
    FORWARDS,
    LATIN1_8BIT,
    outlook_reply_de,
    thunderbird_reply_fr,
)


@pytest.mark.parametrize("name", sorted(FORWARDS))
def test_forwarded_content_is_in_the_full_text(name: str) -> None:
    mail = parse_inbound(FORWARDS[name])
    assert ERROR_LINE in mail.full_text
    # The marker and the forwarded headers stay too: the agent sees who wrote it.
    first = mail.full_text.splitlines()[0]
    assert first and first in mail.text  # the customer's own words lead both


def test_forward_markers_in_every_language_are_kept() -> None:
    texts = {name: parse_inbound(raw).full_text for name, raw in FORWARDS.items()}
    assert "-----Ursprüngliche Nachricht-----" in texts["outlook-de"]
    assert "-----Message d'origine-----" in texts["outlook-fr"]
    assert "-----Messaggio originale-----" in texts["outlook-it"]
    assert "---------- Forwarded message ---------" in texts["gmail-en"]
    assert "Begin forwarded message:" in texts["apple-mail"]
    assert "-------- Message transféré --------" in texts["thunderbird-fr"]
    assert "Sent: Thursday, December 3, 2026 6:00 PM" in texts["outlook-block-en"]


def test_replies_lose_their_quote_in_text_only() -> None:
    de = parse_inbound(outlook_reply_de(100001, "<ticket-100001@desk.example>"))
    assert de.text == "Danke, der Neustart hat geholfen.\n\nAnna"
    assert "Bitte starten Sie den Druckdienst neu." in de.full_text
    fr = parse_inbound(thunderbird_reply_fr(100001, "<ticket-100001@desk.example>"))
    assert fr.text == "Merci, cela fonctionne de nouveau."
    assert "> Veuillez redémarrer" in fr.full_text


def test_raw_latin1_headers_are_read_as_windows_1252() -> None:
    mail = parse_inbound(LATIN1_8BIT)
    assert mail.subject == "Verão: Größe der Bestellung"
    assert mail.sender_name == "João Silva"
    assert [a.filename for a in mail.attachments] == ["HasenundFrösche.txt"]
    assert mail.attachments[0].data == "Hasen und Frösche".encode("latin-1")  # untouched
    assert mail.text == "Die Größe stimmt nicht."  # the body by its declared charset


def test_utf8_headers_keeps_utf8_and_bodies() -> None:
    utf8 = "Subject: Verão\r\n\r\nVerão\r\n".encode()
    assert utf8_headers(utf8) == utf8
    latin_body = b"Subject: x\r\nContent-Type: text/plain; charset=latin-1\r\n\r\nGr\xf6\xdfe\r\n"
    assert utf8_headers(latin_body) == latin_body  # bodies are never rewritten
    mixed = b"Subject: Ver\xe3o \x80\r\n\r\nbody \xe3\r\n"
    assert utf8_headers(mixed) == "Subject: Verão €\r\n\r\nbody ".encode() + b"\xe3\r\n"
    assert utf8_headers(b"Subject: \x81\n\nx\n") == "Subject: \x81\n\nx\n".encode()


def test_broken_multipart_boundary_still_shows_its_content() -> None:
    mail = parse_inbound(BROKEN_BOUNDARY)
    assert "Die Rechnungsnummer 2026-4711 ist doppelt verbucht." in mail.full_text
    assert mail.attachments == ()
