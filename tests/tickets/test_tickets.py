"""Tickets end to end: a real server, real WebSockets, real HTTP, real SMTP both ways."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest

from chatserver.client import ClientError
from chatserver.mail.listener import SmtpListener
from chatserver.mail.model import InboundMail
from chatserver.mail.parse import parse_inbound
from tests.conftest import ROOT, ServerProcess, free_port
from tests.stored import connect_stored
from tests.waiting import eventually

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class MailSink:
    """A real SMTP server (aiosmtpd) collecting what the chatserver sends."""

    def __init__(self) -> None:
        self.mails: list[tuple[InboundMail, list[str]]] = []
        self.listener = SmtpListener(self._take)
        self._arrived = asyncio.Event()

    async def _take(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        self.mails.append((parse_inbound(raw), rcpt_tos))
        self._arrived.set()

    async def wait(self, count: int, timeout: float = 15.0) -> list[InboundMail]:
        async with asyncio.timeout(timeout):
            while len(self.mails) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return [m for m, _ in self.mails]


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    s = MailSink()
    await s.listener.start()
    yield s
    await s.listener.stop()


@pytest.fixture
def desk(make_server: Any, sink: MailSink) -> ServerProcess:
    """A server that mails through ``sink`` and listens for inbound SMTP."""
    srv: ServerProcess = make_server(
        {
            "CHATSERVER_SMTP_HOST": "127.0.0.1",
            "CHATSERVER_SMTP_PORT": str(sink.listener.port),
            "CHATSERVER_MAIL_FROM": "support@desk.example",
            "CHATSERVER_SMTP_LISTEN_PORT": str(free_port()),
            "CHATSERVER_MAX_UPLOAD_BYTES": str(64 * 1024),
        }
    )
    srv.smtp_port = int(srv.env["CHATSERVER_SMTP_LISTEN_PORT"])  # type: ignore[attr-defined]
    srv.start()
    return srv


async def api(
    srv: ServerProcess, method: str, path: str, token: str | None, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as http:
        return await http.request(method, path, headers=headers, **kw)


async def login(srv: ServerProcess, username: str) -> str:
    async with httpx.AsyncClient(base_url=srv.http_url) as http:
        r = await http.post("/api/login", json={"username": username, "password": "pw-secret"})
        token: str = r.json()["token"]
        return token


async def upload(
    srv: ServerProcess, token: str, data: bytes, name: str, **fields: str
) -> httpx.Response:
    return await api(
        srv, "POST", "/api/attachments", token, files={"file": (name, data)}, data=fields
    )


async def chat_with_attachment(srv: ServerProcess, clients: list[Any]) -> tuple[Any, Any, str]:
    """A visitor chats with operator anna and sends a screenshot."""
    srv.add_operator("anna", name="Anna")
    op = await srv.operator("anna")
    clients.append(op)
    visitor = await srv.visitor(name="Vera <b>Muster</b>", email="vera@example.ch")
    clients.append(visitor)
    await visitor.send("Der Drucker druckt nicht")
    await op.next_chat()
    r = await upload(srv, visitor.token, PNG, "fehler.png")
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["content_type"] == "image/png" and att["size"] == len(PNG)
    await visitor.send_frame(
        {"type": "message", "client_msg_id": "m-att", "text": "", "attachments": [att["id"]]}
    )
    frame = await op.wait_for("message", lambda f: f.get("attachments"))
    assert frame["attachments"] == [
        {"id": att["id"], "filename": "fehler.png", "content_type": "image/png", "size": len(PNG)}
    ]
    return visitor, op, att["id"]


def db(srv: ServerProcess) -> sqlite3.Connection:
    return connect_stored(srv.data_dir / "chatserver.sqlite3")


def count_events(srv: ServerProcess) -> int:
    conn = db(srv)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM ticket_events").fetchone()[0])
    finally:
        conn.close()


# ----------------------------------------------------------------- escalation
async def test_escalate_copies_transcript_and_attachments_and_mails(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor, op, att_id = await chat_with_attachment(desk, clients)
    await op.send_to(visitor.session_id, "Ich eröffne ein Ticket.")
    token = await login(desk, "anna")
    r = await api(
        desk,
        "POST",
        f"/api/sessions/{visitor.session_id}/escalate",
        token,
        json={
            "subject": "Drucker <script>x</script>",
            "department": "technical",
            "priority": "high",
            "level": 2,
            "reason": "Hardware",
        },
    )
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    assert ticket["ref"] == "#100001" and ticket["number"] == 100001
    assert ticket["assignee"]["name"] == "Anna" and ticket["state"] == "open"
    assert ticket["requester"]["email"] == "vera@example.ch"
    assert (ticket["priority"], ticket["level"]) == ("high", 2)

    # The visitor's chat is told the ticket number.
    notice = await visitor.wait_for("message", lambda f: f.get("event") == "escalated")
    assert notice["ticket"] == "#100001"

    r = await api(desk, "GET", "/api/tickets/100001", token)
    body = r.json()
    kinds = [e["kind"] for e in body["events"]]
    assert kinds[0] == "created" and kinds.count("transcript") >= 3
    texts = [e["body"]["text"] for e in body["events"] if e["kind"] == "transcript"]
    assert "Der Drucker druckt nicht" in texts and "Ich eröffne ein Ticket." in texts
    # The attachment was copied into the ticket: a new id, the same bytes.
    assert len(body["attachments"]) == 1
    copied = body["attachments"][0]
    assert copied["id"] != att_id and copied["filename"] == "fehler.png"
    with_att = [e for e in body["events"] if e["body"].get("attachments")]
    assert with_att[0]["body"]["attachments"][0]["id"] == copied["id"]
    r = await api(desk, "GET", f"/api/attachments/{copied['id']}", token)
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["x-content-type-options"] == "nosniff"
    conn = db(desk)
    try:
        owners = dict(conn.execute("SELECT id, owner FROM attachments").fetchall())
        storages = [row[0] for row in conn.execute("SELECT storage FROM attachments")]
    finally:
        conn.close()
    assert owners[att_id].startswith("s:") and owners[copied["id"]] == "t:100001"
    assert len(set(storages)) == 2  # two files on disk, not a link

    # A confirmation mail with the number went to the visitor.
    (mail,) = await sink.wait(1)
    assert "[#100001]" in mail.subject and "#100001" in mail.text
    assert sink.mails[0][1] == ["vera@example.ch"]

    # A chat becomes a ticket once.
    r = await api(
        desk,
        "POST",
        f"/api/sessions/{visitor.session_id}/escalate",
        token,
        json={"subject": "again"},
    )
    assert r.status_code == 409 and r.json()["error"] == "invalid_state"

    # The visitor sees the ticket and its public thread.
    r = await api(desk, "GET", "/api/visitor/tickets", visitor.token)
    assert [t["ref"] for t in r.json()["tickets"]] == ["#100001"]
    r = await api(desk, "GET", "/api/visitor/tickets/100001", visitor.token)
    assert r.status_code == 200 and r.json()["attachments"][0]["id"] == copied["id"]
    r = await api(desk, "GET", f"/api/attachments/{copied['id']}", visitor.token)
    assert r.status_code == 200 and r.content == PNG


async def test_escalation_refused_for_strangers_and_bad_fields(
    desk: ServerProcess, clients: list[Any]
) -> None:
    visitor, _op, _ = await chat_with_attachment(desk, clients)
    desk.add_operator("bert", name="Bert")
    bert = await login(desk, "bert")
    anna = await login(desk, "anna")
    path = f"/api/sessions/{visitor.session_id}/escalate"
    r = await api(desk, "POST", path, bert, json={"subject": "mine now"})
    assert r.status_code == 404  # not Bert's chat: looks like no chat at all
    r = await api(desk, "POST", "/api/sessions/s_nope/escalate", anna, json={"subject": "x"})
    assert r.status_code == 404
    for bad in (
        {"subject": ""},
        {"subject": "x" * 201},
        {"subject": "ok", "priority": "urgent"},
        {"subject": "ok", "level": 4},
        {"subject": "ok", "department": "sales"},
        {"subject": 5},
    ):
        r = await api(desk, "POST", path, anna, json=bad)
        assert r.status_code == 400, (bad, r.text)
    r = await api(desk, "POST", path, anna, content=b"{not json")
    assert r.status_code == 400
    r = await api(desk, "POST", path, None, json={"subject": "x"})
    assert r.status_code == 401
    r = await api(desk, "POST", path, visitor.token, json={"subject": "x"})
    assert r.status_code == 401
    assert count_events(desk) == 0


# -------------------------------------------------------------- ticket work
async def escalated(desk: ServerProcess, clients: list[Any]) -> tuple[Any, str]:
    visitor, _op, _ = await chat_with_attachment(desk, clients)
    token = await login(desk, "anna")
    r = await api(
        desk,
        "POST",
        f"/api/sessions/{visitor.session_id}/escalate",
        token,
        json={"subject": "Drucker"},
    )
    assert r.status_code == 201
    return visitor, token


async def test_replies_notes_changes_and_mail(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor, token = await escalated(desk, clients)
    await sink.wait(1)  # confirmation
    r = await api(
        desk,
        "POST",
        "/api/tickets/100001/replies",
        token,
        json={"text": "Intern: Toner prüfen", "internal": True},
    )
    assert r.status_code == 201 and r.json()["event"]["kind"] == "note"
    r = await upload(desk, token, b"%PDF-1.4\nanleitung", "Anleitung.pdf", ticket="#100001")
    assert r.status_code == 201, r.text
    pdf_id = r.json()["id"]
    r = await api(
        desk,
        "POST",
        "/api/tickets/100001/replies",
        token,
        json={"text": "Bitte Toner wechseln.", "attachments": [pdf_id]},
    )
    assert r.status_code == 201
    assert r.json()["ticket"]["state"] == "answered"  # a public reply answers it
    mails = await sink.wait(2)
    reply_mail = mails[1]
    # The visitor gave no language: mail goes out in the desk's default, German.
    assert reply_mail.subject.startswith("AW: [#100001]")
    assert "Bitte Toner wechseln." in reply_mail.text and "Intern" not in reply_mail.text
    assert [a.filename for a in reply_mail.attachments] == ["Anleitung.pdf"]
    assert any("ticket-100001@desk.example" in ref for ref in reply_mail.references)

    # The customer never sees the internal note.
    r = await api(desk, "GET", "/api/visitor/tickets/100001", visitor.token)
    kinds = [e["kind"] for e in r.json()["events"]]
    assert "note" not in kinds and "reply" in kinds
    assert all("Intern" not in str(e["body"]) for e in r.json()["events"])

    # Changes: every priority change needs a reason; refused transitions change nothing.
    before = count_events(desk)
    r = await api(desk, "POST", "/api/tickets/100001/changes", token, json={"priority": "high"})
    assert r.status_code == 400 and "reason" in r.json()["message"]
    r = await api(desk, "POST", "/api/tickets/100001/changes", token, json={"state": "information"})
    assert r.status_code == 409 and r.json()["error"] == "invalid_state"
    r = await api(
        desk,
        "POST",
        "/api/tickets/100001/changes",
        token,
        json={"state": "closed", "priority": "low", "reason": "x", "level": 9},
    )
    assert r.status_code == 400
    assert count_events(desk) == before
    r = await api(
        desk,
        "POST",
        "/api/tickets/100001/changes",
        token,
        json={"priority": "critical", "level": 2, "reason": "Produktion steht"},
    )
    assert r.status_code == 200, r.text
    changes = r.json()["events"]
    assert [(e["kind"], e["body"]["from"], e["body"]["to"]) for e in changes] == [
        ("priority", "normal", "critical"),
        ("level", 1, 2),
    ]
    assert all(e["body"]["reason"] == "Produktion steht" for e in changes)
    r = await api(
        desk,
        "POST",
        "/api/tickets/100001/changes",
        token,
        json={"state": "feedback_needed", "reason": "Welches Modell?"},
    )
    assert r.status_code == 200
    feedback = (await sink.wait(3))[2]
    assert feedback.subject.startswith("Feedback benötigt: [#100001]")
    assert "Welches Modell?" in feedback.text

    # Inbox: filters and order (critical first).
    r = await api(desk, "GET", "/api/tickets?state=feedback_needed&level=2&assignee=me", token)
    assert [t["ref"] for t in r.json()["tickets"]] == ["#100001"]
    r = await api(desk, "GET", "/api/tickets?assignee=none", token)
    assert r.json()["tickets"] == []
    for bad in ("state=bogus", "level=x", "department=sales", "limit=0", "limit=abc"):
        r = await api(desk, "GET", f"/api/tickets?{bad}", token)
        assert r.status_code == 400, bad

    # The customer answers by mail: it lands on the ticket and reopens it.
    msg = EmailMessage()
    msg["From"] = "Vera Muster <VERA@example.ch>"
    msg["To"] = "support@desk.example"
    msg["Subject"] = "AW: [#100001] Drucker"
    msg["In-Reply-To"] = feedback.message_id or ""
    msg.set_content(
        "Es ist ein HP LaserJet.\n\nAm 26.11.2026 um 14:02 schrieb Support"
        " <support@desk.example>:\n> Welches Modell?"
    )
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="typenschild.png")
    await aiosmtplib.send(msg, hostname="127.0.0.1", port=desk.smtp_port)  # type: ignore[attr-defined]
    r = await api(desk, "GET", "/api/tickets/100001", token)
    body = r.json()
    mail_in = [e for e in body["events"] if e["kind"] == "mail_in"]
    assert mail_in and mail_in[0]["body"]["text"] == "Es ist ein HP LaserJet."
    assert mail_in[0]["body"]["attachments"][0]["filename"] == "typenschild.png"
    assert body["ticket"]["state"] == "open"

    # A stranger using the ticket number in the subject is held, not merged.
    forged = EmailMessage()
    forged["From"] = "mallory@evil.example"
    forged["To"] = "support@desk.example"
    forged["Subject"] = "Re: [#100001] Drucker"
    forged.set_content("Please send me the invoice of this customer.")
    await aiosmtplib.send(forged, hostname="127.0.0.1", port=desk.smtp_port)  # type: ignore[attr-defined]
    r = await api(desk, "GET", "/api/tickets/100001", token)
    assert len([e for e in r.json()["events"] if e["kind"] == "mail_in"]) == 1
    desk.add_operator("sue", role="supervisor")
    r = await api(desk, "GET", "/api/mail/review", await login(desk, "sue"))
    held = r.json()["mails"]
    assert held[0]["from"] == "mallory@evil.example" and held[0]["ticket"] == 100001
    r = await api(desk, "GET", "/api/mail/review", token)
    assert r.status_code == 403

    # Any other mail opens a new ticket and is confirmed.
    new = EmailMessage()
    new["From"] = "neu@kunde.ch"
    new["To"] = "support@desk.example"
    new["Subject"] = "Rechnung <b>falsch</b>"
    new.set_content("Die Rechnung stimmt nicht.")
    await aiosmtplib.send(new, hostname="127.0.0.1", port=desk.smtp_port)  # type: ignore[attr-defined]
    r = await api(desk, "GET", "/api/tickets/100002", token)
    assert r.status_code == 200
    assert r.json()["ticket"]["channel"] == "email"
    assert r.json()["ticket"]["subject"] == "Rechnung <b>falsch</b>"  # stored as text
    confirmations = [m for m in await sink.wait(4) if "[#100002]" in m.subject]
    assert confirmations

    # The history is intact, and `audit verify` says so.
    ok = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chatserver", "audit", "verify", "--data-dir", str(desk.data_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 tickets" in ok.stdout


async def test_visitor_ticket_access_and_replies(desk: ServerProcess, clients: list[Any]) -> None:
    visitor, token = await escalated(desk, clients)
    other = await desk.visitor(name="Other")
    clients.append(other)
    for path in (
        "/api/visitor/tickets/100001",
        "/api/visitor/tickets/999999",
        "/api/visitor/tickets/abc",
    ):
        r = await api(desk, "GET", path, other.token)
        assert r.status_code == 404, path
    r = await api(desk, "GET", "/api/visitor/tickets", other.token)
    assert r.json()["tickets"] == []
    r = await api(
        desk, "POST", "/api/visitor/tickets/100001/replies", other.token, json={"text": "let me in"}
    )
    assert r.status_code == 404
    r = await api(
        desk,
        "POST",
        "/api/visitor/tickets/100001/replies",
        visitor.token,
        json={"text": "secret", "internal": True},
    )
    assert r.status_code == 403
    before = count_events(desk)
    r = await api(
        desk,
        "POST",
        "/api/visitor/tickets/100001/replies",
        visitor.token,
        json={"text": "Danke, <i>geht</i> wieder"},
    )
    assert r.status_code == 201 and count_events(desk) == before + 1
    r = await api(desk, "GET", "/api/tickets/100001", token)
    last = r.json()["events"][-1]
    assert last["kind"] == "reply" and last["actor"]["type"] == "customer"
    assert last["body"]["text"] == "Danke, <i>geht</i> wieder"
    # Operator-only routes refuse visitor tokens.
    r = await api(desk, "GET", "/api/tickets", visitor.token)
    assert r.status_code == 401


# --------------------------------------------------------------- attachments
async def test_upload_refusals(desk: ServerProcess, clients: list[Any]) -> None:
    visitor, _op, att_id = await chat_with_attachment(desk, clients)
    conn = db(desk)
    try:
        before = conn.execute("SELECT COUNT(*) FROM attachments").fetchone()[0]
    finally:
        conn.close()
    r = await upload(desk, visitor.token, b"%PDF-" + b"x" * (70 * 1024), "big.pdf")
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = await upload(desk, visitor.token, b"<html><script>alert(1)</script>", "rechnung.pdf")
    assert r.status_code == 415 and r.json()["error"] == "unsupported_type"
    r = await upload(desk, visitor.token, PNG, "bild.pdf")
    assert r.status_code == 415
    r = await upload(desk, visitor.token, b"MZ\x90\x00binary", "setup.exe")
    assert r.status_code == 415
    r = await upload(desk, visitor.token, b"", "empty.txt")
    assert r.status_code == 400
    r = await upload(desk, "not-a-token", PNG, "x.png")
    assert r.status_code == 401
    r = await api(desk, "POST", "/api/attachments", visitor.token, json={"file": "x"})
    assert r.status_code == 400
    r = await api(desk, "POST", "/api/attachments", visitor.token, files={"other": ("x.png", PNG)})
    assert r.status_code == 400
    conn = db(desk)
    try:
        after = conn.execute("SELECT COUNT(*) FROM attachments").fetchone()[0]
    finally:
        conn.close()
    assert after == before
    files = [p for p in (desk.data_dir / "attachments").rglob("*") if p.is_file()]
    assert len(files) == before  # nothing refused was written

    # Another visitor can neither fetch nor reference this chat's attachment.
    other = await desk.visitor()
    clients.append(other)
    r = await api(desk, "GET", f"/api/attachments/{att_id}", other.token)
    assert r.status_code == 404
    await other.send("hi")
    with pytest.raises(ClientError) as err:
        await other.send_frame(
            {"type": "message", "client_msg_id": "steal", "text": "", "attachments": [att_id]}
        )
        await other.await_ack("steal")
    assert err.value.frame["code"] == "not_found"
    # Nor can an operator who is not in that chat, nor nobody at all.
    desk.add_operator("bert")
    r = await api(desk, "GET", f"/api/attachments/{att_id}", await login(desk, "bert"))
    assert r.status_code == 404
    r = await api(desk, "GET", f"/api/attachments/{att_id}", None)
    assert r.status_code == 401
    # An upload into someone else's chat by session id is refused too.
    r = await upload(desk, await login(desk, "bert"), PNG, "x.png", session_id=visitor.session_id)
    assert r.status_code == 404
    # The rightful participants get it, images inline only on request.
    r = await api(desk, "GET", f"/api/attachments/{att_id}?inline=1", visitor.token)
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("inline")
    assert r.headers["content-type"] == "image/png"
    assert "sandbox" in r.headers["content-security-policy"]
    assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(PNG).hexdigest()
    # Message frames with bad attachment lists are refused whole.
    for bad in (["a"] * 11, [5], ["x", "x"], "a_1"):
        with pytest.raises(ClientError):
            await visitor.send_frame(
                {
                    "type": "message",
                    "client_msg_id": f"bad-{bad!r}"[:60],
                    "text": "t",
                    "attachments": bad,
                }
            )
            await visitor.await_ack(f"bad-{bad!r}"[:60])


# ------------------------------------------------------------ offline, audit
async def test_offline_form_creates_ticket(
    desk: ServerProcess, sink: MailSink, clients: list[Any]
) -> None:
    visitor = await desk.visitor()
    clients.append(visitor)
    assert visitor.welcome["offline"] is True  # no operator online
    for bad in (
        {"email": "nope", "subject": "s", "text": "t"},
        {"email": "a@b.ch", "subject": "", "text": "t"},
        {"email": "a@b.ch", "subject": "s", "text": ""},
        {"email": "a@b.ch", "subject": "s", "text": "t", "attachments": ["a_forged"]},
    ):
        r = await api(desk, "POST", "/api/visitor/offline", visitor.token, json=bad)
        assert r.status_code in (400, 404), bad
    assert count_events(desk) == 0
    r = await api(
        desk,
        "POST",
        "/api/visitor/offline",
        visitor.token,
        json={
            "name": "Kurt",
            "email": "Kurt@Example.ch",
            "subject": "Rückruf\r\nBcc: x@evil.example",
            "text": "Bitte melden",
        },
    )
    assert r.status_code == 201, r.text
    ref = r.json()["ticket"]["ref"]
    (mail,) = await sink.wait(1)
    assert sink.mails[0][1] == ["kurt@example.ch"]
    assert ref in mail.subject and "Bcc" in mail.subject  # folded into one line, inert
    r = await api(desk, "GET", "/api/visitor/tickets", visitor.token)
    assert [t["ref"] for t in r.json()["tickets"]] == [ref]

    desk.add_operator("anna")
    op = await desk.operator("anna")
    clients.append(op)

    async def visitor_seeing_an_operator() -> Any:
        fresh = await desk.visitor()
        clients.append(fresh)
        if fresh.welcome["offline"]:
            await fresh.close()
            return None
        return fresh

    fresh = await eventually(
        visitor_seeing_an_operator, timeout=10, interval=0.1, message="the desk is online"
    )
    assert fresh.welcome["offline"] is False


def test_audit_verify_detects_tampering(tmp_path: Path) -> None:
    """Edit the history behind the server's back: the append-only triggers
    refuse, and when an attacker drops them, ``audit verify`` finds it."""

    async def make() -> None:
        from chatserver.attachments.files import FileStore
        from chatserver.tickets.model import TicketPriority
        from chatserver.tickets.store import NewEvent, TicketStore

        records = TicketStore(tmp_path / "chatserver.sqlite3", FileStore(tmp_path / "att"))
        await records.open()
        actor = {"type": "operator", "id": "o_1", "name": "Anna"}
        for subject in ("A", "B"):
            row, _ = await records.create(
                subject=subject,
                priority=TicketPriority.NORMAL,
                department="technical",
                level=1,
                assignee=None,
                channel="form",
                requester_name=None,
                requester_email="x@y.ch",
                customer_id=None,
                session_id=None,
                actor=actor,
                events=[NewEvent("reply", actor, {"text": "eins"})],
            )
            await records.mutate(
                row.number, lambda r: [NewEvent("note", actor, {"text": "zwei"}, internal=True)]
            )
        await records.close()

    asyncio.run(make())

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chatserver", "audit", "verify", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )

    assert verify().returncode == 0
    conn = connect_stored(tmp_path / "chatserver.sqlite3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE ticket_events SET body = '{}' WHERE ticket = 100001")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ticket_events WHERE ticket = 100002")
    conn.execute("DROP TRIGGER ticket_events_append_only_u")
    conn.execute("DROP TRIGGER ticket_events_append_only_d")
    conn.execute(
        'UPDATE ticket_events SET body = \'{"text": "geändert"}\' WHERE ticket = 100001 AND n = 2'
    )
    conn.execute("DELETE FROM ticket_events WHERE ticket = 100002 AND n = 3")
    conn.commit()
    conn.close()
    result = verify()
    assert result.returncode == 1
    assert "ticket #100001 event 2: content does not match its hash" in result.stdout
    assert "ticket #100002: history was cut short" in result.stdout


def test_mail_ingest_cli(tmp_path: Path) -> None:
    eml = tmp_path / "in.eml"
    eml.write_bytes(
        b"From: Hans <hans@kunde.ch>\r\nTo: support@desk.example\r\nSubject: Passwort\r\n"
        b"Message-ID: <abc@kunde.ch>\r\n\r\nIch komme nicht rein.\r\n"
    )
    garbage = tmp_path / "bad.eml"
    garbage.write_bytes(b"\x00\x01\x02")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatserver",
            "mail",
            "ingest",
            str(eml),
            str(garbage),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1  # one file was refused
    assert "in.eml: created #100001" in result.stdout
    assert "bad.eml: refused" in result.stderr
    conn = connect_stored(tmp_path / "chatserver.sqlite3")
    try:
        row = conn.execute("SELECT subject, channel, requester_email FROM tickets").fetchone()
    finally:
        conn.close()
    assert row == ("Passwort", "email", "hans@kunde.ch")
