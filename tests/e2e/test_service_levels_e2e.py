"""End-to-end tests of the service-level UI in a real browser: SLA countdowns and
plan badges, transfers between support levels, canned responses, the visitor
context, the chat timer and callback requests (docs/http-api.md, "Service
levels" and "Time, canned responses, visitor context, callbacks").

Same set-up as ``test_browser.py``: every page has its own browser context and
talks to a real ``chatserver serve`` process.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from chatserver.operators.auth import sign_identity
from tests.stored import connect_stored

from .conftest import Pages
from .test_browser import (
    PASSWORD,
    close_chat,
    console_messages,
    eventually,
    open_console,
    open_widget,
    set_status,
    visitor_send,
    widget,
    widget_messages,
    widget_session_id,
)
from .test_tickets_e2e import escalate, ticket_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "e2e-identity-secret"
ENV = {"CHATSERVER_IDENTITY_SECRET": SECRET}
COUNTDOWN = re.compile(r"^(\d+h \d\dm \d\ds|\d+m \d\ds|\d+s) left$")


# --------------------------------------------------------------------- helpers
def identity(customer_id: str, plan: str, name: str) -> dict[str, str]:
    """What the host site renders into ``data-identity`` (signed on its server)."""
    return {
        "customer_id": customer_id,
        "plan": plan,
        "name": name,
        "sig": sign_identity(customer_id, plan, SECRET),
    }


async def open_identified_widget(pages: Pages, server: Any, ident: dict[str, str]) -> Page:
    """The shop page as a logged-in customer sees it: the widget tag carries the
    signed identity in ``data-identity`` (set before the widget script runs).

    The page itself comes from the server: Chromium blocks pages that did not
    (e.g. fulfilled by a route) from opening WebSockets to 127.0.0.1.
    """
    page = await pages.new(f"visitor[{ident['customer_id']}]")
    await page.add_init_script(
        script="""(() => {
            const identity = IDENTITY_JSON;
            new MutationObserver((records, observer) => {
                for (const record of records) {
                    for (const node of record.addedNodes) {
                        if (node.tagName === 'SCRIPT' && /\\/widget\\.js$/.test(node.src)) {
                            node.setAttribute('data-identity', identity);
                            observer.disconnect();
                        }
                    }
                }
            }).observe(document, { childList: true, subtree: true });
        })();""".replace("IDENTITY_JSON", json.dumps(json.dumps(ident)))
    )
    await page.goto(server.http_url + "/")
    await widget(page).get_by_test_id("bubble").click()
    await expect(widget(page).get_by_test_id("panel")).to_be_visible()
    await pages.frames(page).wait_for(lambda f: f.get("type") == "welcome")
    return page


def time_entries(server: Any, session_id: str) -> list[tuple[str, int]]:
    """(operator_id, seconds) of every time entry logged on a chat."""
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        rows = conn.execute(
            "SELECT operator_id, seconds FROM time_entries WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
    finally:
        conn.close()
    return [(str(r[0]), int(r[1])) for r in rows]


def tab_of(console: Page, session_id: str) -> Locator:
    return console.locator(f'[data-testid="chat-tab"][data-session-id="{session_id}"]')


async def countdown_text(clock: Locator) -> str:
    text = (await clock.text_content() or "").strip()
    assert COUNTDOWN.match(text), text
    return text


async def repainted_later(element: Locator, seconds: float) -> None:
    """Wait until the page rewrites ``element``'s text ``seconds`` after this call.

    A MutationObserver records when the page writes the element (a write of the
    same text is a mutation too): a marker that the page's clock ticked.
    """
    await element.evaluate(
        """el => {
            const paints = [];
            window.__paints = paints;
            window.__paintsSince = performance.now();
            new MutationObserver(() => paints.push(performance.now())).observe(
                el, { childList: true, characterData: true, subtree: true });
        }"""
    )

    async def repainted() -> bool:
        return bool(
            await element.page.evaluate(
                "ms => window.__paints.some(t => t - window.__paintsSince >= ms)",
                seconds * 1000,
            )
        )

    await eventually(repainted)


async def timer_seconds_at_least(clock: Locator, seconds: int) -> bool:
    """Whether the chat timer (``mm:ss`` or ``h:mm:ss``) shows ``seconds`` or more."""
    parts = [int(p) for p in (await clock.text_content() or "0").strip().split(":")]
    total = 0
    for part in parts:
        total = total * 60 + part
    return total >= seconds


# ----------------------------------------------------------------------- tests
async def test_vip_countdown_context_and_transfer_to_second_level(
    make_server: Any, pages: Pages
) -> None:
    server = make_server(env=ENV)
    server.start()
    alice_id = server.add_operator("alice", password=PASSWORD, name="Alice First", capacity=5)
    console = await open_console(pages, server, "alice")
    await set_status(pages, console, "online")

    visitor = await open_identified_widget(pages, server, identity("C-1001", "vip", "Vera VIP"))
    # VIP has phone support: the widget offers a callback before the chat starts.
    await expect(widget(visitor).get_by_test_id("callback-link")).to_be_visible()
    question = "Our VPN gateway is down since 10 minutes."
    await visitor_send(visitor, question, name="Vera VIP")
    session_id = await widget_session_id(visitor, server)
    await expect(widget(visitor).get_by_test_id("callback-link")).to_be_hidden()

    # The tab shows a live first-response countdown (VIP: 4 h around the clock).
    tab = tab_of(console, session_id)
    await expect(tab).to_have_count(1)
    await expect(console_messages(console, "visitor")).to_have_text([question])
    clock = tab.get_by_test_id("sla-clock")
    await expect(clock).to_have_attribute("data-sla-state", "ok")
    await expect(clock).to_have_text(COUNTDOWN)
    first = await countdown_text(clock)
    assert first.startswith("3h 5"), first
    # The countdown is live: it moves on (within the expect timeout).
    await expect(clock).not_to_have_text(first)
    second = await countdown_text(clock)
    assert second != first
    await expect(clock).to_have_attribute("data-sla-state", "ok")

    # The chat's service bar: plan badge, the same clock, the running timer.
    bar = console.get_by_test_id("chat-service-bar")
    await expect(bar.get_by_test_id("plan-badge")).to_have_text("VIP")
    await expect(bar.get_by_test_id("plan-badge")).to_have_attribute("data-plan", "vip")
    await expect(bar.get_by_test_id("chat-sla")).to_have_text(
        re.compile(r"^First response: 3h 5\dm \d\ds left$")
    )
    await expect(bar.get_by_test_id("chat-timer")).to_have_attribute("data-running", "true")
    await expect(bar.get_by_test_id("callback-info")).to_be_hidden()

    # The visitor context: customer number and what the plan includes.
    panel = console.get_by_test_id("context-panel")
    await expect(panel.get_by_test_id("context-customer")).to_have_text("C-1001")
    plan = panel.get_by_test_id("context-plan")
    await expect(plan).to_have_attribute("data-plan", "vip")
    await expect(plan).to_have_attribute("data-phone", "true")
    await expect(plan).to_have_attribute("data-personal-contact", "true")
    await expect(plan).to_contain_text("VIP")
    await expect(panel.get_by_test_id("context-past-chats")).to_contain_text("None")

    # An operator (not a supervisor) sees the canned responses and may add personal
    # ones only (tests/e2e/test_canned_e2e.py): no choice of a team response.
    await console.get_by_test_id("canned-button").click()
    await expect(console.get_by_test_id("canned-menu")).to_be_visible()
    await expect(console.get_by_test_id("canned-status")).to_have_text("No canned responses yet")
    await expect(console.get_by_test_id("canned-form")).to_be_visible()
    await expect(console.get_by_test_id("canned-team")).to_be_hidden()
    await console.get_by_test_id("message-input").click()
    await expect(console.get_by_test_id("canned-menu")).to_be_hidden()

    # A 2nd-level colleague comes online: level-1 chats are not theirs.
    server.add_operator("bob", password=PASSWORD, name="Bob Second", capacity=5, levels=(2,))
    console2 = await open_console(pages, server, "bob")
    await set_status(pages, console2, "online")
    await expect(console2.get_by_test_id("chat-tab")).to_have_count(0)

    # A transfer that the server refuses (unknown colleague) is shown in the form.
    await console.get_by_test_id("transfer-button").click()
    form = console.get_by_test_id("transfer-form")
    await expect(form).to_be_visible()
    await console.get_by_test_id("transfer-target").select_option("operator")
    await console.get_by_test_id("transfer-operator").fill("o_nobody")
    await console.get_by_test_id("transfer-submit").click()
    # (a sentence that says what to do; never the code or the server's own text)
    await expect(console.get_by_test_id("transfer-error")).to_contain_text("operator id")
    await expect(console.get_by_test_id("transfer-error")).not_to_contain_text("bad_frame")
    await expect(console.get_by_test_id("transfer-error")).not_to_contain_text("no such operator")
    await expect(tab).to_have_count(1)

    # Transfer to 2nd level: the tab closes, Bob gets the chat, the visitor is told.
    await console.get_by_test_id("transfer-target").select_option("level:2")
    await expect(console.get_by_test_id("transfer-operator")).to_be_hidden()
    await console.get_by_test_id("transfer-submit").click()
    await expect(tab).to_have_count(0)
    await expect(console.get_by_test_id("chat-tab")).to_have_count(0)
    await expect(
        console.get_by_test_id("toast").filter(has_text="transferred to 2nd level support")
    ).to_have_count(1)

    tab2 = tab_of(console2, session_id)
    await expect(tab2).to_have_count(1)
    await expect(
        console2.locator('#chat-view [data-testid="message"][data-from="visitor"]')
    ).to_have_text([question])
    await expect(tab2.get_by_test_id("sla-clock")).to_have_text(COUNTDOWN)
    await expect(
        console2.get_by_test_id("chat-service-bar").get_by_test_id("plan-badge")
    ).to_have_text("VIP")

    w = widget(visitor)
    notice = w.locator('[data-testid="message"][data-from="system"]').filter(
        has_text="2nd-level support"
    )
    await expect(notice).to_have_count(1)
    await expect(w.get_by_test_id("status")).to_contain_text("Bob Second")

    # Alice's timer logged her time on the chat when it left her.
    entries = await eventually(lambda: asyncio.to_thread(time_entries, server, session_id))
    assert [op for op, _ in entries] == [alice_id]
    assert all(seconds > 0 for _, seconds in entries)

    # Bob answers: the first-response clock is met.
    await console2.get_by_test_id("message-input").fill("Bob from 2nd level here, looking at it.")
    await console2.get_by_test_id("send-button").click()
    await expect(tab2.get_by_test_id("sla-clock")).to_have_attribute("data-sla-state", "met")
    await expect(tab2.get_by_test_id("sla-clock")).to_have_text("answered in time")


async def test_canned_response_ticket_time_and_chat_timer(make_server: Any, pages: Pages) -> None:
    server = make_server(env=ENV)
    server.start()
    sue_id = server.add_operator(
        "sue", password=PASSWORD, name="Sue Supervisor", role="supervisor", capacity=5
    )
    console = await open_console(pages, server, "sue")
    await set_status(pages, console, "online")

    visitor = await open_identified_widget(
        pages, server, identity("C-3003", "standard", "Stella Standard")
    )
    question = "Hello, my last invoice is twice as high as usual."
    await visitor_send(visitor, question, name="Stella Standard")
    session_id = await widget_session_id(visitor, server)
    tab = tab_of(console, session_id)
    await expect(tab).to_have_count(1)
    await expect(console_messages(console, "visitor")).to_have_text([question])
    await expect(tab.get_by_test_id("tab-plan")).to_have_text("Standard")
    bar = console.get_by_test_id("chat-service-bar")
    await expect(bar.get_by_test_id("plan-badge")).to_have_attribute("data-plan", "standard")

    # A supervisor adds a canned response with placeholders, then uses it.
    await console.get_by_test_id("canned-button").click()
    menu = console.get_by_test_id("canned-menu")
    await expect(menu).to_be_visible()
    await expect(console.get_by_test_id("canned-status")).to_have_text("No canned responses yet")
    await expect(console.get_by_test_id("canned-form")).to_be_visible()
    await console.get_by_test_id("canned-title").fill("Greeting")
    await console.get_by_test_id("canned-text").fill(
        "Hello {visitor_name}, this is {operator_name} ({plan} plan, customer {customer_id})."
    )
    await console.get_by_test_id("canned-save").click()
    expected = "Hello Stella Standard, this is Sue Supervisor (standard plan, customer C-3003)."
    item = console.get_by_test_id("canned-item").filter(has_text="Greeting")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("title", expected)
    await console.get_by_test_id("message-input").fill("")
    await item.click()
    await expect(menu).to_be_hidden()
    await expect(console.get_by_test_id("message-input")).to_have_value(expected)
    await console.get_by_test_id("send-button").click()
    await expect(widget_messages(visitor, "operator").locator(".txt")).to_have_text([expected])
    # The first answer meets the first-response target.
    await expect(bar.get_by_test_id("chat-sla")).to_have_attribute("data-sla-state", "met")
    await expect(bar.get_by_test_id("chat-sla")).to_have_text("First response: answered in time")

    # The timer can be paused and resumed.
    timer = bar.get_by_test_id("chat-timer")
    clock = bar.get_by_test_id("chat-timer-clock")
    await expect(clock).to_have_text(re.compile(r"^\d\d:\d\d$"))
    await bar.get_by_test_id("timer-toggle").click()
    await expect(timer).to_have_attribute("data-running", "false")
    await expect(bar.get_by_test_id("timer-toggle")).to_have_text("Resume")
    paused = await clock.text_content()
    # The console repaints the timer every second even while paused: once it has
    # repainted more than a second after the pause, a running timer would show a
    # different time, so the unchanged text proves the pause.
    await repainted_later(clock, 1.1)
    assert await clock.text_content() == paused
    await bar.get_by_test_id("timer-toggle").click()
    await expect(timer).to_have_attribute("data-running", "true")
    # Time worked accrues (the thing under test): wait until the timer shows 2 s,
    # so that closing the chat logs at least that.
    await eventually(lambda: timer_seconds_at_least(clock, 2))

    # Escalated to a ticket: the ticket view shows both clocks and logs time.
    ticket = await escalate(console, session_id, "Invoice twice as high")
    sla = console.get_by_test_id("ticket-sla")
    await expect(sla.get_by_test_id("ticket-plan")).to_have_text("Standard")
    await expect(sla.get_by_test_id("ticket-sla-first")).to_have_attribute("data-sla-state", "met")
    await expect(sla.get_by_test_id("ticket-sla-resolution")).to_have_attribute(
        "data-sla-state", "ok"
    )
    await expect(sla.get_by_test_id("ticket-sla-resolution")).to_contain_text("Resolution: ")
    await expect(sla.get_by_test_id("ticket-sla-resolution")).to_contain_text(" left")
    row = console.locator(f'[data-testid="ticket-row"][data-number="{ticket["number"]}"]')
    await expect(row.get_by_test_id("ticket-row-sla")).to_have_attribute("data-sla-state", "ok")
    await console.get_by_test_id("ticket-time-minutes").fill("15")
    await console.get_by_test_id("ticket-time-note").fill("checked the invoice run")
    await console.get_by_test_id("ticket-time-submit").click()
    await expect(console.get_by_test_id("ticket-time-status")).to_have_text("Logged 15 mins")
    await expect(console.get_by_test_id("ticket-time-entry")).to_have_text(
        "15 mins \u2014 checked the invoice run"
    )
    await expect(ticket_events(console, "time")).to_have_count(1)

    # The context panel lists the ticket; a click opens it.
    await console.get_by_test_id("nav-chats").click()
    await console.get_by_test_id("context-refresh").click()
    link = console.get_by_test_id("context-ticket").filter(has_text=ticket["ref"])
    await expect(link).to_have_count(1)
    await expect(link).to_contain_text("Invoice twice as high")
    await link.click()
    await expect(console.get_by_test_id("ticket-view")).to_be_visible()
    await expect(console.get_by_test_id("ticket-ref")).to_have_text(ticket["ref"])

    # Closing the chat logs the timer's time on it.
    await console.get_by_test_id("nav-chats").click()
    async with console.expect_response(
        lambda r: r.url.endswith(f"/api/sessions/{session_id}/time") and r.request.method == "POST"
    ) as info:
        await close_chat(console)
    response = await info.value
    assert response.status == 201, await response.text()
    logged = await response.json()
    assert logged["seconds"] >= 2
    assert logged["customer_id"] == "C-3003"
    await expect(bar.get_by_test_id("time-logged")).to_have_text(
        re.compile(r"^Logged \d+ (secs?|mins?)$")
    )
    await expect(bar.get_by_test_id("timer-log")).to_be_hidden()
    entries = await asyncio.to_thread(time_entries, server, session_id)
    assert entries == [(sue_id, logged["seconds"])]
    assert entries[0][1] > 0


async def test_callback_request_from_the_widget(make_server: Any, pages: Pages) -> None:
    server = make_server(env=ENV)
    server.start()
    server.add_operator("carl", password=PASSWORD, name="Carl Caller", capacity=5)
    console = await open_console(pages, server, "carl")
    await set_status(pages, console, "away")

    # Free plan (anonymous visitors too): no phone support, no callback offer.
    anonymous = await open_widget(pages, server)
    await pages.frames(anonymous).wait_for(
        lambda f: f.get("type") == "welcome" and f.get("callback_allowed") is False
    )
    await expect(widget(anonymous).get_by_test_id("callback-link")).to_be_hidden()

    visitor = await open_identified_widget(
        pages, server, identity("C-2002", "standard", "Stefan Standard")
    )
    w = widget(visitor)
    await w.get_by_test_id("callback-link").click()
    await expect(w.get_by_test_id("callback-form")).to_be_visible()
    # A number the server does not accept: its message, inline.
    await w.get_by_test_id("callback-phone").fill("call me maybe")
    await w.get_by_test_id("callback-submit").click()
    await expect(w.get_by_test_id("callback-error")).to_contain_text("phone")
    phone = "+41 44 668 18 00"
    await w.get_by_test_id("callback-phone").fill(phone)
    await w.get_by_test_id("callback-times").fill("weekdays 9-12")
    await w.get_by_test_id("callback-note").fill("The router keeps rebooting.")
    await w.get_by_test_id("callback-submit").click()
    await expect(w.get_by_test_id("callback-done")).to_have_text(
        f"We\u2019ll call you at {phone} (weekdays 9-12); you are in the queue."
    )
    await expect(w.get_by_test_id("callback-form")).to_be_hidden()
    await expect(w.get_by_test_id("callback-error")).to_be_hidden()
    session_id = await widget_session_id(visitor, server)

    # The request waits in the queue, marked as a callback, with the number.
    item = console.locator(f'[data-testid="queue-item"][data-session-id="{session_id}"]')
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-kind", "callback")
    await expect(item.get_by_test_id("queue-callback-icon")).to_be_visible()
    await expect(item).to_contain_text(phone)

    # Online: the operator gets it, with the number and the preferred times.
    await set_status(pages, console, "online")
    tab = tab_of(console, session_id)
    await expect(tab).to_have_count(1)
    await expect(tab).to_have_attribute("data-kind", "callback")
    await expect(tab.get_by_test_id("tab-callback")).to_be_visible()
    info = console.get_by_test_id("callback-info")
    await expect(info).to_be_visible()
    await expect(info.get_by_test_id("callback-phone")).to_have_text(phone)
    await expect(info.get_by_test_id("callback-times")).to_contain_text("weekdays 9-12")
    # The request in the chat, from the console's catalog (callback.message), the note kept.
    request = console.get_by_test_id("message").filter(has_text=phone)
    await expect(request).to_have_text(
        f"Please call me back: {phone} (weekdays 9-12)\nThe router keeps rebooting."
    )
    await expect(console.get_by_test_id("chat-sla")).to_have_attribute(
        "data-sla-state", re.compile(r"^(ok|warning|breached)$")
    )
    await expect(w.get_by_test_id("status")).to_contain_text("Carl Caller")

    # "Talk to someone else": the chat leaves Carl and waits for another operator.
    other = w.get_by_test_id("another-operator")
    await expect(other).to_be_visible()
    await other.click()
    await expect(tab).to_have_count(0)
    await expect(w.get_by_test_id("status")).to_contain_text("Waiting")
    await expect(other).to_be_hidden()
    await expect(item).to_have_count(1)
