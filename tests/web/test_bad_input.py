"""Bad input over real sockets: a clear error or close code, and nothing changes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chatserver.client import ClientError, OperatorClient, VisitorClient
from tests.stored import connect_stored


def count(server, sql, *params):
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


async def test_malformed_json_and_unknown_type_get_error_frames(server, clients):
    v = await server.visitor()
    clients.append(v)
    await v.send_raw("{not json")
    assert (await v.wait_for("error"))["code"] == "bad_frame"
    await v.send_raw("[1, 2]")
    assert (await v.wait_for("error"))["code"] == "bad_frame"
    await v.send_raw(json.dumps({"no": "type"}))
    assert (await v.wait_for("error"))["code"] == "bad_frame"
    await v.send_frame({"type": "explode"})
    assert (await v.wait_for("error"))["code"] == "unknown_type"
    await v.send_frame({"type": "hello"})
    assert (await v.wait_for("error"))["code"] == "bad_frame"
    # The connection is still usable and nothing was stored.
    assert count(server, "SELECT COUNT(*) FROM messages") == 0
    assert await v.send("still works") == 1


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"type": "message", "text": "no id"}, "bad_frame"),
        ({"type": "message", "client_msg_id": "a", "text": "   "}, "bad_frame"),
        ({"type": "message", "client_msg_id": "a", "text": 42}, "bad_frame"),
        ({"type": "message", "client_msg_id": "", "text": "x"}, "bad_frame"),
        ({"type": "message", "client_msg_id": "x" * 65, "text": "x"}, "bad_frame"),
        ({"type": "message", "client_msg_id": "a", "text": "x" * 4001}, "bad_frame"),
        ({"type": "read", "seq": -1}, "bad_frame"),
        ({"type": "read", "seq": True}, "bad_frame"),
        ({"type": "typing", "active": "yes"}, "bad_frame"),
        ({"type": "info", "email": "not-an-address"}, "bad_frame"),
        ({"type": "info", "name": "n" * 101}, "bad_frame"),
    ],
)
async def test_invalid_visitor_frames_store_nothing(server, clients, frame, code):
    v = await server.visitor()
    clients.append(v)
    await v.send_frame(frame)
    err = await v.wait_for("error")
    assert err["code"] == code
    assert count(server, "SELECT COUNT(*) FROM messages") == 0
    assert count(server, "SELECT COUNT(*) FROM sessions WHERE state = 'new'") == 1


async def test_oversized_frame_closes_1009(make_server, clients):
    server = make_server(env={"CHATSERVER_MAX_FRAME_BYTES": "4096"})
    server.start()
    v = await server.visitor()
    await v.send_frame({"type": "message", "client_msg_id": "big", "text": "x" * 5000})
    assert await v.wait_closed() == 1009
    assert count(server, "SELECT COUNT(*) FROM messages") == 0


async def test_unknown_or_forged_visitor_token_closes_4001(server):
    v = await server.visitor()
    await v.close()
    with pytest.raises(ClientError) as err:
        await VisitorClient.connect(server.url, token=v.token[:-2] + "xx")
    assert err.value.code == "unauthorized"
    ws = await connect(server.url + "/ws/visitor")
    await ws.send(json.dumps({"type": "hello", "token": "made-up"}))
    await ws.recv()
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 4001


async def test_first_frame_must_be_hello(server):
    for path in ("/ws/visitor", "/ws/operator"):
        ws = await connect(server.url + path)
        await ws.send(json.dumps({"type": "message", "client_msg_id": "a", "text": "hi"}))
        error = json.loads(await ws.recv())
        assert error["code"] == "hello_required"
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4002
    assert count(server, "SELECT COUNT(*) FROM sessions") == 0


async def test_forged_and_expired_operator_tokens_close_4001(server):
    op_id = server.add_operator("anna")
    token = await OperatorClient.login(server.http_url, "anna", "pw-secret")
    forged = [
        token[:-3] + "abc",
        f"{op_id}.9999999999.{token.rsplit('.', 1)[1]}",  # extended expiry, old signature
        "garbage",
        "",
    ]
    for bad in forged:
        with pytest.raises(ClientError) as err:
            await OperatorClient.connect(server.url, token=bad)
        assert err.value.code in ("unauthorized", "bad_frame"), bad


async def test_visitor_cannot_touch_another_visitors_session(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    alice = await server.visitor(name="Alice")
    mallory = await server.visitor(name="Mallory")
    clients += [alice, mallory]
    await alice.send("secret")
    await op.next_chat()
    # A visitor frame has no session id to aim at; the only handle on a
    # session is its token, and a session id is not one.
    with pytest.raises(ClientError):
        await VisitorClient.connect(server.url, token=alice.session_id)
    await mallory.send_frame(
        {"type": "message", "client_msg_id": "m", "text": "hi", "session_id": alice.session_id}
    )
    await mallory.wait_for("ack")
    assert (
        count(server, "SELECT COUNT(*) FROM messages WHERE session_id = ?", alice.session_id) == 2
    )  # alice's message + "joined"
    assert not [m for m in alice.seen("message") if m["text"] == "hi"]


async def test_operator_unknown_session_ids(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    for frame in (
        {"type": "message", "session_id": "s_nope", "client_msg_id": "a", "text": "x"},
        {"type": "typing", "session_id": "s_nope", "active": True},
        {"type": "read", "session_id": "s_nope", "seq": 1},
        {"type": "close_chat", "session_id": "s_nope"},
        {"type": "history", "session_id": "s_nope"},
    ):
        await op.send_frame(frame)
        assert (await op.wait_for("error"))["code"] == "unknown_session", frame
    await op.send_frame({"type": "status", "status": "asleep"})
    assert (await op.wait_for("error"))["code"] == "bad_frame"


async def test_visitor_origin_allowlist(make_server):
    server = make_server(env={"CHATSERVER_VISITOR_ALLOWED_ORIGINS": "https://shop.example"})
    server.start()
    ok = await VisitorClient.connect(server.url, origin="https://shop.example")
    await ok.close()
    with pytest.raises(InvalidStatus) as err:
        await VisitorClient.connect(server.url, origin="https://evil.example")
    assert err.value.response.status_code == 403
    assert count(server, "SELECT COUNT(*) FROM sessions") == 1


async def test_operator_endpoint_is_same_origin_only(server):
    server.add_operator("anna")
    token = await OperatorClient.login(server.http_url, "anna", "pw-secret")
    op = await OperatorClient.connect(server.url, token=token, origin=server.http_url)
    await op.close()
    for origin in ("https://evil.example", f"http://127.0.0.1:{server.port + 1}", "null"):
        with pytest.raises(InvalidStatus) as err:
            await OperatorClient.connect(server.url, token=token, origin=origin)
        assert err.value.response.status_code == 403


async def test_login_errors(server):
    server.add_operator("anna")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (
            await http.post("/api/login", json={"username": "anna", "password": "no"})
        ).status_code == 401
        assert (
            await http.post("/api/login", json={"username": "nobody", "password": "x"})
        ).status_code == 401
        assert (await http.post("/api/login", content=b"{oops")).status_code == 400
        assert (await http.post("/api/login", json=["a"])).status_code == 400
        assert (
            await http.post("/api/login", json={"username": 1, "password": 2})
        ).status_code == 400
        assert (await http.get("/api/login")).status_code == 405


async def test_flooding_client_is_rate_limited_then_closed(make_server):
    server = make_server(env={"CHATSERVER_RATE_LIMIT_PER_10S": "20"})
    server.start()
    v = await server.visitor()
    for i in range(45):
        await v.send_frame({"type": "message", "client_msg_id": f"c{i}", "text": "flood"})
    assert await v.wait_closed() == 4029
    refused = [e for e in v.seen("error") if e["code"] == "rate_limited"]
    assert refused and refused[0]["ref"] == "c20"  # the first message over the limit
    # Marker: another visitor's message, acked once durable; messages are stored in
    # the order they are taken, so every one the flooder got in is stored by then.
    other = await server.visitor()
    await other.send("marker")
    await other.close()
    # Exactly the frames within the limit were taken (their acks may be cut off by
    # the close; a resend with the same client_msg_id is acked as a duplicate).
    taken = "SELECT COUNT(*) FROM messages WHERE session_id = ?"
    assert count(server, taken, v.session_id) == 20


async def test_hostile_html_is_stored_and_relayed_verbatim(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    v = await server.visitor(name='<b onmouseover="x()">Eve</b>')
    clients.append(v)
    await v.send(payload)
    chat = await op.next_chat()
    assert chat["visitor"]["name"] == '<b onmouseover="x()">Eve</b>'
    msg = await op.wait_for("message", lambda f: f["from"] == "visitor")
    assert msg["text"] == payload  # escaping is the renderer's job; see the browser test
