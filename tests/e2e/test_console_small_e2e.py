"""Smaller console items, in a real browser: the empty chat screen matches the
operator's status, and a new VIP chat's tab is brought to the front of a full tab
strip, visible, not clipped at the right edge."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from chatserver.client import VisitorClient

from .conftest import Pages
from .test_browser import PASSWORD, open_console, set_status
from .test_never_stuck_e2e import CONSOLE_EN
from .test_service_levels_e2e import ENV, identity

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_empty_screen_follows_the_status(server: Any, pages: Pages) -> None:
    server.add_operator("erna", password=PASSWORD, name="Erna Empty", capacity=3)
    console = await open_console(pages, server, "erna")
    online = console.get_by_test_id("chat-empty-online")
    offline = console.get_by_test_id("chat-empty-offline")
    await set_status(pages, console, "away")
    await expect(offline).to_be_visible()
    await expect(online).to_be_hidden()
    await set_status(pages, console, "online")
    await expect(online).to_have_text(CONSOLE_EN["chats.online"])
    await expect(offline).to_be_hidden()
    await set_status(pages, console, "offline")
    await expect(offline).to_be_visible()
    await expect(online).to_be_hidden()


async def test_a_new_vip_chat_is_brought_forward_in_the_tab_strip(
    make_server: Any, pages: Pages
) -> None:
    server = make_server(env=ENV)
    server.start()
    server.add_operator("tina", password=PASSWORD, name="Tina Tabs", capacity=20)
    console = await open_console(pages, server, "tina")
    await set_status(pages, console, "online")
    visitors: list[VisitorClient] = []
    try:
        tabs = console.get_by_test_id("chat-tab")
        for n in range(12):
            v = await server.visitor(name=f"Ordinary Visitor Number {n:02d}")
            visitors.append(v)
            await v.send("Hello")
            await expect(tabs).to_have_count(n + 1)
        strip = console.locator("#chat-tabs")
        assert await strip.evaluate("s => s.scrollWidth > s.clientWidth"), "the strip must overflow"
        vip = await server.visitor(name="Vera VIP", identity=identity("C-1001", "vip", "Vera VIP"))
        visitors.append(vip)
        await vip.send("Our VPN is down")
        tab = console.locator(f'[data-testid="chat-tab"][data-session-id="{vip.session_id}"]')
        await expect(tab).to_have_count(1)
        await expect(tabs.first).to_have_attribute("data-session-id", vip.session_id)
        await expect(tab).to_be_in_viewport(ratio=1)
        box = await tab.bounding_box()
        frame = await strip.bounding_box()
        assert box and frame
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
    finally:
        for v in visitors:
            await v.close()
