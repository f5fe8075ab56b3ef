"""End-to-end: knowledge base articles suggested in the visitor widget (issue 21), in
Chromium against a real server.

The key test of the issue: while the visitor types the first message, a suggestion
appears under the composer, opens inside the widget (the server's sanitised HTML,
inert: no dialog ever opens), "Yes" is counted, and the supervisor board shows one
chat deflected. Also: "No" goes back to the composer with the text kept; a newer
keystroke cancels the older search; the offline form suggests too; fewer than three
characters ask nothing. axe finds no serious or critical violation with an article
open; a screenshot is written to /tmp/kb-widget.png.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Request, expect

from chatserver.web.app import WIDGET_DIR

from .conftest import Pages
from .test_accessibility_e2e import Axe, axe_js  # noqa: F401  (the fixture)
from .test_board_e2e import open_board
from .test_browser import (
    PASSWORD,
    console_messages,
    eventually,
    open_console,
    open_widget,
    set_status,
    widget,
)
from .test_kb_console import HOSTILE, create_article, http, login, no_dialogs

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def articles(server: Any) -> dict[str, dict[str, Any]]:
    """Three published German articles; their manage views by slug."""
    token = await login(server, "sam")
    made = [
        await create_article(
            server,
            token,
            title="Drucker druckt nicht",
            slug="drucker",
            body=HOSTILE + "\nMehr unter [Hilfe](https://example.com/hilfe).",
        ),
        await create_article(
            server,
            token,
            title="Rechnung herunterladen",
            slug="rechnung",
            body="Die **Rechnung** finden Sie im Konto.",
        ),
        await create_article(
            server,
            token,
            title="Interne Druckerliste",
            slug="intern",
            visibility="agents",
            body="Nur für Mitarbeitende.",
        ),
    ]
    return {a["slug"]: a for a in made}


async def managed(server: Any, slug: str) -> dict[str, Any]:
    """The manage view of the article ``slug`` (its counts)."""
    token = await login(server, "sam")
    response = await http(server, "GET", "/api/kb/manage/articles", token, params={"q": slug})
    assert response.status_code == 200, response.text
    (found,) = [a for a in response.json()["articles"] if a["slug"] == slug]
    return dict(found)


def probe(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """``condition`` as a probe for ``eventually``."""

    async def check() -> bool:
        return condition()

    return check


async def german_widget(pages: Pages, server: Any) -> Page:
    """The demo page with the widget open, the visitor's language German (the articles')."""
    page = await open_widget(pages, server)
    await widget(page).get_by_test_id("language-select").select_option("de")
    await expect(widget(page).locator(".root")).to_have_attribute("lang", "de")
    return page


def suggestion(page: Page, slug: str) -> Any:
    return widget(page).locator(f'[data-testid="kb-suggestion"][data-slug="{slug}"]')


async def test_a_suggestion_opens_in_the_widget_and_yes_is_a_deflected_chat_on_the_board(
    make_server: Any,
    pages: Pages,
    axe_js: Path,  # noqa: F811
) -> None:
    server = make_server(env={"CHATSERVER_BOARD_INTERVAL": "0.3"})
    server.start()
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    server.add_operator("anna", password=PASSWORD, name="Anna Operator", capacity=3)
    await articles(server)
    board = await open_board(pages, server, "sam")
    await expect(board.get_by_test_id("board-kb-deflected-today")).to_have_text("0")
    console = await open_console(pages, server, "anna")
    await set_status(pages, console, "online")

    visitor = await german_widget(pages, server)
    await visitor.emulate_media(reduced_motion="reduce")
    dialogs = no_dialogs(visitor)
    w = widget(visitor)
    box = w.get_by_test_id("message-input")
    await box.press_sequentially("Mein Druckers", delay=20)
    # Under the composer: public articles only, at most three, announced.
    await expect(suggestion(visitor, "drucker")).to_be_visible()
    await expect(w.get_by_test_id("kb-suggestion")).to_have_count(1)
    german = json.loads((WIDGET_DIR / "i18n" / "de.json").read_text(encoding="utf-8"))
    await expect(w.locator(".kbh")).to_have_text(german["kb.head"])
    await expect(w.get_by_test_id("kb-suggest-live")).not_to_be_empty()
    await expect(suggestion(visitor, "intern")).to_have_count(0)
    axe = Axe(axe_js)
    await axe.check(visitor, "the widget with suggestions")
    await w.get_by_test_id("panel").screenshot(path="/tmp/kb-widget-suggestions.png")

    # Opened inside the panel: the server's HTML, inert; links open a new tab.
    await suggestion(visitor, "drucker").click()
    view = w.get_by_test_id("kb-article")
    await expect(view).to_be_visible()
    await expect(view.get_by_test_id("kb-article-title")).to_have_text("Drucker druckt nicht")
    await expect(view.get_by_test_id("kb-article-title")).to_be_focused()
    body = view.get_by_test_id("kb-article-body")
    await expect(body.locator("strong")).to_have_text("druckt nicht")
    await expect(body.locator("script")).to_have_count(0)
    await expect(body.locator("[onerror]")).to_have_count(0)
    link = body.locator("a", has_text="Hilfe")
    await expect(link).to_have_attribute("href", "https://example.com/hilfe")
    await expect(link).to_have_attribute("target", "_blank")
    assert "noopener" in str(await link.get_attribute("rel"))
    assert await body.locator("a[href^='javascript']").count() == 0
    await expect(w.get_by_test_id("message-input")).to_be_hidden()

    await axe.check(visitor, "the widget with an article open")
    axe.assert_clean()
    await w.get_by_test_id("panel").screenshot(path="/tmp/kb-widget.png")

    # "Yes": thanks, counted as helped and as a deflected chat.
    await view.get_by_test_id("kb-yes").click()
    await expect(view.get_by_test_id("kb-thanks")).to_be_visible()
    await expect(view.get_by_test_id("kb-yes")).to_be_hidden()
    await expect(board.get_by_test_id("board-kb-deflected-today")).to_have_text("1")
    await expect(board.get_by_test_id("board-kb-deflected-hour")).to_have_text("1")
    await expect(board.get_by_test_id("board-kb-views-today")).to_have_text("1")
    assert int(await board.get_by_test_id("board-kb-shown-today").inner_text()) >= 1
    assert (await managed(server, "drucker"))["helped"] == 1
    await visitor.screenshot(path="/tmp/kb-widget-thanks.png")
    await board.get_by_test_id("board-kb").screenshot(path="/tmp/kb-board.png")

    # The chat stays possible: back to the composer, the text kept, and sent.
    await view.get_by_test_id("kb-back").click()
    await expect(view).to_be_hidden()
    await expect(box).to_have_value("Mein Druckers")
    await expect(box).to_be_focused()
    await w.get_by_test_id("send-button").click()
    await expect(console_messages(console, "visitor")).to_have_text(["Mein Druckers"])
    # After the first message, no more suggestions.
    await box.press_sequentially("Rechnung", delay=20)
    await expect(console_messages(console, "visitor")).to_have_count(1)
    await expect(w.get_by_test_id("kb-suggestions")).to_be_hidden()
    assert dialogs == []


async def test_no_goes_back_to_the_composer_and_an_older_search_is_cancelled(
    make_server: Any, pages: Pages
) -> None:
    server = make_server()
    server.start()
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    await articles(server)
    console = await open_console(pages, server, "sam")
    await set_status(pages, console, "online")
    visitor = await german_widget(pages, server)
    w = widget(visitor)

    # The search for "Rechnung" is held back until a newer one was asked.
    held: list[Any] = []
    failed: list[str] = []

    async def hold(route: Any) -> None:
        if "Rechnung" in route.request.url and not held:
            held.append(route)
            return
        await route.continue_()

    def on_failed(request: Request) -> None:
        if "/api/kb/search" in request.url:
            failed.append(request.url)

    visitor.on("requestfailed", on_failed)
    await visitor.route("**/api/kb/search?*", hold)
    box = w.get_by_test_id("message-input")
    await box.fill("Rechnung")
    await eventually(probe(lambda: len(held) == 1))
    await box.fill("Drucker")
    await expect(suggestion(visitor, "drucker")).to_be_visible()
    # The older request was cancelled: its answer never shows.
    await eventually(probe(lambda: len(failed) == 1))
    assert "Rechnung" in failed[0]
    await expect(suggestion(visitor, "rechnung")).to_have_count(0)

    # Two characters ask nothing: the list goes.
    await box.fill("Dr")
    await expect(w.get_by_test_id("kb-suggestions")).to_be_hidden()

    # "No": back to the composer, the text kept; nothing counted as helped.
    await box.fill("Drucker")
    await suggestion(visitor, "drucker").click()
    await expect(w.get_by_test_id("kb-article")).to_be_visible()
    await w.get_by_test_id("kb-no").click()
    await expect(w.get_by_test_id("kb-article")).to_be_hidden()
    await expect(box).to_have_value("Drucker")
    await expect(box).to_be_focused()
    assert (await managed(server, "drucker"))["helped"] == 0
    # Keyboard: Tab from the composer reaches the suggestions.
    await expect(suggestion(visitor, "drucker")).to_be_visible()
    await suggestion(visitor, "drucker").focus()
    await visitor.keyboard.press("Enter")
    await expect(w.get_by_test_id("kb-article-title")).to_be_focused()


async def test_the_offline_form_suggests_articles_too(make_server: Any, pages: Pages) -> None:
    server = make_server()
    server.start()
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    await articles(server)
    visitor = await german_widget(pages, server)  # nobody online: the offline form
    w = widget(visitor)
    await expect(w.get_by_test_id("offline-form")).to_be_visible()
    text = w.get_by_test_id("offline-text")
    await text.press_sequentially("Die Rechnungen", delay=20)
    await expect(suggestion(visitor, "rechnung")).to_be_visible()
    await suggestion(visitor, "rechnung").click()
    view = w.get_by_test_id("kb-article")
    await expect(view.get_by_test_id("kb-article-title")).to_have_text("Rechnung herunterladen")
    await view.get_by_test_id("kb-no").click()
    await expect(w.get_by_test_id("offline-form")).to_be_visible()
    await expect(text).to_have_value("Die Rechnungen")
    await expect(text).to_be_focused()
