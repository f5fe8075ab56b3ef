"""Transfer to a colleague, in a real browser: the agent picks a colleague by name
from a keyboard-searchable list (status, load, level shown), never types an id; a
name that matches nobody is refused inline and the chat stays."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from .conftest import Pages
from .test_browser import PASSWORD, open_console, set_status
from .test_never_stuck_e2e import CONSOLE_EN

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_transfer_to_a_colleague_picked_by_name_with_the_keyboard(
    server: Any, pages: Pages
) -> None:
    server.add_operator("fiona", password=PASSWORD, name="Fiona First", capacity=3)
    server.add_operator("gregor", password=PASSWORD, name="Gregor Green", capacity=4)
    server.add_operator("gina", password=PASSWORD, name="Gina Gone", capacity=2)
    server.add_operator("olaf", password=PASSWORD, name="Olaf Offline", capacity=2)
    fiona = await open_console(pages, server, "fiona")
    await set_status(pages, fiona, "online")
    visitor = await server.visitor()
    try:
        await visitor.send("Bitte an Gregor")
        tab = fiona.locator(f'[data-testid="chat-tab"][data-session-id="{visitor.session_id}"]')
        await expect(tab).to_have_count(1)
        await tab.click()
        # Colleagues come online (and one away) after the chat is taken.
        gregor = await open_console(pages, server, "gregor")
        await set_status(pages, gregor, "online")
        gina = await open_console(pages, server, "gina")
        await set_status(pages, gina, "away")

        await fiona.get_by_test_id("transfer-button").click()
        await fiona.get_by_test_id("transfer-target").select_option("operator")
        box = fiona.get_by_test_id("transfer-operator")
        await expect(box).to_be_focused()
        await expect(box).to_have_attribute("role", "combobox")
        await expect(box).to_have_attribute(
            "placeholder", CONSOLE_EN["transfer.operator.placeholder"]
        )
        listbox = fiona.get_by_test_id("transfer-operators")
        options = listbox.get_by_test_id("transfer-operator-option")
        # Online first, then away; neither me nor the offline colleague.
        await expect(options).to_have_count(2)
        await expect(options.nth(0)).to_contain_text("Gregor Green")
        await expect(options.nth(0)).to_contain_text("online")
        await expect(options.nth(0)).to_contain_text("0/4 chats")
        await expect(options.nth(0)).to_contain_text("level 1")
        await expect(options.nth(1)).to_contain_text("Gina Gone")
        await expect(options.nth(1)).to_have_attribute("data-status", "away")

        # A name that matches nobody: nothing to choose, refused inline, the chat stays.
        await box.fill("Zora")
        await expect(options).to_have_count(0)
        await expect(listbox.get_by_test_id("transfer-operators-none")).to_have_text(
            CONSOLE_EN["transfer.operator.none"]
        )
        await box.press("Escape")
        await expect(listbox).to_be_hidden()
        await fiona.get_by_test_id("transfer-submit").click()
        await expect(fiona.get_by_test_id("transfer-error")).to_have_text(
            CONSOLE_EN["transfer.operator.missing"]
        )
        await expect(tab).to_have_count(1)

        # Keyboard only: type, arrow, Enter chooses, Enter transfers.
        await box.fill("")
        await box.press_sequentially("gr")
        await expect(options).to_have_count(1)
        await box.press("ArrowUp")
        await expect(options.nth(0)).to_have_attribute("aria-selected", "true")
        await expect(box).to_have_attribute(
            "aria-activedescendant", await options.nth(0).get_attribute("id") or ""
        )
        await box.press("Enter")
        await expect(box).to_have_value("Gregor Green")
        await expect(listbox).to_be_hidden()
        await expect(tab).to_have_count(1)
        await box.press("Enter")
        await expect(tab).to_have_count(0)
        await expect(
            gregor.locator(f'[data-testid="chat-tab"][data-session-id="{visitor.session_id}"]')
        ).to_have_count(1)
    finally:
        await visitor.close()
