"""The operator console in German (de-CH), in a real browser against a real server.

An operator whose browser speaks de-CH signs in, goes online, gets a chat from a
visitor (the Python test client), answers, escalates it to a ticket, works on the
ticket and closes the chat; a supervisor opens the board. Everything the console
draws is German: no English UI word is visible, errors are German sentences that
say what to do (never a code such as ``bad_frame`` or the server's English
message), dates and times are Swiss. The operator's language choice is stored on
the server: it follows the operator into a fresh browser with another locale.

With ``CHATSERVER_E2E_SCREENSHOTS=<dir>`` the test leaves screenshots of the
login, chat, ticket and board views and of the dialogs there (to look for German
text that is clipped or overflows; ``CHATSERVER_E2E_WIDTH`` narrows the window).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from chatserver.client import VisitorClient

from .conftest import TIMEOUT_MS, FrameLog, Pages

pytestmark = pytest.mark.asyncio(loop_scope="session")

PASSWORD = "pw-secret"

# Words of the English console that must not show in German mode (whole words,
# case-sensitive: "Senden" is fine, "Send" is not).
ENGLISH_UI = [
    "Sign in",
    "Log out",
    "Username",
    "Password",
    "My status",
    "Waiting queue",
    "waiting",
    "No open chats",
    "Send",
    "Close chat",
    "Escalate",
    "Visitor",
    "Reply",
    "Transfer",
    "Canned",
    "Refresh",
    "Priority",
    "Department",
    "Assignee",
    "Requester",
    "Channel",
    "Created",
    "Public reply",
    "Internal note",
    "Read",
    "Delivered",
    "Board",
    "Load",
    "Away",
    "Error",
    "Something went wrong",
    "Open",
    "Closed",
    "High",
    "Billing",
    "Technical",
    "Customer",
    "Plan",
    "Log time",
    "Resume",
    "Consult",
    "Take over",
    "Whisper",
    "Operators online",
    "Nobody",
    "Today",
    "This hour",
    "Cancel",
    "Subject",
    "Apply changes",
    "Attach",
    "Ticket inbox",
    "All active",
    "Unassigned",
    "Loading",
    "Updated",
    "left",
    "answered in time",
    "Current page",
    "Started",
    "Connected",
    "Time",
    "State",
    "First response",
    "ago",
    "min",
    "sec",
]
ENGLISH_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH_UI) + r")\b")
RAW_CODES = re.compile(
    r"\b(bad_frame|unknown_session|not_assigned|chat_closed|invalid_state|not_found|forbidden"
    r"|rate_limited|unavailable|no such operator|cannot go from)\b"
)

# Everything the console wrote itself (not what came from the network as content:
# messages, names, subjects), as the operator sees it, plus the attributes that
# screen readers and tooltips read.
VISIBLE_UI_TEXT = """() => {
  const skip = '[data-testid="message"], [data-testid="note"], [data-testid="watch-message"],'
    + ' .tev-text, .tab-name, .chat-title, .queue-name, .queue-preview, .op-name, .op-cell-name,'
    + ' .ticket-subject, .ticket-row-subject, .tev-author, .chip-name, #visitor-info dd,'
    + ' #ticket-requester, .chart-label, .ticket-row-assignee, .lang-select';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const host = node.parentElement;
    if (!host || host.closest(skip) || host.closest('script, style')) continue;
    if (!host.checkVisibility() || !node.textContent.trim()) continue;
    out.push(node.textContent.trim());
  }
  document.querySelectorAll('[title], [aria-label], [placeholder]').forEach((el) => {
    if (el.closest(skip) || !el.checkVisibility()) return;
    ['title', 'aria-label', 'placeholder'].forEach((a) => {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    });
  });
  document.querySelectorAll('option').forEach((o) => {
    const select = o.closest('select');
    if (select && select.checkVisibility() && !o.closest(skip)) out.push(o.textContent.trim());
  });
  return out;
}"""


# ---------------------------------------------------------------------- helpers
async def new_page(pages: Pages, name: str, locale: str) -> Page:
    """A page in a fresh browser context whose browser speaks ``locale``."""
    context = await pages.browser.new_context(
        viewport={"width": int(os.environ.get("CHATSERVER_E2E_WIDTH", "1280")), "height": 800},
        locale=locale,
        timezone_id="Europe/Zurich",
    )
    context.set_default_timeout(TIMEOUT_MS)
    pages.contexts.append(context)
    page = await context.new_page()
    page.on("pageerror", lambda exc: pages.errors.append(f"{name}: {exc}"))
    pages.frame_logs[page] = FrameLog(page)
    return page


async def sign_in(pages: Pages, page: Page, server: Any, username: str) -> None:
    """Sign in on the login card; the console is connected (welcome) afterwards."""
    frames = pages.frames(page)
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("status-select")).to_be_visible()
    await frames.wait_for(lambda f: f.get("type") == "welcome")
    await expect(page.get_by_test_id("connection-banner")).to_be_hidden()


async def set_status(pages: Pages, page: Page, status: str) -> None:
    frames = pages.frames(page)
    mark = frames.mark()
    await page.get_by_test_id("status-select").select_option(status)
    await frames.wait_for(
        lambda f: f.get("type") == "status" and f.get("status") == status, since=mark
    )


async def english_left(page: Page) -> list[str]:
    """The console's own strings on screen that are (or contain) English UI words."""
    texts: list[str] = await page.evaluate(VISIBLE_UI_TEXT)
    return [text for text in texts if ENGLISH_RE.search(text) or RAW_CODES.search(text)]


async def assert_german(page: Page, where: str) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    left = await english_left(page)
    assert not left, f"{where}: English or raw codes on screen: {left}"


async def screenshot(page: Page, name: str) -> None:
    """Leave a picture of ``page`` in $CHATSERVER_E2E_SCREENSHOTS (if set), toasts cleared."""
    folder = os.environ.get("CHATSERVER_E2E_SCREENSHOTS")
    if folder:
        await page.evaluate("() => document.getElementById('toasts').replaceChildren()")
        # (Playwright creates the folder)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def stored_lang(server: Any, username: str) -> str | None:
    from tests.stored import connect_stored

    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        row = conn.execute("SELECT lang FROM operators WHERE username = ?", (username,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


# ------------------------------------------------------------------------ tests
async def test_console_in_german(server: Any, pages: Pages, clients: list[Any]) -> None:
    server.add_operator("anna", password=PASSWORD, name="Anna Aebi", capacity=3)
    server.add_operator("sven", password=PASSWORD, name="Sven Stauffer", role="supervisor")
    console = await new_page(pages, "console[anna]", "de-CH")

    # The login card follows the browser: German, no English left.
    await console.goto(server.http_url + "/console/")
    await expect(console.get_by_test_id("login-submit")).to_have_text("Anmelden")
    await expect(console.get_by_test_id("login-lang")).to_have_value("de")
    assert await console.title() == "chatserver Konsole"
    await assert_german(console, "login")
    await screenshot(console, "1-login")

    # A wrong password: a German sentence that says what to do.
    await console.get_by_test_id("login-username").fill("anna")
    await console.get_by_test_id("login-password").fill("wrong")
    await console.get_by_test_id("login-submit").click()
    await expect(console.get_by_test_id("login-error")).to_have_text(
        "Benutzername oder Passwort ist falsch. Prüfen Sie beides und versuchen Sie es erneut."
    )

    await sign_in(pages, console, server, "anna")
    await expect(console.get_by_test_id("nav-chats")).to_have_text("Chats")
    await expect(console.locator("#chat-empty")).to_contain_text(
        "Setzen Sie Ihren Status auf Online, um Chats aus der Warteschlange zu erhalten."
    )
    await expect(console.locator(".queue-total-pill")).to_have_text("0 wartend")
    await assert_german(console, "chats, empty")

    # Online; a visitor from Lausanne writes in French: the chat arrives, announced in
    # German, and the console says which language the visitor speaks.
    await set_status(pages, console, "online")
    visitor = await VisitorClient.connect(
        server.url, name="Vera Vogel", email="vera@example.ch", lang="fr"
    )
    clients.append(visitor)
    question = "Bonjour, ma facture est deux fois plus élevée que d'habitude."
    await visitor.send(question)
    await expect(console.get_by_test_id("chat-tab")).to_have_count(1)
    await expect(
        console.get_by_test_id("toast").filter(has_text="Neuer Chat von Vera Vogel")
    ).to_have_count(1)
    await expect(
        console.locator('#chat-view [data-testid="message"][data-from="visitor"]')
    ).to_have_text([question])
    await expect(console.get_by_test_id("visitor-connected")).to_have_text("Verbunden")
    await expect(console.get_by_test_id("visitor-lang")).to_have_text("Französisch")
    tab_lang = console.get_by_test_id("tab-lang")
    await expect(tab_lang).to_have_text("FR")
    await expect(tab_lang).to_have_attribute("title", "Der Besucher schreibt auf Französisch")
    await expect(console.get_by_test_id("send-button")).to_have_text("Senden")

    # The reply; the visitor reads it: "Gelesen", not the CSS-drawn "Read".
    await console.get_by_test_id("message-input").fill(
        "Bonjour Madame Vogel, je regarde cela tout de suite."
    )
    await console.get_by_test_id("send-button").click()
    reply = await visitor.wait_for("message", lambda f: f.get("from") == "operator")
    await visitor.send_frame({"type": "read", "seq": reply["seq"]})
    own = console.locator('#chat-view [data-testid="message"][data-from="operator"]')
    await expect(own).to_have_attribute("data-state", "read")
    await expect(own).to_have_attribute("data-state-label", "Gelesen")
    after = await own.evaluate("b => getComputedStyle(b, '::after').content")
    assert "Gelesen" in after and "Read" not in after, after
    # Clock and dates in Swiss format.
    assert re.fullmatch(r"\d\d:\d\d", await own.get_attribute("data-time") or ""), (
        await own.get_attribute("data-time")
    )
    await expect(console.locator("#visitor-started")).to_have_text(
        re.compile(r"^\d\d\.\d\d\.\d{4}, \d\d:\d\d$")
    )
    await assert_german(console, "chat")
    await screenshot(console, "2-chat")

    # A refused transfer (no such colleague): a German sentence, no code, no server text.
    await console.get_by_test_id("transfer-button").click()
    await console.get_by_test_id("transfer-target").select_option("operator")
    await console.get_by_test_id("transfer-operator").fill("o_nobody")
    await console.get_by_test_id("transfer-submit").click()
    error = console.get_by_test_id("transfer-error")
    await expect(error).to_contain_text("Der Chat wurde nicht weitergeleitet.")
    await expect(error).to_contain_text("Prüfen Sie die Operator-ID des Kollegen")
    toast = console.locator(".toast-error").last
    await expect(toast).to_contain_text("Prüfen Sie die Operator-ID")
    await assert_german(console, "refused transfer")
    await screenshot(console, "2b-transfer-refused")
    await console.get_by_test_id("transfer-cancel").click()

    # Escalate to a ticket: the dialog, then the ticket, all German.
    await console.get_by_test_id("escalate-button").click()
    dialog = console.get_by_test_id("escalate-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#escalate-title")).to_have_text("Zu Ticket eskalieren")
    await assert_german(console, "escalate dialog")
    await screenshot(console, "2c-escalate-dialog")
    await console.get_by_test_id("escalate-department").select_option("billing")
    await console.get_by_test_id("escalate-priority").select_option("high")
    await console.get_by_test_id("escalate-submit").click()
    await expect(console.get_by_test_id("ticket-view")).to_be_visible()
    await expect(console.get_by_test_id("ticket-state-badge")).to_have_text("Offen")
    await expect(console.get_by_test_id("ticket-priority-badge")).to_have_text("Hoch")
    meta = console.locator(".ticket-meta")
    await expect(meta).to_contain_text("Kontakt: Vera Vogel")
    await expect(meta).to_contain_text("Kanal: Chat")
    await expect(console.get_by_test_id("ticket-lang")).to_have_text("Französisch")
    await expect(meta).to_contain_text(re.compile(r"Erstellt: \d\d\.\d\d\.\d{4}, \d\d:\d\d"))
    row = console.get_by_test_id("ticket-row").first
    await expect(row.get_by_test_id("ticket-row-state")).to_have_text("Offen")
    await expect(row.get_by_test_id("ticket-row-department")).to_have_text("Finanzen")
    await expect(console.get_by_test_id("reply-mode-public").locator("xpath=..")).to_have_text(
        "Öffentliche Antwort"
    )
    await assert_german(console, "ticket")
    await screenshot(console, "3-ticket")

    # A state change the server refuses: a German sentence, no HTTP status, no code.
    await console.get_by_test_id("ticket-state").select_option("information")
    await console.get_by_test_id("ticket-apply").click()
    await expect(console.get_by_test_id("ticket-state-badge")).to_have_text("Informationen")
    events = console.locator('[data-testid="ticket-event"][data-kind="state"]')
    await expect(events.last).to_contain_text("Status Offen \u2192 Informationen")
    async with console.expect_response(lambda r: r.url.endswith("/changes")) as info:
        await console.get_by_test_id("ticket-state").select_option("in_progress")
        await console.get_by_test_id("ticket-apply").click()
    assert (await info.value).status == 409
    ticket_error = console.get_by_test_id("ticket-error")
    await expect(ticket_error).to_have_text(
        "Vom aktuellen Status aus ist diese Änderung nicht möglich. Wählen Sie einen anderen"
        " Status oder aktualisieren Sie das Ticket."
    )
    await assert_german(console, "refused ticket change")
    await screenshot(console, "3b-ticket-refused")

    # Back to the chat: closing it asks in German, in the page (no browser confirm()).
    dialogs: list[Any] = []
    console.on("dialog", lambda d: dialogs.append(d))
    await console.get_by_test_id("nav-chats").click()
    await console.get_by_test_id("close-chat").click()
    confirm = console.get_by_test_id("confirm-dialog")
    await expect(confirm).to_be_visible()
    await expect(confirm.locator("#confirm-title")).to_have_text("Chat beenden?")
    await expect(confirm.locator("#confirm-text")).to_have_text(
        "Chat mit Vera Vogel beenden? Danach kann niemand mehr darin schreiben."
    )
    await assert_german(console, "confirm dialog")
    await screenshot(console, "5-confirm-close")
    await console.get_by_test_id("confirm-ok").click()
    await expect(confirm).to_be_hidden()
    await expect(console.locator("#chat-ended")).to_contain_text("Chat beendet")
    assert dialogs == []
    await assert_german(console, "ended chat")

    # Chat notices from the server are said in the operator's language.
    notice = await console.evaluate(
        """() => import('/console/js/shared/i18n.js').then((m) => [
             m.noticeText({code: 'transfer_to_level', params: {level: 2}}, 'x'),
             m.noticeText({code: 'operator_joined', params: {name: 'Anna'}}, 'x'),
             m.noticeText({code: 'no_such_notice', params: {}}, 'fallback text'),
             m.errorMessage('no_such_code')])"""
    )
    assert notice == [
        "Der Chat wird an den 2nd-Level-Support weitergegeben.",
        "Anna ist dem Chat beigetreten.",
        "fallback text",
        "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut; wenn es wieder passiert,"
        " laden Sie die Konsole neu.",
    ]

    # The supervisor's board, in German too.
    board = await new_page(pages, "console[sven]", "de-CH")
    await board.goto(server.http_url + "/console/")
    await sign_in(pages, board, server, "sven")
    await expect(board.get_by_test_id("nav-board")).to_have_text("Übersicht")
    await board.get_by_test_id("nav-board").click()
    await expect(board.get_by_test_id("board-online")).to_have_text(re.compile(r"^\d+$"))
    await expect(board.get_by_test_id("board-view")).to_contain_text("Operatoren online")
    await expect(board.get_by_test_id("board-view")).to_contain_text("Anna Aebi")
    await assert_german(board, "board")
    await screenshot(board, "4-board")
    await board.get_by_test_id("nav-tickets").click()
    await expect(board.locator("#ticket-list-status")).to_contain_text("Aktualisiert")
    await assert_german(board, "ticket inbox")
    assert not pages.errors


async def test_language_choice_is_stored_with_the_operator(server: Any, pages: Pages) -> None:
    server.add_operator("lea", password=PASSWORD, name="Lea Lüthi")
    first = await new_page(pages, "console[lea]", "de-CH")
    await first.goto(server.http_url + "/console/")
    await sign_in(pages, first, server, "lea")
    await expect(first.get_by_test_id("logout")).to_have_text("Abmelden")
    assert stored_lang(server, "lea") is None  # nothing chosen yet: the browser's

    # Switch to English in the top bar: stored on the server, the page speaks it.
    menu = first.get_by_test_id("lang-select")
    await expect(menu).to_have_accessible_name("Sprache")
    await menu.select_option("en")
    await expect(first.get_by_test_id("logout")).to_have_text("Log out")
    await expect(first.locator("html")).to_have_attribute("lang", "en")
    await expect(first.get_by_test_id("lang-select")).to_have_value("en")
    assert stored_lang(server, "lea") == "en"
    await pages.frames(first).wait_for(lambda f: f.get("type") == "welcome")

    # A fresh browser that speaks de-CH: the login card is German, the console
    # then speaks the operator's English.
    second = await new_page(pages, "console[lea] again", "de-CH")
    await second.goto(server.http_url + "/console/")
    await expect(second.get_by_test_id("login-submit")).to_have_text("Anmelden")
    await sign_in(pages, second, server, "lea")
    await expect(second.get_by_test_id("logout")).to_have_text("Log out")
    await expect(second.locator("#chat-empty")).to_contain_text("Set your status to Online")

    # And back to German; an English browser follows the operator's choice too.
    await second.get_by_test_id("lang-select").select_option("de")
    await expect(second.get_by_test_id("logout")).to_have_text("Abmelden")
    assert stored_lang(server, "lea") == "de"
    third = await new_page(pages, "console[lea] en-US", "en-US")
    await third.goto(server.http_url + "/console/")
    await expect(third.get_by_test_id("login-submit")).to_have_text("Sign in")
    await sign_in(pages, third, server, "lea")
    await expect(third.get_by_test_id("logout")).to_have_text("Abmelden")
    await assert_german(third, "console after sign-in from an English browser")

    # A choice on the login card is stored once signed in.
    server.add_operator("max", password=PASSWORD, name="Max Muster")
    fourth = await new_page(pages, "console[max]", "en-US")
    await fourth.goto(server.http_url + "/console/")
    await fourth.get_by_test_id("login-username").fill("max")
    await fourth.get_by_test_id("login-lang").select_option("de")
    await expect(fourth.get_by_test_id("login-submit")).to_have_text("Anmelden")
    await expect(fourth.get_by_test_id("login-username")).to_have_value("max")
    await sign_in(pages, fourth, server, "max")
    await expect(fourth.get_by_test_id("logout")).to_have_text("Abmelden")

    async def stored() -> bool:
        return stored_lang(server, "max") == "de"

    from .test_browser import eventually

    await eventually(stored)
    assert not pages.errors


async def test_preferences_endpoint(server: Any) -> None:
    """PUT /api/me/preferences stores the language; login and welcome return it."""
    server.add_operator("ida", password=PASSWORD, name="Ida Imhof")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        login = await http.post("/api/login", json={"username": "ida", "password": PASSWORD})
        assert login.json()["operator"]["lang"] is None
        auth = {"Authorization": "Bearer " + login.json()["token"]}
        for bad in ({"lang": "xx"}, {"lang": 7}, {}):
            refused = await http.put("/api/me/preferences", json=bad, headers=auth)
            assert refused.status_code == 400, bad
            assert refused.json()["error"] == "bad_frame"
        assert (await http.put("/api/me/preferences", json={"lang": "de"})).status_code == 401
        ok = await http.put("/api/me/preferences", json={"lang": "de"}, headers=auth)
        assert ok.status_code == 200 and ok.json() == {"lang": "de"}
        again = await http.post("/api/login", json={"username": "ida", "password": PASSWORD})
        assert again.json()["operator"]["lang"] == "de"
    operator = await server.operator("ida")
    try:
        assert operator.welcome["operator"]["lang"] == "de"
    finally:
        await operator.close()
    # The welcome of a node that had the account cached sees a later change too.
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        token = (
            await http.post("/api/login", json={"username": "ida", "password": PASSWORD})
        ).json()["token"]
        cleared = await http.put(
            "/api/me/preferences", json={"lang": None}, headers={"Authorization": "Bearer " + token}
        )
        assert cleared.json() == {"lang": None}
    operator = await server.operator("ida")
    try:
        assert operator.welcome["operator"]["lang"] is None
    finally:
        await operator.close()
