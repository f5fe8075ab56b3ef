"""Revision-safe storage: every derived ticket column, sealed chats, signed heads, exports.

Tampering is done the way an attacker with the database file would: plain SQL on the
SQLite file (after dropping the append-only triggers where there are any).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatserver.attachments.files import FileStore
from chatserver.audit.chain import chain_heads, sign
from chatserver.audit.seals import chat_messages, ticket_events
from chatserver.tickets.model import TicketPriority, event_hash
from chatserver.tickets.store import NewEvent, TicketStore
from chatserver.tickets.store.audit import DERIVED_COLUMNS
from tests.conftest import ROOT, ServerProcess
from tests.waiting import eventually

KEY = "k3y-for-the-audit-tests-0123456789"
ACTOR = {"type": "operator", "id": "o_1", "name": "Anna"}


def run_cli(*args: str, key: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_AUDIT")}
    if key is not None:
        environ["CHATSERVER_AUDIT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "chatserver", "audit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**environ, **env},
    )


# ------------------------------------------------------------------ ticket columns
async def make_ticket(data: Path) -> TicketStore:
    records = TicketStore(data / "chatserver.sqlite3", FileStore(data / "att"))
    await records.open()
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
    return records


# A value each column must not hold; the history says otherwise.
TAMPERED: dict[str, Any] = {
    "number": 100777,
    "subject": "Alles gut",
    "state": "closed",
    "priority": "low",
    "priority_rank": 0,
    "department": "technical",
    "level": 3,
    "assignee": "o_mallory",
    "channel": "email",
    "requester_name": "Mallory",
    "requester_email": "mallory@evil.example",
    "customer_id": "C-EVIL",
    "session_id": "s_mallory",
    "created_at": 1.0,
}


def test_every_derived_column_is_checked() -> None:
    assert set(TAMPERED) == set(DERIVED_COLUMNS)


async def test_verify_names_each_tampered_ticket_column(tmp_path: Path) -> None:
    records = await make_ticket(tmp_path)
    try:
        assert await records.verify() == []
        db = tmp_path / "chatserver.sqlite3"
        for column, value in TAMPERED.items():
            conn = sqlite3.connect(db)
            (before,) = conn.execute(f"SELECT {column} FROM tickets").fetchone()
            conn.execute(f"UPDATE tickets SET {column} = ?", (value,))
            conn.commit()
            found = await records.verify()
            expected = f"ticket #100001: column {column} differs from its history"
            assert any(p.startswith(expected) for p in found), (column, found)
            conn.execute(f"UPDATE tickets SET {column} = ?", (before,))
            conn.commit()
            conn.close()
            assert await records.verify() == [], column
        # A value no history can give (not a state at all) is a problem, not a crash.
        conn = sqlite3.connect(db)
        conn.execute("UPDATE tickets SET state = 'bogus'")
        conn.commit()
        conn.close()
        assert "ticket #100001: column state or priority" in " ".join(await records.verify())
    finally:
        await records.close()
    # And from the command line, naming ticket and column, exit status 1.
    result = run_cli("verify", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    conn = sqlite3.connect(tmp_path / "chatserver.sqlite3")
    conn.execute("UPDATE tickets SET state = 'open', requester_email = 'x@evil.example'")
    conn.commit()
    conn.close()
    result = run_cli("verify", "--data-dir", str(tmp_path))
    assert result.returncode == 1, result.stdout
    assert "ticket #100001: column requester_email differs from its history" in result.stdout


# ------------------------------------------------------------------ chats and heads
@pytest.fixture
def desk(make_server: Any) -> ServerProcess:
    server: ServerProcess = make_server(env={"CHATSERVER_AUDIT_KEY": KEY})
    server.start()
    return server


def db_of(server: ServerProcess) -> Path:
    return server.data_dir / "chatserver.sqlite3"


async def closed_chat(desk: ServerProcess, clients: list[Any]) -> str:
    desk.add_operator("anna", name="Anna")
    op = await desk.operator("anna")
    v = await desk.visitor(name="Vera")
    clients += [op, v]
    await v.send("Meine Rechnung stimmt nicht")
    await op.next_chat()
    await op.send_to(v.session_id, "Ich schaue nach")
    await v.send("Danke")
    await op.send_frame({"type": "close_chat", "session_id": v.session_id})
    await v.wait_for("state", lambda f: f["state"] == "closed")
    session_id = str(v.session_id)

    def sealed() -> bool:
        with sqlite3.connect(db_of(desk)) as conn:
            row = conn.execute(
                "SELECT sig FROM chat_seals WHERE session_id = ?", (session_id,)
            ).fetchone()
        return row is not None and row[0] is not None

    await eventually(sealed, timeout=10, interval=0.05, message="the closed chat is sealed")
    return session_id


def rewrite_consistently(db: Path, session_id: str, text: str) -> None:
    """What an attacker without the key can do: change a message and recompute the
    chain and the seal's head (the signature cannot be recomputed)."""
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE messages SET text = ? WHERE session_id = ? AND sender = 'visitor'"
        " AND seq = (SELECT MIN(seq) FROM messages WHERE session_id = ? AND sender = 'visitor')",
        (text, session_id, session_id),
    )
    heads = chain_heads(chat_messages(conn, session_id))
    conn.execute("UPDATE chat_seals SET head = ? WHERE session_id = ?", (heads[-1], session_id))
    conn.commit()
    conn.close()


async def test_closed_chat_is_sealed_signed_and_checked(
    desk: ServerProcess, clients: list[Any], tmp_path: Path
) -> None:
    session_id = await closed_chat(desk, clients)
    data = str(desk.data_dir)
    ok = await asyncio.to_thread(run_cli, "verify", "--data-dir", data, key=KEY)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 sealed chats" in ok.stdout and "signed" in ok.stdout
    unsigned = await asyncio.to_thread(run_cli, "verify", "--data-dir", data)
    assert unsigned.returncode == 0
    assert "note: chain heads are NOT signed" in unsigned.stdout

    export = tmp_path / "heads.json"
    done = await asyncio.to_thread(run_cli, "export", str(export), "--data-dir", data, key=KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    heads = json.loads(export.read_text())
    assert [c["session_id"] for c in heads["chats"]] == [session_id]
    assert heads["chats"][0]["sig"]
    again = await asyncio.to_thread(run_cli, "export", str(export), "--data-dir", data, key=KEY)
    assert again.returncode == 2 and "exists already" in again.stderr
    against = await asyncio.to_thread(
        run_cli, "verify", "--data-dir", data, "--against", str(export), key=KEY
    )
    assert against.returncode == 0, against.stdout + against.stderr

    # A plain edit of a message: the seal no longer follows from the messages.
    conn = sqlite3.connect(db_of(desk))
    conn.execute(
        "UPDATE messages SET text = 'Alles bestens' WHERE session_id = ? AND text = 'Danke'",
        (session_id,),
    )
    conn.commit()
    conn.close()
    tampered = await asyncio.to_thread(run_cli, "verify", "--data-dir", data, key=KEY)
    assert tampered.returncode == 1
    assert f"chat {session_id}: its messages differ from what was sealed" in tampered.stdout

    # A consistent rewrite (chain and seal head recomputed, no key): the signature
    # fails with the key; without it only the export kept elsewhere shows it.
    rewrite_consistently(db_of(desk), session_id, "Alles bestens, danke")
    signed = await asyncio.to_thread(run_cli, "verify", "--data-dir", data, key=KEY)
    assert signed.returncode == 1
    assert f"chat {session_id}: the signature of its head does not match" in signed.stdout
    blind = await asyncio.to_thread(run_cli, "verify", "--data-dir", data)
    assert blind.returncode == 0  # consistent: nothing in the database itself disagrees
    caught = await asyncio.to_thread(
        run_cli, "verify", "--data-dir", data, "--against", str(export)
    )
    assert caught.returncode == 1
    assert f"chat {session_id}: messages rewritten since the export" in caught.stdout

    # Even someone holding the key, re-signing the rewritten head, is caught by the export.
    conn = sqlite3.connect(db_of(desk))
    last_seq, head = conn.execute(
        "SELECT last_seq, head FROM chat_seals WHERE session_id = ?", (session_id,)
    ).fetchone()
    conn.execute(
        "UPDATE chat_seals SET sig = ? WHERE session_id = ?",
        (sign(KEY.encode(), "chat", session_id, last_seq, head), session_id),
    )
    conn.commit()
    conn.close()
    resigned = await asyncio.to_thread(run_cli, "verify", "--data-dir", data, key=KEY)
    assert resigned.returncode == 0
    caught = await asyncio.to_thread(
        run_cli, "verify", "--data-dir", data, "--against", str(export), key=KEY
    )
    assert caught.returncode == 1
    assert "messages rewritten since the export" in caught.stdout

    # The wrong key: no signature holds.
    wrong = await asyncio.to_thread(
        run_cli, "verify", "--data-dir", data, key="another-key-0123456789abcdef"
    )
    assert wrong.returncode == 1
    assert f"chat {session_id}: its head is signed with another key" in wrong.stdout


async def test_chats_closed_before_sealing_are_sealed_by_audit_seal(
    desk: ServerProcess, clients: list[Any]
) -> None:
    session_id = await closed_chat(desk, clients)
    conn = sqlite3.connect(db_of(desk))
    conn.execute("DELETE FROM chat_seals")  # as before migration 10
    conn.commit()
    conn.close()
    data = str(desk.data_dir)
    before = await asyncio.to_thread(run_cli, "verify", "--data-dir", data, key=KEY)
    assert before.returncode == 0
    assert "note: 1 closed chat(s) not sealed yet" in before.stdout
    sealed = await asyncio.to_thread(run_cli, "seal", "--data-dir", data, key=KEY)
    assert sealed.returncode == 0, sealed.stderr
    assert "sealed 1 chats" in sealed.stdout
    again = await asyncio.to_thread(run_cli, "seal", "--data-dir", data, key=KEY)
    assert "sealed 0 chats" in again.stdout  # idempotent
    with sqlite3.connect(db_of(desk)) as conn:
        assert conn.execute("SELECT session_id FROM chat_seals").fetchall() == [(session_id,)]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    data = str(tmp_path)
    missing = run_cli("verify", "--data-dir", data, "--against", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    for content, says in (
        ("{not json", "not JSON"),
        ('{"format": "something else"}', "not an export of chain heads"),
        (
            '{"format": "chatserver-audit-heads/1", "tickets": [{"ticket": "x"}], "chats": []}',
            "tickets[0]: ticket missing or not a int",
        ),
        ('{"format": "chatserver-audit-heads/1", "tickets": []}', "chats missing"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        result = run_cli("verify", "--data-dir", data, "--against", str(bad))
        assert result.returncode == 2, (content, result.stdout, result.stderr)
        assert says in result.stderr, (says, result.stderr)
        assert "Traceback" not in result.stderr
    no_key_file = run_cli(
        "verify", "--data-dir", data, CHATSERVER_AUDIT_KEY_FILE=str(tmp_path / "no-key")
    )
    assert no_key_file.returncode == 2
    assert "audit_key_file" in no_key_file.stderr and "cannot read" in no_key_file.stderr
    short = run_cli("seal", "--data-dir", data, key="short")
    assert short.returncode == 2 and "at least 16 characters" in short.stderr
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n")
    fine = run_cli("seal", "--data-dir", data, CHATSERVER_AUDIT_KEY_FILE=str(key_file))
    assert fine.returncode == 0 and "signed" in fine.stdout


def test_ticket_history_rewritten_consistently_is_caught(tmp_path: Path) -> None:
    async def make() -> None:
        records = await make_ticket(tmp_path)
        await records.close()

    asyncio.run(make())
    data = str(tmp_path)
    export = tmp_path / "heads.json"
    done = run_cli("export", str(export), "--data-dir", data, key=KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exported 1 ticket heads" in done.stdout
    # Rewrite the reply (triggers dropped) and recompute every hash and the heads.
    conn = sqlite3.connect(tmp_path / "chatserver.sqlite3")
    conn.execute("DROP TRIGGER ticket_events_append_only_u")
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
    conn.commit()
    conn.close()
    signed = run_cli("verify", "--data-dir", data, key=KEY)
    assert signed.returncode == 1
    assert "ticket #100001: the signature of its head does not match" in signed.stdout
    assert run_cli("verify", "--data-dir", data).returncode == 0  # consistent, unkeyed
    caught = run_cli("verify", "--data-dir", data, "--against", str(export))
    assert caught.returncode == 1
    assert "ticket #100001: history rewritten since the export" in caught.stdout
