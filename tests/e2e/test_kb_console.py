"""End-to-end: the knowledge base in the operator console (issue 21), in Chromium
against a real server.

- A supervisor writes an article on the Knowledge base page, previews it (the
  server's sanitised HTML in a sandboxed frame: a hostile body stays inert, no
  dialog ever opens), publishes it, changes it (a revision appears), and
  unpublishes it; the visitors' search follows. Bad values are refused in the
  form and by the server, and nothing changes.
- An agent (role operator) has no Knowledge base entry.
- Beside a chat, articles matching the visitor's messages are suggested (agents-only
  ones too, marked); "Insert link" and "Insert text" fill the reply composer.
- axe finds no serious or critical violation on the page; a screenshot of it is
  written to /tmp/kb-console.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Dialog, Page, expect

from .conftest import Pages
from .test_accessibility_e2e import Axe, axe_js  # noqa: F401  (the fixture)
from .test_browser import PASSWORD, open_console, open_widget, set_status, visitor_send, widget

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOSTILE = (
    "Der Drucker **druckt nicht**? Prüfen Sie das Kabel.\n\n"
    "<script>alert('script')</script>\n\n"
    '<img src="x" onerror="alert(\'img\')">\n\n'
    "[click](javascript:alert('link'))\n"
)


async def http(server: Any, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    """One request to the server (with an operator token if given)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        return await client.request(method, path, headers=headers, **kw)


async def login(server: Any, username: str) -> str:
    """An operator token from POST /api/login."""
    response = await http(
        server, "POST", "/api/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def create_article(server: Any, token: str, **fields: Any) -> dict[str, Any]:
    """A published article through the authoring API."""
    body = {"lang": "de", "status": "published", **fields}
    response = await http(server, "POST", "/api/kb/manage/articles", token, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def visitor_search(server: Any, q: str, lang: str = "de") -> list[str]:
    """Slugs a visitor's search finds."""
    response = await http(server, "GET", "/api/kb/search", params={"q": q, "lang": lang})
    assert response.status_code == 200, response.text
    return [r["slug"] for r in response.json()["results"]]


def no_dialogs(page: Page) -> list[str]:
    """Every dialog the page opens is recorded (and dismissed): the test asserts none."""
    opened: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        opened.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return opened


async def open_kb(pages: Pages, server: Any, username: str) -> Page:
    page = await open_console(pages, server, username)
    await page.get_by_test_id("nav-kb").click()
    await expect(page.get_by_test_id("kb-view")).to_be_visible()
    await expect(page.get_by_test_id("kb-heading")).to_have_text("Knowledge base")
    return page


def row(page: Page, slug: str) -> Any:
    return page.locator(f'[data-testid="kb-row"][data-slug="{slug}"]')


async def test_supervisor_writes_previews_publishes_edits_and_unpublishes(
    server: Any,
    pages: Pages,
    axe_js: Path,  # noqa: F811
) -> None:
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    page = await open_kb(pages, server, "sam")
    dialogs = no_dialogs(page)
    await expect(page.get_by_test_id("kb-empty")).to_be_visible()

    # A new article: bad values are refused in the form, nothing is sent.
    await page.get_by_test_id("kb-new").click()
    form = page.get_by_test_id("kb-form")
    await expect(form.get_by_test_id("kb-title-input")).to_be_focused()
    await form.get_by_test_id("kb-body-input").fill(HOSTILE)
    await form.get_by_test_id("kb-save").click()
    await expect(form.get_by_test_id("kb-form-error")).to_have_text(
        "Enter a title of 1 to 200 characters."
    )
    await form.get_by_test_id("kb-title-input").fill("Drucker druckt nicht")
    await form.get_by_test_id("kb-slug-input").fill("Bad Slug!")
    await form.get_by_test_id("kb-save").click()
    await expect(form.get_by_test_id("kb-form-error")).to_contain_text("address name")
    await expect(page.get_by_test_id("kb-row")).to_have_count(0)

    # The preview: the server's sanitised HTML, in a sandboxed frame; nothing runs.
    await form.get_by_test_id("kb-slug-input").fill("drucker-druckt-nicht")
    await form.get_by_test_id("kb-lang-input").select_option("de")
    await form.get_by_test_id("kb-tags-input").fill("drucker, kabel")
    await form.get_by_test_id("kb-preview").click()
    frame_el = form.get_by_test_id("kb-preview-frame")
    await expect(frame_el).to_have_attribute("sandbox", "")
    preview = page.frame_locator('[data-testid="kb-preview-frame"]')
    await expect(preview.locator("strong")).to_have_text("druckt nicht")
    await expect(preview.locator("script")).to_have_count(0)
    assert await preview.locator("[onerror]").count() == 0
    assert await preview.locator("a[href^='javascript']").count() == 0

    # Created: a draft, with its first revision; the visitors' search does not find it.
    await form.get_by_test_id("kb-save").click()
    await expect(form.get_by_test_id("kb-form-status")).to_have_text("Draft")
    await expect(form.get_by_test_id("kb-form-heading")).to_have_text(
        "Edit \u201cDrucker druckt nicht\u201d"
    )
    await expect(form.get_by_test_id("kb-revision")).to_have_count(1)
    await expect(form.get_by_test_id("kb-revision").first).to_contain_text("Created")
    await expect(form.get_by_test_id("kb-revision-by").first).to_have_text("Sam Supervisor")
    await expect(row(page, "drucker-druckt-nicht").get_by_test_id("kb-row-status")).to_have_text(
        "Draft"
    )
    assert await visitor_search(server, "Drucker") == []

    # Published: found by visitors (the stemmer: "Druckers" finds "Drucker").
    await form.get_by_test_id("kb-publish").click()
    await expect(form.get_by_test_id("kb-form-status")).to_have_text("Published")
    await expect(form.get_by_test_id("kb-revision")).to_have_count(2)
    await expect(row(page, "drucker-druckt-nicht").get_by_test_id("kb-row-status")).to_have_text(
        "Published"
    )
    assert await visitor_search(server, "Druckers") == ["drucker-druckt-nicht"]

    await axe_check(page, axe_js, "the knowledge base page with the form open")
    await page.set_viewport_size({"width": 1280, "height": 1900})
    await page.mouse.move(0, 0)
    await page.screenshot(path="/tmp/kb-console.png")
    await page.set_viewport_size({"width": 1280, "height": 800})

    # Changed: a new revision, "Changed", newest first.
    await form.get_by_test_id("kb-title-input").fill("Drucker druckt gar nicht")
    await form.get_by_test_id("kb-save").click()
    await expect(form.get_by_test_id("kb-revision")).to_have_count(3)
    await expect(form.get_by_test_id("kb-revision").first).to_contain_text("Changed")
    await expect(row(page, "drucker-druckt-nicht").get_by_test_id("kb-row-title")).to_contain_text(
        "Drucker druckt gar nicht"
    )

    # A translation: a copy of the article in French, linked to it.
    await form.get_by_test_id("kb-translate-lang").select_option("fr")
    await form.get_by_test_id("kb-translate").click()
    form = page.get_by_test_id("kb-form")
    await expect(form.get_by_test_id("kb-form-heading")).to_have_text("New translation (French)")
    await expect(form.get_by_test_id("kb-lang-input")).to_have_value("fr")
    await expect(form.get_by_test_id("kb-lang-input")).to_be_disabled()
    await expect(form.get_by_test_id("kb-body-input")).to_have_value(HOSTILE.strip())
    await form.get_by_test_id("kb-title-input").fill("L'imprimante n'imprime pas")
    await form.get_by_test_id("kb-slug-input").fill("imprimante")
    await form.get_by_test_id("kb-save").click()
    await expect(form.get_by_test_id("kb-form-status")).to_have_text("Draft")
    await expect(form.get_by_test_id("kb-translation")).to_have_text(
        "German: Drucker druckt gar nicht (Published)"
    )
    await expect(row(page, "imprimante").get_by_test_id("kb-row-lang")).to_have_text("French")
    await form.get_by_test_id("kb-translation").click()
    await expect(form.get_by_test_id("kb-form-heading")).to_have_text(
        "Edit “Drucker druckt gar nicht”"
    )
    await expect(form.get_by_test_id("kb-translation")).to_have_text(
        "French: L'imprimante n'imprime pas (Draft)"
    )

    # The server refuses a slug taken in that language: said in the form, nothing changes.
    await page.get_by_test_id("kb-new").click()
    form = page.get_by_test_id("kb-form")
    await form.get_by_test_id("kb-title-input").fill("Another printer article")
    await form.get_by_test_id("kb-slug-input").fill("drucker-druckt-nicht")
    await form.get_by_test_id("kb-lang-input").select_option("de")
    await form.get_by_test_id("kb-body-input").fill("Some text.")
    await form.get_by_test_id("kb-save").click()
    await expect(form.get_by_test_id("kb-form-error")).to_contain_text("address name is taken")
    await expect(page.get_by_test_id("kb-row")).to_have_count(2)

    # Unpublished from the list's Edit: a draft again, no longer found by visitors.
    await row(page, "drucker-druckt-nicht").get_by_test_id("kb-edit").click()
    form = page.get_by_test_id("kb-form")
    await expect(form.get_by_test_id("kb-title-input")).to_have_value("Drucker druckt gar nicht")
    await expect(form.get_by_test_id("kb-body-input")).to_have_value(HOSTILE.strip())
    await form.get_by_test_id("kb-publish").click()
    await expect(form.get_by_test_id("kb-form-status")).to_have_text("Draft")
    await expect(form.get_by_test_id("kb-revision")).to_have_count(4)
    await expect(form.get_by_test_id("kb-revision").first).to_contain_text("Unpublished")
    await expect(row(page, "drucker-druckt-nicht").get_by_test_id("kb-row-status")).to_have_text(
        "Draft"
    )
    assert await visitor_search(server, "Drucker") == []

    # The filters: by state and by words.
    await page.get_by_test_id("kb-filter-status").select_option("published")
    await expect(page.get_by_test_id("kb-empty")).to_be_visible()
    await page.get_by_test_id("kb-filter-status").select_option("")
    await page.get_by_test_id("kb-filter-lang").select_option("fr")
    await expect(page.get_by_test_id("kb-row")).to_have_count(1)
    await expect(row(page, "imprimante")).to_be_visible()
    await page.get_by_test_id("kb-filter-lang").select_option("")
    await page.get_by_test_id("kb-search").fill("gar")
    await expect(page.get_by_test_id("kb-row")).to_have_count(1)
    await expect(row(page, "drucker-druckt-nicht")).to_be_visible()
    assert dialogs == []


async def axe_check(page: Page, script: Path, where: str) -> None:
    axe = Axe(script)
    await axe.check(page, where)
    axe.assert_clean()


async def test_an_agent_has_no_knowledge_base_page(server: Any, pages: Pages) -> None:
    server.add_operator("anna", password=PASSWORD, name="Anna Operator")
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    console = await open_console(pages, server, "anna")
    await expect(console.get_by_test_id("nav-tickets")).to_be_visible()
    await expect(console.get_by_test_id("nav-kb")).to_have_count(0)
    # The server says no as well.
    token = await login(server, "anna")
    response = await http(server, "GET", "/api/kb/manage/articles", token)
    assert response.status_code == 403
    supervisor = await open_console(pages, server, "sam")
    await expect(supervisor.get_by_test_id("nav-kb")).to_have_text("Knowledge base")


async def test_suggestions_beside_a_chat_fill_the_composer(server: Any, pages: Pages) -> None:
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    server.add_operator("anna", password=PASSWORD, name="Anna Operator", capacity=3)
    token = await login(server, "sam")
    public = await create_article(
        server,
        token,
        title="Rechnung herunterladen",
        body="Die **Rechnung** finden Sie unter *Konto*.\n\n- Schritt eins\n- Schritt zwei",
        slug="rechnung-herunterladen",
    )
    await create_article(
        server,
        token,
        title="Rechnungen stornieren (intern)",
        visibility="agents",
        body="Nur intern: Storno im Backoffice.",
        slug="rechnung-storno",
    )
    await create_article(
        server, token, title="Versandkosten", body="Versand ist gratis.", slug="versand"
    )

    console = await open_console(pages, server, "anna")
    dialogs = no_dialogs(console)
    await set_status(pages, console, "online")
    visitor = await open_widget(pages, server)
    # The visitor writes German: the suggestions are the German articles.
    await widget(visitor).get_by_test_id("language-select").select_option("de")
    await visitor_send(visitor, "Wo finde ich meine Rechnungen?", name="Rita Rechnung")
    await expect(console.get_by_test_id("visitor-lang")).to_have_text("German")
    await expect(console.get_by_test_id("chat-view")).to_be_visible()

    panel = console.get_by_test_id("kb-suggest")
    await expect(panel).to_be_visible()
    suggestions = panel.get_by_test_id("kb-suggestion")
    await expect(suggestions).to_have_count(2)
    await expect(panel.get_by_test_id("kb-suggest-status")).to_have_text("2 articles suggested.")
    first = panel.locator('[data-testid="kb-suggestion"][data-slug="rechnung-herunterladen"]')
    internal = panel.locator('[data-testid="kb-suggestion"][data-slug="rechnung-storno"]')
    await expect(internal.get_by_test_id("kb-agents-only")).to_have_text("Agents only")
    await expect(first.get_by_test_id("kb-agents-only")).to_have_count(0)
    # No public page to send the visitor to: no link to insert.
    await expect(internal.get_by_test_id("kb-insert-link")).to_be_disabled()

    composer = console.get_by_test_id("message-input")
    await composer.fill("Hallo!")
    await first.get_by_test_id("kb-insert-link").click()
    url = server.http_url + str(public["url"])
    await expect(composer).to_have_value(f"Hallo! Rechnung herunterladen: {url}")
    await expect(composer).to_be_focused()

    await composer.fill("")
    await first.get_by_test_id("kb-insert-text").click()
    await expect(composer).to_have_value(
        "Die Rechnung finden Sie unter Konto.\n\n- Schritt eins\n- Schritt zwei"
    )

    await console.screenshot(path="/tmp/kb-console-suggestions.png")
    # A newer visitor message asks again.
    await visitor_send(visitor, "Und was kostet der Versand?")
    await expect(
        panel.locator('[data-testid="kb-suggestion"][data-slug="versand"]')
    ).to_be_visible()
    assert dialogs == []
    await expect(console.locator(".toast-error")).to_have_count(0)
