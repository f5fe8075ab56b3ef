"""Ticket storage (``chatserver.tickets.store``): the obligations of its contract
that the service's tests do not reach directly."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatserver.attachments.files import FileStore
from chatserver.errors import InvalidState
from chatserver.store.database import Database
from chatserver.tickets.model import FIRST_NUMBER, TicketPriority, TicketState
from chatserver.tickets.store import DuplicateChatTicket, NewEvent, TicketStorage, TicketStore
from tests.pg import pg_database

ACTOR = {"type": "operator", "id": "o_1", "name": "Anna"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TicketStorage]:
    """The ticket storage on each backend (PostgreSQL: a schema of its own)."""
    with contextlib.ExitStack() as stack:
        db: Path | Database = tmp_path / "chatserver.sqlite3"
        if request.param == "postgresql":
            db = stack.enter_context(pg_database())
        store = TicketStore(db, FileStore(tmp_path / "att"))
        await store.open()
        yield store
        await store.close()


async def create(records: TicketStorage, **kw: Any):
    fields: dict[str, Any] = {
        "subject": "s",
        "priority": TicketPriority.NORMAL,
        "department": "technical",
        "level": 1,
        "assignee": None,
        "channel": "chat",
        "requester_name": None,
        "requester_email": "v@example.ch",
        "customer_id": None,
        "session_id": "s_1",
        "actor": ACTOR,
        "events": [],
        **kw,
    }
    row, _ = await records.create(**fields)
    return row


async def test_a_chat_becomes_a_ticket_once(records: TicketStorage):
    first = await create(records)
    assert first.number == FIRST_NUMBER and first.state is TicketState.OPEN
    with pytest.raises(DuplicateChatTicket) as err:
        await create(records, subject="again")
    assert isinstance(err.value, sqlite3.IntegrityError)  # as callers caught it before
    assert (await records.search())[1] == 1  # nothing of the second one stored
    # Forms (and mails) about the same chat are other tickets.
    form = await create(records, channel="form")
    assert form.number == FIRST_NUMBER + 1


async def test_a_refused_mutation_writes_nothing(records: TicketStorage):
    row = await create(records, channel="form", session_id=None)

    def refuse(current: Any) -> list[NewEvent]:
        raise InvalidState("no")

    with pytest.raises(InvalidState):
        await records.mutate(row.number, refuse)
    assert [e["kind"] for e in await records.events(row.number)] == ["created"]
    with pytest.raises(KeyError):
        await records.mutate(999, lambda current: [])
    assert await records.verify() == []


async def test_canned_responses_search_and_change(records: TicketStorage):
    team = await records.add_canned("technical", "Drucker 100% offline", "Bitte neu starten", "de")
    mine = await records.add_canned(None, "Gruss", "Beste Grüsse", None, owner="o_1", shortcut="gr")
    await records.add_canned("sales", "Preis_liste", "Siehe Anhang", "en")
    await records.add_canned("sales", "Preisliste", "Siehe Anhang", "en")
    titles = [c["title"] for c in await records.canned("technical", "de", viewer="o_1")]
    assert titles == ["Drucker 100% offline", "Gruss"]  # the team's and the viewer's own
    assert [c["title"] for c in await records.canned("technical", "de")] == [titles[0]]
    # A search is a substring (any case), its LIKE wildcards taken literally.
    found = await records.canned("technical", None, viewer="o_1", q="100%")
    assert [c["id"] for c in found] == [team["id"]]
    assert await records.canned("technical", None, viewer="o_1", q="0_o") == []
    assert await records.canned("technical", None, viewer="o_1", q="%") == [found[0]]
    assert [c["title"] for c in await records.canned("sales", None, q="S_L")] == ["Preis_liste"]
    assert await records.canned("sales", None, q="s_i") == []  # "_" is no wildcard
    mine_found = await records.canned("technical", None, viewer="o_1", q="GR")
    assert [c["id"] for c in mine_found] == [mine["id"]]
    changed = await records.update_canned(team["id"], {"title": "Drucker", "owner": "o_x"})
    assert changed is not None and (changed["title"], changed["owner"]) == ("Drucker", None)
    assert await records.update_canned(9999, {"title": "x"}) is None
    assert await records.delete_canned(mine["id"]) is True
    assert await records.delete_canned(mine["id"]) is False


async def test_breaches_are_recorded_once_and_time_is_logged(records: TicketStorage):
    row = await create(records, channel="form", session_id=None)
    await records.set_sla(row.number, sla_first_due=100.0, sla_resolution_due=200.0)
    first = await records.record_breaches(150.0)
    assert first == [(f"#{row.number}", "first_response", 100.0)]
    assert await records.record_breaches(160.0) == []  # recorded once
    later = await records.record_breaches(250.0)
    assert later == [(f"#{row.number}", "resolution", 200.0)]
    again = await records.ticket(row.number)
    assert again is not None and again.sla_breached == "first_response resolution"
    entry = await records.add_time(
        operator_id="o_1", customer_id=None, ticket=row.number, session_id=None, seconds=90,
        note="",
    )  # fmt: skip
    second = await records.add_time(
        operator_id="o_1", customer_id=None, ticket=None, session_id=None, seconds=60, note="x"
    )
    assert second == entry + 1
    with pytest.raises(ValueError):
        await records.set_sla(row.number, subject="no")
