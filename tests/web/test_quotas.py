"""Visitors' quotas and rate limits over real servers (chatserver.web.quotas).

A refusal is 429 with ``rate_limited`` or ``quota_exceeded`` and ``Retry-After``, and
stores nothing; bad input uses up nothing; with Redis, every node counts together.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.stored import connect_stored

REDIS_URL = "redis://127.0.0.1:6379/0"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # 1032 bytes


def count(server: Any, sql: str) -> int:
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


async def post(server: Any, path: str, token: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        return await http.post(path, headers={"Authorization": f"Bearer {token}"}, **kw)


def form(email: str = "kurt@example.ch") -> dict[str, str]:
    return {"email": email, "subject": "Rückruf", "text": "Bitte melden"}


def assert_refused(response: httpx.Response, code: str = "rate_limited") -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == code
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 3600


async def test_offline_form_per_session_and_bad_input_uses_up_nothing(
    make_server: Any, clients: list[Any]
) -> None:
    server = make_server({"CHATSERVER_QUOTA_OFFLINE_PER_SESSION": "2"})
    server.start()
    v = await server.visitor()
    clients.append(v)
    for bad in ({"email": "nope", "subject": "s", "text": "t"}, {**form(), "text": ""}):
        assert (await post(server, "/api/visitor/offline", v.token, json=bad)).status_code == 400
    for i in range(2):
        r = await post(server, "/api/visitor/offline", v.token, json=form(f"k{i}@example.ch"))
        assert r.status_code == 201, r.text
    r = await post(server, "/api/visitor/offline", v.token, json=form("k9@example.ch"))
    assert_refused(r)
    assert count(server, "SELECT COUNT(*) FROM tickets") == 2


async def test_offline_form_per_email_and_per_address(make_server: Any, clients: list[Any]) -> None:
    server = make_server(
        {"CHATSERVER_QUOTA_MAILS_PER_EMAIL": "2", "CHATSERVER_QUOTA_OFFLINE_PER_ADDRESS": "4"}
    )
    server.start()
    visitors = []
    for _ in range(6):
        visitors.append(await server.visitor())
    clients.extend(visitors)
    # Confirmation mails to one address: two, whichever chat asks.
    for v in visitors[:2]:
        r = await post(server, "/api/visitor/offline", v.token, json=form("Same@Example.ch"))
        assert r.status_code == 201, r.text
    r = await post(server, "/api/visitor/offline", visitors[2].token, json=form("same@example.ch"))
    assert_refused(r)
    # Per client address (all of these come from 127.0.0.1): four in all.
    for v in visitors[2:4]:
        r = await post(server, "/api/visitor/offline", v.token, json=form(f"{v.session_id}@x.ch"))
        assert r.status_code == 201, r.text
    r = await post(server, "/api/visitor/offline", visitors[4].token, json=form("new@x.ch"))
    assert_refused(r)
    assert count(server, "SELECT COUNT(*) FROM tickets") == 4


async def test_offline_form_refused_while_operators_are_online(
    server: Any, clients: list[Any]
) -> None:
    server.add_operator("anna")
    anna = await server.operator("anna")
    clients.append(anna)
    v = await server.visitor()
    clients.append(v)
    r = await post(server, "/api/visitor/offline", v.token, json=form())
    assert r.status_code == 409
    assert r.json()["error"] == "operators_online"
    assert "chat" in r.json()["message"]
    assert count(server, "SELECT COUNT(*) FROM tickets") == 0


async def test_callbacks_per_session(make_server: Any, clients: list[Any]) -> None:
    server = make_server(
        {
            "CHATSERVER_QUOTA_CALLBACKS_PER_SESSION": "2",
            "CHATSERVER_QUOTA_CALLBACKS_PER_ADDRESS": "3",
        }
    )
    server.start()
    v, w = await server.visitor(), await server.visitor()
    clients.extend([v, w])
    # A bad phone is refused as such and counts nothing.
    for _ in range(3):
        r = await post(server, "/api/visitor/callback", v.token, json={"phone": "call me"})
        assert r.status_code == 400
    # The free plan has no phone support (403), but each request counts.
    for _ in range(2):
        r = await post(server, "/api/visitor/callback", v.token, json={"phone": "+41 44 123 45 67"})
        assert r.status_code == 403, r.text
    assert_refused(await post(server, "/api/visitor/callback", v.token, json={"phone": "+41 44 1"}))
    # Per address: the third from 127.0.0.1, whatever the chat.
    assert (
        await post(server, "/api/visitor/callback", w.token, json={"phone": "+41 44 1"})
    ).status_code == 403
    assert_refused(await post(server, "/api/visitor/callback", w.token, json={"phone": "+41 44 1"}))


async def test_uploads_per_session_count_and_bytes(make_server: Any, clients: list[Any]) -> None:
    server = make_server(
        {
            "CHATSERVER_QUOTA_UPLOADS_PER_SESSION": "3",
            "CHATSERVER_QUOTA_UPLOAD_BYTES_PER_SESSION": str(10 * 1024),
            "CHATSERVER_QUOTA_UPLOADS_PER_ADDRESS": "5",
        }
    )
    server.start()
    v, w, x = await server.visitor(), await server.visitor(), await server.visitor()
    clients.extend([v, w, x])
    for i in range(3):
        r = await post(server, "/api/attachments", v.token, files={"file": (f"{i}.png", PNG)})
        assert r.status_code == 201, r.text
    r = await post(server, "/api/attachments", v.token, files={"file": ("4.png", PNG)})
    assert_refused(r, "quota_exceeded")
    # Bytes: one file bigger than the session's byte quota.
    big = PNG + bytes(11 * 1024)
    r = await post(server, "/api/attachments", w.token, files={"file": ("big.png", big)})
    assert_refused(r, "quota_exceeded")
    # Per address: five files in all from 127.0.0.1 (three by v, two more by w).
    for i in range(2):
        r = await post(server, "/api/attachments", w.token, files={"file": (f"w{i}.png", PNG)})
        assert r.status_code == 201, r.text
    r = await post(server, "/api/attachments", x.token, files={"file": ("x.png", PNG)})
    assert_refused(r, "quota_exceeded")
    assert count(server, "SELECT COUNT(*) FROM attachments") == 5
    files = [p for p in (server.data_dir / "attachments").rglob("*") if p.is_file()]
    assert len(files) == 5


async def test_visitor_replies_per_visitor(make_server: Any, clients: list[Any]) -> None:
    server = make_server({"CHATSERVER_QUOTA_REPLIES_PER_SESSION": "2"})
    server.start()
    v = await server.visitor()
    clients.append(v)
    r = await post(server, "/api/visitor/offline", v.token, json=form())
    number = r.json()["ticket"]["number"]
    for i in range(2):
        r = await post(
            server, f"/api/visitor/tickets/{number}/replies", v.token, json={"text": f"r{i}"}
        )
        assert r.status_code == 201, r.text
    r = await post(server, f"/api/visitor/tickets/{number}/replies", v.token, json={"text": "r3"})
    assert_refused(r)
    assert count(server, "SELECT COUNT(*) FROM ticket_events WHERE kind = 'reply'") == 3


@pytest.fixture
def prefix() -> str:
    return f"cst-{uuid.uuid4().hex[:8]}"


async def test_nodes_sharing_redis_count_together(
    make_server: Any, clients: list[Any], tmp_path: Path, prefix: str
) -> None:
    nodes = []
    for i in range(2):
        node = make_server(
            env={
                "CHATSERVER_REDIS_URL": REDIS_URL,
                "CHATSERVER_REDIS_PREFIX": prefix,
                "CHATSERVER_NODE_ID": f"node{i}",
                "CHATSERVER_QUOTA_OFFLINE_PER_SESSION": "3",
            },
            data_dir=tmp_path / "shared",
        )
        node.start()
        nodes.append(node)
    a, b = nodes
    v = await a.visitor()
    clients.append(v)
    try:
        for node in (a, b, a):
            r = await post(node, "/api/visitor/offline", v.token, json=form(f"{node.port}@x.ch"))
            assert r.status_code == 201, r.text
        assert_refused(await post(b, "/api/visitor/offline", v.token, json=form("z@x.ch")))
        assert count(a, "SELECT COUNT(*) FROM tickets") == 3
    finally:
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
