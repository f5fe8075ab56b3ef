"""The offline form with attachments: files the visitor uploaded into their own chat
(POST /api/attachments) go with the form by id (POST /api/visitor/offline
``attachments``) and become the ticket's. A file over the size limit, an unknown id,
another visitor's file, a file of a ticket or a malformed list refuse the form with
a clear 4xx, and nothing is created."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import httpx

from tests.conftest import ServerProcess
from tests.stored import connect_stored

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
LIMIT = 8 * 1024  # CHATSERVER_MAX_UPLOAD_BYTES of these servers
FORM = {"email": "heidi@example.ch", "subject": "Lieferung", "text": "Wo ist 4711?"}


def desk(make_server: Any) -> ServerProcess:
    srv: ServerProcess = make_server({"CHATSERVER_MAX_UPLOAD_BYTES": str(LIMIT)})
    srv.start()
    return srv


async def call(srv: ServerProcess, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as http:
        return await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)


async def upload(srv: ServerProcess, token: str, data: bytes, name: str, **fields: str) -> Any:
    return await call(
        srv, "POST", "/api/attachments", token, files={"file": (name, data)}, data=fields
    )


def rows(srv: ServerProcess, sql: str) -> list[tuple[Any, ...]]:
    conn: sqlite3.Connection = connect_stored(srv.data_dir / "chatserver.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def created(srv: ServerProcess) -> tuple[int, int]:
    """How many tickets and ticket events are stored."""
    tickets = rows(srv, "SELECT COUNT(*) FROM tickets")[0][0]
    events = rows(srv, "SELECT COUNT(*) FROM ticket_events")[0][0]
    return int(tickets), int(events)


async def test_offline_form_carries_the_visitors_files(
    make_server: Any, clients: list[Any]
) -> None:
    srv = desk(make_server)
    visitor = await srv.visitor()
    clients.append(visitor)
    assert visitor.welcome["offline"] is True
    r = await upload(srv, visitor.token, PNG, "fehler.png")
    assert r.status_code == 201, r.text
    png = r.json()
    r = await upload(srv, visitor.token, b"x" * 93, "notiz.txt")
    assert r.status_code == 201, r.text
    txt = r.json()

    r = await call(
        srv,
        "POST",
        "/api/visitor/offline",
        visitor.token,
        json={**FORM, "attachments": [png["id"], txt["id"]]},
    )
    assert r.status_code == 201, r.text
    number = r.json()["ticket"]["number"]

    # The visitor sees both files on the ticket, named and sized, and can fetch them.
    r = await call(srv, "GET", f"/api/visitor/tickets/{number}", visitor.token)
    assert r.status_code == 200, r.text
    body = r.json()
    files = {a["filename"]: a for a in body["attachments"]}
    assert sorted(files) == ["fehler.png", "notiz.txt"]
    assert files["fehler.png"]["size"] == len(PNG)
    assert files["notiz.txt"]["size"] == 93
    (reply,) = [e for e in body["events"] if e["kind"] == "reply"]
    assert reply["body"]["text"] == FORM["text"]
    assert {a["id"] for a in reply["body"]["attachments"]} == {a["id"] for a in files.values()}
    r = await call(srv, "GET", f"/api/attachments/{files['fehler.png']['id']}", visitor.token)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(PNG).hexdigest()
    owners = {o for (o,) in rows(srv, "SELECT owner FROM attachments")}
    assert f"t:{number}" in owners


async def test_a_file_over_the_limit_is_refused_and_nothing_is_stored(
    make_server: Any, clients: list[Any]
) -> None:
    srv = desk(make_server)
    visitor = await srv.visitor()
    clients.append(visitor)
    r = await upload(srv, visitor.token, b"\x00" * (LIMIT + 1), "big.bin")
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large"
    assert rows(srv, "SELECT COUNT(*) FROM attachments")[0][0] == 0
    stored = srv.data_dir / "attachments"
    assert not stored.exists() or not [p for p in stored.rglob("*") if p.is_file()]
    assert created(srv) == (0, 0)


async def test_unknown_foreign_or_malformed_attachments_refuse_the_form(
    make_server: Any, clients: list[Any]
) -> None:
    srv = desk(make_server)
    visitor = await srv.visitor()
    other = await srv.visitor()
    clients += [visitor, other]
    mine = (await upload(srv, visitor.token, PNG, "mine.png")).json()["id"]
    theirs = (await upload(srv, other.token, PNG, "theirs.png")).json()["id"]
    refusals: list[tuple[Any, int]] = [
        (["a_unknown"], 404),
        ([theirs], 404),  # another visitor's file
        ([mine, theirs], 404),  # one bad id spoils the form
        ("a_x", 400),  # not a list
        ([mine, mine], 400),  # listed twice
        ([mine, 7], 400),
        ([""], 400),
        (["a" * 65], 400),
        ([f"a_{i}" for i in range(11)], 400),  # more than MAX_ATTACHMENTS
    ]
    for attachments, status in refusals:
        r = await call(
            srv,
            "POST",
            "/api/visitor/offline",
            visitor.token,
            json={**FORM, "attachments": attachments},
        )
        assert r.status_code == status, (attachments, r.text)
        assert r.json()["error"] in ("not_found", "bad_frame"), r.text
        assert created(srv) == (0, 0), attachments
    # The other visitor's file is still theirs alone.
    r = await call(srv, "GET", f"/api/attachments/{theirs}", visitor.token)
    assert r.status_code == 404
    assert {o for (o,) in rows(srv, "SELECT owner FROM attachments")} == {
        f"s:{visitor.session_id}",
        f"s:{other.session_id}",
    }

    # A file of the visitor's own ticket is not one of this chat's.
    r = await call(srv, "POST", "/api/visitor/offline", visitor.token, json=FORM)
    assert r.status_code == 201, r.text
    number = r.json()["ticket"]["number"]
    r = await upload(srv, visitor.token, PNG, "later.png", ticket=str(number))
    assert r.status_code == 201, r.text
    before = created(srv)
    r = await call(
        srv,
        "POST",
        "/api/visitor/offline",
        visitor.token,
        json={**FORM, "attachments": [r.json()["id"]]},
    )
    assert r.status_code == 404, r.text
    assert created(srv) == before
