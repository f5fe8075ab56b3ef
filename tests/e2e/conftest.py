"""Browser fixtures for the end-to-end tests.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright (async API);
``playwright install`` is never used. Without that binary the tests FAIL (CI
installs the ``chromium`` package).

The browser lives for the whole session on pytest-asyncio's session event loop,
so every e2e test runs on that loop (``pytestmark`` in the test modules). The
async API leaves no event loop registered in the main thread, so the other,
function-loop tests of the suite are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    WebSocket,
    async_playwright,
    expect,
)

from tests.network_lock import network_steady

CHROMIUM = Path(os.environ.get("CHATSERVER_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


class SlowLoad(UserWarning):
    """A page that was loaded again because it was not ready in time (shown in the
    summary, never an error: see open_console)."""

expect.set_options(timeout=TIMEOUT_MS)


def chromium_problem() -> str | None:
    """Why the browser cannot be used, or None."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} not found: the browser e2e tests need Debian's chromium package "
            "(apt-get install chromium); `playwright install` is not used"
        )
    return None


@pytest.fixture(autouse=True)
def _network_steady() -> Iterator[None]:
    """No network interface comes or goes during a browser test (tests/network_lock.py)."""
    with network_steady():
        yield


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    problem = chromium_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class FrameLog:
    """Every JSON WebSocket frame a page receives, in order."""

    def __init__(self, page: Page) -> None:
        self.frames: list[dict[str, Any]] = []
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: WebSocket) -> None:
        ws.on("framereceived", self._on_frame)

    def _on_frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            return
        try:
            frame = json.loads(payload)
        except ValueError:
            return
        if isinstance(frame, dict):
            self.frames.append(frame)

    def mark(self) -> int:
        return len(self.frames)

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        since: int = 0,
        timeout: float = TIMEOUT_MS / 1000,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames[since:]:
                if predicate(frame):
                    return frame
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching frame within {timeout} s; received: {self.frames[since:][-20:]}"
                )
            await asyncio.sleep(0.02)


class Pages:
    """Opens pages, each in a fresh browser context; records uncaught JS errors."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        self.frame_logs: dict[Page, FrameLog] = {}

    async def new(self, name: str) -> Page:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{name}: {exc}"))
        self.frame_logs[page] = FrameLog(page)
        return page

    def frames(self, page: Page) -> FrameLog:
        return self.frame_logs[page]

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def ws_clients() -> AsyncIterator[list[Any]]:
    """WebSocket clients (chatserver.client) a test opens on the session loop: closed after it."""
    opened: list[Any] = []
    yield opened
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def pages(browser: Browser) -> AsyncIterator[Pages]:
    opened = Pages(browser)
    try:
        yield opened
    finally:
        await opened.close()
    assert not opened.errors, f"uncaught errors in the page(s): {opened.errors}"
