"""A small desk made by a real server, for the tests that back up, restore or move one:
an operator, a closed and sealed chat, a chat escalated into a ticket that carries a
copied attachment, and the audit seals of both."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, ServerProcess
from tests.waiting import eventually

AUDIT_KEY = "k3y-for-the-store-move-tests-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
# Tables whose rows a copy or a restore must keep one for one.
COUNTED = (
    "sessions", "messages", "operators", "tickets", "ticket_events", "attachments",
    "chat_seals", "ticket_seals",
)  # fmt: skip


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``chatserver ARGS`` with the audit key (and ``env``) and nothing else of ours."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**environ, "CHATSERVER_AUDIT_KEY": AUDIT_KEY, **env},
    )


async def api(srv: ServerProcess, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as http:
        return await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)


async def build_desk(srv: ServerProcess, clients: list[Any]) -> dict[str, Any]:
    """Fill the running ``srv`` (started with ``AUDIT_KEY``); returns what was made."""
    srv.add_operator("anna", name="Anna")
    op = await srv.operator("anna")
    clients.append(op)
    closed = await srv.visitor(name="Vera")
    clients.append(closed)
    await closed.send("Meine Rechnung stimmt nicht")
    await op.next_chat()
    await op.send_to(closed.session_id, "Ich schaue nach")
    await closed.send("Danke")
    await op.send_frame({"type": "close_chat", "session_id": closed.session_id})
    await closed.wait_for("state", lambda f: f["state"] == "closed")

    visitor = await srv.visitor(name="Kurt", email="kurt@example.ch")
    clients.append(visitor)
    await visitor.send("Der Drucker druckt nicht")
    await op.next_chat()
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as http:
        r = await http.post("/api/login", json={"username": "anna", "password": "pw-secret"})
        token = str(r.json()["token"])
    r = await api(
        srv, "POST", "/api/attachments", visitor.token, files={"file": ("fehler.png", PNG)}
    )
    assert r.status_code == 201, r.text
    await visitor.send_frame(
        {"type": "message", "client_msg_id": "m-att", "text": "", "attachments": [r.json()["id"]]}
    )
    await op.wait_for("message", lambda f: f.get("attachments"))
    r = await api(
        srv,
        "POST",
        f"/api/sessions/{visitor.session_id}/escalate",
        token,
        json={"subject": "Drucker", "department": "technical", "priority": "high"},
    )
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]["number"]
    done = await asyncio.to_thread(cli, "audit", "seal", "--data-dir", str(srv.data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    return {"token": token, "ticket": ticket, "closed": closed.session_id, "op": op}


def counts(conn: sqlite3.Connection | Any) -> dict[str, int]:
    """Rows of each :data:`COUNTED` table (a sqlite3 or psycopg connection)."""
    return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in COUNTED}


async def wait_sealed(db: Path, session_id: str) -> None:
    def sealed() -> bool:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT sig FROM chat_seals WHERE session_id = ?", (session_id,)
            ).fetchone()
        return row is not None and row[0] is not None

    await eventually(sealed, timeout=10, interval=0.05, message="the closed chat is sealed")
