"""SLA clocks on tickets and chats, breach recording, time, canned responses, context,
callbacks. In-process against a real SQLite file, and over HTTP against a real server."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.attachments.files import FileStore
from chatserver.config import Settings
from chatserver.operators.auth import sign_identity
from chatserver.service_levels.calendar import load_sla_config
from chatserver.service_levels.clocks import ServiceLevels, clock_state
from chatserver.store.backends import make_store
from chatserver.store.base import Store
from chatserver.store.database import INTEGRITY_ERRORS, Database, connect
from chatserver.tickets.access import OperatorActor, VisitorActor
from chatserver.tickets.service import TicketService
from chatserver.tickets.store import TicketStore
from chatserver.types import SessionId
from tests.conftest import ServerProcess
from tests.pg import pg_database

LEVELS = ServiceLevels(load_sla_config(None))
# Monday 2026-11-23 10:00 Europe/Zurich (09:00 UTC).
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0


def event(kind: str, ts: float, **body: Any) -> dict[str, Any]:
    actor = {"type": "operator" if kind == "reply" else "system", "id": "o_1", "name": "A"}
    return {"kind": kind, "ts": ts, "body": body, "actor": actor, "internal": False}


def test_ticket_clocks_run_in_business_hours_and_pause_for_feedback() -> None:
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", [event("created", MONDAY_10)])
    # Standard: 24 business hours = Mon 10:00 + 8 h, Tue 9 h, Wed 7 h -> Wed 16:00 local.
    assert clocks.first_due == datetime(2026, 11, 25, 15, 0, tzinfo=UTC).timestamp()
    assert clocks.first_response_at is None and clocks.paused_since is None
    # Feedback needed from Mon 12:00 to Tue 12:00 (9 business hours) delays both clocks.
    history = [
        event("created", MONDAY_10),
        event("state", MONDAY_10 + 2 * HOUR, **{"from": "open", "to": "feedback_needed"}),
        event("state", MONDAY_10 + 26 * HOUR, **{"from": "feedback_needed", "to": "open"}),
    ]
    paused = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history)
    assert paused.first_due == datetime(2026, 11, 26, 15, 0, tzinfo=UTC).timestamp()
    # While it waits the clock has no due time.
    waiting = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history[:2])
    assert waiting.first_due is None and waiting.paused_since == MONDAY_10 + 2 * HOUR
    # A public operator reply is the first response; closing resolves, reopening undoes it.
    answered = LEVELS.ticket_clocks(
        "vip",
        MONDAY_10,
        "email",
        [
            event("created", MONDAY_10),
            event("reply", MONDAY_10 + HOUR),
            event("state", MONDAY_10 + 2 * HOUR, **{"from": "open", "to": "closed"}),
            event("state", MONDAY_10 + 3 * HOUR, **{"from": "closed", "to": "open"}),
        ],
    )
    assert answered.first_response_at == MONDAY_10 + HOUR
    assert answered.first_due == MONDAY_10 + 4 * HOUR  # VIP: 4 h, 24/7
    assert answered.resolved_at is None
    # Escalated chats were answered in the chat.
    chat = LEVELS.ticket_clocks(None, MONDAY_10, "chat", [event("created", MONDAY_10)])
    assert chat.first_response_at == MONDAY_10 and chat.plan == "free"


def test_clock_states() -> None:
    assert clock_state(100.0, 80.0, None, 50.0, False) == "ok"
    assert clock_state(100.0, 80.0, None, 85.0, False) == "warning"
    assert clock_state(100.0, 80.0, None, 101.0, False) == "breached"
    assert clock_state(100.0, 80.0, 99.0, 500.0, False) == "met"
    assert clock_state(100.0, 80.0, 101.0, 500.0, False) == "breached"
    assert clock_state(None, None, None, 500.0, True) == "paused"


async def _service(
    tmp_path: Path, database: Database | None = None
) -> tuple[TicketService, Store, TicketStore]:
    where = (
        {"database_url": database.conninfo, "database_schema": database.schema} if database else {}
    )
    settings = Settings.load({}, data_dir=tmp_path, **where)
    store = make_store(settings, cli=True)
    await store.open()
    files = FileStore(tmp_path / "attachments")
    records = TicketStore(settings.database, files)
    await records.open()
    return TicketService(settings, store, records, files), store, records


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_breaches_are_recorded_once_and_not_while_paused(
    tmp_path: Path, backend: str
) -> None:
    """On each backend (PostgreSQL: a schema of its own)."""
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(pg_database()) if backend == "postgresql" else None
        await _breaches_once_not_paused(*await _service(tmp_path, database))


async def _breaches_once_not_paused(
    service: TicketService, store: Store, records: TicketStore
) -> None:
    from chatserver.store.base import SessionRecord
    from chatserver.types import SessionState

    try:
        session = SessionRecord(SessionId("s_form"), "hash", SessionState.NEW, MONDAY_10)
        await store.submit_session(session)
        visitor = VisitorActor(session)
        late = await service.create_offline(
            visitor, {"email": "a@kunde.ch", "subject": "Drucker", "text": "kaputt"}
        )
        waiting = await service.create_offline(
            visitor, {"email": "a@kunde.ch", "subject": "Frage", "text": "?"}
        )
        assert late.sla_first_due is not None and late.plan is None
        op_record = await store.operator_by_username("nobody")
        assert op_record is None
        from chatserver.store.base import OperatorRecord

        anna = OperatorRecord(
            "o_anna",
            "anna",
            "Anna",
            "x",
            "supervisor",
            (),
            5,
            MONDAY_10,  # type: ignore[arg-type]
        )
        await store.add_operator(anna)
        who = OperatorActor(anna)
        row, _ = await service.change(
            who, waiting.number, {"state": "feedback_needed", "reason": "Modell?"}
        )
        assert row.paused_since is not None and row.sla_first_due is None
        assert service.clocks.json(row)["first_response"]["state"] == "paused"
        far = late.created_at + 30 * 24 * HOUR
        found = await service.clocks.check_breaches(now=far)
        assert sorted((ref, kind) for ref, kind, _ in found) == [
            (f"#{late.number}", "first_response"),
            (f"#{late.number}", "resolution"),
        ]
        assert await service.clocks.check_breaches(now=far + 60) == []  # recorded once
        fresh = await records.ticket(late.number)
        assert fresh is not None and fresh.sla_breached.split() == ["first_response", "resolution"]
        assert service.clocks.json(fresh, now=far)["first_response"]["state"] == "breached"
        # Time logged on a ticket is an append-only entry plus an internal event.
        entry = await service.tools.log_time(
            who, {"minutes": 12, "note": "Telefon"}, ticket=late.number
        )
        assert entry["seconds"] == 720
        kinds = [e["kind"] for e in await records.events(late.number)]
        assert kinds[-1] == "time"
        for bad in ({"minutes": 0}, {"minutes": -5}, {"seconds": 10**6}, {"minutes": "x"}, {}):
            with pytest.raises(Exception, match=r"time|minutes"):
                await service.tools.log_time(who, bad, ticket=late.number)
        with connect(records.db) as conn, pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            conn.execute("UPDATE time_entries SET seconds = 1")
    finally:
        await records.close()
        await store.close()


SECRET = "sla-secret"


@pytest.fixture
def desk(make_server: Any) -> ServerProcess:
    srv: ServerProcess = make_server({"CHATSERVER_IDENTITY_SECRET": SECRET})
    srv.start()
    return srv


async def http(srv: ServerProcess, method: str, path: str, token: str | None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as client:
        return await client.request(method, path, headers=headers, **kw)


async def login(srv: ServerProcess, username: str) -> str:
    r = await http(
        srv, "POST", "/api/login", None, json={"username": username, "password": "pw-secret"}
    )
    return str(r.json()["token"])


def identity(customer: str, plan: str) -> dict[str, str]:
    return {"customer_id": customer, "plan": plan, "sig": sign_identity(customer, plan, SECRET)}


async def test_canned_context_time_and_callbacks(desk: ServerProcess, clients: list[Any]) -> None:
    desk.add_operator("anna", name="Anna")
    desk.add_operator("sue", name="Sue", role="supervisor")
    anna = await desk.operator("anna")
    clients.append(anna)
    token, sue = await login(desk, "anna"), await login(desk, "sue")
    # Canned responses: supervisors add team responses (an agent only personal ones),
    # placeholders are filled from the chat.
    r = await http(
        desk, "POST", "/api/canned", token, json={"title": "x", "text": "y", "personal": False}
    )
    assert r.status_code == 403
    for bad in ({"title": "", "text": "t"}, {"title": "t"}, {"title": "t", "text": "x" * 5000}):
        r = await http(desk, "POST", "/api/canned", sue, json=bad)
        assert r.status_code == 400, bad
    r = await http(
        desk,
        "POST",
        "/api/canned",
        sue,
        json={
            "title": "Gruss",
            "text": "Grüezi {visitor_name}, hier ist {operator_name} ({plan}) {x}",
        },
    )
    assert r.status_code == 201
    r = await http(
        desk,
        "POST",
        "/api/canned",
        sue,
        json={"title": "Rechnung", "text": "Billing only", "department": "billing"},
    )
    visitor = await desk.visitor(name="Vera", identity=identity("K-42", "standard"))
    clients.append(visitor)
    await visitor.send("Hallo")
    await anna.next_chat()
    r = await http(desk, "GET", f"/api/canned?session_id={visitor.session_id}", token)
    (item,) = r.json()["canned"]  # the billing one is not for a chat without department
    assert item["rendered"] == "Grüezi Vera, hier ist Anna (standard) {x}"
    r = await http(desk, "GET", "/api/canned?department=billing", token)
    assert {c["title"] for c in r.json()["canned"]} == {"Gruss", "Rechnung"}
    # Visitor context: customer number, plan, past chats and tickets.
    r = await http(desk, "GET", f"/api/sessions/{visitor.session_id}/context", token)
    ctx = r.json()
    assert ctx["customer_id"] == "K-42" and ctx["plan"]["name"] == "standard"
    assert ctx["past_chats"] == [] and ctx["tickets"] == []
    r = await http(desk, "GET", "/api/sessions/s_nope/context", token)
    assert r.status_code == 404
    # Chat timer.
    r = await http(
        desk,
        "POST",
        f"/api/sessions/{visitor.session_id}/time",
        token,
        json={"seconds": 95, "note": "Chat"},
    )
    assert r.status_code == 201 and r.json()["customer_id"] == "K-42"
    desk.add_operator("bert")
    r = await http(
        desk,
        "POST",
        f"/api/sessions/{visitor.session_id}/time",
        await login(desk, "bert"),
        json={"seconds": 95},
    )
    assert r.status_code == 404  # not Bert's chat
    # Callbacks: not on the free plan, not once a chat has started, bad phones refused.
    free = await desk.visitor()
    clients.append(free)
    assert free.welcome["callback_allowed"] is False
    r = await http(desk, "POST", "/api/visitor/callback", free.token, json={"phone": "+41 44 000"})
    assert r.status_code == 403
    r = await http(
        desk, "POST", "/api/visitor/callback", visitor.token, json={"phone": "+41 44 123 45 67"}
    )
    assert r.status_code == 409
    std = await desk.visitor(name="Carl", identity=identity("K-43", "standard"))
    clients.append(std)
    assert std.welcome["callback_allowed"] is True
    for bad in ({"phone": "call me"}, {"phone": "<script>"}, {}, {"phone": "+41 44", "note": 5}):
        r = await http(desk, "POST", "/api/visitor/callback", std.token, json=bad)
        assert r.status_code == 400, bad
    r = await http(
        desk,
        "POST",
        "/api/visitor/callback",
        std.token,
        json={"phone": "+41 44 123 45 67", "preferred_times": "nach 14 Uhr", "note": "Rechnung"},
    )
    assert r.status_code == 201
    chat = await anna.wait_for("chat_assigned", lambda f: f["chat"]["session_id"] == std.session_id)
    assert chat["chat"]["kind"] == "callback"
    assert chat["chat"]["callback"] == {
        "phone": "+41 44 123 45 67",
        "preferred_times": "nach 14 Uhr",
    }
    assert chat["chat"]["sla"]["first_response"]["due"] is not None
    first = await anna.wait_for(
        "message", lambda f: f.get("session_id") == std.session_id and f["from"] == "visitor"
    )
    assert "+41 44 123 45 67" in first["text"]
