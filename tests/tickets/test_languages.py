"""The customer's language on tickets: carried from the chat, the offline form and
inbound mail, used for the transcript's notices and for every mail (received here over
a real SMTP server), and the canned responses of the chat's language."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from chatserver.i18n import mails
from tests.conftest import ServerProcess
from tests.tickets import test_tickets
from tests.tickets.test_tickets import MailSink, api, count_events, login

# The real SMTP sink and the server mailing through it (tests/tickets/test_tickets.py).
sink = test_tickets.sink
desk = test_tickets.desk

# Every English sentence of the desk's mails: none may appear in another language's.
ENGLISH_SENTENCES = [
    "We have received your request",
    "thank you for your request",
    "We opened ticket",
    "To add something, simply reply to this e-mail",
    "Kind regards",
    "Your support team",
    "Hello",
    "we need some information from you",
    "Please reply to this e-mail",
    "reply to this e-mail to answer",
    "Feedback needed",
]


def no_english(text: str) -> None:
    for sentence in ENGLISH_SENTENCES:
        assert sentence.lower() not in text.lower(), (sentence, text)


async def chat_in(desk: ServerProcess, clients: list[Any], lang: str | None) -> tuple[Any, Any]:
    desk.add_operator("anna", name="Anna")
    op = await desk.operator("anna")
    clients.append(op)
    hello: dict[str, Any] = {"name": "Vera Muster", "email": "vera@example.ch"}
    if lang is not None:
        hello["lang"] = lang
    visitor = await desk.visitor(**hello)
    clients.append(visitor)
    await visitor.send("Mein Drucker druckt nicht")
    await op.next_chat()
    await visitor.wait_for("message", lambda f: f.get("event") == "assigned")
    return visitor, op


async def escalate(desk: ServerProcess, visitor: Any, subject: str) -> dict[str, Any]:
    token = await login(desk, "anna")
    r = await api(
        desk,
        "POST",
        f"/api/sessions/{visitor.session_id}/escalate",
        token,
        json={"subject": subject},
    )
    assert r.status_code == 201, r.text
    ticket: dict[str, Any] = r.json()["ticket"]
    return ticket


async def test_german_chat_becomes_a_german_ticket_with_a_german_mail(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor, _op = await chat_in(desk, clients, "de")
    ticket = await escalate(desk, visitor, "Drucker druckt nicht")
    assert ticket["lang"] == "de"
    ref = ticket["ref"]

    # The chat is told in a notice; the transcript reads in the customer's language.
    told = await visitor.wait_for("message", lambda f: f.get("event") == "escalated")
    assert told["notice"] == {"code": "ticket_created", "params": {"ticket": ref}}
    token = await login(desk, "anna")
    events = (await api(desk, "GET", f"/api/tickets/{ticket['number']}", token)).json()["events"]
    joined = next(
        e for e in events if e["kind"] == "transcript" and e["body"]["event"] == "assigned"
    )
    assert joined["body"]["text"] == "Anna ist dem Chat beigetreten."
    assert joined["body"]["notice"] == {"code": "operator_joined", "params": {"name": "Anna"}}

    (mail,) = await sink.wait(1)
    assert mail.subject == f"[{ref}] Wir haben Ihre Anfrage erhalten: Drucker druckt nicht"
    assert ref in mail.text and "Guten Tag Vera Muster" in mail.text
    assert "Freundliche Grüsse" in mail.text and "ß" not in mail.text
    assert re.search(r"am \d{1,2}\. \w+ 20\d\d um \d\d:\d\d Uhr", mail.text), mail.text
    no_english(mail.subject + "\n" + mail.text)

    # Feedback needed and a public reply follow in German too.
    number = ticket["number"]
    r = await api(
        desk,
        "POST",
        f"/api/tickets/{number}/changes",
        token,
        json={"state": "feedback_needed", "reason": "Welches Modell haben Sie?"},
    )
    assert r.status_code == 200, r.text
    r = await api(
        desk, "POST", f"/api/tickets/{number}/replies", token, json={"text": "Bitte neu starten."}
    )
    assert r.status_code in (200, 201), r.text
    later = (await sink.wait(3))[1:]
    subjects = sorted(m.subject for m in later)
    assert subjects == sorted(
        [f"Feedback benötigt: [{ref}] Drucker druckt nicht", f"AW: [{ref}] Drucker druckt nicht"]
    )
    for m in later:
        no_english(m.subject + "\n" + m.text)


async def test_the_language_chosen_last_in_the_chat_is_the_tickets(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor, op = await chat_in(desk, clients, "de")
    await visitor.send_frame({"type": "info", "lang": "fr"})
    await op.wait_for("visitor", lambda f: f.get("lang") == "fr")
    ticket = await escalate(desk, visitor, "Imprimante en panne")
    assert ticket["lang"] == "fr"
    (mail,) = await sink.wait(1)
    assert (
        mail.subject
        == f"[{ticket['ref']}] Nous avons bien reçu votre demande : Imprimante en panne"
    )
    assert "Bonjour Vera Muster," in mail.text and "Meilleures salutations" in mail.text
    no_english(mail.text)


async def test_without_a_language_the_desk_default_writes(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor, _ = await chat_in(desk, clients, None)
    ticket = await escalate(desk, visitor, "Drucker")
    assert ticket["lang"] is None  # not known; mail goes out in the desk's default (de)
    (mail,) = await sink.wait(1)
    assert "Wir haben Ihre Anfrage erhalten" in mail.subject


async def test_offline_form_takes_a_language_and_refuses_unknown_ones(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor = await desk.visitor(lang="de")
    clients.append(visitor)
    form = {"name": "Lucia", "email": "lucia@example.ch", "subject": "Fattura", "text": "Errata"}
    for bad in ("xx", "IT", 5):
        r = await api(
            desk, "POST", "/api/visitor/offline", visitor.token, json={**form, "lang": bad}
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "bad_frame"
    assert count_events(desk) == 0  # nothing was created
    r = await api(desk, "POST", "/api/visitor/offline", visitor.token, json={**form, "lang": "it"})
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    assert ticket["lang"] == "it"
    (mail,) = await sink.wait(1)
    assert mail.subject == f"[{ticket['ref']}] Abbiamo ricevuto la Sua richiesta: Fattura"
    assert "Buongiorno Lucia," in mail.text and "Cordiali saluti" in mail.text
    no_english(mail.text)


async def test_inbound_mail_language_opens_a_ticket_in_it(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    desk.add_operator("anna", name="Anna")
    token = await login(desk, "anna")
    for sender, headers, lang in (
        ("jean@client.ch", {"Content-Language": "fr-CH"}, "fr"),
        ("anna@client.ch", {"Accept-Language": "it-CH, de;q=0.5"}, "it"),
        ("nobody@client.ch", {}, "de"),  # neither header: the desk's default
    ):
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = "support@desk.example"
        msg["Subject"] = "Question"
        msg.set_content("Texte")  # (set_content drops Content-* headers set before it)
        for name, value in headers.items():
            msg[name] = value
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=desk.smtp_port)  # type: ignore[attr-defined]
        r = await api(desk, "GET", "/api/tickets", token, params={"limit": 50})
        tickets = [t for t in r.json()["tickets"] if t["requester"]["email"] == sender]
        assert [t["lang"] for t in tickets] == [lang], (sender, r.json())
    arrived = await sink.wait(3)
    by_to = {rcpt[0]: m for m, rcpt in sink.mails}
    assert "Nous avons bien reçu votre demande" in by_to["jean@client.ch"].subject
    assert "Abbiamo ricevuto la Sua richiesta" in by_to["anna@client.ch"].subject
    assert "Wir haben Ihre Anfrage erhalten" in by_to["nobody@client.ch"].subject
    assert len(arrived) == 3


async def test_canned_responses_in_the_chats_language(
    desk: ServerProcess, clients: list[Any]
) -> None:
    desk.add_operator("sue", name="Sue", role="supervisor")
    visitor, _op = await chat_in(desk, clients, "fr")
    sue = await login(desk, "sue")
    anna = await login(desk, "anna")
    for lang, title in (("de", "Gruss"), ("fr", "Salutation"), (None, "Signature")):
        r = await api(
            desk, "POST", "/api/canned", sue, json={"title": title, "text": "…", "lang": lang}
        )
        assert r.status_code == 201 and r.json()["lang"] == lang, r.text
    r = await api(desk, "POST", "/api/canned", sue, json={"title": "X", "text": "y", "lang": "xx"})
    assert r.status_code == 400 and r.json()["error"] == "bad_frame"

    async def titles(**params: str) -> tuple[list[str], str | None]:
        r = await api(desk, "GET", "/api/canned", anna, params=params)
        assert r.status_code == 200, r.text
        return [c["title"] for c in r.json()["canned"]], r.json()["lang"]

    # The chat's language by default; another on request; all without a chat.
    assert await titles(session_id=visitor.session_id) == (["Salutation", "Signature"], "fr")
    assert await titles(session_id=visitor.session_id, lang="de") == (["Gruss", "Signature"], "de")
    assert await titles() == (["Gruss", "Salutation", "Signature"], None)
    r = await api(desk, "GET", "/api/canned", anna, params={"lang": "xx"})
    assert r.status_code == 400

    # The context names the chat's language and the plan's names per language.
    r = await api(desk, "GET", f"/api/sessions/{visitor.session_id}/context", anna)
    assert r.status_code == 200, r.text
    context = r.json()
    assert context["lang"] == "fr"
    assert context["plan"]["names"]["de"]
    assert context["department_names"]["technical"]["fr"] == "Support technique"


def test_mail_templates_every_language_keep_the_ticket_number() -> None:
    for lang in ("de", "fr", "it", "en"):
        subject, body = mails.confirmation(
            lang, ref="#100001", subject="S", name=None, opened=0, timezone="Europe/Zurich"
        )
        assert "[#100001]" in subject and "#100001" in body


async def test_mailed_transcript_reads_in_the_visitors_language(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor, op = await chat_in(desk, clients, "fr")
    await op.send_to(visitor.session_id, "Voici la solution.")
    r = await api(desk, "POST", "/api/visitor/transcript", visitor.token, json={})
    assert r.status_code in (200, 201, 202), r.text
    (mail,) = await sink.wait(1)
    assert mail.subject == "La transcription de votre chat"
    assert "Voici la transcription de votre chat :" in mail.text
    assert "] —: Anna a rejoint le chat." in mail.text  # the notice, in French
    assert "] Anna: Voici la solution." in mail.text
    # Times as a French reader writes them (dd/mm/yyyy), in the desk's time zone.
    assert re.search(r"\[\d\d/\d\d/\d{4} \d\d:\d\d\]", mail.text), mail.text
    no_english(mail.text)
