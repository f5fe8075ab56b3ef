"""Production operation: readiness, graceful shutdown under traffic, structured logs."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Any

import httpx

from chatserver.client import ClientError, VisitorClient, new_client_msg_id
from chatserver.web.app import JsonFormatter
from tests.conftest import free_port
from tests.stored import connect_stored
from tests.waiting import eventually


async def get(server: Any, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        return await http.get(path)


# -------------------------------------------------------------------- readyz
async def test_readyz_is_200_when_the_store_answers(server):
    r = await get(server, "/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"store": "ok"}  # no Redis configured: not checked
    assert body["failed"] == []


async def test_readyz_is_503_naming_redis_when_redis_does_not_answer(make_server):
    server = make_server(env={"CHATSERVER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    server.start()  # alive (healthz 200, degraded) without Redis
    r = await get(server, "/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unready"
    assert body["failed"] == ["redis"]
    assert body["checks"]["store"] == "ok"
    assert "Connection" in body["checks"]["redis"] or "answer" in body["checks"]["redis"]
    health = await get(server, "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"


async def test_readyz_with_redis(make_server):
    server = make_server(
        env={"CHATSERVER_REDIS_URL": "redis://127.0.0.1:6379/0", "CHATSERVER_REDIS_PREFIX": "rz"}
    )
    server.start()
    r = await get(server, "/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"store": "ok", "redis": "ok"}


# --------------------------------------------------------- graceful shutdown
async def test_sigterm_during_traffic_loses_no_acked_message_and_clients_see_1012(
    make_server, clients
):
    server = make_server(env={"CHATSERVER_RATE_LIMIT_PER_10S": "100000"})
    server.start()
    server.add_operator("anna", name="Anna", capacity=5)
    op = await server.operator("anna")
    clients.append(op)
    visitors = []
    for i in range(3):
        v = await server.visitor(name=f"V{i}")
        clients.append(v)
        await v.send(f"hello {i}")
        await op.next_chat()
        visitors.append(v)

    sent: dict[Any, list[str]] = {c: [] for c in [op, *visitors]}
    stop = asyncio.Event()

    async def pump(client: Any, session_id: str | None) -> None:
        """Send without waiting for acks, as fast as a busy desk would."""
        while not stop.is_set() and client.close_code is None:
            cmid = new_client_msg_id()
            frame: dict[str, Any] = {"type": "message", "client_msg_id": cmid, "text": cmid}
            if session_id is not None:
                frame["session_id"] = session_id
            try:
                await client.send_frame(frame)
            except Exception:
                return
            sent[client].append(cmid)
            await asyncio.sleep(0.003)  # pacing, as a busy desk types

    pumps = [asyncio.create_task(pump(v, None)) for v in visitors]
    pumps += [asyncio.create_task(pump(op, v.session_id)) for v in visitors]
    # Traffic flows both ways (every client has acks coming back) when SIGTERM hits.
    await eventually(
        lambda: all(len(c.seen("ack")) >= 20 for c in [op, *visitors]),
        message="acks flowing to every client",
    )
    assert server.proc is not None
    proc = server.proc
    proc.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(c.wait_closed(15) for c in [op, *visitors]))
    stop.set()
    await asyncio.gather(*pumps)
    await asyncio.to_thread(proc.wait, 15)
    server.proc = None
    assert codes == [1012] * 4

    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    stored = {
        (sid, sender, cmid): seq
        for sid, sender, cmid, seq in conn.execute(
            "SELECT session_id, sender, client_msg_id, seq FROM messages"
            " WHERE client_msg_id IS NOT NULL"
        )
    }
    conn.close()
    total_acked = 0
    for client in [op, *visitors]:
        sender = "operator" if client is op else "visitor"
        acks = {f["client_msg_id"]: f["seq"] for f in client.seen("ack")}
        refused = {f.get("ref") for f in client.seen("error")}
        assert not acks.keys() & refused
        for cmid, seq in acks.items():
            matches = [s for (sid, snd, c), s in stored.items() if c == cmid and snd == sender]
            assert matches == [seq], f"acked {cmid} as {seq}, stored {matches}"
        total_acked += len(acks)
    assert total_acked > 50, "too little traffic to mean anything"

    # After a restart every visitor resumes without a gap, and resends everything
    # it sent: acked messages are acked again with their seq, the others stored
    # now; each exactly once.
    server.start()
    for v in visitors:
        acks = {f["client_msg_id"]: f["seq"] for f in v.seen("ack")}
        again = await VisitorClient.connect(server.url, token=v.token, last_seq=0)
        clients.append(again)
        done = await again.wait_for("replay_done")
        seqs = [f["seq"] for f in again.seen("message")]
        assert seqs == list(range(1, done["last_seq"] + 1))
        assert done["last_seq"] >= max(acks.values())
        for cmid in sent[v]:
            try:
                seq = await again.send(cmid, client_msg_id=cmid)
            except ClientError as exc:  # nothing may refuse a resend
                raise AssertionError(exc.frame) from exc
            if cmid in acks:
                assert seq == acks[cmid]
        conn = connect_stored(server.data_dir / "chatserver.sqlite3")
        counts = conn.execute(
            "SELECT client_msg_id, COUNT(*) FROM messages WHERE session_id = ?"
            " AND sender = 'visitor' AND client_msg_id IS NOT NULL GROUP BY client_msg_id",
            (v.session_id,),
        ).fetchall()
        conn.close()
        assert {c for c, n in counts} >= set(sent[v]) and {n for c, n in counts} == {1}


async def test_sigterm_a_client_that_never_answers_the_close_does_not_hold_up_shutdown(
    make_server, clients
):
    """The node closes every socket with 1012 before uvicorn drops its
    connections: a client that never answers still gets the close frame and
    does not keep the process alive; the others see a clean 1012."""
    server = make_server()
    server.start()
    polite = await server.visitor(name="Polite")
    clients.append(polite)
    await polite.send("hello")
    # A raw WebSocket handshake, then this client never reads or answers again.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /ws/visitor HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    assert server.proc is not None
    proc = server.proc
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc.send_signal(signal.SIGTERM)
    assert await polite.wait_closed(15) == 1012
    # uvicorn re-raises the SIGTERM it caught once it has shut down.
    assert await asyncio.to_thread(proc.wait, 20) in (0, -signal.SIGTERM)
    server.proc = None
    assert loop.time() - started < 15
    # The deaf client got its close frame too (0x88: FIN + close, code 1012 = 0x03f4).
    data = await asyncio.wait_for(reader.read(), 5)
    assert b"\x88\x02\x03\xf4" in data
    writer.close()


# -------------------------------------------------------------------- logs
def test_json_log_lines_carry_the_extra_ids():
    formatter = JsonFormatter()
    logger = logging.getLogger("chatserver.test")
    record = logger.makeRecord(
        "chatserver.chat.hub",
        logging.WARNING,
        __file__,
        1,
        "operator %s lost",
        ("o_1",),
        None,
        extra={"session_id": "s_1", "operator_id": "o_1"},
    )
    line = json.loads(formatter.format(record))
    assert line["msg"] == "operator o_1 lost"
    assert line["session_id"] == "s_1" and line["operator_id"] == "o_1"
    assert line["level"] == "warning" and line["logger"] == "chatserver.chat.hub"
    assert set(line) == {"ts", "level", "logger", "msg", "session_id", "operator_id"}
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(formatter.format(record))["exc"]


async def test_server_logs_json_with_ids(make_server, clients):
    server = make_server(
        env={
            "CHATSERVER_LOG_JSON": "true",
            "CHATSERVER_LOG_LEVEL": "info",
            "CHATSERVER_OPERATOR_GRACE_SECONDS": "0.2",
        }
    )
    server.start()
    server.add_operator("anna", name="Anna")
    op = await server.operator("anna")
    v = await server.visitor()
    clients.append(v)
    await v.send("hi")
    await op.next_chat()
    operator_id = op.welcome["operator"]["id"]
    await op.close()  # the grace period ends: her chats are re-queued, logged with her id

    def logged_with_her_id() -> bool:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        return any(line.get("operator_id") == operator_id for line in lines)

    await eventually(logged_with_her_id, message="a JSON log line with her operator_id")
