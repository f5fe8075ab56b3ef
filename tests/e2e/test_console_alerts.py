"""Alerts in the console (operator_console/js/chats/alerts.js), in headless Chromium
against a real server: with the notifications permission granted, a chat assigned
and a message arriving while the agent is on another view construct a desktop
``Notification`` (observed by wrapping ``window.Notification`` in an init script;
nothing of the server is stubbed), the title shows the unread count, clicking the
notification shows the chat, the bell, the speaker and the volume are remembered per
operator, the favicon carries the unread count, a chat transferred to me and a chat
whose first-response clock reaches its warning time are announced."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.waiting import eventually

from .conftest import TIMEOUT_MS, FrameLog, Pages
from .test_browser import (
    PASSWORD,
    open_console,
    open_widget,
    set_status,
    visitor_send,
    widget_session_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Records every Notification constructed; a real one is still made when the browser can.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notes = [];
  function Recorded(title, options) {
    const note = { title: title, body: options && options.body, tag: options && options.tag };
    window.__notes.push(note);
    let made = null;
    try { made = new Real(title, options); } catch (err) { made = { close() {} }; }
    window.__lastNote = made;
    return made;
  }
  Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


async def open_alerting_console(pages: Pages, server: Any, username: str) -> Page:
    context = await pages.browser.new_context(
        viewport={"width": 1280, "height": 800}, permissions=["notifications"]
    )
    context.set_default_timeout(TIMEOUT_MS)
    pages.contexts.append(context)
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await context.new_page()
    page.on("pageerror", lambda exc: pages.errors.append(f"console: {exc}"))
    pages.frame_logs[page] = FrameLog(page)
    await page.goto(server.http_url + "/console/")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("status-select")).to_be_visible()
    await pages.frames(page).wait_for(lambda f: f.get("type") == "welcome")
    return page


async def saved_settings(pages: Pages, page: Page, username: str) -> Any:
    """The alert settings stored for ``username`` (keyed by the operator id of the welcome)."""
    welcome = await pages.frames(page).wait_for(
        lambda f: f.get("type") == "welcome" and f["operator"].get("username") == username
    )
    key = f"chatserver.alerts.{welcome['operator']['id']}"
    return await page.evaluate("(key) => JSON.parse(localStorage.getItem(key))", key)


async def notes(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate("window.__notes")
    return result


async def wait_notes(page: Page, count: int) -> list[dict[str, Any]]:
    """The recorded notifications once there are ``count`` of them."""

    async def enough() -> list[dict[str, Any]]:
        got = await notes(page)
        return got if len(got) >= count else []

    return await eventually(enough, timeout=TIMEOUT_MS / 1000, message=f"{count} notifications")


async def test_notification_and_unread_title_for_a_chat_not_looked_at(
    server: Any, pages: Pages
) -> None:
    server.add_operator("alice", password=PASSWORD, name="Alice Operator", capacity=5)
    console = await open_alerting_console(pages, server, "alice")
    await set_status(pages, console, "online")
    bell = console.get_by_test_id("alerts-notify")
    speaker = console.get_by_test_id("alerts-sound")
    # Permission granted and not turned off: on; the sound is on by default.
    await expect(bell).to_have_attribute("aria-pressed", "true")
    await expect(speaker).to_have_attribute("aria-pressed", "true")
    await expect(bell).to_have_attribute("aria-label", "Desktop notifications")

    # The agent looks at the Tickets view when a visitor starts a chat.
    await console.get_by_test_id("nav-tickets").click()
    await expect(console.get_by_test_id("ticket-list")).to_be_attached()
    assert await notes(console) == []
    visitor = await open_widget(pages, server)
    await visitor_send(visitor, "Are the Eiger boots waterproof?", name="Vera Visitor")
    session_id = await widget_session_id(visitor, server)

    await expect(console.get_by_test_id("chat-tab")).to_have_count(1)
    first = (await wait_notes(console, 1))[0]
    assert first["title"] == "New chat from Vera Visitor"
    assert first["body"] == "Click to open the chat."
    assert first["tag"] == f"chat-{session_id}"
    await expect(console).to_have_title(re.compile(r"\(1\)"))

    # A second message in the background chat: a second notification, with its text.
    await visitor_send(visitor, "And do you ship to Bern?")
    found = await wait_notes(console, 2)
    assert len(found) == 2, found  # the first message came with the new-chat alert
    second = found[1]
    assert second["title"] == "Vera Visitor wrote"
    assert second["body"] == "And do you ship to Bern?"
    await expect(console).to_have_title(re.compile(r"\(2\)"))

    # Clicking the notification shows the chat: read, so the count goes.
    await console.evaluate("window.__lastNote.onclick()")
    await expect(console.get_by_test_id("chat-view")).to_be_visible()
    await expect(console.get_by_test_id("chat-view")).to_have_attribute(
        "data-session-id", session_id
    )
    await expect(console.get_by_test_id("chat-tab")).to_have_attribute("aria-selected", "true")
    await expect(console).not_to_have_title(re.compile(r"\(\d+\)"))

    # Both toggles are remembered; with the bell off, no notification.
    await speaker.click()
    await expect(speaker).to_have_attribute("aria-pressed", "false")
    await bell.click()
    await expect(bell).to_have_attribute("aria-pressed", "false")
    saved = await saved_settings(pages, console, "alice")
    assert saved is not None and saved["notify"] is False and saved["sound"] is False, saved
    await console.get_by_test_id("nav-tickets").click()
    await visitor_send(visitor, "Hello?")
    await expect(console).to_have_title(re.compile(r"\(1\)"))
    assert len(await notes(console)) == 2

    # German: the toggles' labels come from the catalog.
    await console.get_by_test_id("lang-select").select_option("de")
    await expect(bell).to_have_attribute("aria-label", "Desktop-Benachrichtigungen")
    await expect(speaker).to_have_attribute("title", "Hinweiston")


async def favicon_href(page: Page) -> str:
    href: str = await page.evaluate("document.querySelector('link[rel=\"icon\"]').href")
    return href


async def test_favicon_shows_the_unread_count(server: Any, pages: Pages) -> None:
    server.add_operator("fiona", password=PASSWORD, name="Fiona Operator", capacity=5)
    console = await open_alerting_console(pages, server, "fiona")
    await set_status(pages, console, "online")
    assert (await favicon_href(console)).endswith("/favicon.svg")
    await console.get_by_test_id("nav-tickets").click()
    visitor = await open_widget(pages, server)
    await visitor_send(visitor, "Is the shop open on Saturday?", name="Vera Visitor")
    await expect(console).to_have_title(re.compile(r"\(1\)"))

    async def badged() -> str:
        href = await favicon_href(console)
        return href if href.startswith("data:image/png") else ""

    badge: str = await eventually(badged, timeout=TIMEOUT_MS / 1000, message="a badged favicon")
    assert badge.startswith("data:image/png;base64,")
    # Read (shown from its notification): the plain icon again.
    await wait_notes(console, 1)
    await console.evaluate("window.__lastNote.onclick()")
    await expect(console.get_by_test_id("chat-view")).to_be_visible()
    await expect(console).not_to_have_title(re.compile(r"\(\d+\)"))

    async def plain() -> bool:
        return (await favicon_href(console)).endswith("/favicon.svg")

    restored: bool = await eventually(plain, timeout=TIMEOUT_MS / 1000, message="the plain favicon")
    assert restored


async def test_settings_and_volume_are_kept_per_operator(server: Any, pages: Pages) -> None:
    server.add_operator("olga", password=PASSWORD, name="Olga Operator", capacity=5)
    server.add_operator("paul", password=PASSWORD, name="Paul Operator", capacity=5)
    console = await open_alerting_console(pages, server, "olga")
    speaker = console.get_by_test_id("alerts-sound")
    volume = console.get_by_test_id("alerts-volume")
    # The volume: a labelled range next to the speaker, translated.
    await expect(volume).to_be_visible()
    await expect(volume).to_have_attribute("aria-label", "Alert volume")
    await expect(volume).to_have_attribute("type", "range")
    await expect(volume).to_have_value("60")
    await volume.fill("25")
    await speaker.click()
    await expect(speaker).to_have_attribute("aria-pressed", "false")
    await expect(volume).to_be_disabled()
    saved = await saved_settings(pages, console, "olga")
    assert saved is not None and saved["sound"] is False and saved["volume"] == 0.25, saved

    # Paul signs in in the same browser: his own defaults, not Olga's choices.
    await console.get_by_test_id("logout").click()
    await expect(console.get_by_test_id("login-username")).to_be_visible()
    await console.get_by_test_id("login-username").fill("paul")
    await console.get_by_test_id("login-password").fill(PASSWORD)
    await console.get_by_test_id("login-submit").click()
    await expect(console.get_by_test_id("status-select")).to_be_visible()
    await expect(speaker).to_have_attribute("aria-pressed", "true")
    await expect(volume).to_have_value("60")
    await volume.fill("90")
    await expect(volume).to_have_value("90")

    # Olga again: her muted speaker and her volume are back.
    await console.get_by_test_id("logout").click()
    await expect(console.get_by_test_id("login-username")).to_be_visible()
    await console.get_by_test_id("login-username").fill("olga")
    await console.get_by_test_id("login-password").fill(PASSWORD)
    await console.get_by_test_id("login-submit").click()
    await expect(console.get_by_test_id("status-select")).to_be_visible()
    await expect(speaker).to_have_attribute("aria-pressed", "false")
    await expect(volume).to_have_value("25")
    paul = await saved_settings(pages, console, "paul")
    assert paul is not None and paul["volume"] == 0.9 and paul["sound"] is True, paul

    # German label from the catalog.
    await console.get_by_test_id("lang-select").select_option("de")
    await expect(volume).to_have_attribute("aria-label", "Lautstärke des Hinweistons")


# Free chats get a 60 s first-response target on the 24/7 calendar, warned after 3 s.
QUICK_SLA = """
default_plan = "free"

[calendars.always]
always_open = true
timezone = "Europe/Zurich"

[plans.free]
first_response = "60s"
resolution = "90h"
calendar = "always"
priority = "normal"
phone = false
personal_contact = false
warn_at = 0.05
"""


async def test_sla_warning_alerts_once(make_server: Any, tmp_path: Any, pages: Pages) -> None:
    sla = tmp_path / "sla.toml"
    sla.write_text(QUICK_SLA)
    server = make_server({"CHATSERVER_SLA_CONFIG": str(sla)})
    server.start()
    server.add_operator("sven", password=PASSWORD, name="Sven Operator", capacity=5)
    console = await open_alerting_console(pages, server, "sven")
    await set_status(pages, console, "online")
    await console.get_by_test_id("nav-tickets").click()
    visitor = await open_widget(pages, server)
    await visitor_send(visitor, "Where is my order?", name="Vera Visitor")
    session_id = await widget_session_id(visitor, server)

    async def warned() -> list[dict[str, Any]]:
        got = [n for n in await notes(console) if n["title"].startswith("First response due soon")]
        return got

    found: list[dict[str, Any]] = await eventually(
        warned, timeout=TIMEOUT_MS / 1000, message="an SLA warning"
    )
    assert found[0]["title"] == "First response due soon: Vera Visitor"
    assert found[0]["tag"] == f"chat-{session_id}"
    # Once per chat: a later message brings its own alert but no second warning.
    await visitor_send(visitor, "Hello?")
    await wait_notes(console, 3)
    assert len(await warned()) == 1


async def test_a_chat_transferred_to_me_is_announced_as_a_transfer(
    server: Any, pages: Pages
) -> None:
    server.add_operator("fiona", password=PASSWORD, name="Fiona First", capacity=3)
    server.add_operator("gregor", password=PASSWORD, name="Gregor Green", capacity=4)
    fiona = await open_console(pages, server, "fiona")
    await set_status(pages, fiona, "online")
    visitor = await server.visitor()
    try:
        await visitor.send("Bitte an Gregor")
        tab = fiona.locator(f'[data-testid="chat-tab"][data-session-id="{visitor.session_id}"]')
        await expect(tab).to_have_count(1)
        await tab.click()
        gregor = await open_alerting_console(pages, server, "gregor")
        await set_status(pages, gregor, "online")
        await gregor.get_by_test_id("nav-tickets").click()

        await fiona.get_by_test_id("transfer-button").click()
        await fiona.get_by_test_id("transfer-target").select_option("operator")
        box = fiona.get_by_test_id("transfer-operator")
        await box.press_sequentially("gr")
        options = fiona.get_by_test_id("transfer-operators").get_by_test_id(
            "transfer-operator-option"
        )
        await expect(options).to_have_count(1)
        await box.press("ArrowUp")
        await box.press("Enter")
        await expect(box).to_have_value("Gregor Green")
        await box.press("Enter")
        await expect(tab).to_have_count(0)

        found = await wait_notes(gregor, 1)
        assert found[0]["title"].startswith("Chat with "), found
        assert found[0]["title"].endswith(" transferred to you"), found
        assert found[0]["tag"] == f"chat-{visitor.session_id}"
    finally:
        await visitor.close()
