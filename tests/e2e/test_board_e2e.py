"""End-to-end: the supervisor board in a real browser, fed live by a real server.

A supervisor's console shows the board; an operator goes online, a visitor
queues and is assigned, and the numbers, rows and charts follow without a
reload. From the board the supervisor watches the chat and whispers to the
operator; the visitor never sees the whisper.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from .conftest import Pages
from .test_browser import PASSWORD, open_console, open_widget, set_status, visitor_send, widget

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def open_board(pages: Pages, server: Any, username: str) -> Page:
    page = await open_console(pages, server, username)
    await set_status(pages, page, "away")  # a supervisor watching, not taking chats
    await page.get_by_test_id("nav-board").click()
    await expect(page.get_by_test_id("board-view")).to_be_visible()
    await expect(page.get_by_test_id("board-online")).to_be_visible()
    # Marks this document: a reload would lose it.
    await page.evaluate("() => { window.__boardNoReload = true; }")
    return page


def operator_row(board: Page, name: str) -> Any:
    return board.locator(f'[data-testid="board-operator"][data-name="{name}"]')


async def test_board_follows_an_operator_and_a_visitor_live(
    make_server: Any, pages: Pages, ws_clients: list[Any]
) -> None:
    server = make_server(env={"CHATSERVER_BOARD_INTERVAL": "0.3"})
    server.start()
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    server.add_operator("anna", password=PASSWORD, name="Anna Operator", capacity=3)

    board = await open_board(pages, server, "sam")
    await expect(board.get_by_test_id("board-online")).to_have_text("0")
    await expect(board.get_by_test_id("board-queue-total")).to_have_text("0")
    await expect(board.get_by_test_id("board-started")).to_have_text("0")
    await expect(operator_row(board, "Sam Supervisor")).to_have_attribute("data-status", "away")
    await expect(board.get_by_test_id("chart-queue")).to_be_visible()
    # Operators only: nobody else gets the Board.
    # The operator signs in (away first): a new row, without a reload.
    console = await open_console(pages, server, "anna")
    await set_status(pages, console, "away")
    await expect(console.get_by_test_id("nav-board")).to_have_count(0)
    row = operator_row(board, "Anna Operator")
    await expect(row).to_have_attribute("data-status", "away")
    await expect(row.get_by_test_id("board-operator-load")).to_have_text("0 / 3")

    # A 3rd-level specialist is online (so the widget offers a chat, not the offline
    # form) and takes no 1st-level chats. A visitor writes: the queue grows.
    server.add_operator("lena", password=PASSWORD, name="Lena Level3", capacity=1, levels=[3])
    ws_clients.append(await server.operator("lena"))
    visitor = await open_widget(pages, server)
    await visitor_send(visitor, "Where is my parcel?", name="Paula Parcel")
    await expect(board.get_by_test_id("board-queue-total")).to_have_text("1")
    await expect(board.get_by_test_id("board-longest-wait")).to_contain_text("longest")
    await expect(board.get_by_test_id("board-started")).to_have_text("1")
    waiting = board.get_by_test_id("board-waiting-item")
    await expect(waiting).to_have_count(1)
    await expect(waiting).to_contain_text("Paula Parcel")

    # The operator goes online and gets the chat: queue, status, load, chats, counts.
    await set_status(pages, console, "online")
    await expect(console.get_by_test_id("chat-tab")).to_have_count(1)
    await expect(board.get_by_test_id("board-queue-total")).to_have_text("0")
    await expect(board.get_by_test_id("board-online")).to_have_text("2")
    await expect(row).to_have_attribute("data-status", "online")
    await expect(row.get_by_test_id("board-operator-load")).to_have_text("1 / 3")
    chip = row.get_by_test_id("board-chat")
    await expect(chip).to_have_count(1)
    await expect(chip).to_contain_text("Paula Parcel")
    await expect(board.get_by_test_id("board-outcomes")).to_have_attribute("data-answered", "1")
    await expect(board.get_by_test_id("board-load")).to_have_text("1 / 9")
    await expect(board.get_by_test_id("board-wait")).not_to_have_text("\u2014 / \u2014")
    # Charts: load per operator has Anna's bar; the queue history has points.
    await expect(
        board.get_by_test_id("chart-load").locator('[data-label="Anna Operator"]')
    ).to_have_count(1)
    await expect(board.get_by_test_id("chart-queue").locator("path.series-queue")).to_have_count(1)

    # Watch the chat read-only, and whisper to the operator.
    await chip.click()
    watch = board.get_by_test_id("board-watch")
    await expect(watch).to_be_visible()
    await expect(watch.get_by_test_id("watch-title")).to_have_text("Paula Parcel")
    await expect(watch.get_by_test_id("watch-message").first).to_have_text("Where is my parcel?")
    secret = "She ordered twice; offer free shipping"
    await watch.get_by_test_id("whisper-input").fill(secret)
    await watch.get_by_test_id("whisper-send").click()
    await expect(console.get_by_test_id("note")).to_have_text(secret)
    await expect(watch.get_by_test_id("watch-note")).to_have_text(secret)
    # The operator answers; the supervisor sees it live; the visitor never sees the whisper.
    await console.get_by_test_id("message-input").fill("Let me look that up.")
    await console.get_by_test_id("send-button").click()
    await expect(watch.get_by_test_id("watch-message").last).to_have_text("Let me look that up.")
    w = widget(visitor)
    await expect(w.locator('[data-testid="message"][data-from="operator"] .txt')).to_have_text(
        ["Let me look that up."]
    )
    assert secret not in (await w.inner_text())

    # The first response shows up in the stats; all of it without a reload.
    await expect(board.get_by_test_id("board-first-response")).not_to_have_text("\u2014 / \u2014")
    assert await board.evaluate("() => window.__boardNoReload === true")
    await expect(board.locator(".toast-error")).to_have_count(0)
