"""End-to-end: axe-core finds no serious or critical violation in any view.

axe-core (npm package, pinned in tests/e2e/axe/package-lock.json) is installed
with ``npm ci`` when its node_modules is missing and injected into each page
with Playwright's ``add_script_tag`` (from the page's origin, through ``page.route``,
as the pages' CSP refuses inline scripts). Checked: the widget (closed, open, the
offline form with its inline errors, a chat, the ticket list), the console
(login, chats with a chat open, tickets) and the supervisor board.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from .conftest import Pages
from .test_board_e2e import open_board
from .test_browser import PASSWORD, open_console, set_status, visitor_send, widget

pytestmark = pytest.mark.asyncio(loop_scope="session")

AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"

AXE_PATH = "/__e2e__/axe.min.js"
AXE_URL = "**" + AXE_PATH

# Impacts that fail the test; "minor" and "moderate" are reported by axe but tolerated.
FAILING = ("serious", "critical")

RUN_AXE = """async () => {
  const result = await window.axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, summary: n.failureSummary})),
  }));
}"""

SETTLE = """() => Promise.all([document, ...Array.from(document.querySelectorAll('*'))
    .map(e => e.shadowRoot).filter(Boolean)].flatMap(r => r.getAnimations())
  .filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
  .map(a => a.finished.catch(() => null)))"""

RUN_STRUCTURE = """async () => {
  const rules = ['page-has-heading-one', 'landmark-one-main', 'landmark-no-duplicate-main'];
  const result = await window.axe.run(document, {runOnly: {type: 'rule', values: rules}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help}));
}"""


@pytest.fixture(scope="module")
def axe_js() -> Path:
    """axe.min.js, installed with ``npm ci`` from the lock file if missing."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm not found: run `make system-deps`", pytrace=False)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=AXE_DIR,
            check=True,
            timeout=300,
        )
    assert AXE_JS.exists(), f"npm ci did not install {AXE_JS}"
    return AXE_JS


class Axe:
    """Runs axe in pages and collects every serious or critical violation."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.found: list[str] = []

    async def check(self, page: Page, where: str) -> None:
        if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
            # The pages' Content-Security-Policy (script-src 'self') refuses an inline
            # script: axe is served from the page's own origin, by Playwright.
            await page.route(AXE_URL, lambda route: route.fulfill(path=self.script))
            origin = await page.evaluate("() => location.origin")
            await page.add_script_tag(url=origin + AXE_PATH)
        # Colours mid-transition (the panel fades in) are not what a reader sees.
        await page.evaluate(SETTLE)
        violations: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
        self.found += [
            f"{where}: [{v['impact']}] {v['id']}: {v['help']} {v['nodes']}"
            for v in violations
            if v["impact"] in FAILING
        ]

    async def check_structure(self, page: Page, where: str) -> None:
        """An h1, and a main landmark (of any impact: these rules are "moderate")."""
        await self.check(page, where)
        violations: list[dict[str, Any]] = await page.evaluate(RUN_STRUCTURE)
        self.found += [f"{where}: [{v['impact']}] {v['id']}: {v['help']}" for v in violations]

    def assert_clean(self) -> None:
        assert not self.found, "axe violations:\n" + "\n".join(self.found)


async def test_no_serious_violations_anywhere(make_server: Any, pages: Pages, axe_js: Path) -> None:
    axe = Axe(axe_js)
    server = make_server()
    server.start()
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    server.add_operator("anna", password=PASSWORD, name="Anna Operator", capacity=3)

    # Widget, nobody online: closed, open (the offline form), the form's inline errors.
    offline = await pages.new("visitor-offline")
    await offline.emulate_media(reduced_motion="reduce")  # no fade-in half-way
    await offline.goto(server.http_url + "/")
    w = widget(offline)
    await expect(w.get_by_test_id("bubble")).to_be_visible()
    await axe.check(offline, "the closed widget")
    await w.get_by_test_id("bubble").click()
    await expect(w.get_by_test_id("offline-form")).to_be_visible()
    await axe.check(offline, "the offline form")
    await w.get_by_test_id("offline-email").fill("not-an-address")
    await w.get_by_test_id("offline-submit").click()
    await expect(w.locator("[aria-invalid='true']").first).to_be_attached()
    await axe.check(offline, "the offline form with errors")

    # Console: the login screen, then chats with a chat open.
    login = await pages.new("console-login")
    await login.goto(server.http_url + "/console/")
    await expect(login.get_by_test_id("login-submit")).to_be_visible()
    await axe.check_structure(login, "the console login")
    console = await open_console(pages, server, "anna")
    await set_status(pages, console, "online")
    await axe.check_structure(console, "the console without chats")

    visitor = await pages.new("visitor")
    await visitor.emulate_media(reduced_motion="reduce")  # no fade-in half-way
    await visitor.goto(server.http_url + "/")
    vw = widget(visitor)
    await vw.get_by_test_id("bubble").click()
    await expect(vw.get_by_test_id("message-input")).to_be_visible()
    await axe.check(visitor, "the open widget")
    await visitor_send(visitor, "Where is my parcel?", name="Paula Parcel")
    tab = console.get_by_test_id("chat-tab")
    await expect(tab).to_have_count(1)
    await tab.click()
    await expect(console.get_by_test_id("chat-view")).to_be_visible()
    await expect(vw.locator('[data-testid="message"][data-from="visitor"]')).to_have_count(1)
    await axe.check(visitor, "the widget's chat")
    await axe.check_structure(console, "the console's chats with a chat open")

    # The widget's ticket list.
    await vw.get_by_test_id("my-tickets").click()
    await expect(vw.get_by_test_id("tickets")).to_be_visible()
    await axe.check(visitor, "the widget's ticket list")

    # The console's tickets, and the board.
    await console.get_by_test_id("nav-tickets").click()
    await expect(console.get_by_test_id("ticket-list")).to_be_attached()
    await axe.check_structure(console, "the console's tickets")
    board = await open_board(pages, server, "sam")
    await axe.check(board, "the board")
    axe.assert_clean()


async def test_offline_form_with_a_file_has_no_serious_violations(
    server: Any, pages: Pages, axe_js: Path
) -> None:
    """The offline form with a file picked (its name, size and remove button), with
    its inline errors, and its success card."""
    axe = Axe(axe_js)
    page = await pages.new("visitor-offline-file")
    await page.emulate_media(reduced_motion="reduce")  # no fade-in half-way
    await page.goto(server.http_url + "/")
    w = widget(page)
    await w.get_by_test_id("bubble").click()
    await expect(w.get_by_test_id("offline-form")).to_be_visible()
    async with page.expect_response(lambda r: r.url.endswith("/api/attachments")) as up:
        await w.get_by_test_id("offline-file").set_input_files(
            files=[{"name": "receipt.txt", "mimeType": "text/plain", "buffer": b"CHF 80\n" * 20}]
        )
    assert (await up.value).status == 201
    await expect(w.get_by_test_id("offline-attachment")).to_have_count(1)
    await axe.check(page, "the offline form with a file")
    await w.get_by_test_id("offline-submit").click()
    await expect(w.locator("[aria-invalid='true']").first).to_be_attached()
    await axe.check(page, "the offline form with a file and errors")
    await w.get_by_test_id("offline-email").fill("rita@example.ch")
    await w.get_by_test_id("offline-subject").fill("Receipt")
    await w.get_by_test_id("offline-text").fill("The receipt is attached.")
    await w.get_by_test_id("offline-submit").click()
    await expect(w.get_by_test_id("offline-done")).to_be_visible()
    await axe.check(page, "the offline form's success card")
    axe.assert_clean()
