"""The widget while no operator is online, in a real browser against a real server.

An honest header, the submit button
in view even in a short panel, a success card naming the ticket and where the
answer goes; and file sizes shown in the right unit (93 bytes are "93 B"). Files
picked in the form: one too large is refused inline, in the visitor's language; the
others go with the form.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from .conftest import Pages
from .test_browser import widget
from .test_tickets_e2e import start_chat, widget_attach
from .test_widget_i18n import expect_field_error, tr, visitor_page

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_offline_one_form_button_in_view_and_success_card(server: Any, pages: Pages) -> None:
    page, _ = await visitor_page(pages, "de-CH")
    await page.set_viewport_size({"width": 420, "height": 460})
    await page.goto(server.http_url + "/")
    w = widget(page)
    await w.get_by_test_id("bubble").click()
    form = w.get_by_test_id("offline-form")
    await expect(form).to_be_visible()

    # Honest header: offline, not "we typically reply in a few minutes".
    await expect(w.get_by_test_id("status")).to_have_text(tr("de", "offline.head"))

    # Errors make the form taller; the submit button stays in view.
    await w.get_by_test_id("offline-submit").click()
    for field in ("offline-email", "offline-subject", "offline-text"):
        await expect_field_error(w, field, tr("de", "invalid.required"))
    await expect(w.get_by_test_id("offline-submit")).to_be_in_viewport()

    await w.get_by_test_id("offline-name").fill("Heidi Muster")
    await w.get_by_test_id("offline-email").fill("heidi@example.ch")
    await w.get_by_test_id("offline-subject").fill("Lieferung")
    await w.get_by_test_id("offline-text").fill("Wo ist meine Bestellung 4711?")
    await expect(w.get_by_test_id("offline-submit")).to_be_in_viewport()
    async with page.expect_response(lambda r: r.url.endswith("/api/visitor/offline")) as info:
        await w.get_by_test_id("offline-submit").click()
    response = await info.value
    assert response.status == 201
    ref = (await response.json())["ticket"]["ref"]
    done = w.get_by_test_id("offline-done")
    await expect(done).to_have_text(tr("de", "offline.done", ticket=ref))
    await expect(done).to_contain_text("E-Mail")
    await expect(done).to_have_attribute("role", "status")
    await expect(w.get_by_test_id("offline-submit")).to_have_count(0)


async def test_a_93_byte_file_is_shown_as_93_b(server: Any, pages: Pages) -> None:
    _, visitor, _ = await start_chat(
        pages, server, "bea", "Bea Bytes", "Sam Small", "Here comes a tiny file."
    )
    uploaded = await widget_attach(visitor, "tiny.txt", b"x" * 93, "text/plain")
    assert uploaded["size"] == 93
    own = widget(visitor).get_by_test_id("messages").locator('[data-from="visitor"]')
    att = own.last.get_by_test_id("attachment")
    await expect(att).to_have_text(re.compile(r"^tiny\.txt \(93\s?B\)$"))
    assert "kB" not in (await att.text_content() or "")


async def test_offline_form_refuses_a_file_too_large_and_sends_the_others(
    make_server: Any, pages: Pages
) -> None:
    server = make_server({"CHATSERVER_MAX_UPLOAD_BYTES": "2048"})
    server.start()
    page, _ = await visitor_page(pages, "fr-CH")
    await page.goto(server.http_url + "/")
    w = widget(page)
    await w.get_by_test_id("bubble").click()
    await expect(w.get_by_test_id("offline-form")).to_be_visible()
    await expect(w.get_by_test_id("offline-attach")).to_have_text(tr("fr", "offline.attach"))
    file_input = w.get_by_test_id("offline-file")

    # Too large: refused by the server, said inline in the visitor's language, not listed.
    big = {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n" * 400}
    async with page.expect_response(lambda r: r.url.endswith("/api/attachments")) as up:
        await file_input.set_input_files(files=[big])
    assert (await up.value).status == 413
    reason = tr("fr", "upload.too_large")
    await expect(w.get_by_test_id("offline-error")).to_have_text(
        tr("fr", "upload.failed", file="scan.pdf", reason=reason)
    )
    await expect(w.get_by_test_id("offline-attachment")).to_have_count(0)

    # A small one is listed with its size; the form goes with it alone.
    small = {"name": "photo.png", "mimeType": "image/png", "buffer": PNG}
    async with page.expect_response(lambda r: r.url.endswith("/api/attachments")) as up:
        await file_input.set_input_files(files=[small])
    uploaded = await (await up.value).json()
    await expect(w.get_by_test_id("offline-error")).to_be_hidden()
    await expect(w.get_by_test_id("offline-attachment")).to_have_text(
        re.compile(r"^photo\.png \(1\s?ko\)$")
    )
    await w.get_by_test_id("offline-email").fill("chloe@example.ch")
    await w.get_by_test_id("offline-subject").fill("Photo")
    await w.get_by_test_id("offline-text").fill("Voici la photo.")
    async with page.expect_response(lambda r: r.url.endswith("/api/visitor/offline")) as info:
        await w.get_by_test_id("offline-submit").click()
    response = await info.value
    assert response.status == 201
    assert response.request.post_data_json["attachments"] == [uploaded["id"]]
    await expect(w.get_by_test_id("offline-done")).to_be_visible()
