"""Never stuck: a waiting visitor is offered a ticket or a callback (``no_operator``)
whenever nobody can take the chat, and can leave the question as a ticket.

Real server, real WebSockets, real HTTP, real SMTP (the confirmation mail)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.operators.auth import sign_identity
from tests.conftest import ServerProcess
from tests.redis_keys import forget_prefix_async
from tests.tickets.test_tickets import MailSink

SECRET = "stuck-secret"
REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sink() -> Any:
    s = MailSink()
    await s.listener.start()
    yield s
    await s.listener.stop()


@pytest.fixture
def desk(make_server: Any, sink: MailSink, tmp_path: Path) -> ServerProcess:
    # The standard plan offers after a short wait (0.02 min) for the "waited" case.
    sla = ROOT / "chatserver" / "service_levels" / "sla_default.toml"
    text = sla.read_text().replace(
        "[plans.standard]\n", "[plans.standard]\noffer_ticket_after_minutes = 0.02\n", 1
    )
    (tmp_path / "sla.toml").write_text(text)
    srv: ServerProcess = make_server(
        {
            "CHATSERVER_IDENTITY_SECRET": SECRET,
            "CHATSERVER_SLA_CONFIG": str(tmp_path / "sla.toml"),
            "CHATSERVER_SMTP_HOST": "127.0.0.1",
            "CHATSERVER_SMTP_PORT": str(sink.listener.port),
            "CHATSERVER_MAIL_FROM": "support@desk.example",
        }
    )
    srv.start()
    return srv


def identity(customer: str, plan: str) -> dict[str, str]:
    return {"customer_id": customer, "plan": plan, "sig": sign_identity(customer, plan, SECRET)}


async def api(
    srv: ServerProcess, method: str, path: str, token: str | None, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as http:
        return await http.request(method, path, headers=headers, **kw)


async def test_last_operator_offline_then_ticket(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    desk.add_operator("anna", name="Anna")
    anna = await desk.operator("anna")
    clients.append(anna)
    visitor = await desk.visitor(name="Vera", identity=identity("K-1", "free"))
    clients.append(visitor)
    await visitor.send("Mein Drucker druckt nicht")
    await anna.next_chat()
    await anna.set_status("offline")
    offer = await visitor.wait_for("no_operator")
    assert offer == {
        "type": "no_operator",
        "reason": "none_online",
        "ticket": True,
        "callback": False,  # Free has no phone support
    }
    # No e-mail known yet: refused, nothing changes.
    r = await api(desk, "POST", "/api/visitor/chat-ticket", visitor.token, json={})
    assert r.status_code == 400 and r.json()["error"] == "bad_frame"
    assert "email" in r.json()["message"]
    # Someone else's chat: refused.
    other = await desk.visitor()
    clients.append(other)
    r = await api(
        desk,
        "POST",
        "/api/visitor/chat-ticket",
        visitor.token,
        json={"email": "vera@example.ch", "session_id": other.session_id},
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    # Not waiting (the other chat has not started): refused.
    r = await api(
        desk, "POST", "/api/visitor/chat-ticket", other.token, json={"email": "o@example.ch"}
    )
    assert r.status_code == 409 and r.json()["error"] == "invalid_state"
    # No token: refused.
    r = await api(desk, "POST", "/api/visitor/chat-ticket", None, json={})
    assert r.status_code == 401
    # Callback refused by the Free plan.
    r = await api(
        desk, "POST", "/api/visitor/callback", visitor.token, json={"phone": "+41 44 123 45 67"}
    )
    assert r.status_code == 403
    # Converting: the transcript becomes the ticket, the chat closes, a mail goes out.
    r = await api(
        desk, "POST", "/api/visitor/chat-ticket", visitor.token, json={"email": "Vera@Example.ch"}
    )
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    assert ticket["subject"] == "Mein Drucker druckt nicht"
    escalated = await visitor.wait_for("message", lambda f: f.get("event") == "escalated")
    assert escalated["ticket"] == ticket["ref"]
    await visitor.wait_for("message", lambda f: f.get("event") == "closed")
    # Only once.
    r = await api(
        desk, "POST", "/api/visitor/chat-ticket", visitor.token, json={"email": "v@example.ch"}
    )
    assert r.status_code == 409
    anna_token = await anna.login(desk.http_url, "anna", "pw-secret")
    r = await api(desk, "GET", f"/api/tickets/{ticket['number']}", anna_token)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["ticket"]["requester"]["email"] == "vera@example.ch"
    texts = [e["body"].get("text") for e in shown["events"] if e["kind"] == "transcript"]
    assert "Mein Drucker druckt nicht" in texts
    mails = await sink.wait(1)
    assert any(ticket["ref"] in (m.subject or "") for m in mails)
    assert ["vera@example.ch"] in [rcpt for _, rcpt in sink.mails]
    # The chat left the queue.
    queue = await anna.wait_for("queue", lambda f: "entries" in f and f["total"] == 0)
    assert queue["total"] == 0


async def test_talk_to_someone_else_with_nobody_else(
    desk: ServerProcess, clients: list[Any]
) -> None:
    desk.add_operator("anna", name="Anna")
    anna = await desk.operator("anna")
    clients.append(anna)
    visitor = await desk.visitor(identity=identity("K-2", "vip"))
    clients.append(visitor)
    await visitor.send("hallo")
    await anna.next_chat()
    await visitor.send_frame({"type": "another_operator"})
    offer = await visitor.wait_for("no_operator")
    assert offer["reason"] == "nobody_else" and offer["callback"] is True
    # With phone support the waiting visitor may ask for a callback instead.
    r = await api(
        desk,
        "POST",
        "/api/visitor/callback",
        visitor.token,
        json={"phone": "+41 44 123 45 67", "preferred_times": "morgens"},
    )
    assert r.status_code == 201, r.text
    await visitor.wait_for("message", lambda f: (f.get("callback") or {}).get("phone"))


async def test_transfer_to_a_level_nobody_serves(desk: ServerProcess, clients: list[Any]) -> None:
    desk.add_operator("first", name="Fiona")
    fiona = await desk.operator("first")
    clients.append(fiona)
    visitor = await desk.visitor(identity=identity("K-3", "vip"))
    clients.append(visitor)
    await visitor.send("bitte 2nd level")
    chat = await fiona.next_chat()
    await fiona.send_frame({"type": "transfer", "session_id": chat["session_id"], "level": 2})
    offer = await visitor.wait_for("no_operator")
    assert offer["reason"] == "none_online" and offer["ticket"] is True
    # A reloaded widget (the same token) is offered its way out again.
    again = await desk.visitor(token=visitor.token)
    clients.append(again)
    offer = await again.wait_for("no_operator")
    assert offer["reason"] == "none_online"


async def test_offer_after_the_plans_wait(desk: ServerProcess, clients: list[Any]) -> None:
    desk.add_operator("anna", name="Anna", capacity=1)
    anna = await desk.operator("anna")
    clients.append(anna)
    busy = await desk.visitor(identity=identity("K-4", "vip"))
    clients.append(busy)
    await busy.send("zuerst")
    await anna.next_chat()
    # Anna is online but full: the standard plan offers after its (short) wait.
    visitor = await desk.visitor(identity=identity("K-5", "standard"))
    clients.append(visitor)
    await visitor.send("ich warte")
    offer = await visitor.wait_for("no_operator", timeout=15)
    assert offer["reason"] == "waited" and offer["callback"] is True


@pytest.mark.parametrize("presence", ["memory", "redis"])
async def test_a_waiting_callback_shows_as_one_in_the_queue(
    make_server: Any, tmp_path: Path, clients: list[Any], presence: str
) -> None:
    prefix = f"cst-stuck-{uuid.uuid4().hex[:8]}"
    env = {"CHATSERVER_IDENTITY_SECRET": SECRET}
    if presence == "redis":
        env |= {"CHATSERVER_REDIS_URL": REDIS_URL, "CHATSERVER_REDIS_PREFIX": prefix}
    srv: ServerProcess = make_server(env)
    srv.start()
    try:
        srv.add_operator("first", name="Fiona")
        fiona = await srv.operator("first")
        clients.append(fiona)
        early = await srv.visitor(identity=identity("K-6", "vip"))
        clients.append(early)
        await early.send("zuerst 2nd level")
        chat = await fiona.next_chat()
        await fiona.send_frame({"type": "transfer", "session_id": chat["session_id"], "level": 2})
        await early.wait_for("no_operator")
        visitor = await srv.visitor(identity=identity("K-7", "vip"))
        clients.append(visitor)
        await visitor.send("auch 2nd level")
        chat = await fiona.next_chat()
        await fiona.send_frame({"type": "transfer", "session_id": chat["session_id"], "level": 2})
        await visitor.wait_for("no_operator")
        r = await api(
            srv, "POST", "/api/visitor/callback", visitor.token, json={"phone": "ruf mich an"}
        )
        assert r.status_code == 400  # not a number: nothing changes
        r = await api(
            srv, "POST", "/api/visitor/callback", visitor.token, json={"phone": "+41 44 123 45 67"}
        )
        assert r.status_code == 201, r.text
        # Where it stood (second), now a callback with the request as its preview.
        queue = await fiona.wait_for(
            "queue",
            lambda f: any(e["kind"] == "callback" for e in f.get("entries", [])),
        )
        assert [(e["session_id"], e["kind"]) for e in queue["entries"]] == [
            (early.session_id, "chat"),
            (visitor.session_id, "callback"),
        ]
        assert queue["entries"][1]["preview"].endswith("+41 44 123 45 67")
        assert queue["entries"][1]["level"] == 2
    finally:
        if presence == "redis":
            await forget_prefix_async(prefix)
