"""Revision-safe storage on PostgreSQL: the same checks as ``test_audit.py`` on SQLite.

The ticket history is append-only in the database (a trigger refuses UPDATE and
DELETE); ``chatserver audit seal|export|verify`` work on the database that
``CHATSERVER_DATABASE_URL`` names; a rewrite, even with the triggers disabled and
every hash recomputed, is caught against an export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatserver.attachments.files import FileStore
from chatserver.audit.seals import ticket_events
from chatserver.store.database import INTEGRITY_ERRORS, Database, connect
from chatserver.tickets.model import TicketPriority, event_hash
from chatserver.tickets.store import NewEvent, TicketStore
from tests.conftest import ROOT
from tests.pg import pg_database

KEY = "k3y-for-the-audit-tests-0123456789"
ACTOR = {"type": "operator", "id": "o_1", "name": "Anna"}


@pytest.fixture
def database() -> Iterator[Database]:
    with pg_database() as db:
        yield db


def run_cli(
    db: Database, data: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    env |= {
        "CHATSERVER_DATABASE_URL": db.conninfo or "",
        "CHATSERVER_DATABASE_SCHEMA": db.schema or "",
    }
    if key is not None:
        env["CHATSERVER_AUDIT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "chatserver", "audit", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )


async def make_ticket(db: Database, data: Path) -> None:
    records = TicketStore(db, FileStore(data / "attachments"))
    await records.open()
    try:
        row, _ = await records.create(
            subject="Rechnung falsch",
            priority=TicketPriority.HIGH,
            department="billing",
            level=1,
            assignee="o_1",
            channel="chat",
            requester_name="Kurt",
            requester_email="kurt@example.ch",
            customer_id="C-100",
            session_id="s_kurt",
            actor=ACTOR,
            events=[NewEvent("reply", ACTOR, {"text": "eins"})],
        )
        await records.mutate(row.number, lambda r: [NewEvent("level", ACTOR, {"from": 1, "to": 2})])
        assert await records.verify() == []
    finally:
        await records.close()


async def test_a_history_rewrite_is_caught_on_postgresql(
    database: Database, tmp_path: Path
) -> None:
    await make_ticket(database, tmp_path)
    with connect(database) as conn:
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            conn.execute("UPDATE ticket_events SET body = '{}' WHERE ticket = 100001")
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            conn.execute("DELETE FROM ticket_events")
    export = tmp_path / "heads.json"
    done = run_cli(database, tmp_path, "export", str(export), key=KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exported 1 ticket heads" in done.stdout
    ok = run_cli(database, tmp_path, "verify", key=KEY)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok: 1 tickets" in ok.stdout and "1 ticket heads, signed" in ok.stdout

    # An attacker with the database: triggers off, the reply rewritten, every hash redone.
    with connect(database) as conn, conn.transaction():
        conn.execute("ALTER TABLE ticket_events DISABLE TRIGGER ticket_events_append_only")
        conn.execute(
            "UPDATE ticket_events SET body = ? WHERE ticket = 100001 AND kind = 'reply'",
            (json.dumps({"text": "zwei"}),),
        )
        prev = "0" * 64
        for n, event in enumerate(ticket_events(conn, 100001), start=1):
            event["prev_hash"] = prev
            prev = event_hash(event)
            conn.execute(
                "UPDATE ticket_events SET prev_hash = ?, hash = ? WHERE ticket = 100001 AND n = ?",
                (event["prev_hash"], prev, n),
            )
        conn.execute("UPDATE tickets SET head = ?", (prev,))
        conn.execute("UPDATE ticket_seals SET head = ?", (prev,))
    signed = run_cli(database, tmp_path, "verify", key=KEY)
    assert signed.returncode == 1
    assert "ticket #100001: the signature of its head does not match" in signed.stdout
    assert run_cli(database, tmp_path, "verify").returncode == 0  # consistent, unkeyed
    caught = run_cli(database, tmp_path, "verify", "--against", str(export))
    assert caught.returncode == 1
    assert "ticket #100001: history rewritten since the export" in caught.stdout


async def test_a_tampered_ticket_column_is_named_on_postgresql(
    database: Database, tmp_path: Path
) -> None:
    await make_ticket(database, tmp_path)
    with connect(database) as conn:
        conn.execute("UPDATE tickets SET requester_email = 'x@evil.example'")
    result = run_cli(database, tmp_path, "verify")
    assert result.returncode == 1, result.stdout
    assert "ticket #100001: column requester_email differs from its history" in result.stdout
