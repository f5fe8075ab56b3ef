"""End-to-end: consulting a 3rd-level colleague internally, in a real browser.

An operator asks a colleague on the chat's operators-only thread; the colleague's
console opens the chat read-only (history, live messages, the notes) and answers
there; the visitor's widget never shows a note. The same for tickets (an internal
note that consults someone), and the widget's "Email me the transcript" (a real
SMTP sink receives it).

Same set-up as ``test_browser.py``: every page has its own browser context and
talks to a real ``chatserver serve`` process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, expect

from chatserver.mail.listener import SmtpListener
from chatserver.mail.model import InboundMail
from chatserver.mail.parse import parse_inbound

from .conftest import Pages
from .test_browser import (
    PASSWORD,
    console_messages,
    open_console,
    open_widget,
    operator_send,
    set_status,
    visitor_send,
    widget,
    widget_messages,
    widget_session_id,
)
from .test_tickets_e2e import escalate, ticket_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

LABEL = "Consult \u2014 internal, not visible to the visitor"


# --------------------------------------------------------------------- helpers
class MailSink:
    """A real SMTP server (aiosmtpd, on the test's loop) collecting what the chatserver sends."""

    def __init__(self) -> None:
        self.mails: list[tuple[InboundMail, list[str]]] = []
        self.listener = SmtpListener(self._take)
        self._arrived = asyncio.Event()

    async def _take(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        self.mails.append((parse_inbound(raw), rcpt_tos))
        self._arrived.set()

    async def wait(self, count: int, timeout: float = 15.0) -> list[tuple[InboundMail, list[str]]]:
        async with asyncio.timeout(timeout):
            while len(self.mails) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.mails


@pytest_asyncio.fixture(loop_scope="session")
async def sink() -> AsyncIterator[MailSink]:
    s = MailSink()
    await s.listener.start()
    try:
        yield s
    finally:
        await s.listener.stop()


def consult_notes(console: Page) -> Locator:
    """Consult notes in the console's own (selected) chat."""
    return console.locator('#chat-view [data-testid="note"][data-kind="consult"]')


def consulted_view(console: Page) -> Locator:
    return console.get_by_test_id("consult-view")


async def assigned_chat(
    pages: Pages, server: Any, console: Page, visitor_name: str, text: str, email: str | None = None
) -> tuple[Page, str]:
    """A visitor who wrote ``text``, assigned to the (only online) operator ``console``."""
    visitor = await open_widget(pages, server)
    if email is not None:
        await widget(visitor).get_by_test_id("email-input").fill(email)
    await visitor_send(visitor, text, name=visitor_name)
    session_id = await widget_session_id(visitor, server)
    await expect(console.get_by_test_id("chat-tab")).to_have_attribute(
        "data-session-id", session_id
    )
    await expect(console_messages(console, "visitor")).to_have_text([text])
    return visitor, session_id


async def ask_colleague(console: Page, colleague_id: str | None, text: str) -> None:
    """Consult from the selected chat (``colleague_id`` None: reply in the thread)."""
    form = console.get_by_test_id("consult-form")
    if not await form.is_visible():
        await console.get_by_test_id("consult-button").click()
    await expect(form).to_be_visible()
    select = console.get_by_test_id("consult-colleague")
    if colleague_id is not None:
        await expect(select.locator(f'option[value="{colleague_id}"]')).to_have_count(1)
        await select.select_option(colleague_id)
    else:
        await expect(select).to_have_value("")
    await console.get_by_test_id("consult-text").fill(text)
    await console.get_by_test_id("consult-send").click()
    await expect(console.get_by_test_id("consult-text")).to_have_value("")


async def assert_never_shown_to_visitor(pages: Pages, visitor: Page, *secrets: str) -> None:
    text = await widget(visitor).inner_text()
    received = json.dumps(pages.frames(visitor).frames)
    for secret in secrets:
        assert secret not in text
        assert secret not in received
    assert "Consult" not in text


# ----------------------------------------------------------------------- tests
async def test_consult_a_third_level_colleague_in_a_chat(make_server: Any, pages: Pages) -> None:
    server = make_server()
    server.start()
    server.add_operator("anna", password=PASSWORD, name="Anna First", capacity=3, levels=(1,))
    bob_id = server.add_operator("bob", password=PASSWORD, name="Bob Second", levels=(1, 2))
    cleo_id = server.add_operator("cleo", password=PASSWORD, name="Cleo Third", levels=(3,))

    anna = await open_console(pages, server, "anna")
    await set_status(pages, anna, "online")
    question_v = "The invoice export crashes with error E42."
    visitor, session_id = await assigned_chat(pages, server, anna, "Vera Visitor", question_v)
    await operator_send(anna, "Let me check that for you.")
    await expect(console_messages(anna, "operator")).to_have_text(["Let me check that for you."])

    # Cleo (3rd level only: never routed this 1st-level chat) is online elsewhere.
    cleo = await open_console(pages, server, "cleo")
    await set_status(pages, cleo, "online")
    await expect(cleo.get_by_test_id("chat-tab")).to_have_count(0)
    await expect(cleo.get_by_test_id("consult-tab")).to_have_count(0)

    # Anna picks a colleague: 3rd level first and marked, with their status; not herself.
    await anna.get_by_test_id("consult-button").click()
    await expect(anna.get_by_test_id("consult-form")).to_be_visible()
    select = anna.get_by_test_id("consult-colleague")
    cleo_option = select.locator(f'option[value="{cleo_id}"]')
    await expect(cleo_option).to_contain_text("Cleo Third")
    await expect(cleo_option).to_contain_text("3rd level")
    await expect(cleo_option).to_contain_text("online")
    await expect(select.locator(f'option[value="{bob_id}"]')).to_contain_text("offline")
    values = await select.evaluate("s => [...s.options].map(o => o.value).filter(Boolean)")
    assert values == [cleo_id, bob_id]

    question = "Cleo, is E42 the known exporter bug? Any workaround?"
    await ask_colleague(anna, cleo_id, question)
    note = consult_notes(anna)
    await expect(note).to_have_text([question])
    await expect(note).to_have_attribute(
        "data-author", f"{LABEL} \u00b7 Anna First asks Cleo Third"
    )
    await expect(anna.get_by_test_id("consult-status")).to_contain_text("Asked Cleo Third")

    # Cleo's console opens the chat read-only: history, the question, no message composer.
    tab = cleo.get_by_test_id("consult-tab")
    await expect(tab).to_have_count(1)
    await expect(tab).to_have_attribute("data-session-id", session_id)
    view = consulted_view(cleo)
    await expect(view).to_be_visible()
    await expect(view.get_by_test_id("consult-title")).to_have_text("Vera Visitor")
    await expect(view.get_by_test_id("consult-meta")).to_have_text(
        "With Anna First \u00b7 asked by Anna First"
    )

    def seen(sender: str) -> Locator:
        return view.locator(f'[data-testid="consult-message"][data-from="{sender}"]')

    await expect(seen("visitor")).to_have_text([question_v])
    await expect(seen("operator")).to_have_text(["Let me check that for you."])
    notes = view.get_by_test_id("consult-note")
    await expect(notes).to_have_text([question])
    await expect(notes).to_have_attribute(
        "data-author", f"{LABEL} \u00b7 Anna First asks Cleo Third"
    )
    await expect(cleo.get_by_test_id("consult-side")).to_contain_text("Vera Visitor")
    await expect(cleo.get_by_test_id("message-input")).to_be_hidden()
    await expect(cleo.get_by_test_id("send-button")).to_be_hidden()
    await expect(view.get_by_test_id("message-input")).to_have_count(0)

    # The chat goes on live in Cleo's read-only view.
    await visitor_send(visitor, "It started after yesterday's update.")
    await expect(seen("visitor")).to_have_text([question_v, "It started after yesterday's update."])

    # Cleo answers on the thread; Anna sees it in her chat, labelled.
    answer = "Yes, known bug: export as CSV until Friday's fix."
    await view.get_by_test_id("consult-note-input").fill(answer)
    await view.get_by_test_id("consult-note-send").click()
    await expect(view.get_by_test_id("consult-note-input")).to_have_value("")
    await expect(notes).to_have_text([question, answer])
    await expect(consult_notes(anna)).to_have_text([question, answer])
    await expect(consult_notes(anna).last).to_have_attribute(
        "data-author", f"{LABEL} \u00b7 from Cleo Third"
    )

    # Anna follows up on the thread (no new colleague): Cleo gets it live.
    thanks = "Thanks Cleo, telling her about CSV now."
    await ask_colleague(anna, None, thanks)
    await expect(notes).to_have_text([question, answer, thanks])
    await expect(consult_notes(anna)).to_have_text([question, answer, thanks])

    # The visitor sees Anna's answer, never the consultation.
    await operator_send(anna, "Please export as CSV for now; a fix comes on Friday.")
    await expect(widget_messages(visitor, "operator").locator(".txt")).to_have_text(
        ["Let me check that for you.", "Please export as CSV for now; a fix comes on Friday."]
    )
    await expect(seen("operator")).to_have_count(2)
    await assert_never_shown_to_visitor(pages, visitor, question, answer, thanks)

    # The widget's transcript action asks for an address (none given) and shows the
    # server's refusal: this server has no SMTP.
    w = widget(visitor)
    await w.get_by_test_id("transcript-link").click()
    await expect(w.get_by_test_id("transcript-form")).to_be_visible()
    await w.get_by_test_id("transcript-email").fill("vera@example.com")
    async with visitor.expect_response(lambda r: r.url.endswith("/api/visitor/transcript")) as info:
        await w.get_by_test_id("transcript-send").click()
    response = await info.value
    assert response.status == 400
    message = (await response.json())["message"]
    await expect(w.get_by_test_id("transcript-status")).to_have_text(message)

    # Back to nothing consulted: closing the tab leaves the console as it was.
    await view.get_by_test_id("consult-close").click()
    await expect(view).to_be_hidden()
    await expect(cleo.get_by_test_id("consult-tab")).to_be_hidden()
    await expect(cleo.locator("#chat-empty")).to_be_visible()
    for console in (anna, cleo):
        await expect(console.locator(".toast-error")).to_have_count(0)


async def test_ticket_note_consults_a_colleague(make_server: Any, pages: Pages) -> None:
    server = make_server()
    server.start()
    server.add_operator("anna", password=PASSWORD, name="Anna First", capacity=3, levels=(1,))
    cleo_id = server.add_operator("cleo", password=PASSWORD, name="Cleo Third", levels=(3,))
    anna = await open_console(pages, server, "anna")
    await set_status(pages, anna, "online")
    text = "My licence key is rejected after the upgrade."
    visitor, session_id = await assigned_chat(pages, server, anna, "Ted Ticket", text)
    ticket = await escalate(anna, session_id)

    # Public replies consult nobody: the select shows only for internal notes.
    consult = anna.get_by_test_id("ticket-consult")
    await expect(consult).to_be_hidden()
    await anna.get_by_test_id("reply-mode-internal").check()
    await expect(consult).to_be_visible()
    option = consult.locator(f'option[value="{cleo_id}"]')
    await expect(option).to_contain_text("Cleo Third")
    await expect(option).to_contain_text("3rd level")
    await consult.select_option(cleo_id)
    note = "Cleo, can you re-issue the key on the licence server?"
    await anna.get_by_test_id("ticket-reply-input").fill(note)
    async with anna.expect_response(lambda r: r.url.endswith("/replies")) as info:
        await anna.get_by_test_id("ticket-reply-send").click()
    response = await info.value
    assert response.status == 201, await response.text()
    assert json.loads(response.request.post_data or "{}")["consult"] == cleo_id
    event = ticket_events(anna, "note").filter(has_text=note)
    await expect(event).to_have_count(1)
    await expect(event.get_by_test_id("ticket-event-consult")).to_have_text("Consulted: Cleo Third")
    await expect(event).to_have_attribute("data-consult", cleo_id)
    await expect(consult).to_have_value("")

    # A plain internal note consults nobody.
    await anna.get_by_test_id("ticket-reply-input").fill("Waiting for Cleo.")
    await anna.get_by_test_id("ticket-reply-send").click()
    plain = ticket_events(anna, "note").filter(has_text="Waiting for Cleo.")
    await expect(plain).to_have_count(1)
    await expect(plain.get_by_test_id("ticket-event-consult")).to_have_count(0)

    # Stored as such: the event body names the colleague.
    token = await anna.evaluate("() => sessionStorage.getItem('chatserver:op-token')")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        r = await http.get(
            f"/api/tickets/{ticket['number']}", headers={"Authorization": f"Bearer {token}"}
        )
    events = [e for e in r.json()["events"] if e["kind"] == "note"]
    assert [e["body"].get("consult") for e in events] == [
        {"id": cleo_id, "name": "Cleo Third"},
        None,
    ]
    await expect(anna.locator(".toast-error")).to_have_count(0)
    assert note not in await widget(visitor).inner_text()


async def test_widget_mails_the_transcript(make_server: Any, pages: Pages, sink: MailSink) -> None:
    server = make_server(
        env={
            "CHATSERVER_SMTP_HOST": "127.0.0.1",
            "CHATSERVER_SMTP_PORT": str(sink.listener.port),
            "CHATSERVER_MAIL_FROM": "support@desk.example",
        }
    )
    server.start()
    server.add_operator("anna", password=PASSWORD, name="Anna First", capacity=3, levels=(1,))
    cleo_id = server.add_operator("cleo", password=PASSWORD, name="Cleo Third", levels=(3,))
    anna = await open_console(pages, server, "anna")
    await set_status(pages, anna, "online")
    text = "Can I get a copy of this conversation?"
    visitor, _ = await assigned_chat(pages, server, anna, "Mia Mail", text, email="mia@example.com")
    await operator_send(anna, "Of course, use the link below the chat.")
    # An internal consult (Cleo is offline: it is only stored) never goes into the mail.
    secret = "Cleo, she asked for a transcript; anything to watch out for?"
    await ask_colleague(anna, cleo_id, secret)
    await expect(consult_notes(anna)).to_have_text([secret])

    w = widget(visitor)
    await expect(widget_messages(visitor, "operator").locator(".txt")).to_have_text(
        ["Of course, use the link below the chat."]
    )
    # The address is known (given before the chat): no question, straight away.
    await w.get_by_test_id("transcript-link").click()
    await expect(w.get_by_test_id("transcript-status")).to_have_text(
        "Transcript sent to mia@example.com"
    )
    await expect(w.get_by_test_id("transcript-form")).to_be_hidden()

    mails = await sink.wait(1)
    mail, rcpt = mails[0]
    assert rcpt == ["mia@example.com"]
    assert mail.subject == "Your chat transcript"
    assert "Mia Mail: " + text in mail.text
    assert "Anna First: Of course, use the link below the chat." in mail.text
    assert secret not in mail.text
    await assert_never_shown_to_visitor(pages, visitor, secret)
