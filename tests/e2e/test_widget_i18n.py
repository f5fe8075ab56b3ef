"""The widget speaks the visitor's language, in a real browser against a real server.

The browser's language (Playwright's ``locale``: ``navigator.languages`` and
Accept-Language) picks German or French; ``data-lang`` on the script tag wins over
it; a language chosen in the panel wins over both and survives a reload. Every
text comes from widget/i18n/<lang>.json, so the expectations below are read from
there, and the widget's text is checked for English words left over.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Request, expect

from chatserver.client import OperatorClient
from chatserver.web.app import WIDGET_DIR, widget_catalogs
from tests.stored import connect_stored

from .conftest import TIMEOUT_MS, FrameLog, Pages
from .test_browser import (
    busy_colleague,
    eventually,
    widget,
    widget_messages,
    widget_session_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CATALOGS = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in (WIDGET_DIR / "i18n").glob("*.json")
}
# English UI words that have no place in a German or French widget (whole words,
# case as written). Words the languages share (Chat, Ticket, Message, Information,
# Status) are not listed.
ENGLISH = re.compile(
    r"\b(the|The|you|You|your|Your|Send|Please|Thank|Thanks|Waiting|operator|queue|Write|"
    r"Start|Subject|required|optional|Close|Open|Minimize|Attach|ended|Reply|Download|"
    r"Language|Powered|Delivered|Sent|Read|joined|Answered|progress|needed|Talk|"
    r"someone|Back|All|Call|Phone|Email|Transcript|rating|How|was|is|are|with)\b"
)


def tr(lang: str, key: str, **params: object) -> str:
    """The catalog's text, placeholders filled as the widget fills them."""
    text: str = CATALOGS[lang][key]
    for name, value in params.items():
        text = text.replace("{" + name + "}", str(value))
    return text


async def visitor_page(pages: Pages, locale: str) -> tuple[Page, list[dict[str, Any]]]:
    """A page in a fresh browser context with ``locale``, and the frames it sends."""
    context = await pages.browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(TIMEOUT_MS)
    pages.contexts.append(context)
    page = await context.new_page()
    page.on("pageerror", lambda exc: pages.errors.append(f"visitor[{locale}]: {exc}"))
    pages.frame_logs[page] = FrameLog(page)
    sent: list[dict[str, Any]] = []

    def on_websocket(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", on_websocket)
    return page, sent


async def sent_frame(
    sent: list[dict[str, Any]], kind: str, since: int = 0, field: str = "type"
) -> dict[str, Any]:
    """The first frame of type ``kind`` (with ``field``) the page sent after ``since``."""

    async def probe() -> list[dict[str, Any]]:
        return [f for f in sent[since:] if f.get("type") == kind and field in f]

    found: list[dict[str, Any]] = await eventually(probe)
    return found[0]


async def stored_lang(server: Any, session_id: str, want: str) -> None:
    """Wait until the server has stored ``want`` as the session's language."""

    async def probe() -> bool:
        conn = connect_stored(server.data_dir / "chatserver.sqlite3")
        try:
            row = conn.execute("SELECT lang FROM sessions WHERE id = ?", (session_id,)).fetchone()
        finally:
            conn.close()
        return bool(row) and row[0] == want

    await eventually(probe)


async def widget_text(page: Page) -> str:
    """Every text of the widget, hidden ones too, with the labels, placeholders and
    titles a screen reader or a tooltip shows; not the language names in the switch."""
    text: str = await page.evaluate(
        """() => {
            const out = [];
            const walk = (node) => {
                for (const c of node.childNodes) {
                    if (c.nodeType === 3) out.push(c.data);
                    if (c.nodeType !== 1 || /^(STYLE|OPTION)$/.test(c.tagName)) continue;
                    for (const a of ['aria-label', 'placeholder', 'title', 'alt']) {
                        if (c.getAttribute(a)) out.push(c.getAttribute(a));
                    }
                    walk(c);
                }
            };
            walk(document.getElementById('chatserver-widget').shadowRoot);
            return out.join('\\n');
        }"""
    )
    return text


async def assert_no_english(page: Page, lang: str) -> None:
    text = await widget_text(page)
    found = sorted(set(ENGLISH.findall(text)))
    assert found == [], f"English in the {lang} widget: {found}\n{text}"
    assert "{" not in text, f"a placeholder left unfilled:\n{text}"


async def focused_test_id(page: Page) -> str | None:
    return await page.evaluate(  # type: ignore[no-any-return]
        "() => { const a = document.getElementById('chatserver-widget').shadowRoot.activeElement;"
        " return a && a.dataset.testid || null; }"
    )


async def expect_field_error(w: Locator, field: str, text: str) -> None:
    box = w.get_by_test_id(field)
    error = w.get_by_test_id(f"{field}-error")
    await expect(error).to_have_text(text)
    await expect(box).to_have_attribute("aria-invalid", "true")
    await expect(box).to_have_attribute("aria-describedby", await error.get_attribute("id") or "")


PEOPLE = {
    "de": ("Anna Muster", "anna.muster@example.ch", "Rücksendung Wanderschuhe"),
    "fr": ("Chloé Dubois", "chloe.dubois@example.ch", "Retour de chaussures"),
}
OPERATORS = {"de": "Beat Brunner", "fr": "Léa Favre"}
QUESTION = {
    "de": "Grüezi, sind die Eiger-Schuhe in Grösse 44 erhältlich?",
    "fr": "Bonjour, avez-vous les chaussures Eiger en pointure 44\u202f?",
}
ANSWER = {"de": "Ja, wir haben noch zwei Paar.", "fr": "Oui, il nous en reste deux paires."}


@pytest.mark.parametrize(("locale", "lang"), [("de-CH", "de"), ("fr-CH", "fr")])
async def test_the_visitor_path_in_the_browsers_language(
    server: Any, pages: Pages, ws_clients: list[Any], locale: str, lang: str
) -> None:
    page, sent = await visitor_page(pages, locale)
    offline_posts: list[Request] = []
    page.on(
        "request",
        lambda r: offline_posts.append(r) if r.url.endswith("/api/visitor/offline") else None,
    )
    await page.goto(server.http_url + "/")
    w = widget(page)
    bubble = w.get_by_test_id("bubble")
    await expect(bubble).to_have_attribute("aria-label", tr(lang, "bubble.open"))
    await bubble.click()
    await expect(w.get_by_test_id("panel")).to_be_visible()
    await expect(bubble).to_have_attribute("aria-label", tr(lang, "bubble.close"))
    await expect(w.locator(".root")).to_have_attribute("lang", lang)
    await expect(w.get_by_test_id("language-select")).to_have_value(lang)
    assert (await sent_frame(sent, "hello"))["lang"] == lang

    # No operator online: the offline form, in the visitor's language.
    form = w.get_by_test_id("offline-form")
    await expect(form).to_be_visible()
    # One form: the header says so once, and there is no chat composer beside it.
    await expect(w.get_by_test_id("status")).to_have_text(tr(lang, "offline.head"))
    await expect(form).not_to_contain_text(tr(lang, "offline.head"))
    await expect(w.get_by_test_id("message-input")).to_be_hidden()
    await expect(w.get_by_test_id("offline-subject")).to_have_attribute(
        "placeholder", tr(lang, "offline.subject")
    )
    assert await form.evaluate("f => f.noValidate")  # no browser bubbles (in English)
    await w.get_by_test_id("offline-submit").click()
    for field in ("offline-email", "offline-subject", "offline-text"):
        await expect_field_error(w, field, tr(lang, "invalid.required"))
    await expect(w.get_by_test_id("offline-name-error")).to_be_hidden()
    assert await focused_test_id(page) == "offline-email"
    await assert_no_english(page, lang)

    name, email, subject = PEOPLE[lang]
    await w.get_by_test_id("offline-name").fill(name)
    await w.get_by_test_id("offline-email").fill(email.split("@")[0] + "@")
    await w.get_by_test_id("offline-subject").fill(subject)
    await w.get_by_test_id("offline-submit").click()
    await expect_field_error(w, "offline-email", tr(lang, "invalid.email"))
    await expect(w.get_by_test_id("offline-subject-error")).to_be_hidden()
    await expect(w.get_by_test_id("offline-subject")).to_have_attribute("aria-invalid", "false")
    assert offline_posts == [], "a form with mistakes went to the server"

    await w.get_by_test_id("offline-email").fill(email)
    await w.get_by_test_id("offline-text").fill(QUESTION[lang])
    async with page.expect_response(lambda r: r.url.endswith("/api/visitor/offline")) as info:
        await w.get_by_test_id("offline-submit").click()
    response = await info.value
    assert response.status == 201
    ref = (await response.json())["ticket"]["ref"]
    await expect(w.get_by_test_id("offline-done")).to_have_text(
        tr(lang, "offline.done", ticket=ref)
    )

    # "My tickets": the ticket and its state by the desk's name for it.
    await w.get_by_test_id("my-tickets").click()
    row = w.get_by_test_id("my-ticket").filter(has_text=ref)
    await expect(row).to_contain_text(tr(lang, "state.open"))
    await row.click()
    await expect(w.get_by_test_id("ticket-head")).to_contain_text(tr(lang, "state.open"))
    await expect(w.get_by_test_id("tickets")).to_contain_text(QUESTION[lang])
    await expect(w.get_by_test_id("ticket-reply-input")).to_have_attribute(
        "placeholder", tr(lang, "ticket.reply_placeholder")
    )
    await assert_no_english(page, lang)
    await expect(w.get_by_test_id("tickets-back")).to_have_text(tr(lang, "tickets.all"))
    await w.get_by_test_id("tickets-back").click()
    await expect(w.get_by_test_id("tickets-back")).to_have_text(tr(lang, "tickets.back"))
    await w.get_by_test_id("tickets-back").click()
    await expect(w.get_by_test_id("offline-done")).to_be_visible()
    await expect(w.get_by_test_id("message-input")).to_be_hidden()

    # An operator is signed in but away, a colleague online but busy: the chat
    # composer is back (someone is online) and the visitor waits in the queue.
    operator_name = OPERATORS[lang]
    server.add_operator("op", password="pw-secret", name=operator_name, capacity=3)
    op: OperatorClient = await server.operator("op", status="away")
    ws_clients.append(op)
    await busy_colleague(server, ws_clients)
    await expect(w.get_by_test_id("offline-done")).to_be_visible()
    await expect(w.get_by_test_id("status")).to_have_text(tr(lang, "status.idle"))
    try:
        await w.get_by_test_id("message-input").fill(QUESTION[lang])
        await w.get_by_test_id("send-button").click()
        status = w.get_by_test_id("status")
        await expect(status).to_have_text(tr(lang, "status.queue", n=1))
        await assert_no_english(page, lang)

        # The operator comes online and gets the chat: a notice, then their answer.
        await op.set_status("online")
        chat = await op.next_chat()
        question = await op.wait_for("message", lambda f: f.get("from") == "visitor")
        await op.send_frame(
            {"type": "read", "session_id": chat["session_id"], "seq": question["seq"]}
        )
        await expect(status).to_have_text(tr(lang, "status.with", name=operator_name))
        system = widget_messages(page, "system")
        await expect(system.locator(".txt")).to_have_text(
            [tr(lang, "notice.operator_joined", name=operator_name)]
        )
        await op.send_to(chat["session_id"], ANSWER[lang])
        await expect(widget_messages(page, "operator").locator(".txt")).to_have_text([ANSWER[lang]])
        own = widget_messages(page, "visitor")
        await expect(own).to_have_attribute("data-state", "read")
        await expect(own.locator(".tick")).to_have_attribute("title", tr(lang, "tick.read"))
        # Times as the language writes them (24-hour clock in de-CH and fr-CH).
        await expect(own.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
        await assert_no_english(page, lang)

        # The operator passes the chat on to 2nd-level support (the level as the
        # language writes it); the visitor ends the chat and rates it.
        joined = tr(lang, "notice.operator_joined", name=operator_name)
        await op.send_frame({"type": "transfer", "session_id": chat["session_id"], "level": 2})
        passed_on = tr(lang, "notice.transfer_to_level", level=tr(lang, "level.2"))
        await expect(system.locator(".txt")).to_have_text([joined, passed_on])
        await expect(status).to_have_text(tr(lang, "status.queue", n=1))
        await w.get_by_test_id("end-chat-button").click()
        await expect(status).to_have_text(tr(lang, "status.ended"))
        await expect(system.locator(".txt")).to_have_text(
            [joined, passed_on, tr(lang, "notice.chat_closed_by_visitor")]
        )
        await expect(w.get_by_test_id("new-chat-button")).to_have_text(tr(lang, "chat.new"))
        star = w.locator('[data-testid="rate"] [data-score="4"]')
        await expect(star).to_have_attribute("aria-label", tr(lang, "rate.star", n=4))
        await assert_no_english(page, lang)
        await star.click()
        await expect(w.get_by_test_id("rate")).to_have_text(tr(lang, "rate.thanks"))
        await pages.frames(page).wait_for(lambda f: f.get("type") == "rated")
        await assert_no_english(page, lang)
    finally:
        await op.close()


# The demo page's <script src="/widget.js" async> with data-lang="it", as a site
# in Ticino would embed it (set as the parser inserts the tag, before it runs).
DATA_LANG_IT = """new MutationObserver((changes, observer) => {
    const tag = document.querySelector('script[src$="/widget.js"]');
    if (tag) { tag.dataset.lang = 'it'; observer.disconnect(); }
}).observe(document, { childList: true, subtree: true });"""


async def test_data_lang_wins_over_the_browser(server: Any, pages: Pages) -> None:
    page, sent = await visitor_page(pages, "de-CH")
    await page.add_init_script(DATA_LANG_IT)
    async with page.expect_response(lambda r: "/widget/i18n/it.json" in r.url) as info:
        await page.goto(server.http_url + "/")
    catalog = await info.value
    # The Italian catalog comes from its versioned URL, cached for good.
    assert catalog.url.endswith("/widget/i18n/it.json?v=" + widget_catalogs()["it"][1])
    assert catalog.headers["cache-control"] == "public, max-age=31536000, immutable"

    w = widget(page)
    await expect(w.get_by_test_id("bubble")).to_have_attribute(
        "aria-label", tr("it", "bubble.open")
    )
    await w.get_by_test_id("bubble").click()
    await expect(w.get_by_test_id("offline-form")).to_be_visible()
    await expect(w.get_by_test_id("status")).to_have_text(tr("it", "offline.head"))
    await expect(w.locator(".intro").first).to_have_text(tr("it", "chat.intro"))
    await expect(w.get_by_test_id("message-input")).to_have_attribute(
        "placeholder", tr("it", "chat.placeholder")
    )
    await expect(w.get_by_test_id("language-select")).to_have_value("it")
    assert (await sent_frame(sent, "hello"))["lang"] == "it"


async def test_switching_language_in_the_panel_sticks(
    server: Any, pages: Pages, ws_clients: list[Any]
) -> None:
    page, sent = await visitor_page(pages, "de-CH")
    await page.goto(server.http_url + "/")
    w = widget(page)
    await w.get_by_test_id("bubble").click()
    # Nobody online: the header says so (not "we typically reply in a few minutes").
    await expect(w.get_by_test_id("status")).to_have_text(tr("de", "offline.head"))
    # A colleague comes online, busy: the chat composer is offered, the chat waits.
    await busy_colleague(server, ws_clients)
    await w.get_by_test_id("message-input").fill("Guten Tag, eine Frage zur Lieferung.")
    await w.get_by_test_id("send-button").click()
    status = w.get_by_test_id("status")
    await expect(status).to_have_text(tr("de", "status.queue", n=1))
    await expect(widget_messages(page, "visitor")).to_have_attribute("data-state", "stored")
    session_id = await widget_session_id(page, server)
    await stored_lang(server, session_id, "de")

    # The visitor picks French: everything switches at once, and the server is told.
    switch = w.get_by_test_id("language-select")
    await expect(switch).to_have_attribute("aria-label", tr("de", "lang.label"))
    mark = len(sent)
    await switch.select_option("fr")
    await expect(status).to_have_text(tr("fr", "status.queue", n=1))
    await expect(switch).to_have_attribute("aria-label", tr("fr", "lang.label"))
    await expect(w.locator(".root")).to_have_attribute("lang", "fr")
    await expect(w.get_by_test_id("message-input")).to_have_attribute(
        "placeholder", tr("fr", "chat.placeholder")
    )
    await expect(w.get_by_test_id("end-chat-button")).to_have_text(tr("fr", "chat.end"))
    await expect(w.get_by_test_id("bubble")).to_have_attribute(
        "aria-label", tr("fr", "bubble.close")
    )
    await expect(widget_messages(page, "visitor").locator(".tick")).to_have_attribute(
        "title", tr("fr", "tick.stored")
    )
    assert (await sent_frame(sent, "info", mark, "lang"))["lang"] == "fr"
    await stored_lang(server, session_id, "fr")
    await assert_no_english(page, "fr")
    errors = [f for f in pages.frames(page).frames if f.get("type") == "error"]
    assert errors == [], "the server refused a frame"

    # A reload keeps French (this browser remembers), the chat resumes in it.
    mark = len(sent)
    await page.reload()
    w = widget(page)
    await expect(w.get_by_test_id("panel")).to_be_visible()
    await expect(w.get_by_test_id("language-select")).to_have_value("fr")
    await expect(w.get_by_test_id("status")).to_have_text(tr("fr", "status.queue", n=1))
    await expect(widget_messages(page, "visitor").locator(".txt")).to_have_text(
        ["Guten Tag, eine Frage zur Lieferung."]
    )
    assert (await sent_frame(sent, "hello", mark))["lang"] == "fr"
    await assert_no_english(page, "fr")

    # Back to German: the inlined catalog, no request needed.
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/widget/i18n/" in r.url else None)
    await w.get_by_test_id("language-select").select_option("de")
    await expect(w.get_by_test_id("status")).to_have_text(tr("de", "status.queue", n=1))
    await expect(w.get_by_test_id("end-chat-button")).to_have_text(tr("de", "chat.end"))
    assert fetched == []
    await assert_no_english(page, "de")
