"""A real server on PostgreSQL (``--database-url``): chats, crashes, tickets, audit.

The server keeps its chats in PostgreSQL: after ``kill -9`` every acked message is
read back from there; a chat becomes a ticket there, is sealed there when it closes,
and ``chatserver audit verify`` checks the history stored there.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chatserver.client import VisitorClient
from chatserver.store.database import Database, connect
from tests.conftest import ROOT, ServerProcess
from tests.pg import pg_database
from tests.waiting import eventually


@pytest.fixture
def database() -> Iterator[Database]:
    with pg_database() as db:
        yield db


@pytest.fixture
def pg_server(database: Database, make_server: Any) -> ServerProcess:
    """A node on ``database`` (set up first, so dropped only after the node stopped)."""
    server: ServerProcess = make_server(database=database)
    server.start()
    return server


async def test_a_chat_survives_kill_9_and_becomes_a_ticket(
    pg_server: ServerProcess, database: Database, clients: list[Any]
) -> None:
    server = pg_server
    server.add_operator("anna", name="Anna")
    op = await server.operator("anna")
    clients.append(op)
    visitor = await server.visitor(name="Vera", email="vera@example.ch")
    clients.append(visitor)
    acked = [await visitor.send(f"line {i}", client_msg_id=f"c{i}") for i in range(10)]
    chat = await op.next_chat()
    assert chat["session_id"] == visitor.session_id
    reply = await op.send_to(visitor.session_id, "Guten Tag")
    frame = await visitor.wait_for("message", lambda f: f["seq"] == reply)
    assert frame["text"] == "Guten Tag"
    # Stored in PostgreSQL, nowhere else: no SQLite file in the data directory.
    with connect(database) as conn:
        stored = [
            r[0]
            for r in conn.execute(
                "SELECT seq FROM messages WHERE session_id = ? ORDER BY seq",
                (visitor.session_id,),
            )
        ]
    assert set(acked) | {reply} <= set(stored)

    token = visitor.token
    server.kill9()
    server.start()
    again = await VisitorClient.connect(server.url, token=token, last_seq=0)
    clients.append(again)
    assert again.welcome["state"] == "assigned"
    await again.wait_for("replay_done")
    seqs = [f["seq"] for f in again.seen("message")]
    assert set(acked) | {reply} <= set(seqs) and seqs == sorted(set(seqs))
    # A resend of an acked message is known after the crash; new ones go on after it.
    assert await again.send("line 3", client_msg_id="c3") == acked[3]
    assert await again.send("after the crash") == max(seqs) + 1

    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        login = await http.post("/api/login", json={"username": "anna", "password": "pw-secret"})
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        path = f"/api/sessions/{visitor.session_id}/escalate"
        bad = await http.post(path, headers=auth, json={"subject": ""})
        assert bad.status_code == 400, bad.text
        made = await http.post(path, headers=auth, json={"subject": "Drucker"})
        assert made.status_code == 201, made.text
        ticket = made.json()["ticket"]
        assert ticket["number"] == 100001
        twice = await http.post(path, headers=auth, json={"subject": "Drucker"})
        assert twice.status_code == 409, twice.text
        got = await http.get(f"/api/tickets/{ticket['number']}", headers=auth)
        assert got.status_code == 200 and got.json()["ticket"]["subject"] == "Drucker"
    with connect(database) as conn:
        (events,) = conn.execute(
            "SELECT COUNT(*) FROM ticket_events WHERE ticket = ?", (ticket["number"],)
        ).fetchone()
    assert events >= 2  # created, and the chat's transcript

    # The chat closes: the node's sealer seals it in PostgreSQL.
    op = await server.operator("anna", status=None, sessions={visitor.session_id: reply})
    clients.append(op)  # the one from before the crash is gone with the node
    await op.send_frame({"type": "close_chat", "session_id": visitor.session_id})
    await again.wait_for("state", lambda f: f["state"] == "closed")

    def sealed() -> bool:
        with connect(database) as conn:
            row = conn.execute(
                "SELECT messages FROM chat_seals WHERE session_id = ?", (visitor.session_id,)
            ).fetchone()
        return row is not None

    await eventually(sealed, timeout=10, interval=0.05, message="the closed chat is sealed")

    # The audit check reads the same database (the environment names it).
    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chatserver", "audit", "verify", "--data-dir", str(server.data_dir)],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ok: 1 tickets" in verify.stdout and "1 sealed chats" in verify.stdout
