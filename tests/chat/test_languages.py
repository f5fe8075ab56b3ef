"""A visitor's language on a real server: hello and info carry it, the store keeps it,
and every system message the server writes carries its notice (code and params)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from chatserver.client import ClientError
from chatserver.operators.auth import sign_identity
from tests.conftest import ROOT, ServerProcess
from tests.stored import connect_stored
from tests.waiting import eventually


def stored_lang(srv: ServerProcess, session_id: str) -> str | None:
    conn = connect_stored(srv.data_dir / "chatserver.sqlite3")
    try:
        row = conn.execute("SELECT lang FROM sessions WHERE id = ?", (session_id,)).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


def count_sessions(srv: ServerProcess) -> int:
    conn = connect_stored(srv.data_dir / "chatserver.sqlite3")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
    finally:
        conn.close()


async def test_hello_and_info_set_the_visitors_language(
    server: ServerProcess, clients: list[Any]
) -> None:
    server.add_operator("anna", name="Anna")
    op = await server.operator("anna")
    clients.append(op)
    v = await server.visitor(name="Vera", lang="fr")
    clients.append(v)
    await v.send("Bonjour")
    chat = await op.next_chat()
    assert chat["lang"] == "fr"  # the console defaults canned responses to it
    await eventually(lambda: stored_lang(server, v.session_id) == "fr", message="lang stored")

    # The visitor switches language: stored, and the operator's console learns it.
    await v.send_frame({"type": "info", "lang": "it"})
    seen = await op.wait_for("visitor", lambda f: f.get("lang") == "it")
    assert seen["session_id"] == v.session_id
    await eventually(lambda: stored_lang(server, v.session_id) == "it", message="switch stored")

    # An unknown language is refused with a clear error and changes nothing.
    await v.send_frame({"type": "info", "lang": "klingon", "name": "Not Vera"})
    err = await v.wait_for("error")
    assert err["code"] == "bad_frame" and "lang must be one of de, fr, it, en" in err["message"]
    await v.send_frame({"type": "ping"})
    await v.wait_for("pong")  # the error was answered before the ping: nothing changed
    assert stored_lang(server, v.session_id) == "it"


@pytest.mark.parametrize("bad", ["xx", "DE", "de-CH", 7])
async def test_hello_with_an_unknown_language_is_refused(
    server: ServerProcess, clients: list[Any], bad: object
) -> None:
    with pytest.raises(ClientError) as refused:
        await server.visitor(name="Vera", lang=bad)
    assert refused.value.frame["code"] == "bad_frame"
    assert count_sessions(server) == 0  # no session was made


async def test_system_messages_carry_notices(server: ServerProcess, clients: list[Any]) -> None:
    server.add_operator("anna", name="Anna")
    server.add_operator("bruno", name="Bruno")
    anna = await server.operator("anna")
    clients.append(anna)
    v = await server.visitor(lang="de")
    clients.append(v)
    await v.send("Hallo")
    await anna.next_chat()
    joined = await v.wait_for("message", lambda f: f.get("event") == "assigned")
    assert joined["notice"] == {"code": "operator_joined", "params": {"name": "Anna"}}
    assert joined["text"] == "Anna joined the chat."  # English, for old clients

    bruno = await server.operator("bruno")
    clients.append(bruno)
    await anna.send_frame({"type": "transfer", "session_id": v.session_id, "level": 2})
    moved = await v.wait_for("message", lambda f: f.get("event") == "requeued")
    assert moved["notice"] == {"code": "transfer_to_level", "params": {"level": 2}}
    assert moved["text"] == "Your chat is being passed on to 2nd-level support."

    await v.send_frame({"type": "close"})
    closed = await v.wait_for("message", lambda f: f.get("event") == "closed")
    assert closed["notice"] == {"code": "chat_closed_by_visitor", "params": {}}


async def test_a_signed_identity_brings_the_language_to_session_and_customer(
    make_server: Any, clients: list[Any]
) -> None:
    server = make_server(env={"CHATSERVER_IDENTITY_SECRET": "s3cret"})
    server.start()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chatserver", "customer", "add", "K-7", "--name", "Rossi SA",
         "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    identity = {
        "customer_id": "K-7",
        "plan": "standard",
        "lang": "it",  # not signed: like name and e-mail, it prefills
        "sig": sign_identity("K-7", "standard", "s3cret"),
    }
    v = await server.visitor(identity=identity)
    clients.append(v)
    await eventually(lambda: stored_lang(server, v.session_id) == "it", message="session lang")

    def customer_lang() -> str | None:
        conn = connect_stored(server.data_dir / "chatserver.sqlite3")
        try:
            row = conn.execute("SELECT lang FROM customers WHERE id = 'K-7'").fetchone()
        finally:
            conn.close()
        return None if row is None else row[0]

    await eventually(lambda: customer_lang() == "it", message="customer lang")
    # The visitor's own choice wins over the identity's, and follows to the customer.
    v2 = await server.visitor(identity=identity, lang="de")
    clients.append(v2)
    await eventually(lambda: stored_lang(server, v2.session_id) == "de", message="own choice")
    await eventually(lambda: customer_lang() == "de", message="customer follows")
    # An unsupported language in the identity is left out, not refused.
    v3 = await server.visitor(identity={**identity, "lang": "es"})
    clients.append(v3)
    await v3.send("hola")  # acked after the session's record is written
    assert stored_lang(server, v3.session_id) is None
