"""Never stuck, in a real browser: each way a waiting visitor can get stuck ends with
the widget offering a ticket or a callback, and the visitor taking one to the end.

- the last operator goes offline: a ticket (German), the transcript in it;
- nobody online serves the chat's support level while a colleague is online: a
  callback (German; a bad number refused inline first), recorded on the chat;
- "talk to someone else" with only one operator online: a ticket with the transcript;
- the plan's wait is over: a ticket, all in French (a bad e-mail refused inline first).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from chatserver.client import OperatorClient
from chatserver.operators.auth import sign_identity
from tests.stored import connect_stored

from .conftest import Pages
from .test_browser import (
    PASSWORD,
    busy_colleague,
    eventually,
    open_console,
    set_status,
    widget,
    widget_messages,
    widget_session_id,
)
from .test_widget_i18n import assert_no_english, tr, visitor_page

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]

CONSOLE_EN = {
    key: text
    for key, text in re.findall(
        r"^\s*'([\w.]+)': '((?:[^'\\]|\\.)*)',?$",
        (ROOT / "operator_console/js/shared/i18n/en.js").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
}
QUESTION = "Grüezi, wann wird meine Bestellung geliefert?"


async def test_stuck_visitor_leaves_the_question_as_a_ticket(server: Any, pages: Pages) -> None:
    server.add_operator("op", password="pw-secret", name="Beat Brunner", capacity=3)
    op: OperatorClient = await server.operator("op")
    try:
        page, _ = await visitor_page(pages, "de-CH")
        await page.goto(server.http_url + "/")
        w = widget(page)
        await w.get_by_test_id("bubble").click()
        await w.get_by_test_id("message-input").fill(QUESTION)
        await w.get_by_test_id("send-button").click()
        await op.next_chat()
        # The last operator goes offline: the visitor is offered a way out, in German.
        await op.set_status("offline")
        stuck = w.get_by_test_id("stuck")
        await expect(stuck).to_be_visible()
        await expect(w.get_by_test_id("stuck-text")).to_have_text(tr("de", "stuck.none_online"))
        await expect(w.get_by_test_id("stuck-ticket")).to_have_text(tr("de", "stuck.ticket"))
        await expect(w.get_by_test_id("stuck-callback")).to_be_hidden()  # Free: no phone
        await assert_no_english(page, "de")
        # No e-mail known: asked for, checked in German, then the ticket.
        await w.get_by_test_id("stuck-ticket").click()
        email = w.get_by_test_id("stuck-email")
        await expect(email).to_be_visible()
        await email.fill("anna@")
        await w.get_by_test_id("stuck-ticket").click()
        await expect(w.get_by_test_id("stuck-email-error")).to_have_text(tr("de", "invalid.email"))
        await email.fill("anna.muster@example.ch")
        async with page.expect_response(
            lambda r: r.url.endswith("/api/visitor/chat-ticket")
        ) as info:
            await w.get_by_test_id("stuck-ticket").click()
        response = await info.value
        assert response.status == 201
        ticket = (await response.json())["ticket"]
        assert ticket["subject"] == QUESTION
        await expect(w.get_by_test_id("stuck-text")).to_have_text(
            tr("de", "stuck.done", ticket=ticket["ref"], email="anna.muster@example.ch")
        )
        await expect(w.get_by_test_id("stuck-ticket")).to_be_hidden()
        await assert_no_english(page, "de")
    finally:
        await op.close()


async def test_console_warns_before_a_transfer_nobody_can_take(server: Any, pages: Pages) -> None:
    server.add_operator("fiona", password="pw-secret", name="Fiona First", capacity=3)
    console = await open_console(pages, server, "fiona")
    await set_status(pages, console, "online")
    visitor = await server.visitor()
    try:
        await visitor.send("Bitte an den 2nd Level")
        tab = console.locator(f'[data-testid="chat-tab"][data-session-id="{visitor.session_id}"]')
        await expect(tab).to_have_count(1)
        await tab.click()
        await console.get_by_test_id("transfer-button").click()
        await console.get_by_test_id("transfer-target").select_option("level:2")
        await console.get_by_test_id("transfer-submit").click()
        # Nobody at level 2 is online: a warning, the chat stays until the agent insists.
        warning = console.get_by_test_id("transfer-warning")
        await expect(warning).to_have_text(CONSOLE_EN["transfer.nobodyOnline"])
        await expect(console.get_by_test_id("transfer-submit")).to_have_text(
            CONSOLE_EN["transfer.anyway"]
        )
        await expect(tab).to_have_count(1)
        await console.get_by_test_id("transfer-submit").click()
        await expect(tab).to_have_count(0)
        offer = await visitor.wait_for("no_operator")
        assert offer["reason"] == "none_online"
    finally:
        await visitor.close()


# ----------------------------------------------------- the other stuck cases
SECRET = "e2e-stuck-secret"
SLA = ROOT / "chatserver" / "service_levels" / "sla_default.toml"


def identity(customer_id: str, plan: str, name: str) -> dict[str, str]:
    """What the host site renders into ``data-identity`` (signed on its server)."""
    return {
        "customer_id": customer_id,
        "plan": plan,
        "name": name,
        "sig": sign_identity(customer_id, plan, SECRET),
    }


def desk(make_server: Any, tmp_path: Path, wait_minutes: float | None = None) -> Any:
    """A server that trusts signed identities; with ``wait_minutes`` the standard plan
    offers a ticket after that wait (CHATSERVER_SLA_CONFIG, as the server reads it)."""
    env = {"CHATSERVER_IDENTITY_SECRET": SECRET}
    if wait_minutes is not None:
        text = SLA.read_text(encoding="utf-8")
        assert "[plans.standard]\n" in text
        text = text.replace(
            "[plans.standard]\n",
            f"[plans.standard]\noffer_ticket_after_minutes = {wait_minutes}\n",
            1,
        )
        (tmp_path / "sla.toml").write_text(text, encoding="utf-8")
        env["CHATSERVER_SLA_CONFIG"] = str(tmp_path / "sla.toml")
    srv = make_server(env=env)
    srv.start()
    return srv


async def identified_visitor(
    pages: Pages, server: Any, locale: str, ident: dict[str, str] | None
) -> Page:
    """The shop page in ``locale`` with the widget open; the widget tag carries the
    signed identity (``data-identity``, set before the widget script runs)."""
    page, _ = await visitor_page(pages, locale)
    if ident is not None:
        await page.add_init_script(
            script="""(() => {
                const identity = IDENTITY_JSON;
                new MutationObserver((records, observer) => {
                    for (const record of records) {
                        for (const node of record.addedNodes) {
                            if (node.tagName === 'SCRIPT' && /\\/widget\\.js$/.test(node.src)) {
                                node.setAttribute('data-identity', identity);
                                observer.disconnect();
                            }
                        }
                    }
                }).observe(document, { childList: true, subtree: true });
            })();""".replace("IDENTITY_JSON", json.dumps(json.dumps(ident)))
        )
    await page.goto(server.http_url + "/")
    await widget(page).get_by_test_id("bubble").click()
    await expect(widget(page).get_by_test_id("panel")).to_be_visible()
    await pages.frames(page).wait_for(lambda f: f.get("type") == "welcome")
    return page


async def send_question(page: Page, text: str) -> None:
    w = widget(page)
    await w.get_by_test_id("message-input").fill(text)
    await w.get_by_test_id("send-button").click()


def stored_session(server: Any, session_id: str) -> tuple[str, str | None, str | None]:
    """(kind, phone, preferred_times) of a chat as the server stored it."""
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        row = conn.execute(
            "SELECT kind, phone, preferred_times FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
    finally:
        conn.close()
    assert row is not None, session_id
    return str(row[0]), row[1], row[2]


async def tickets(server: Any, token: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        r = await http.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["tickets"]
    return found


async def transcript_of(server: Any, token: str, number: int) -> list[str]:
    """The texts of the ticket's transcript events, as an agent sees them."""
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        r = await http.get(f"/api/tickets/{number}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [str(e["body"].get("text")) for e in r.json()["events"] if e["kind"] == "transcript"]


async def take_ticket(page: Page, email: str) -> dict[str, Any]:
    """Click "leave it as a ticket" with the e-mail field filled; the ticket created."""
    w = widget(page)
    await w.get_by_test_id("stuck-email").fill(email)
    async with page.expect_response(lambda r: r.url.endswith("/api/visitor/chat-ticket")) as info:
        await w.get_by_test_id("stuck-ticket").click()
    response = await info.value
    assert response.status == 201, await response.text()
    ticket: dict[str, Any] = (await response.json())["ticket"]
    return ticket


async def test_nobody_serves_the_level_visitor_asks_for_a_callback(
    make_server: Any, pages: Pages, tmp_path: Path, ws_clients: list[Any]
) -> None:
    server = desk(make_server, tmp_path)
    server.add_operator("fiona", password=PASSWORD, name="Fiona First", levels=(1,))
    fiona: OperatorClient = await server.operator("fiona")
    ws_clients.append(fiona)
    page = await identified_visitor(
        pages, server, "de-CH", identity("K-10", "standard", "Stefan Standard")
    )
    w = widget(page)
    await send_question(page, "Mein Router startet dauernd neu.")
    chat = await fiona.next_chat()
    session_id = await widget_session_id(page, server)
    assert chat["session_id"] == session_id
    # Fiona (online) hands the chat to the 2nd level, where nobody is online.
    await fiona.send_frame({"type": "transfer", "session_id": session_id, "level": 2})
    await expect(w.get_by_test_id("stuck")).to_be_visible()
    await expect(w.get_by_test_id("stuck-text")).to_have_text(tr("de", "stuck.none_online"))
    callback = w.get_by_test_id("stuck-callback")
    await expect(callback).to_have_text(tr("de", "callback.send"))  # Standard: phone
    await assert_no_english(page, "de")
    await callback.click()
    await expect(w.get_by_test_id("callback-form")).to_be_visible()
    phone = w.get_by_test_id("callback-phone")
    await expect(phone).to_be_focused()
    # Nothing typed: the field's own message, in German; no request.
    await w.get_by_test_id("callback-submit").click()
    await expect(w.get_by_test_id("callback-phone-error")).to_have_text(
        tr("de", "invalid.required")
    )
    await expect(phone).to_have_attribute("aria-invalid", "true")
    # Not a number: refused inline, in German; nothing recorded.
    await phone.fill("ruf mich an")
    async with page.expect_response(lambda r: r.url.endswith("/api/visitor/callback")) as info:
        await w.get_by_test_id("callback-submit").click()
    assert (await info.value).status == 400
    await expect(w.get_by_test_id("callback-error")).to_have_text(tr("de", "error.check"))
    assert stored_session(server, session_id)[0] == "chat"
    await assert_no_english(page, "de")
    # A number: the callback is recorded, the visitor told when and that they wait.
    await phone.fill("+41 44 668 18 00")
    await w.get_by_test_id("callback-times").fill("vormittags")
    async with page.expect_response(lambda r: r.url.endswith("/api/visitor/callback")) as info:
        await w.get_by_test_id("callback-submit").click()
    assert (await info.value).status == 201
    await expect(w.get_by_test_id("callback-done")).to_have_text(
        tr("de", "callback.done_times", phone="+41 44 668 18 00", times="vormittags")
    )
    await expect(w.get_by_test_id("callback-form")).to_be_hidden()
    await expect(w.get_by_test_id("stuck")).to_be_hidden()
    await expect(w.get_by_test_id("callback-error")).to_be_hidden()
    # The request in the chat, in German too (the server stores it in English).
    await expect(widget_messages(page, "visitor").last).to_contain_text(
        tr("de", "callback.msg", phone="+41 44 668 18 00") + " (vormittags)"
    )
    await assert_no_english(page, "de")

    async def recorded() -> bool:
        return stored_session(server, session_id) == ("callback", "+41 44 668 18 00", "vormittags")

    await eventually(recorded)
    # The operators' queue shows it as a callback for the 2nd level.
    queue = await fiona.wait_for(
        "queue",
        lambda f: any(
            e["session_id"] == session_id and e["kind"] == "callback" for e in f.get("entries", [])
        ),
    )
    entry = next(e for e in queue["entries"] if e["session_id"] == session_id)
    assert entry["level"] == 2


async def test_talk_to_someone_else_with_nobody_else_becomes_a_ticket(
    make_server: Any, pages: Pages, tmp_path: Path, ws_clients: list[Any]
) -> None:
    server = desk(make_server, tmp_path)
    server.add_operator("anna", password=PASSWORD, name="Anna Aebi", capacity=3)
    anna: OperatorClient = await server.operator("anna")
    ws_clients.append(anna)
    page, _ = await visitor_page(pages, "en-GB")
    await page.goto(server.http_url + "/")
    w = widget(page)
    await w.get_by_test_id("bubble").click()
    question = "My invoice shows the wrong address."
    await send_question(page, question)
    chat = await anna.next_chat()
    await anna.send_to(chat["session_id"], "Let me check.")
    other = w.get_by_test_id("another-operator")
    await expect(other).to_be_visible()
    await other.click()
    # Anna is the only one online: the visitor is told, and offered a ticket (Free: no phone).
    await expect(w.get_by_test_id("stuck")).to_be_visible()
    await expect(w.get_by_test_id("stuck-text")).to_have_text(tr("en", "stuck.nobody_else"))
    await expect(w.get_by_test_id("stuck-callback")).to_be_hidden()
    await w.get_by_test_id("stuck-ticket").click()
    await expect(w.get_by_test_id("stuck-email")).to_be_focused()
    ticket = await take_ticket(page, "ines.invoice@example.ch")
    assert ticket["subject"] == question
    await expect(w.get_by_test_id("stuck-text")).to_have_text(
        tr("en", "stuck.done", ticket=ticket["ref"], email="ines.invoice@example.ch")
    )
    await expect(w.get_by_test_id("stuck-ticket")).to_be_hidden()
    await expect(w.get_by_test_id("status")).to_have_text(tr("en", "status.ended"))
    token = await anna.login(server.http_url, "anna", PASSWORD)
    texts = await transcript_of(server, token, ticket["number"])
    assert question in texts and "Let me check." in texts


async def test_the_plans_wait_is_over_ticket_in_french(
    make_server: Any, pages: Pages, tmp_path: Path, ws_clients: list[Any]
) -> None:
    # The standard plan offers after 0.02 min (1.2 s) of waiting.
    server = desk(make_server, tmp_path, wait_minutes=0.02)
    await busy_colleague(server, ws_clients)  # online, but full: the chat waits
    page = await identified_visitor(
        pages, server, "fr-CH", identity("K-11", "standard", "Chloé Dubois")
    )
    w = widget(page)
    question = "Bonjour, ma commande n'est pas arrivée."
    await send_question(page, question)
    await expect(w.get_by_test_id("stuck")).to_be_visible()
    await expect(w.get_by_test_id("stuck-text")).to_have_text(tr("fr", "stuck.waited"))
    await expect(w.get_by_test_id("stuck-ticket")).to_have_text(tr("fr", "stuck.ticket"))
    await expect(w.get_by_test_id("stuck-callback")).to_have_text(tr("fr", "callback.send"))
    await assert_no_english(page, "fr")
    # The visitor looks at the callback form (in French), then prefers a ticket.
    await w.get_by_test_id("stuck-callback").click()
    await expect(w.get_by_test_id("callback-phone")).to_have_attribute(
        "placeholder", tr("fr", "callback.phone")
    )
    await assert_no_english(page, "fr")
    await w.get_by_test_id("stuck-ticket").click()
    email = w.get_by_test_id("stuck-email")
    await expect(email).to_be_visible()
    await expect(email).to_have_attribute("placeholder", tr("fr", "offline.email"))
    # A bad e-mail: the field's own message in French, no request, no ticket.
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await email.fill("chloe@dubois")
    await w.get_by_test_id("stuck-ticket").click()
    await expect(w.get_by_test_id("stuck-email-error")).to_have_text(tr("fr", "invalid.email"))
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(email).to_be_focused()
    await assert_no_english(page, "fr")
    assert not [u for u in requests if u.endswith("/api/visitor/chat-ticket")]
    server.add_operator("admin", password=PASSWORD, name="Ada Admin", role="admin")
    token = await OperatorClient.login(server.http_url, "admin", PASSWORD)
    assert await tickets(server, token) == []
    # A good one: the ticket, the transcript in it, and the visitor told, in French.
    ticket = await take_ticket(page, "chloe.dubois@example.ch")
    assert ticket["subject"] == question
    await expect(w.get_by_test_id("stuck-email-error")).to_be_hidden()
    await expect(w.get_by_test_id("stuck-text")).to_have_text(
        tr("fr", "stuck.done", ticket=ticket["ref"], email="chloe.dubois@example.ch")
    )
    await expect(w.get_by_test_id("status")).to_have_text(tr("fr", "status.ended"))
    await expect(w.get_by_test_id("callback-form")).to_be_hidden()  # the chat is over
    await assert_no_english(page, "fr")
    assert question in await transcript_of(server, token, ticket["number"])
    assert [t["ref"] for t in await tickets(server, token)] == [ticket["ref"]]
