"""Canned responses in the console (headless Chromium, a real server): an agent adds
a personal response, inserts it with the "/" completion of the composer (the visitor's
name filled in), edits and deletes it in the management dialog; a supervisor's team
response is listed for the agent but offers no edit or delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from .conftest import Pages
from .test_browser import (
    PASSWORD,
    console_messages,
    open_console,
    open_widget,
    set_status,
    visitor_send,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def token_of(server: Any, username: str) -> str:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        r = await http.post("/api/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


async def canned_titles(server: Any, token: str) -> list[str]:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        r = await http.get("/api/canned", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        return [c["title"] for c in r.json()["canned"]]


async def test_personal_and_team_canned_responses(make_server: Any, pages: Pages) -> None:
    server = make_server()
    server.start()
    server.add_operator("anna", password=PASSWORD, name="Anna Agent", capacity=5)
    server.add_operator("sue", password=PASSWORD, name="Sue Supervisor", role="supervisor")
    sue = await token_of(server, "sue")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        r = await http.post(
            "/api/canned",
            headers={"Authorization": f"Bearer {sue}"},
            json={"title": "Team greeting", "text": "Hello from the team", "shortcut": "grteam"},
        )
        assert r.status_code == 201 and r.json()["personal"] is False, r.text

    console = await open_console(pages, server, "anna")
    await set_status(pages, console, "online")
    visitor = await open_widget(pages, server)
    await visitor_send(visitor, "Mein Drucker druckt nicht", name="Vera Muster")
    await expect(console_messages(console, "visitor")).to_have_text(["Mein Drucker druckt nicht"])

    # The agent adds a personal response from the canned menu (no team choice).
    await console.get_by_test_id("canned-button").click()
    menu = console.get_by_test_id("canned-menu")
    await expect(menu).to_be_visible()
    await expect(console.get_by_test_id("canned-item")).to_have_count(1)  # the team's
    await expect(console.get_by_test_id("canned-team")).to_be_hidden()
    await console.get_by_test_id("canned-title").fill("Begrüssung")
    await console.get_by_test_id("canned-shortcut").fill("/gruss")
    await console.get_by_test_id("canned-text").fill("Grüezi {visitor_name}!")
    await console.get_by_test_id("canned-save").click()
    await expect(console.get_by_test_id("canned-item")).to_have_count(2)
    # The menu's search keeps the matches only.
    await console.get_by_test_id("canned-search").fill("team")
    await expect(console.get_by_test_id("canned-item")).to_have_count(1)
    await expect(console.get_by_test_id("canned-item")).to_contain_text("Team greeting")
    await menu.press("Escape")
    await expect(menu).to_be_hidden()

    # "/" in the composer: a listbox of matches; arrows move, Escape closes.
    box = console.get_by_test_id("message-input")
    listbox = console.get_by_test_id("canned-complete")
    options = listbox.get_by_test_id("canned-option")
    await box.fill("/gr")
    await expect(listbox).to_be_visible()
    await expect(listbox).to_have_attribute("role", "listbox")
    await expect(options).to_have_count(2)
    await expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    await box.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    active = await options.nth(1).get_attribute("id")
    await expect(box).to_have_attribute("aria-activedescendant", str(active))
    await box.press("Escape")
    await expect(listbox).to_be_hidden()
    await expect(box).to_have_value("/gr")

    # "/gru" + Enter inserts the personal one, the visitor's name filled in, unsent.
    await box.fill("Hallo /gru")
    await expect(options).to_have_count(1)
    await expect(options.first).to_contain_text("Begrüssung")
    await box.press("Enter")
    await expect(listbox).to_be_hidden()
    await expect(box).to_have_value("Hallo Grüezi Vera Muster!")
    await expect(console_messages(console, "operator")).to_have_count(0)
    # Tab inserts as well.
    await box.fill("/grt")
    await expect(options).to_have_count(1)
    await box.press("Tab")
    await expect(box).to_have_value("Hello from the team")
    await box.fill("")

    # The management dialog: the team's response is listed without edit or delete.
    await console.get_by_test_id("canned-button").click()
    await console.get_by_test_id("canned-manage").click()
    dialog = console.get_by_test_id("canned-dialog")
    await expect(dialog).to_be_visible()
    rows = dialog.get_by_test_id("canned-row")
    await expect(rows).to_have_count(2)
    team = rows.filter(has_text="Team greeting")
    await expect(team.get_by_test_id("canned-row-kind")).to_have_text("Team")
    await expect(team.get_by_test_id("canned-row-edit")).to_have_count(0)
    await expect(team.get_by_test_id("canned-row-delete")).to_have_count(0)
    mine = rows.filter(has_text="Begrüssung")
    await expect(mine.get_by_test_id("canned-row-kind")).to_have_text("Personal")

    # Edit the personal one.
    await mine.get_by_test_id("canned-row-edit").click()
    await expect(dialog.get_by_test_id("canned-edit-title")).to_have_value("Begrüssung")
    await dialog.get_by_test_id("canned-edit-title").fill("Willkommen")
    await dialog.get_by_test_id("canned-edit-text").fill("Hoi {visitor_name}")
    await dialog.get_by_test_id("canned-edit-save").click()
    await expect(rows.filter(has_text="Willkommen")).to_have_count(1)
    await expect(rows.filter(has_text="Begrüssung")).to_have_count(0)
    anna = await token_of(server, "anna")
    assert sorted(await canned_titles(server, anna)) == ["Team greeting", "Willkommen"]

    # Delete it (asked first, in the console's own dialog).
    await rows.filter(has_text="Willkommen").get_by_test_id("canned-row-delete").click()
    await expect(console.get_by_test_id("confirm-dialog")).to_be_visible()
    await console.get_by_test_id("confirm-ok").click()
    await expect(rows).to_have_count(1)
    assert await canned_titles(server, anna) == ["Team greeting"]
    await dialog.get_by_test_id("canned-manage-close").click()
    await expect(dialog).to_be_hidden()
