"""The operator console as native ES modules (operator_console/js/, entry main.js).

Module scripts fail quietly (a 404 or a wrong MIME type of one import only logs a
console error and nothing runs), so this checks that every module is served as
JavaScript and that signing in logs no error at all. It also checks the rules of
the console's source: every user-visible string goes through ``t()`` with a key of
the English catalog (shared/i18n/en.js; test_console_i18n.py checks the others),
no ``innerHTML``, no file over 800 lines, no globals between files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import ConsoleMessage, expect

from .conftest import Pages

CONSOLE = Path(__file__).resolve().parents[2] / "operator_console"
JS = CONSOLE / "js"
PASSWORD = "pw-secret"


def modules() -> list[Path]:
    return sorted(JS.rglob("*.js"))


def message_keys() -> set[str]:
    table = (JS / "shared" / "i18n" / "en.js").read_text()
    return set(re.findall(r"^\s*'([^']+)':\s*'", table, re.M))


def test_index_loads_only_the_entry_module() -> None:
    index = (CONSOLE / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", index)
    assert scripts == ['<script type="module" src="js/main.js">']


def test_console_source_rules() -> None:
    keys = message_keys()
    assert len(keys) > 300
    problems: list[str] = []
    for path in modules():
        text = path.read_text()
        rel = path.relative_to(CONSOLE)
        if not text.startswith("/*"):
            problems.append(f"{rel}: no header comment")
        if text.count("\n") > 800:
            problems.append(f"{rel}: over 800 lines")
        code = re.sub(r"/\*.*?\*/|^\s*//.*$", "", text, flags=re.S | re.M)  # comments may name them
        if re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", code):
            problems.append(f"{rel}: HTML from strings")
        if re.search(r"window\.chatserver\w*\s*=", code):
            problems.append(f"{rel}: a global between files")
        for key in re.findall(r"\bt\('([^']+)'", text):
            # Keys built from a value ('ticket.state.' + state) end with a dot.
            if key.endswith("."):
                if not any(k.startswith(key) for k in keys):
                    problems.append(f"{rel}: no message starts with {key!r}")
            elif key not in keys:
                problems.append(f"{rel}: no message {key!r}")
    index = (CONSOLE / "index.html").read_text()
    for key in re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', index):
        if key not in keys:
            problems.append(f"index.html: no message {key!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.asyncio(loop_scope="session")
async def test_every_module_is_served_as_javascript(server: Any) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for path in modules():
            rel = path.relative_to(CONSOLE).as_posix()
            response = await http.get(f"/console/{rel}")
            assert response.status_code == 200, rel
            assert "javascript" in response.headers["content-type"], (rel, response.headers)
            assert response.content == path.read_bytes(), rel


@pytest.mark.asyncio(loop_scope="session")
async def test_console_starts_without_errors(server: Any, pages: Pages) -> None:
    server.add_operator("mo", password=PASSWORD, name="Mo Modules", role="supervisor")
    page = await pages.new("console[mo]")
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console.{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    await page.goto(server.http_url + "/console/")
    # The strings of index.html are filled from the message table.
    await expect(page.get_by_test_id("login-submit")).to_have_text("Sign in")
    await page.get_by_test_id("login-username").fill("mo")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await pages.frames(page).wait_for(lambda f: f.get("type") == "welcome")
    await expect(page.get_by_test_id("connection-banner")).to_be_hidden()
    await expect(page.get_by_test_id("nav-board")).to_have_text("Board")
    await page.get_by_test_id("nav-board").click()
    await expect(page.get_by_test_id("board-online")).to_have_text(re.compile(r"^\d+$"))
    await page.get_by_test_id("nav-tickets").click()
    await expect(page.locator("#ticket-list-status")).to_contain_text("Updated")
    # No globals: the views talk through imports.
    globals_: list[str] = await page.evaluate(
        "() => Object.keys(window).filter(k => k.startsWith('chatserver'))"
    )
    assert globals_ == []
    assert not problems, problems


@pytest.mark.asyncio(loop_scope="session")
async def test_sign_in_is_never_sent_before_the_console_script_runs(
    server: Any, browser: Any
) -> None:
    """Without the console's script (not run yet, or an import failed to load), the
    sign-in button is disabled: no native submission that would reload the page and
    lose what was typed, and the form posts, so a password never lands in a URL."""
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        await page.goto(server.http_url + "/console/")
        await expect(page.get_by_test_id("login-submit")).to_be_disabled()
        # ...and says why, and what to do.
        await expect(page.get_by_test_id("login-noscript")).to_contain_text("needs JavaScript")
        assert await page.locator("#login-form").get_attribute("method") == "post"
        await page.get_by_test_id("login-username").fill("mo")
        await page.get_by_test_id("login-password").fill(PASSWORD)
        before = len(requests)
        await page.get_by_test_id("login-password").press("Enter")
        await page.wait_for_timeout(300)
        assert requests[before:] == [], "the form was submitted without the script"
        assert "pw-secret" not in page.url
    finally:
        await context.close()
