"""Keyboard only, in headless Chromium: the visitor's path through the widget (chat,
"My tickets", the offline form with a file) and the agent's reply-and-close path in
the console. Only ``page.keyboard`` moves and acts (no clicks, no ``fill``); after
each move the element with the focus is the expected one and shows it (a focus ring:
``:focus-visible`` with an outline or a box shadow)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import FileChooser, Page, expect

from .conftest import TIMEOUT_MS, Pages
from .test_browser import PASSWORD, eventually, widget, widget_messages
from .test_widget_i18n import tr

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The element with the focus (through the widget's shadow root), and whether it shows
# it. Checked: the console's elements and the widget's, not the demo shop page's own.
FOCUSED = """() => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (!el || el === document.body) return null;
    const cs = getComputedStyle(el);
    const ring = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0)
        || cs.boxShadow !== 'none';
    const shop = !!document.getElementById('chatserver-widget') && el.getRootNode() === document;
    return {id: el.getAttribute('data-testid') || el.id || el.tagName.toLowerCase(),
            shows: shop || (el.matches(':focus-visible') && ring)};
}"""

MAX_PRESSES = 80  # the demo page's links and the console's controls, and then some


async def focused(page: Page) -> str | None:
    """The data-testid (else id, else tag) of the focused element; it must show its focus."""
    info: dict[str, Any] | None = await page.evaluate(FOCUSED)
    if info is None:
        return None
    assert info["shows"], f"{info['id']} has the focus but shows no focus ring"
    return str(info["id"])


async def expect_focus(page: Page, want: str) -> None:
    """The focus is on ``want`` (it may move there a moment after a key)."""

    async def probe() -> bool:
        return await focused(page) == want

    try:
        await eventually(probe)
    except AssertionError:
        raise AssertionError(f"the focus is on {await focused(page)}, not on {want}") from None


async def press_until(page: Page, want: str, key: str = "Tab") -> int:
    """Press ``key`` until ``want`` has the focus (it is reachable); how many presses."""
    for n in range(MAX_PRESSES + 1):
        if await focused(page) == want:
            return n
        await page.keyboard.press(key)
    raise AssertionError(f"{want} is not reachable with {key} (last focus: {await focused(page)})")


async def test_visitor_chats_with_the_keyboard_only(
    server: Any, pages: Pages, ws_clients: list[Any]
) -> None:
    server.add_operator("anna", password=PASSWORD, name="Anna Operator", capacity=3)
    op = await server.operator("anna")
    ws_clients.append(op)
    page = await pages.new("visitor")
    await page.goto(server.http_url + "/")
    w = widget(page)
    await expect(w.get_by_test_id("bubble")).to_be_visible()

    # Through the shop page to the chat bubble; Enter opens the panel, focus in the composer.
    await press_until(page, "bubble")
    await page.keyboard.press("Enter")
    await expect(w.get_by_test_id("panel")).to_be_visible()
    await expect(w.get_by_test_id("offline-form")).to_be_hidden()
    await expect_focus(page, "message-input")

    # Name first (Shift+Tab back to it), then the question, sent with Enter.
    await press_until(page, "name-input", "Shift+Tab")
    await page.keyboard.type("Karl Keys")
    await press_until(page, "message-input")
    await page.keyboard.type("Can I order without a mouse?")
    await page.keyboard.press("Enter")
    chat = await op.next_chat()
    question = await op.wait_for("message", lambda f: f.get("from") == "visitor")
    assert question["text"] == "Can I order without a mouse?"
    await op.send_to(chat["session_id"], "Of course: Tab, Enter, done.")
    await expect(widget_messages(page, "operator").locator(".txt")).to_have_text(
        ["Of course: Tab, Enter, done."]
    )
    await expect_focus(page, "message-input")  # still there for the next message

    # "My tickets" and back, by keyboard: the focus follows the view.
    await press_until(page, "my-tickets", "Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(w.get_by_test_id("tickets")).to_be_visible()
    await expect(w.get_by_test_id("tickets")).to_contain_text(tr("en", "tickets.none"))
    await expect_focus(page, "tickets-back")
    await page.keyboard.press("Enter")
    await expect(w.get_by_test_id("tickets")).to_be_hidden()
    await expect_focus(page, "message-input")

    # Escape closes the panel; the focus is back on the bubble; Enter opens it again.
    await page.keyboard.press("Escape")
    await expect(w.get_by_test_id("panel")).to_be_hidden()
    await expect_focus(page, "bubble")
    await page.keyboard.press("Enter")
    await expect(w.get_by_test_id("panel")).to_be_visible()
    await expect_focus(page, "message-input")

    # Ending the chat by keyboard: the focus goes to "Start a new chat", not lost.
    await press_until(page, "end-chat-button", "Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(w.get_by_test_id("status")).to_have_text(tr("en", "status.ended"))
    await expect_focus(page, "new-chat-button")


async def test_offline_form_with_a_file_by_keyboard_only(server: Any, pages: Pages) -> None:
    page = await pages.new("visitor-offline")
    # File choosers are caught from the start (a listener added just before a key
    # may come too late: the browser's own chooser, which then blocks the next).
    choosers: asyncio.Queue[FileChooser] = asyncio.Queue()
    page.on("filechooser", choosers.put_nowait)
    await page.goto(server.http_url + "/")
    w = widget(page)
    await expect(w.get_by_test_id("bubble")).to_be_visible()
    await press_until(page, "bubble")
    await page.keyboard.press("Enter")
    form = w.get_by_test_id("offline-form")
    await expect(form).to_be_visible()
    # One form: its first field has the focus, no chat composer to compete with it.
    await expect_focus(page, "offline-name")
    await expect(w.get_by_test_id("message-input")).to_be_hidden()

    # Enter in a field sends the form: the first missing field gets the focus.
    await page.keyboard.type("Kira Keys")
    await page.keyboard.press("Enter")
    await expect_focus(page, "offline-email")
    await expect(w.get_by_test_id("offline-email-error")).to_have_text(tr("en", "invalid.required"))
    await page.keyboard.type("kira@example.ch")
    await page.keyboard.press("Tab")
    await expect_focus(page, "offline-subject")
    await page.keyboard.type("Keyboard order")
    await page.keyboard.press("Tab")
    await expect_focus(page, "offline-text")
    await page.keyboard.type("Please call me about order 4711.")

    # The file button opens the file chooser from the keyboard; the file is listed
    # with its size and a remove button.
    await page.keyboard.press("Tab")
    await expect_focus(page, "offline-attach")
    await page.keyboard.press("Enter")
    chooser = await asyncio.wait_for(choosers.get(), TIMEOUT_MS / 1000)
    async with page.expect_response(lambda r: r.url.endswith("/api/attachments")) as up:
        await chooser.set_files(
            files=[{"name": "wrong.txt", "mimeType": "text/plain", "buffer": b"x" * 93}]
        )
    assert (await up.value).status == 201
    listed = w.get_by_test_id("offline-attachment")
    await expect(listed).to_have_count(1)
    await expect(listed).to_have_text(re.compile(r"^wrong\.txt \(93\s?B\)$"))
    await press_until(page, "offline-attachment-remove")
    remove = listed.get_by_test_id("offline-attachment-remove")
    await expect(remove).to_have_attribute("aria-label", tr("en", "file.remove", file="wrong.txt"))
    await page.keyboard.press("Enter")
    await expect(listed).to_have_count(0)
    await expect_focus(page, "offline-attach")  # not lost with the removed row

    await page.keyboard.press("Enter")
    chooser = await asyncio.wait_for(choosers.get(), TIMEOUT_MS / 1000)
    async with page.expect_response(lambda r: r.url.endswith("/api/attachments")) as up:
        await chooser.set_files(
            files=[{"name": "order.txt", "mimeType": "text/plain", "buffer": b"4711\n" * 300}]
        )
    uploaded = await (await up.value).json()
    await expect(listed).to_have_count(1)
    await expect(listed).to_have_text("order.txt (1.5 kB)")

    # Send: Tab to the button, Enter. The success card takes the focus.
    await press_until(page, "offline-submit")
    async with page.expect_request(lambda r: r.url.endswith("/api/visitor/offline")) as sent:
        await page.keyboard.press("Enter")
    assert (await sent.value).post_data_json["attachments"] == [uploaded["id"]]
    done = w.get_by_test_id("offline-done")
    await expect(done).to_be_visible()
    await expect_focus(page, "offline-done")

    # The ticket carries the file: "My tickets" by keyboard, then the ticket.
    await press_until(page, "my-tickets", "Shift+Tab")
    await page.keyboard.press("Enter")
    await expect_focus(page, "tickets-back")
    await press_until(page, "my-ticket")
    await page.keyboard.press("Enter")
    await expect(w.get_by_test_id("ticket-head")).to_contain_text("Keyboard order")
    await expect_focus(page, "tickets-back")
    await expect(w.get_by_test_id("attachment")).to_contain_text("order.txt")

    await page.keyboard.press("Escape")
    await expect(w.get_by_test_id("panel")).to_be_hidden()
    await expect_focus(page, "bubble")


async def test_agent_replies_and_closes_with_the_keyboard_only(
    server: Any, pages: Pages, ws_clients: list[Any]
) -> None:
    server.add_operator("anna", password=PASSWORD, name="Anna Operator", capacity=3)
    console = await pages.new("console[anna]")
    frames = pages.frames(console)
    await console.goto(server.http_url + "/console/")
    await expect(console.get_by_test_id("login-submit")).to_be_visible()

    # Sign in: Tab to the username, type, Tab, type, Enter.
    await press_until(console, "login-username")
    await console.keyboard.type("anna")
    await console.keyboard.press("Tab")
    await expect_focus(console, "login-password")
    await console.keyboard.type(PASSWORD)
    await console.keyboard.press("Enter")
    await expect(console.get_by_test_id("status-select")).to_be_visible()
    await frames.wait_for(lambda f: f.get("type") == "welcome")

    # The status list works by keyboard: away (ArrowDown), then online again (ArrowUp).
    await press_until(console, "status-select")
    for key, status in (("ArrowDown", "away"), ("ArrowUp", "online")):
        mark = frames.mark()
        await console.keyboard.press(key)
        await frames.wait_for(
            lambda f, status=status: f.get("type") == "status" and f.get("status") == status,
            since=mark,
        )
        await expect(console.get_by_test_id("status-select")).to_have_value(status)

    # A visitor writes; the chat's tab is reached and opened with Enter.
    visitor = await server.visitor(name="Vera Visitor")
    ws_clients.append(visitor)
    await visitor.send("Is the parcel on its way?")
    tab = console.get_by_test_id("chat-tab")
    await expect(tab).to_have_count(1)
    await press_until(console, "chat-tab")
    await console.keyboard.press("Enter")
    await expect(console.get_by_test_id("chat-view")).to_be_visible()
    await expect(tab).to_have_attribute("aria-selected", "true")

    # Reply: Tab to the composer, type, Enter sends.
    await press_until(console, "message-input")
    await console.keyboard.type("Yes, it arrives tomorrow.")
    await console.keyboard.press("Enter")
    reply = await visitor.wait_for("message", lambda f: f.get("from") == "operator")
    assert reply["text"] == "Yes, it arrives tomorrow."

    # Close: Tab to "Close chat", Enter; the in-page question takes the focus
    # (Cancel first); Tab to the confirm button, Enter.
    await press_until(console, "close-chat", "Shift+Tab")
    await console.keyboard.press("Enter")
    dialog = console.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect_focus(console, "confirm-cancel")
    await console.keyboard.press("Tab")
    await expect_focus(console, "confirm-ok")
    await console.keyboard.press("Enter")
    await expect(dialog).to_be_hidden()
    await visitor.wait_for("state", lambda f: f.get("state") == "closed")
    await expect(console.locator("#chat-ended")).to_be_visible()
    # The focus went to what is left to do (not back to the page's start).
    await expect_focus(console, "dismiss-chat")
    await console.keyboard.press("Enter")
    await expect(tab).to_have_count(0)
