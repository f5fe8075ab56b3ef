"""End-to-end: the Team page of the operator console (admins), in a real browser
against a real server (docs/http-api.md, "Operators and the team").

An admin creates an operator, changes their capacity and role, disables them (their
open console goes back to the login screen), enables them, sets a password and
removes them; operators and supervisors get no Team entry; bad input is refused
with a sentence in the console's language (de-CH) and changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from .conftest import Pages
from .test_browser import PASSWORD, open_console
from .test_console_i18n_e2e import new_page, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCREENSHOT = Path(os.environ.get("CHATSERVER_E2E_SHOTS", "/tmp")) / "team-de-CH.png"


def row(page: Page, username: str) -> Locator:
    return page.locator(f'[data-testid="team-row"][data-username="{username}"]')


async def open_team(page: Page) -> None:
    await page.get_by_test_id("nav-team").click()
    await expect(page.get_by_test_id("team-view")).to_be_visible()
    await expect(page.get_by_role("heading", name="Team")).to_be_visible()


async def confirm(page: Page) -> None:
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("confirm-ok").click()
    await expect(dialog).to_be_hidden()


async def test_admin_manages_an_operator_from_the_team_page(
    make_server: Any, pages: Pages
) -> None:
    server = make_server()
    server.start()
    server.add_operator("ada", password=PASSWORD, name="Ada Admin", role="admin")
    admin = await open_console(pages, server, "ada")
    await open_team(admin)
    await expect(row(admin, "ada").get_by_test_id("team-role")).to_have_text("admin")
    await expect(row(admin, "ada").get_by_test_id("team-status")).to_have_text("Active")
    # No disabling or removing of one's own account.
    await expect(row(admin, "ada").get_by_test_id("team-disable")).to_have_count(0)
    await expect(row(admin, "ada").get_by_test_id("team-remove")).to_have_count(0)

    # Create, with the keyboard-usable labelled form.
    await admin.get_by_test_id("team-new").click()
    form = admin.get_by_test_id("team-form")
    await expect(form.get_by_label("Username")).to_be_focused()
    await form.get_by_label("Username").fill("nora")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_label("Display name").fill("Nora New")
    await form.get_by_label("Departments").fill("Billing")
    await form.get_by_test_id("team-level-2").check()
    await form.get_by_label("Capacity").fill("2")
    await form.get_by_test_id("team-save").click()
    nora = row(admin, "nora")
    await expect(nora.get_by_test_id("team-name")).to_have_text("Nora New")
    await expect(nora.get_by_test_id("team-role")).to_have_text("operator")
    await expect(nora.get_by_test_id("team-departments")).to_have_text("Billing")
    await expect(nora.get_by_test_id("team-levels")).to_have_text("1, 2")
    await expect(nora.get_by_test_id("team-capacity")).to_have_text("2")
    await expect(admin.get_by_test_id("team-form")).to_have_count(0)

    # Change capacity and role.
    await nora.get_by_test_id("team-edit").click()
    form = admin.get_by_test_id("team-form")
    await form.get_by_label("Capacity").fill("5")
    await form.get_by_label("Role").select_option("supervisor")
    await form.get_by_test_id("team-save").click()
    await expect(nora.get_by_test_id("team-capacity")).to_have_text("5")
    await expect(nora.get_by_test_id("team-role")).to_have_text("supervisor")

    # Disable: Nora's open console goes back to the login screen.
    console = await open_console(pages, server, "nora")
    await expect(console.get_by_test_id("nav-team")).to_have_count(0)
    await nora.get_by_test_id("team-disable").click()
    await confirm(admin)
    await expect(nora).to_have_attribute("data-status", "disabled")
    await expect(nora.get_by_test_id("team-status")).to_have_text("Disabled")
    await expect(console.get_by_test_id("login-username")).to_be_visible()
    refused = await admin.request.post(
        server.http_url + "/api/login", data={"username": "nora", "password": PASSWORD}
    )
    assert refused.status == 403

    # Enable again.
    await nora.get_by_test_id("team-enable").click()
    await expect(nora).to_have_attribute("data-status", "active")

    # A new password: too short is refused in the form, then a good one is set.
    await nora.get_by_test_id("team-password").click()
    pw_form = admin.get_by_test_id("team-password-form")
    await expect(pw_form.get_by_label("New password")).to_be_focused()
    await pw_form.get_by_label("New password").fill("short")
    await pw_form.get_by_test_id("team-save").click()
    await expect(pw_form.get_by_test_id("team-form-error")).to_have_text(
        "The password needs at least 8 characters (at most 1000)."
    )
    old = await admin.request.post(
        server.http_url + "/api/login", data={"username": "nora", "password": PASSWORD}
    )
    assert old.status == 200  # nothing changed
    await pw_form.get_by_label("New password").fill("nora-new-secret")
    await pw_form.get_by_test_id("team-save").click()
    await expect(admin.get_by_test_id("team-password-form")).to_have_count(0)
    new = await admin.request.post(
        server.http_url + "/api/login", data={"username": "nora", "password": "nora-new-secret"}
    )
    assert new.status == 200

    # Remove, after the in-page confirmation (Cancel first: nothing happens).
    await nora.get_by_test_id("team-remove").click()
    await admin.get_by_test_id("confirm-cancel").click()
    await expect(nora).to_have_count(1)
    await nora.get_by_test_id("team-remove").click()
    await confirm(admin)
    await expect(nora).to_have_count(0)
    await expect(row(admin, "ada")).to_have_count(1)
    await expect(admin.get_by_test_id("team-error")).to_be_hidden()


async def test_only_admins_see_the_team_entry(make_server: Any, pages: Pages) -> None:
    server = make_server()
    server.start()
    server.add_operator("otto", password=PASSWORD, name="Otto Operator")
    server.add_operator("sam", password=PASSWORD, name="Sam Supervisor", role="supervisor")
    for username in ("otto", "sam"):
        console = await open_console(pages, server, username)
        await expect(console.get_by_test_id("nav-tickets")).to_be_visible()
        await expect(console.get_by_test_id("nav-team")).to_have_count(0)
        await expect(console.get_by_test_id("team-view")).to_be_hidden()


async def test_bad_input_is_refused_in_swiss_german(make_server: Any, pages: Pages) -> None:
    server = make_server()
    server.start()
    server.add_operator("ada", password=PASSWORD, name="Ada Admin", role="admin")
    server.add_operator("otto", password=PASSWORD, name="Otto Operator")
    page = await new_page(pages, "console[ada]", "de-CH")
    await page.goto(server.http_url + "/console/")
    await sign_in(pages, page, server, "ada")
    await page.get_by_test_id("nav-team").click()
    await expect(page.get_by_role("heading", name="Team")).to_be_visible()
    await expect(row(page, "otto").get_by_test_id("team-status")).to_have_text("Aktiv")

    await page.get_by_test_id("team-new").click()
    form = page.get_by_test_id("team-form")
    error = form.get_by_test_id("team-form-error")
    await form.get_by_test_id("team-save").click()  # empty username
    await expect(error).to_have_text(
        "Geben Sie einen Benutzernamen mit 1 bis 100 Zeichen ohne Leerzeichen ein."
    )
    await form.get_by_label("Benutzername").fill("nora")
    await form.get_by_label("Passwort").fill("kurz")
    await form.get_by_test_id("team-save").click()
    await expect(error).to_have_text("Das Passwort braucht mindestens 8 Zeichen (höchstens 1000).")
    # The server's refusal (a taken username) as a German sentence, too.
    await form.get_by_label("Benutzername").fill("otto")
    await form.get_by_label("Passwort").fill(PASSWORD)
    await form.get_by_test_id("team-save").click()
    await expect(error).to_contain_text("Dieser Benutzername ist vergeben")
    await expect(page.get_by_test_id("team-row")).to_have_count(2)  # nothing created
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    await form.get_by_test_id("team-cancel").click()
    await expect(page.get_by_test_id("team-form")).to_have_count(0)
    await expect(page.get_by_test_id("team-new")).to_be_focused()
    await page.screenshot(path=str(SCREENSHOT.with_name("team-de-CH-table.png")))
