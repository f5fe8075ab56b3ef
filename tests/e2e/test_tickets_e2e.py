"""End-to-end tests of attachments and tickets in a real browser: the visitor
widget on the demo page and the operator console against a real
``chatserver serve`` process (API: docs/http-api.md).

Same set-up as ``test_browser.py``: every page has its own browser context.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Response, Route, expect

from chatserver.tickets.model import TRANSITIONS, TicketState

from .conftest import Pages
from .test_browser import (
    PASSWORD,
    console_messages,
    eventually,
    open_console,
    open_widget,
    set_status,
    visitor_send,
    widget,
    widget_session_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOTE_LABEL = "Internal note \u2014 not visible to the customer"


# --------------------------------------------------------------------- helpers
def tiny_png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = (b"\x00" + bytes(rgb) * width) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()


def is_upload(response: Response) -> bool:
    return response.url.endswith("/api/attachments") and response.request.method == "POST"


async def widget_attach(visitor: Page, name: str, data: bytes, mime: str) -> dict[str, Any]:
    """Pick a file with the widget's paperclip input; the upload's JSON answer."""
    async with visitor.expect_response(is_upload) as info:
        await (
            widget(visitor)
            .get_by_test_id("file-input")
            .set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
        )
    response = await info.value
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def start_chat(
    pages: Pages, server: Any, username: str, operator_name: str, visitor_name: str, text: str
) -> tuple[Page, Page, str]:
    """An online operator, a visitor who wrote ``text`` and got assigned."""
    server.add_operator(username, password=PASSWORD, name=operator_name, capacity=5)
    console = await open_console(pages, server, username)
    await set_status(pages, console, "online")
    visitor = await open_widget(pages, server)
    await visitor_send(visitor, text, name=visitor_name)
    session_id = await widget_session_id(visitor, server)
    await expect(console.get_by_test_id("chat-tab")).to_have_attribute(
        "data-session-id", session_id
    )
    await expect(console_messages(console, "visitor")).to_have_text([text])
    await expect(widget(visitor).get_by_test_id("status")).to_contain_text(operator_name)
    return console, visitor, session_id


async def escalate(
    console: Page,
    session_id: str,
    subject: str | None = None,
    *,
    department: str = "technical",
    priority: str = "normal",
    level: str = "1",
) -> dict[str, Any]:
    """Escalate the selected chat through the dialog; the created ticket."""
    await console.get_by_test_id("nav-chats").click()
    await console.get_by_test_id("escalate-button").click()
    dialog = console.get_by_test_id("escalate-dialog")
    await expect(dialog).to_be_visible()
    if subject is not None:
        await console.get_by_test_id("escalate-subject").fill(subject)
    await console.get_by_test_id("escalate-department").select_option(department)
    await console.get_by_test_id("escalate-priority").select_option(priority)
    await console.get_by_test_id("escalate-level").select_option(level)
    async with console.expect_response(
        lambda r: r.url.endswith(f"/api/sessions/{session_id}/escalate")
    ) as info:
        await console.get_by_test_id("escalate-submit").click()
    response = await info.value
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    await expect(dialog).to_be_hidden()
    ticket: dict[str, Any] = body["ticket"]
    assert re.fullmatch(r"#\d+", ticket["ref"]), ticket
    # The console switches to the ticket.
    await expect(console.get_by_test_id("ticket-view")).to_be_visible()
    await expect(console.get_by_test_id("ticket-ref")).to_have_text(ticket["ref"])
    return ticket


def ticket_events(console: Page, kind: str | None = None) -> Locator:
    sel = '[data-testid="ticket-event"]' + (f'[data-kind="{kind}"]' if kind else "")
    return console.get_by_test_id("ticket-events").locator(sel)


async def open_widget_ticket(visitor: Page, ref: str) -> Locator:
    """Open "My tickets" in the widget, then the ticket ``ref``; the tickets pane."""
    w = widget(visitor)
    pane = w.get_by_test_id("tickets")
    if await pane.is_visible():
        # Back to the list (and from there back to the list again), fresh from the server.
        while await w.get_by_test_id("tickets-back").is_visible():
            label = await w.get_by_test_id("tickets-back").text_content() or ""
            await w.get_by_test_id("tickets-back").click()
            if "chat" in label.lower():
                break
    await w.get_by_test_id("my-tickets").click()
    await expect(pane).to_be_visible()
    item = pane.get_by_test_id("my-ticket").filter(has_text=ref)
    await expect(item).to_have_count(1)
    await item.click()
    await expect(pane.get_by_test_id("ticket-head")).to_contain_text(ref)
    return pane


async def attach_to_reply(console: Page, name: str, data: bytes) -> None:
    """Upload a text file for the ticket reply being written; wait for its chip."""
    chips = console.get_by_test_id("pending-file")
    before = await chips.count()
    async with console.expect_response(is_upload) as info:
        await console.get_by_test_id("ticket-file-input").set_input_files(
            files=[{"name": name, "mimeType": "text/plain", "buffer": data}]
        )
    assert (await info.value).status == 201
    await expect(chips).to_have_count(before + 1)
    await expect(chips.last).to_contain_text(name)


async def image_loaded(img: Locator) -> bool:
    return bool(await img.evaluate("i => i.complete && i.naturalWidth > 0"))


async def read_download(page: Page, trigger: Locator) -> tuple[str, bytes]:
    async with page.expect_download() as info:
        await trigger.click()
    download = await info.value
    path = await download.path()
    data = await asyncio.to_thread(Path(path).read_bytes)
    return download.suggested_filename, data


# ----------------------------------------------------------------------- tests
async def test_attachment_escalation_and_ticket_views(server: Any, pages: Pages) -> None:
    question = "My order 5512 arrived with a broken buckle, photo follows."
    console, visitor, session_id = await start_chat(
        pages, server, "tina", "Tina Tickets", "Paula Png", question
    )
    w = widget(visitor)

    # The visitor attaches a PNG with the paperclip.
    uploaded = await widget_attach(visitor, "buckle.png", PNG, "image/png")
    assert uploaded["filename"] == "buckle.png"
    assert uploaded["content_type"] == "image/png"
    assert uploaded["size"] == len(PNG)

    own = w.get_by_test_id("messages").locator('[data-from="visitor"]')
    await expect(own).to_have_count(2)
    await expect(own.last.get_by_test_id("attachment")).to_contain_text("buckle.png")
    await expect(own.last).to_have_attribute("data-state", re.compile("stored|read"))
    widget_preview = own.last.get_by_test_id("attachment-preview")
    await expect(widget_preview).to_have_attribute("src", re.compile(r"^blob:"))
    await eventually(lambda: image_loaded(widget_preview))

    # The operator sees it in the chat: a download button and a preview.
    chat_att = console.locator("#chat-view").get_by_test_id("attachment")
    await expect(chat_att).to_have_count(1)
    await expect(chat_att.get_by_test_id("attachment-download")).to_have_text("buckle.png")
    preview = chat_att.get_by_test_id("attachment-preview")
    await expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    await eventually(lambda: image_loaded(preview))
    # The text-only bubble of that message stays empty (no file name inside).
    await expect(console_messages(console, "visitor")).to_have_text([question, ""])
    name, data = await read_download(console, chat_att.get_by_test_id("attachment-download"))
    assert (name, data) == ("buckle.png", PNG)

    # The operator sends a file back; the visitor downloads it from the widget.
    label = b"Return label: 1Z999AA10123456784\n"
    async with console.expect_response(is_upload) as info:
        await console.get_by_test_id("file-input").set_input_files(
            files=[{"name": "label.txt", "mimeType": "text/plain", "buffer": label}]
        )
    assert (await info.value).status == 201
    await expect(
        console.locator('#chat-view [data-testid="message"][data-from="operator"]')
    ).to_have_attribute("data-state", re.compile("stored|read"))
    from_op = w.get_by_test_id("messages").locator('[data-from="operator"]')
    await expect(from_op.get_by_test_id("attachment")).to_have_count(1)
    await expect(from_op.get_by_test_id("attachment")).to_contain_text("label.txt")
    await expect(from_op.get_by_test_id("attachment-preview")).to_have_count(0)
    name, data = await read_download(visitor, from_op.get_by_test_id("attachment"))
    assert (name, data) == ("label.txt", label)

    # Escalate: the subject is prefilled from the first visitor message.
    await console.get_by_test_id("escalate-button").click()
    await expect(console.get_by_test_id("escalate-subject")).to_have_value(question)
    await console.get_by_test_id("escalate-cancel").click()
    await expect(console.get_by_test_id("escalate-dialog")).to_be_hidden()
    subject = "Broken buckle on order 5512"
    ticket = await escalate(
        console, session_id, subject, department="billing", priority="high", level="2"
    )
    ref = ticket["ref"]

    # Ticket view: header, controls, transcript with the attachment.
    await expect(console.get_by_test_id("ticket-subject")).to_have_text(subject)
    await expect(console.get_by_test_id("ticket-requester")).to_contain_text("Paula Png")
    await expect(console.get_by_test_id("ticket-channel")).to_have_text("Chat")
    await expect(console.get_by_test_id("ticket-state")).to_have_value("open")
    await expect(console.get_by_test_id("ticket-priority")).to_have_value("high")
    await expect(console.get_by_test_id("ticket-department")).to_have_value("billing")
    await expect(console.get_by_test_id("ticket-level")).to_have_value("2")
    transcript = ticket_events(console, "transcript")
    await expect(transcript.filter(has_text=question)).to_have_count(1)
    await expect(transcript.get_by_test_id("attachment-download")).to_have_text(
        ["buckle.png", "label.txt"]
    )
    t_preview = transcript.get_by_test_id("attachment-preview")
    await expect(t_preview).to_have_attribute("src", re.compile(r"^blob:"))
    await eventually(lambda: image_loaded(t_preview))
    all_files = console.get_by_test_id("ticket-attachments").get_by_test_id("attachment-download")
    await expect(all_files).to_have_count(2)
    name, data = await read_download(console, all_files.filter(has_text="buckle.png"))
    assert (name, data) == ("buckle.png", PNG)

    # ... and in the inbox list.
    row = console.get_by_test_id("ticket-row").filter(has_text=ref)
    await expect(row).to_have_count(1)
    await expect(row.get_by_test_id("ticket-row-ref")).to_have_text(ref)
    await expect(row.get_by_test_id("ticket-row-subject")).to_have_text(subject)
    await expect(row.get_by_test_id("ticket-row-state")).to_have_text("Open")
    await expect(row.get_by_test_id("ticket-row-priority")).to_have_text("High")
    await expect(row).to_have_attribute("data-priority", "high")
    await expect(row.get_by_test_id("ticket-row-department")).to_have_text("Billing")
    await expect(row.get_by_test_id("ticket-row-level")).to_have_text("L2")
    await expect(row.get_by_test_id("ticket-row-assignee")).to_contain_text("Tina Tickets")
    # Filters: assigned to me / department billing keep it; level 1 drops it.
    await console.get_by_test_id("filter-assignee").select_option("me")
    await expect(row).to_have_count(1)
    await console.get_by_test_id("filter-department").select_option("billing")
    await expect(row).to_have_count(1)
    await console.get_by_test_id("filter-level").select_option("1")
    await expect(row).to_have_count(0)
    await expect(console.get_by_test_id("ticket-total")).to_have_text("0")
    await console.get_by_test_id("filter-level").select_option("")
    await expect(row).to_have_count(1)

    # The chat shows the escalation notice with the ticket ref.
    await console.get_by_test_id("nav-chats").click()
    notice = console.locator('#chat-view [data-testid="message"][data-event="escalated"]')
    await expect(notice).to_contain_text(ref)
    await expect(console.get_by_test_id("chat-ticket")).to_have_text(f"Ticket {ref}")
    await expect(console.get_by_test_id("escalate-button")).to_be_hidden()
    await console.get_by_test_id("ticket-link").click()
    await expect(console.get_by_test_id("ticket-view")).to_be_visible()
    await expect(console.get_by_test_id("ticket-ref")).to_have_text(ref)

    # The widget tells the visitor, and lists the ticket under "My tickets".
    esc = w.get_by_test_id("messages").locator('[data-from="system"]').filter(has_text=ref)
    await expect(esc.locator(".txt")).to_have_text(
        f"Your request is now ticket {ref}. We will continue by e-mail and you can follow it here."
    )
    await esc.get_by_role("button", name="View ticket").click()
    await expect(w.get_by_test_id("ticket-head")).to_contain_text(ref)
    pane = await open_widget_ticket(visitor, ref)
    await expect(pane.get_by_test_id("ticket-head")).to_contain_text(subject)
    await expect(pane.locator('[data-kind="transcript"]').filter(has_text=question)).to_have_count(
        1
    )
    await expect(pane.get_by_test_id("attachment")).to_contain_text(["buckle.png", "label.txt"])
    await expect(console.locator(".toast-error")).to_have_count(0)
    await expect(w.get_by_test_id("notice")).to_be_hidden()


async def test_upload_refusals_are_shown(make_server: Any, pages: Pages) -> None:
    server = make_server(env={"CHATSERVER_MAX_UPLOAD_BYTES": "4096"})
    server.start()
    console, visitor, _ = await start_chat(
        pages, server, "ursula", "Ursula Upload", "Rita Refused", "Can I send you a file?"
    )
    w = widget(visitor)
    big = PNG + bytes(8192)
    # Too large: 413, shown in the widget.
    async with visitor.expect_response(is_upload) as info:
        await w.get_by_test_id("file-input").set_input_files(
            files=[{"name": "huge.png", "mimeType": "image/png", "buffer": big}]
        )
    assert (await info.value).status == 413
    await expect(w.get_by_test_id("notice")).to_contain_text("huge.png")
    await expect(w.get_by_test_id("notice")).to_contain_text("too large")
    # A PNG name on bytes that are not a PNG: 415, shown in the widget.
    async with visitor.expect_response(is_upload) as info:
        await w.get_by_test_id("file-input").set_input_files(
            files=[{"name": "fake.png", "mimeType": "image/png", "buffer": b"MZ\x90\x00binary"}]
        )
    assert (await info.value).status == 415
    await expect(w.get_by_test_id("notice")).to_contain_text("fake.png")
    await expect(w.get_by_test_id("notice")).to_contain_text("not allowed")
    await expect(w.get_by_test_id("messages").get_by_test_id("attachment")).to_have_count(0)

    # The same in the console: error toasts, nothing sent.
    async with console.expect_response(is_upload) as info:
        await console.get_by_test_id("file-input").set_input_files(
            files=[{"name": "huge.png", "mimeType": "image/png", "buffer": big}]
        )
    assert (await info.value).status == 413
    await expect(console.locator(".toast-error").filter(has_text="huge.png")).to_contain_text(
        "too large"
    )
    async with console.expect_response(is_upload) as info:
        await console.get_by_test_id("file-input").set_input_files(
            files=[
                {"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"\x7fELF"}
            ]
        )
    assert (await info.value).status == 415
    await expect(console.locator(".toast-error").filter(has_text="tool.exe")).to_contain_text(
        "not allowed"
    )
    await expect(console.locator("#chat-view").get_by_test_id("attachment")).to_have_count(0)
    await expect(console_messages(console, "visitor")).to_have_text(["Can I send you a file?"])
    # Files within the limit still go through.
    await widget_attach(visitor, "small.png", PNG, "image/png")
    await expect(console.locator("#chat-view").get_by_test_id("attachment")).to_have_count(1)


HOSTILE_VISITOR = '<img src=x onerror="window.__pwned=1"><i>Eve</i>'
HOSTILE_TEXT = "<script>window.__pwned=2</script><b>help</b> me"
HOSTILE_FILE = "<img src=x onerror=window.__pwned=3>.png"
HOSTILE_SUBJECT = '<img src=x onerror="window.__pwned=4">Refund <b>now</b>'
HOSTILE_NOTE = '<svg onload="window.__pwned=5"></svg>note'
MARKUP = 'img:not([data-testid="attachment-preview"]), b, i, script, iframe, svg, img[src="x"]'


async def assert_inert(container: Locator, what: str) -> None:
    count = await container.locator(MARKUP).count()
    assert count == 0, f"{what}: {count} element(s) created from text"


def rewrite_filenames(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {
            k: (name if k == "filename" else rewrite_filenames(v, name)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [rewrite_filenames(v, name) for v in value]
    return value


async def serve_hostile_filenames(page: Page, pattern: re.Pattern[str]) -> None:
    """Answer matching API GETs with every attachment renamed to HOSTILE_FILE.

    The server cleans file names (no ``<>``); this checks that the pages stay
    safe even if a raw name ever got through.
    """

    async def handle(route: Route) -> None:
        if route.request.method != "GET":
            await route.continue_()
            return
        response = await route.fetch()
        body = rewrite_filenames(await response.json(), HOSTILE_FILE)
        await route.fulfill(response=response, body=json.dumps(body))

    await page.route(pattern, handle)


async def test_hostile_text_in_attachments_and_tickets_is_inert(server: Any, pages: Pages) -> None:
    console, visitor, session_id = await start_chat(
        pages, server, "mallory2", "Mallory Two", HOSTILE_VISITOR, HOSTILE_TEXT
    )
    w = widget(visitor)
    uploaded = await widget_attach(visitor, HOSTILE_FILE, PNG, "image/png")
    shown = uploaded["filename"]
    assert shown.endswith(".png")

    chat_att = console.locator("#chat-view").get_by_test_id("attachment-download")
    await expect(chat_att).to_have_text([shown])
    await expect(w.get_by_test_id("messages").get_by_test_id("attachment")).to_contain_text([shown])

    ticket = await escalate(console, session_id, HOSTILE_SUBJECT)
    ref = ticket["ref"]
    await expect(console.get_by_test_id("ticket-subject")).to_have_text(HOSTILE_SUBJECT)
    await expect(console.get_by_test_id("ticket-requester")).to_contain_text(HOSTILE_VISITOR)
    await expect(ticket_events(console, "transcript").filter(has_text=HOSTILE_TEXT)).to_have_count(
        1
    )
    row = console.get_by_test_id("ticket-row").filter(has_text=ref)
    await expect(row.get_by_test_id("ticket-row-subject")).to_have_text(HOSTILE_SUBJECT)

    # An internal note with markup, shown literally.
    await console.get_by_test_id("reply-mode-internal").check()
    await console.get_by_test_id("ticket-reply-input").fill(HOSTILE_NOTE)
    await console.get_by_test_id("ticket-reply-send").click()
    await expect(
        ticket_events(console).filter(has=console.get_by_test_id("note-label"))
    ).to_contain_text(HOSTILE_NOTE)

    # Raw hostile file names from the API render as text too.
    await serve_hostile_filenames(console, re.compile(r"/api/tickets/\d+$"))
    await row.click()
    await expect(
        ticket_events(console, "transcript").get_by_test_id("attachment-download")
    ).to_have_text([HOSTILE_FILE])
    await expect(
        console.get_by_test_id("ticket-attachments").get_by_test_id("attachment-download")
    ).to_have_text([HOSTILE_FILE])

    await serve_hostile_filenames(visitor, re.compile(r"/api/visitor/tickets/\d+$"))
    pane = await open_widget_ticket(visitor, ref)
    await expect(pane.get_by_test_id("ticket-head")).to_contain_text(HOSTILE_SUBJECT)
    await expect(pane.get_by_test_id("attachment")).to_contain_text([HOSTILE_FILE])
    await expect(
        pane.locator('[data-kind="transcript"]').filter(has_text=HOSTILE_TEXT)
    ).to_have_count(1)
    await expect(pane).not_to_contain_text(HOSTILE_NOTE)

    for locator, raw in (
        (console.get_by_test_id("ticket-subject"), HOSTILE_SUBJECT),
        (row, HOSTILE_SUBJECT),
        (pane.get_by_test_id("ticket-head"), HOSTILE_SUBJECT),
    ):
        assert raw in (await locator.text_content() or "")

    await assert_inert(console.locator("#view-tickets"), "console tickets view")
    await assert_inert(console.locator("#chat-view"), "console chat view")
    await assert_inert(console.locator("#toasts"), "console toasts")
    await assert_inert(w.get_by_test_id("messages"), "widget messages")
    await assert_inert(pane.locator(".list"), "widget ticket view")

    # Give a (wrongly) created <img src=x> time to fire onerror: a round trip.
    await console.get_by_test_id("nav-chats").click()
    await console.get_by_test_id("message-input").fill("still there?")
    await console.get_by_test_id("send-button").click()
    await expect(w.get_by_test_id("messages").locator('[data-from="operator"] .txt')).to_have_text(
        ["still there?"]
    )
    for page in (console, visitor):
        assert await page.evaluate("() => typeof window.__pwned") == "undefined"


async def test_internal_note_stays_internal_and_changes(server: Any, pages: Pages) -> None:
    question = "The invoice for March is charged twice."
    console, visitor, session_id = await start_chat(
        pages, server, "nina", "Nina Notes", "Carl Customer", question
    )
    ticket = await escalate(console, session_id)
    ref = ticket["ref"]
    await expect(console.get_by_test_id("ticket-subject")).to_have_text(question)

    note = "Internal: refund approved by finance, do not tell before Monday"
    await console.get_by_test_id("reply-mode-internal").check()
    await expect(console.locator("#ticket-reply")).to_have_attribute("data-mode", "internal")
    await console.get_by_test_id("ticket-reply-input").fill(note)
    await attach_to_reply(console, "finance.txt", b"approved by J. Doe\n")
    await console.get_by_test_id("ticket-reply-send").click()
    note_event = ticket_events(console).filter(has_text=note)
    await expect(note_event).to_have_count(1)
    await expect(note_event).to_have_attribute("data-internal", "true")
    await expect(note_event.get_by_test_id("note-label")).to_have_text(NOTE_LABEL)
    await expect(note_event.get_by_test_id("attachment-download")).to_have_text(["finance.txt"])
    await expect(console.get_by_test_id("ticket-reply-input")).to_have_value("")
    await expect(console.get_by_test_id("pending-file")).to_have_count(0)

    reply = "We have refunded the second charge; it shows within 3 days."
    receipt = b"Refund 49.00 CHF, 2024-03-28\n"
    await console.get_by_test_id("reply-mode-public").check()
    await console.get_by_test_id("ticket-reply-input").fill(reply)
    await attach_to_reply(console, "receipt.txt", receipt)
    await console.get_by_test_id("ticket-reply-send").click()
    reply_event = ticket_events(console, "reply").filter(has_text=reply)
    await expect(reply_event).to_have_count(1)
    await expect(reply_event).to_have_attribute("data-internal", "false")
    await expect(reply_event.get_by_test_id("note-label")).to_have_count(0)
    await expect(reply_event.get_by_test_id("attachment-download")).to_have_text(["receipt.txt"])

    # The widget's ticket view has the public reply (and its file), not the note.
    pane = await open_widget_ticket(visitor, ref)
    await expect(pane.locator('[data-testid="message"]').filter(has_text=reply)).to_have_count(1)
    await expect(pane).not_to_contain_text(note)
    await expect(pane).not_to_contain_text("Internal")
    await expect(pane.get_by_test_id("attachment")).to_have_count(1)
    name, data = await read_download(visitor, pane.get_by_test_id("attachment"))
    assert (name, data) == ("receipt.txt", receipt)

    # The visitor answers from the widget; the console shows it.
    answer = "Thank you, I can see it now."
    await pane.get_by_test_id("ticket-reply-input").fill(answer)
    await pane.get_by_test_id("ticket-reply-send").click()
    await expect(pane.locator('[data-testid="message"]').filter(has_text=answer)).to_have_count(1)
    await expect(pane).not_to_contain_text(note)
    await console.get_by_test_id("ticket-refresh").click()
    await console.get_by_test_id("ticket-row").filter(has_text=ref).click()
    await expect(ticket_events(console, "reply").filter(has_text=answer)).to_have_count(1)

    # Priority: a reason is required, and the change shows up as a history line.
    current = await console.get_by_test_id("ticket-priority").input_value()
    await console.get_by_test_id("ticket-priority").select_option("critical")
    await expect(console.get_by_test_id("ticket-reason")).to_be_visible()
    await console.get_by_test_id("ticket-apply").click()
    await expect(console.get_by_test_id("ticket-error")).to_contain_text("reason")
    await console.get_by_test_id("ticket-reason").fill("customer threatens chargeback")
    await console.get_by_test_id("ticket-apply").click()
    await expect(ticket_events(console, "priority")).to_have_text(
        [
            re.compile(
                rf"Priority {current.capitalize()} \u2192 Critical"
                r" \u2014 reason: customer threatens chargeback"
            )
        ]
    )
    await expect(console.get_by_test_id("ticket-error")).to_be_hidden()
    await expect(console.get_by_test_id("ticket-priority-badge")).to_have_text("Critical")
    row = console.get_by_test_id("ticket-row").filter(has_text=ref)
    await expect(row.get_by_test_id("ticket-row-priority")).to_have_text("Critical")

    # Level and department, one change each.
    await console.get_by_test_id("ticket-level").select_option("3")
    await console.get_by_test_id("ticket-department").select_option("billing")
    await console.get_by_test_id("ticket-apply").click()
    await expect(ticket_events(console, "level")).to_contain_text(["Level 1 \u2192 3"])
    await expect(ticket_events(console, "department")).to_contain_text(
        ["Department Technical \u2192 Billing"]
    )

    # A state change, then one the server refuses (409): the console says what to do
    # (never the server's own message or the status).
    before = await console.get_by_test_id("ticket-state").input_value()
    state = TicketState.INFORMATION
    await console.get_by_test_id("ticket-state").select_option(state.value)
    await console.get_by_test_id("ticket-apply").click()
    await expect(ticket_events(console, "state").last).to_contain_text(
        f"State {before.replace('_', ' ').capitalize()} \u2192 Information"
    )
    await expect(row.get_by_test_id("ticket-row-state")).to_have_text("Information")
    refused = next(s for s in TicketState if s is not state and s not in TRANSITIONS[state])
    async with console.expect_response(lambda r: r.url.endswith("/changes")) as info:
        await console.get_by_test_id("ticket-state").select_option(refused.value)
        await console.get_by_test_id("ticket-apply").click()
    response = await info.value
    assert response.status == 409
    message = (await response.json())["message"]
    await expect(console.get_by_test_id("ticket-error")).to_have_text(
        "The ticket cannot change like this from its current state. Choose another state"
        " or refresh the ticket."
    )
    await expect(console.get_by_test_id("ticket-error")).not_to_contain_text(message)

    # Unassign, then take it back.
    await console.get_by_test_id("ticket-state").select_option(state.value)
    await console.get_by_test_id("ticket-assignee").select_option("")
    await console.get_by_test_id("ticket-apply").click()
    await expect(ticket_events(console, "assignee")).to_contain_text(
        ["Assignee Nina Notes \u2192 nobody"]
    )
    await expect(row.get_by_test_id("ticket-row-assignee")).to_have_text("Unassigned")
    await console.get_by_test_id("filter-assignee").select_option("none")
    await expect(row).to_have_count(1)

    await expect(pane).not_to_contain_text(note)
    assert not pages.errors


async def test_a_reload_of_the_open_ticket_keeps_unsaved_edits(server: Any, pages: Pages) -> None:
    """The operator has picked a new priority and typed the reason; the ticket
    is reloaded (the visitor replied, the operator refreshes) before Apply.
    The new reply shows, and the edits are still there and still apply."""
    question = "My parcel never arrived."
    console, visitor, _ = await start_chat(
        pages, server, "rita", "Rita Reload", "Paul Parcel", question
    )
    sid = await widget_session_id(visitor, server)
    ticket = await escalate(console, sid)
    await console.get_by_test_id("ticket-priority").select_option("high")
    await console.get_by_test_id("ticket-reason").fill("third parcel lost this year")
    pane = await open_widget_ticket(visitor, ticket["ref"])
    answer = "Any news? I need it by Friday."
    await pane.get_by_test_id("ticket-reply-input").fill(answer)
    await pane.get_by_test_id("ticket-reply-send").click()
    await expect(pane.locator('[data-testid="message"]').filter(has_text=answer)).to_have_count(1)
    await console.get_by_test_id("ticket-refresh").click()
    await expect(ticket_events(console, "reply").filter(has_text=answer)).to_have_count(1)
    await expect(console.get_by_test_id("ticket-priority")).to_have_value("high")
    await expect(console.get_by_test_id("ticket-reason")).to_be_visible()
    await expect(console.get_by_test_id("ticket-reason")).to_have_value(
        "third parcel lost this year"
    )
    await console.get_by_test_id("ticket-apply").click()
    await expect(ticket_events(console, "priority")).to_have_text(
        [re.compile(r"Priority Normal \u2192 High \u2014 reason: third parcel lost this year")]
    )
    await expect(console.get_by_test_id("ticket-priority-badge")).to_have_text("High")
    assert not pages.errors


async def test_offline_form_creates_a_ticket(server: Any, pages: Pages) -> None:
    # Nobody is online: the widget offers the offline form.
    visitor = await open_widget(pages, server)
    w = widget(visitor)
    form = w.get_by_test_id("offline-form")
    await expect(form).to_be_visible()
    # Said once, in the header; no chat composer beside the form.
    await expect(w.get_by_test_id("status")).to_have_text(
        "We\u2019re offline \u2014 leave us a message"
    )
    await expect(w.get_by_test_id("message-input")).to_be_hidden()
    await w.get_by_test_id("offline-name").fill("Olga Offline")
    await w.get_by_test_id("offline-subject").fill("Opening hours at Easter")
    await w.get_by_test_id("offline-text").fill("Are you open on Easter Monday?")
    # An address the browser accepts but the server does not: its message, inline.
    await w.get_by_test_id("offline-email").fill("o" * 65 + "@example.com")
    async with visitor.expect_response(lambda r: r.url.endswith("/api/visitor/offline")) as info:
        await w.get_by_test_id("offline-submit").click()
    refused = await info.value
    assert refused.status == 400
    await expect(w.get_by_test_id("offline-error")).to_have_text((await refused.json())["message"])
    await expect(form).to_be_visible()

    await w.get_by_test_id("offline-email").fill("olga@example.com")
    async with visitor.expect_response(lambda r: r.url.endswith("/api/visitor/offline")) as info:
        await w.get_by_test_id("offline-submit").click()
    response = await info.value
    body = await response.json()
    assert response.status == 201, body
    ref = body["ticket"]["ref"]
    await expect(w.get_by_test_id("offline-error")).to_be_hidden()
    await expect(w.get_by_test_id("offline-done")).to_have_text(
        f"Thank you! Your ticket {ref} has been created. We\u2019ll answer by e-mail to the "
        "address you gave."
    )
    pane = await open_widget_ticket(visitor, ref)
    await expect(pane).to_contain_text("Are you open on Easter Monday?")

    # An operator finds it, unassigned, in the inbox.
    server.add_operator("otto", password=PASSWORD, name="Otto Operator")
    console = await open_console(pages, server, "otto")
    await console.get_by_test_id("nav-tickets").click()
    await console.get_by_test_id("filter-assignee").select_option("none")
    row = console.get_by_test_id("ticket-row").filter(has_text=ref)
    await expect(row.get_by_test_id("ticket-row-subject")).to_have_text("Opening hours at Easter")
    await row.click()
    await expect(console.get_by_test_id("ticket-channel")).to_have_text("Web form")
    await expect(console.get_by_test_id("ticket-requester")).to_contain_text("olga@example.com")
