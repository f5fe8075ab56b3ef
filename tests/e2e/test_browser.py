"""End-to-end tests in a real browser: the visitor widget on the demo page and
the operator console, talking through a real ``chatserver serve`` process.

Each page gets its own browser context (own localStorage/sessionStorage), so the
visitor and the operator are as separate as two people on two machines.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from tests.stored import connect_stored

from .conftest import TIMEOUT_MS, Pages, SlowLoad, chromium_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

PASSWORD = "pw-secret"


# --------------------------------------------------------------------- helpers
async def open_console(pages: Pages, server: Any, username: str) -> Page:
    """Console page, signed in and connected (welcome received)."""
    page = await pages.new(f"console[{username}]")
    frames = pages.frames(page)
    # What went wrong on the way, named in the failure (a module that failed or never
    # came, a refusal, an error in the page).
    trouble: list[str] = []
    pending: dict[Any, str] = {}
    page.on("request", lambda r: pending.__setitem__(r, r.url))
    page.on("requestfinished", lambda r: pending.pop(r, None))
    page.on("requestfailed", lambda r: trouble.append(f"failed {r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: trouble.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on("console", lambda m: trouble.append(m.text) if m.type == "error" else None)
    await page.goto(server.http_url + "/console/")
    try:
        # The button is enabled once the console's script has wired the form. A load
        # whose modules were aborted (net::ERR_NETWORK_CHANGED, when another test
        # changed the network: now kept apart by tests/network_lock.py) or stalled is
        # reported as a warning and done again, once.
        try:
            await expect(page.get_by_test_id("login-submit")).to_be_enabled()
        except AssertionError:
            # Shown in the summary, never an error (pyproject turns warnings into
            # errors; a filter there naming this class cannot be resolved before
            # pytest has put the project on sys.path).
            with warnings.catch_warnings():
                warnings.simplefilter("default", SlowLoad)
                warnings.warn(
                    f"console for {username} not ready after {TIMEOUT_MS} ms, loaded again; "
                    f"trouble: {trouble}; unanswered: {sorted(pending.values())}",
                    SlowLoad,
                    stacklevel=2,
                )
            await page.reload()
            await expect(page.get_by_test_id("login-submit")).to_be_enabled()
        await page.get_by_test_id("login-username").fill(username)
        await page.get_by_test_id("login-password").fill(PASSWORD)
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("status-select")).to_be_visible()
    except AssertionError as exc:
        raise AssertionError(
            f"{username} not signed in at {page.url}; trouble: {trouble}; "
            f"unanswered: {sorted(pending.values())}"
        ) from exc
    await frames.wait_for(lambda f: f.get("type") == "welcome")
    await expect(page.get_by_test_id("connection-banner")).to_be_hidden()
    return page


async def set_status(pages: Pages, console: Page, status: str) -> None:
    """Choose a status in the console and wait until the server confirmed it."""
    frames = pages.frames(console)
    mark = frames.mark()
    await console.get_by_test_id("status-select").select_option(status)
    await frames.wait_for(
        lambda f: f.get("type") == "status" and f.get("status") == status, since=mark
    )
    await expect(console.get_by_test_id("status-select")).to_have_value(status)


def widget(page: Page) -> Locator:
    # The widget's DOM is in an open shadow root under this host element;
    # Playwright's locators pierce it.
    return page.locator("#chatserver-widget")


def widget_messages(page: Page, sender: str) -> Locator:
    return widget(page).locator(f'[data-testid="message"][data-from="{sender}"]')


def console_messages(page: Page, sender: str) -> Locator:
    return page.locator(f'#chat-view [data-testid="message"][data-from="{sender}"]')


async def open_widget(pages: Pages, server: Any) -> Page:
    """Demo shop page with the widget panel opened."""
    page = await pages.new("visitor")
    await page.goto(server.http_url + "/")
    await widget(page).get_by_test_id("bubble").click()
    await expect(widget(page).get_by_test_id("panel")).to_be_visible()
    return page


async def visitor_send(page: Page, text: str, name: str | None = None) -> None:
    w = widget(page)
    if name is not None:
        await w.get_by_test_id("name-input").fill(name)
    await w.get_by_test_id("message-input").fill(text)
    await w.get_by_test_id("send-button").click()


async def operator_send(console: Page, text: str, *, enter: bool = False) -> None:
    """Reply in the selected chat, with the Send button or the Enter key.

    The "New chat from <name>" toast (bottom right, 6 s) covers the Send button
    when the visitor's name is long; a click then waits until the toast is gone.
    """
    box = console.get_by_test_id("message-input")
    await box.fill(text)
    if enter:
        await box.press("Enter")
    else:
        await console.get_by_test_id("send-button").click()


async def busy_colleague(server: Any, clients: list[Any]) -> None:
    """An operator online but at capacity (one chat, capacity one): the desk is not
    offline, so the widget offers its chat composer, yet a new chat waits in the queue.
    Their clients go into ``clients`` (the ``ws_clients`` fixture closes them)."""
    server.add_operator("busy", password=PASSWORD, name="Busy Colleague", capacity=1)
    op = await server.operator("busy")
    clients.append(op)
    other = await server.visitor()
    clients.append(other)
    await other.send("A question that keeps this colleague busy.")
    await op.next_chat()


async def eventually(probe: Any, timeout: float = TIMEOUT_MS / 1000) -> Any:
    """Await ``probe()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.05)


async def widget_session_id(page: Page, server: Any) -> str:
    """The session id the widget keeps in localStorage."""
    key = "chatserver:" + server.http_url

    async def probe() -> str | None:
        return await page.evaluate(  # type: ignore[no-any-return]
            "k => (JSON.parse(localStorage.getItem(k) || 'null') || {}).session_id || null", key
        )

    return str(await eventually(probe))


async def record_widget_states(page: Page) -> None:
    """Log every data-state change of the visitor's own messages in the widget."""
    await page.evaluate(
        """() => {
            const root = document.getElementById('chatserver-widget').shadowRoot;
            // Record each change synchronously (a MutationObserver would only
            // see the final value of quick successive changes).
            const orig = Element.prototype.setAttribute;
            window.__stateSeq = [];
            Element.prototype.setAttribute = function (name, value) {
                if (name === 'data-state' && this.getAttribute('data-from') === 'visitor'
                    && this.getRootNode() === root) window.__stateSeq.push(String(value));
                return orig.call(this, name, value);
            };
        }"""
    )


async def widget_state_history(page: Page) -> list[str]:
    seq: list[str] = await page.evaluate("() => window.__stateSeq")
    history: list[str] = []
    for state in seq:
        if not history or history[-1] != state:
            history.append(state)
    return history


async def close_chat(console: Page) -> str:
    """Close the selected chat: the console asks in its own dialog (never the
    browser's confirm()); confirm there. The question asked."""
    native: list[str] = []
    console.on("dialog", lambda dialog: native.append(dialog.type))
    await console.get_by_test_id("close-chat").click()
    dialog = console.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    question = await dialog.locator("#confirm-text").inner_text()
    await console.get_by_test_id("confirm-ok").click()
    await expect(dialog).to_be_hidden()
    assert native == []
    return question


# ----------------------------------------------------------------------- tests
async def test_chromium_is_installed() -> None:
    # Fails (never skips) without the browser; the other tests then error out
    # in the ``browser`` fixture with the same message.
    problem = chromium_problem()
    assert problem is None, problem


async def test_widget_and_console_chat(server: Any, pages: Pages) -> None:
    server.add_operator("alice", password=PASSWORD, name="Alice Operator", capacity=5)
    console = await open_console(pages, server, "alice")
    await set_status(pages, console, "online")
    await expect(console.get_by_test_id("chat-tab")).to_have_count(0)

    visitor = await open_widget(pages, server)
    w = widget(visitor)
    await record_widget_states(visitor)
    question = "Hello, do you have the Eiger boots in size 44?"
    await visitor_send(visitor, question, name="Vera Visitor")
    session_id = await widget_session_id(visitor, server)

    # The console gets the chat without a reload, with the visitor's details.
    tab = console.get_by_test_id("chat-tab")
    await expect(tab).to_have_count(1)
    await expect(tab).to_have_attribute("data-session-id", session_id)
    await expect(tab).to_contain_text("Vera Visitor")
    await expect(console.get_by_test_id("chat-view")).to_be_visible()
    await expect(console_messages(console, "visitor")).to_have_text([question])
    await expect(console.get_by_test_id("visitor-name")).to_have_text("Vera Visitor")
    await expect(console.get_by_test_id("visitor-page")).to_have_text(server.http_url + "/")
    await expect(console.get_by_test_id("visitor-connected")).to_have_text("Connected")
    await expect(console.get_by_test_id("visitor-ua")).to_contain_text("Chrome")
    await expect(console.get_by_test_id("load")).to_have_text("1 / 5")

    # The visitor's own message: sent -> stored (acked) -> read (the console showed it).
    own = widget_messages(visitor, "visitor")
    await expect(own).to_have_count(1)
    await expect(own.locator(".txt")).to_have_text(question)
    await expect(own).to_have_attribute("data-state", "read")
    assert await widget_state_history(visitor) == ["sent", "stored", "read"]
    visitor_seq = int(await own.get_attribute("data-seq") or 0)
    assert visitor_seq >= 1

    # The operator replies; the widget shows it and who is chatting.
    answer = "Hi Vera, yes we do. Shall I reserve a pair?"
    await operator_send(console, answer)
    reply = widget_messages(visitor, "operator")
    await expect(reply).to_have_count(1)
    await expect(reply.locator(".txt")).to_have_text(answer)
    await expect(w.get_by_test_id("status")).to_contain_text("Alice Operator")
    operator_seq = int(await reply.get_attribute("data-seq") or 0)
    assert operator_seq > visitor_seq
    # ... and the console's copy of the reply gets the visitor's read receipt.
    mine = console_messages(console, "operator")
    await expect(mine).to_have_text([answer])
    await expect(mine).to_have_attribute("data-seq", str(operator_seq))
    await expect(mine).to_have_attribute("data-state", "read")

    # Typing in the widget shows the indicator in the console, and it goes away
    # once the visitor stops typing (the widget sends typing:false after 3 s idle).
    await w.get_by_test_id("message-input").press_sequentially("Yes pl", delay=30)
    typing = console.get_by_test_id("typing")
    await expect(typing).to_be_visible()
    await expect(typing).to_contain_text("typing")
    await expect(typing).to_be_hidden()

    # Reload the shop page: the widget resumes the session from localStorage and
    # shows the whole history again, exactly once.
    await visitor.reload()
    w = widget(visitor)
    await expect(w.get_by_test_id("panel")).to_be_visible()
    await expect(widget_messages(visitor, "visitor").locator(".txt")).to_have_text([question])
    await expect(widget_messages(visitor, "operator").locator(".txt")).to_have_text([answer])
    await expect(widget_messages(visitor, "visitor")).to_have_attribute("data-state", "read")
    await expect(widget_messages(visitor, "operator")).to_have_attribute(
        "data-seq", str(operator_seq)
    )
    await expect(w.get_by_test_id("status")).to_contain_text("Alice Operator")
    assert await widget_session_id(visitor, server) == session_id

    # The resumed chat still works both ways.
    follow_up = "Yes please, I'll pick them up on Saturday."
    await visitor_send(visitor, follow_up)
    await expect(console_messages(console, "visitor")).to_have_text([question, follow_up])
    await expect(widget_messages(visitor, "visitor").last).to_have_attribute("data-state", "read")
    await expect(console.get_by_test_id("chat-tab")).to_have_count(1)
    await expect(console.get_by_test_id("visitor-connected")).to_have_text("Connected")
    await expect(w.get_by_test_id("notice")).to_be_hidden()
    await expect(w.get_by_test_id("connection")).to_be_hidden()
    await expect(console.locator(".toast-error")).to_have_count(0)


async def test_queue_position_then_assignment(
    server: Any, pages: Pages, ws_clients: list[Any]
) -> None:
    server.add_operator("bob", password=PASSWORD, name="Bob Operator", capacity=3)
    console = await open_console(pages, server, "bob")
    await set_status(pages, console, "away")
    # Someone is online (the widget offers a chat, not the offline form), but busy.
    await busy_colleague(server, ws_clients)

    visitor = await open_widget(pages, server)
    w = widget(visitor)
    await visitor_send(visitor, "Is anybody there?", name="Quentin Queue")
    await expect(w.get_by_test_id("status")).to_contain_text("position 1")
    session_id = await widget_session_id(visitor, server)

    # The away operator sees the visitor waiting, but gets no chat.
    item = console.get_by_test_id("queue-item")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-session-id", session_id)
    await expect(item).to_contain_text("Quentin Queue")
    await expect(item).to_contain_text("Is anybody there?")
    await expect(console.get_by_test_id("queue-total")).to_have_text("1")
    await expect(console.get_by_test_id("chat-tab")).to_have_count(0)
    await expect(console.get_by_test_id("load")).to_have_text("0 / 3")

    # Going online takes the chat from the queue.
    await set_status(pages, console, "online")
    tab = console.get_by_test_id("chat-tab")
    await expect(tab).to_have_count(1)
    await expect(tab).to_have_attribute("data-session-id", session_id)
    await expect(console_messages(console, "visitor")).to_have_text(["Is anybody there?"])
    await expect(item).to_have_count(0)
    await expect(console.get_by_test_id("queue-total")).to_have_text("0")
    await expect(console.get_by_test_id("load")).to_have_text("1 / 3")
    await expect(w.get_by_test_id("status")).to_contain_text("Bob Operator")
    await expect(w.get_by_test_id("status")).not_to_contain_text("position")


HOSTILE_NAME = '<img src=x onerror="window.__xss=1">'
HOSTILE_MESSAGE = "<script>window.__xss=2</script><b>bold</b>"
HOSTILE_REPLY = '<img src=x onerror="window.__xss=3">'
HOSTILE_OPERATOR = '<img src=x onerror="window.__xss=4"><i>Mallory</i>'
MARKUP = "img, b, i, script, iframe, svg"


async def assert_inert(container: Locator, what: str) -> None:
    count = await container.locator(MARKUP).count()
    assert count == 0, f"{what}: {count} element(s) created from text"


async def test_hostile_html_is_inert(server: Any, pages: Pages, ws_clients: list[Any]) -> None:
    server.add_operator("mallory", password=PASSWORD, name=HOSTILE_OPERATOR)
    console = await open_console(pages, server, "mallory")
    await set_status(pages, console, "away")  # so the queue renders the name too
    await busy_colleague(server, ws_clients)  # the widget offers a chat, not the offline form

    visitor = await open_widget(pages, server)
    w = widget(visitor)
    await visitor_send(visitor, HOSTILE_MESSAGE, name=HOSTILE_NAME)

    item = console.get_by_test_id("queue-item")
    await expect(item).to_contain_text(HOSTILE_NAME)
    await expect(item).to_contain_text(HOSTILE_MESSAGE)
    await assert_inert(console.get_by_test_id("queue"), "console queue")

    await set_status(pages, console, "online")
    await expect(console.get_by_test_id("chat-tab")).to_contain_text(HOSTILE_NAME)
    await expect(console_messages(console, "visitor")).to_have_text([HOSTILE_MESSAGE])
    await expect(console.get_by_test_id("visitor-name")).to_have_text(HOSTILE_NAME)
    await expect(console.locator("#chat-title")).to_have_text(HOSTILE_NAME)

    await operator_send(console, HOSTILE_REPLY, enter=True)
    await expect(console_messages(console, "operator")).to_have_text([HOSTILE_REPLY])
    await expect(console_messages(console, "operator")).to_have_attribute("data-state", "read")

    # Widget: everything shown literally.
    await expect(widget_messages(visitor, "visitor").locator(".txt")).to_have_text(
        [HOSTILE_MESSAGE]
    )
    reply = widget_messages(visitor, "operator")
    await expect(reply.locator(".txt")).to_have_text([HOSTILE_REPLY])
    await expect(reply.locator(".author")).to_have_text(HOSTILE_OPERATOR)
    await expect(w.get_by_test_id("status")).to_contain_text(HOSTILE_OPERATOR)

    # The raw markup really is the text of the message elements.
    for locator, raw in (
        (console_messages(console, "visitor"), HOSTILE_MESSAGE),
        (widget_messages(visitor, "visitor"), HOSTILE_MESSAGE),
        (console_messages(console, "operator"), HOSTILE_REPLY),
        (widget_messages(visitor, "operator").first, HOSTILE_REPLY),
    ):
        assert raw in (await locator.text_content() or "")

    # No element was created from any of that text.
    await assert_inert(console.locator("#chat-view"), "console chat view")
    await assert_inert(console.locator("#chat-tabs"), "console tabs")
    await assert_inert(console.locator("#visitor-info"), "console visitor info")
    await assert_inert(console.locator("#toasts"), "console toasts")
    await assert_inert(console.get_by_test_id("queue"), "console queue")
    # (the widget's only svg elements are its icons, outside the message list)
    await assert_inert(w.get_by_test_id("messages"), "widget messages")
    await assert_inert(w.locator(".head-text"), "widget header")
    assert await visitor.locator("#chatserver-widget script").count() == 0

    # Give a (wrongly) created <img src=x> time to fail loading and fire onerror,
    # with a round trip through both pages.
    await operator_send(console, "ping", enter=True)
    await expect(widget_messages(visitor, "operator")).to_have_count(2)
    for page in (console, visitor):
        assert await page.evaluate("() => typeof window.__xss") == "undefined"


async def test_operator_closes_chat_and_visitor_starts_new_one(server: Any, pages: Pages) -> None:
    server.add_operator("carol", password=PASSWORD, name="Carol Operator")
    console = await open_console(pages, server, "carol")
    await set_status(pages, console, "online")

    visitor = await open_widget(pages, server)
    w = widget(visitor)
    await visitor_send(visitor, "I would like to return a jacket.", name="Rita Return")
    first_id = await widget_session_id(visitor, server)
    await expect(console.get_by_test_id("chat-tab")).to_have_attribute("data-session-id", first_id)
    await expect(console_messages(console, "visitor")).to_have_text(
        ["I would like to return a jacket."]
    )
    await expect(w.get_by_test_id("status")).to_contain_text("Carol Operator")
    await expect(w.get_by_test_id("end-chat-button")).to_be_visible()

    question = await close_chat(console)
    await expect(console.locator("#chat-ended")).to_be_visible()
    assert "Rita Return" in question
    await expect(console.get_by_test_id("chat-tab")).to_contain_text("Chat ended")
    await expect(console.get_by_test_id("load")).to_have_text("0 / 5")

    # The widget shows that the chat ended and offers a new one.
    await expect(w.get_by_test_id("status")).to_have_text("This chat has ended")
    await expect(w.get_by_test_id("new-chat-button")).to_be_visible()
    await expect(w.get_by_test_id("message-input")).to_be_hidden()
    await expect(w.get_by_test_id("end-chat-button")).to_be_hidden()

    # The visitor rates the chat: four stars, stored with the session.
    await w.locator('[data-testid="rate"] [data-score="4"]').click()
    await expect(w.get_by_test_id("rate")).to_have_text("Thank you for your rating!")

    def rating() -> int | None:
        conn = connect_stored(server.data_dir / "chatserver.sqlite3")
        try:
            row = conn.execute(
                "SELECT csat_score FROM sessions WHERE id = ?", (first_id,)
            ).fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    async def rated() -> int | None:
        return rating()

    assert await eventually(rated) == 4

    # A new chat: fresh session, fresh history, a new tab in the console.
    await w.get_by_test_id("new-chat-button").click()
    await expect(w.get_by_test_id("message-input")).to_be_visible()
    await expect(w.get_by_test_id("new-chat-button")).to_be_hidden()
    await expect(widget_messages(visitor, "visitor")).to_have_count(0)
    await expect(widget_messages(visitor, "operator")).to_have_count(0)
    await visitor_send(visitor, "Sorry, one more question about sizes.")

    async def new_session() -> str | None:
        sid = await widget_session_id(visitor, server)
        return sid if sid != first_id else None

    second_id = await eventually(new_session)
    new_tab = console.locator(f'[data-testid="chat-tab"][data-session-id="{second_id}"]')
    await expect(new_tab).to_be_visible()
    await expect(console.get_by_test_id("chat-tab")).to_have_count(2)
    await expect(console.get_by_test_id("load")).to_have_text("1 / 5")
    await new_tab.click()
    await expect(console.get_by_test_id("chat-view")).to_have_attribute(
        "data-session-id", second_id
    )
    await expect(console_messages(console, "visitor")).to_have_text(
        ["Sorry, one more question about sizes."]
    )
    await expect(widget_messages(visitor, "visitor")).to_have_count(1)
    await expect(widget_messages(visitor, "visitor")).to_have_attribute("data-state", "read")
    await expect(w.get_by_test_id("status")).to_contain_text("Carol Operator")
