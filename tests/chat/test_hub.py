"""Integration: real WebSockets against a real ``chatserver serve`` process."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from chatserver.client import ClientError, OperatorClient, VisitorClient
from chatserver.operators.auth import sign_identity
from chatserver.store.journal import read_segment
from tests.stored import connect_stored
from tests.waiting import eventually


def stored_messages(server, session_id):
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        return conn.execute(
            "SELECT seq, sender, text, client_msg_id FROM messages"
            " WHERE session_id = ? ORDER BY seq",
            (session_id,),
        ).fetchall()
    finally:
        conn.close()


async def test_visitor_and_operator_chat_both_ways(server, clients):
    server.add_operator("anna", name="Anna")
    op = await server.operator("anna")
    clients.append(op)
    visitor = await server.visitor(
        name="Vera",
        email="vera@example.ch",
        page_url="https://shop.example/cart",
        user_agent="UA/1",
    )
    clients.append(visitor)
    assert visitor.welcome["state"] == "new" and visitor.welcome["resumed"] is False

    seq = await visitor.send("Grüezi, wo ist meine Bestellung?")
    assert seq == 1
    chat = await op.next_chat()
    assert chat["session_id"] == visitor.session_id
    assert chat["visitor"]["name"] == "Vera"
    assert chat["visitor"]["page_url"] == "https://shop.example/cart"
    assert chat["visitor"]["user_agent"] == "UA/1"
    first = await op.wait_for("message", lambda f: f["from"] == "visitor")
    assert first["text"] == "Grüezi, wo ist meine Bestellung?" and first["seq"] == 1

    state = await visitor.wait_for("state", lambda f: f["state"] == "assigned")
    assert state["operator"]["name"] == "Anna"
    joined = await visitor.wait_for("message", lambda f: f["from"] == "system")
    assert joined["event"] == "assigned"

    reply_seq = await op.send_to(visitor.session_id, "Ich schaue nach.")
    reply = await visitor.wait_for("message", lambda f: f["from"] == "operator")
    assert reply["seq"] == reply_seq and reply["author"] == "Anna"

    # typing both ways, not stored
    await visitor.send_frame({"type": "typing", "active": True})
    typing = await op.wait_for("typing")
    assert typing == {
        "type": "typing",
        "session_id": visitor.session_id,
        "from": "visitor",
        "active": True,
    }
    await op.send_frame({"type": "typing", "session_id": visitor.session_id, "active": True})
    assert (await visitor.wait_for("typing"))["from"] == "operator"

    # read receipts both ways
    await visitor.send_frame({"type": "read", "seq": reply_seq})
    assert (await op.wait_for("read"))["seq"] == reply_seq
    await op.send_frame({"type": "read", "session_id": visitor.session_id, "seq": 1})
    assert (await visitor.wait_for("read"))["by"] == "operator"

    rows = stored_messages(server, visitor.session_id)
    assert [r[1] for r in rows] == ["visitor", "system", "operator"]
    assert [r[0] for r in rows] == [1, 2, 3]


async def test_operator_closes_chat_and_capacity_is_freed(server, clients):
    server.add_operator("anna", capacity=1)
    op = await server.operator("anna")
    clients.append(op)
    v1 = await server.visitor(name="One")
    v2 = await server.visitor(name="Two")
    clients += [v1, v2]
    await v1.send("first")
    await op.next_chat()
    await v2.send("second")
    pos = await v2.wait_for("state", lambda f: f["state"] == "waiting")
    assert pos["queue_position"] == 1
    # Marker: a visitor's frames are handled one after the other, so this message is
    # stored after the first one's assignment attempt is over; an assignment would
    # have stored its system message ("assigned") before it.
    await v2.send("still there?")
    assert [r[1] for r in stored_messages(server, v2.session_id)] == ["visitor", "visitor"]
    assert not [f for f in op.seen("chat_assigned") if f["chat"]["session_id"] == v2.session_id]

    await op.send_frame({"type": "close_chat", "session_id": v1.session_id})
    closed = await op.wait_for("chat_closed")
    assert closed["session_id"] == v1.session_id and closed["by"] == "operator"
    ended = await v1.wait_for("state", lambda f: f["state"] == "closed")
    assert ended["queue_position"] is None
    nxt = await op.next_chat()
    assert nxt["session_id"] == v2.session_id

    # A closed chat refuses new messages and stores nothing.
    with pytest.raises(ClientError) as err:
        await v1.send("hello again?")
    assert err.value.code == "chat_closed"
    with pytest.raises(ClientError) as err:
        await op.send_to(v1.session_id, "operator after close")
    assert err.value.code == "chat_closed"
    assert [r[2] for r in stored_messages(server, v1.session_id)][
        -1
    ] == "The operator ended the chat."


async def test_queue_is_oldest_first_with_priority_and_positions(make_server, clients):
    server = make_server(env={"CHATSERVER_IDENTITY_SECRET": "s3cret"})
    server.start()
    server.add_operator("anna", capacity=1)
    visitors = []
    for name in ("A", "B", "C"):
        v = await server.visitor(name=name)
        clients.append(v)
        await v.send(f"hi from {name}")
        visitors.append(v)
        # Queued before the next one writes: the queue order is the arrival order.
        await v.wait_for("state", lambda f: f["state"] == "waiting")
    vip = await server.visitor(
        name="VIP",
        identity={
            "customer_id": "K-100",
            "plan": "vip",
            "sig": sign_identity("K-100", "vip", "s3cret"),
        },
    )
    clients.append(vip)
    await vip.send("VIP here")
    assert (await vip.wait_for("state", lambda f: f["state"] == "waiting"))["queue_position"] == 1
    # The coalesced position updates reach everyone behind the VIP.
    for expected, v in zip((2, 3, 4), visitors, strict=True):
        await v.wait_for("queue", lambda f, e=expected: f["position"] == e)

    op = await server.operator("anna")
    clients.append(op)
    order = []
    for _ in range(4):
        chat = await op.next_chat()
        order.append(chat["visitor"]["name"])
        if chat["visitor"]["name"] == "VIP":
            assert chat["visitor"]["plan"] == "vip" and chat["visitor"]["customer_id"] == "K-100"
            assert chat["priority"] == "vip"
        await op.send_frame({"type": "close_chat", "session_id": chat["session_id"]})
    assert order == ["VIP", "A", "B", "C"]


async def test_forged_identity_is_refused(make_server, clients):
    server = make_server(env={"CHATSERVER_IDENTITY_SECRET": "s3cret"})
    server.start()
    with pytest.raises(ClientError) as err:
        await server.visitor(identity={"customer_id": "K-1", "plan": "vip", "sig": "00" * 32})
    assert err.value.code == "unauthorized"


async def test_least_loaded_operator_gets_the_next_chat(server, clients):
    server.add_operator("anna", capacity=3)
    server.add_operator("ben", capacity=3)
    anna = await server.operator("anna")
    ben = await server.operator("ben")
    clients += [anna, ben]
    for i in range(4):
        v = await server.visitor(name=f"V{i}")
        clients.append(v)
        await v.send("hello")
        await v.wait_for("state", lambda f: f["state"] == "assigned")
        # The visitor may hear of it first: wait for the console before the next chat.
        await eventually(
            lambda v=v: any(
                f["chat"]["session_id"] == v.session_id
                for f in anna.seen("chat_assigned") + ben.seen("chat_assigned")
            ),
            message="a console got the chat",
        )
    assert len(anna.seen("chat_assigned")) == 2
    assert len(ben.seen("chat_assigned")) == 2


async def test_operator_coming_online_takes_the_queue(server, clients):
    server.add_operator("anna", capacity=2)
    op = await server.operator("anna", status="away")
    clients.append(op)
    assert op.welcome["operator"]["status"] == "away"
    vs = [await server.visitor(name=f"V{i}") for i in range(3)]
    clients += vs
    for v in vs:
        await v.send("waiting")
    await op.wait_for("queue", lambda f: f["total"] == 3)
    assert op.seen("chat_assigned") == []
    status = await op.set_status("online")
    assert status["capacity"] == 2
    got = {(await op.next_chat())["session_id"] for _ in range(2)}
    assert got == {vs[0].session_id, vs[1].session_id}
    assert (await vs[2].wait_for("queue", lambda f: f["position"] == 1))["position"] == 1


async def test_operator_going_offline_requeues_at_front(server, clients):
    server.add_operator("anna", capacity=1)
    server.add_operator("ben", capacity=1)
    anna = await server.operator("anna")
    clients.append(anna)
    v1 = await server.visitor(name="First")
    clients.append(v1)
    await v1.send("help")
    await anna.next_chat()
    v2 = await server.visitor(name="Second")
    clients.append(v2)
    await v2.send("me too")
    await v2.wait_for("state", lambda f: f["state"] == "waiting")

    await anna.set_status("offline")
    removed = await anna.wait_for("chat_removed")
    assert removed["session_id"] == v1.session_id
    note = await v1.wait_for("message", lambda f: f.get("event") == "requeued")
    assert "back in the queue" in note["text"]
    state = await v1.wait_for("state", lambda f: f["state"] == "waiting")
    assert state["queue_position"] == 1  # ahead of Second, who waited less long in total

    ben = await server.operator("ben")
    clients.append(ben)
    chat = await ben.next_chat()
    assert chat["session_id"] == v1.session_id


async def test_operator_disconnect_requeues_after_grace(make_server, clients):
    server = make_server(env={"CHATSERVER_OPERATOR_GRACE_SECONDS": "0.5"})
    server.start()
    server.add_operator("anna")
    anna = await server.operator("anna")
    v = await server.visitor()
    clients.append(v)
    await v.send("hello")
    await anna.next_chat()
    await anna.close()
    note = await v.wait_for("message", lambda f: f.get("event") == "requeued", timeout=5)
    assert "lost the connection" in note["text"]
    await v.wait_for("state", lambda f: f["state"] == "waiting")


async def test_operator_reconnect_within_grace_keeps_chats(make_server, clients):
    grace = 2.0
    server = make_server(env={"CHATSERVER_OPERATOR_GRACE_SECONDS": str(grace)})
    server.start()
    server.add_operator("anna")
    token = await OperatorClient.login(server.http_url, "anna", "pw-secret")
    anna = await OperatorClient.connect(server.url, token=token)
    v = await server.visitor()
    clients.append(v)
    await v.send("hello")
    await anna.next_chat()
    await anna.wait_for("message", lambda f: f.get("event") == "assigned")
    last = max(f["seq"] for f in anna.seen("message"))
    gone = time.monotonic()
    await anna.close()
    await v.send("are you there?")
    anna2 = await OperatorClient.connect(
        server.url, token=token, status=None, sessions={v.session_id: last}
    )
    clients.append(anna2)
    assert [c["session_id"] for c in anna2.welcome["chats"]] == [v.session_id]
    assert anna2.welcome["operator"]["status"] == "online"
    missed = await anna2.wait_for("message", lambda f: f["from"] == "visitor")
    assert missed["text"] == "are you there?"
    done = await anna2.wait_for("replay_done")
    assert done["complete"] and done["session_id"] == v.session_id
    # The grace period running out is the thing under test: let it pass, then a
    # marker. Had the reconnect not cancelled the grace timer, its "requeued"
    # message would be stored, and reach the visitor, before the marker.
    await asyncio.sleep(max(0.0, gone + grace + 0.5 - time.monotonic()))
    await anna2.send_to(v.session_id, "still with you")
    await v.wait_for("message", lambda f: f["text"] == "still with you")
    assert all(m.get("event") != "requeued" for m in v.seen("message"))


async def test_second_operator_connection_replaces_first(server, clients):
    server.add_operator("anna")
    token = await OperatorClient.login(server.http_url, "anna", "pw-secret")
    first = await OperatorClient.connect(server.url, token=token)
    second = await OperatorClient.connect(server.url, token=token)
    clients += [first, second]
    assert await first.wait_closed() == 4008


async def test_resume_replays_exactly_what_was_missed(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    v = await server.visitor(name="Vera")
    await v.send("one")
    await op.next_chat()
    await v.wait_for("message", lambda f: f.get("event") == "assigned")
    seen = max(f["seq"] for f in v.seen("message"))
    token = v.token
    await v.close()  # network drop
    sent = [await op.send_to(v.session_id, f"reply {i}") for i in range(5)]
    v2 = await VisitorClient.connect(server.url, token=token, last_seq=seen)
    clients.append(v2)
    assert v2.welcome["resumed"] is True and v2.welcome["session_id"] == v.session_id
    assert v2.welcome["last_seq"] == sent[-1]
    done = await v2.wait_for("replay_done")
    assert done == {"type": "replay_done", "last_seq": sent[-1], "complete": True}
    replayed = [f["seq"] for f in v2.seen("message")]
    assert replayed == sent
    assert [f["text"] for f in v2.seen("message")] == [f"reply {i}" for i in range(5)]


async def test_resume_under_traffic_has_no_loss_and_no_duplicates(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    v = await server.visitor()
    await v.send("start")
    await op.next_chat()
    token = v.token

    seqs: list[int] = []

    async def stream() -> list[int]:
        for i in range(60):
            seqs.append(await op.send_to(v.session_id, f"m{i}"))
            await asyncio.sleep(0.002)  # pacing: the stream spans the reconnect
        return seqs

    producer = asyncio.create_task(stream())
    # Some messages reach the visitor before the drop...
    await eventually(lambda: any(f["from"] == "operator" for f in v.seen("message")))
    await v.close()
    last = max([f["seq"] for f in v.seen("message")] + [1])
    # ...and some are sent while it is away.
    away = min(60, len(seqs) + 3)
    await eventually(lambda: len(seqs) >= away)
    v2 = await VisitorClient.connect(server.url, token=token, last_seq=last)
    clients.append(v2)
    sent = await producer
    await v2.wait_for("message", lambda f: f["seq"] == sent[-1])
    got = [f["seq"] for f in v2.seen("message")]
    assert got == list(range(last + 1, sent[-1] + 1)), "gap or duplicate"


async def test_resend_with_same_client_msg_id_is_stored_once(server, clients):
    v = await server.visitor()
    clients.append(v)
    seq1 = await v.send("only once", client_msg_id="c-1")
    await v.send_frame({"type": "message", "client_msg_id": "c-1", "text": "only once"})
    ack = await v.wait_for("ack", lambda f: f["client_msg_id"] == "c-1")
    assert ack["seq"] == seq1 and ack["duplicate"] is True
    # Two resends racing the first commit are acked with the same seq too.
    await v.send_frame({"type": "message", "client_msg_id": "c-2", "text": "burst"})
    await v.send_frame({"type": "message", "client_msg_id": "c-2", "text": "burst"})
    acks = [await v.wait_for("ack", lambda f: f["client_msg_id"] == "c-2") for _ in range(2)]
    assert acks[0]["seq"] == acks[1]["seq"]
    assert sorted(a["duplicate"] for a in acks) == [False, True]
    # After a reconnect the resend is still recognised.
    token = v.token
    await v.close()
    v2 = await VisitorClient.connect(server.url, token=token, last_seq=10)
    clients.append(v2)
    assert await v2.send("only once", client_msg_id="c-1") == seq1
    rows = stored_messages(server, v.session_id)
    assert [r[3] for r in rows if r[1] == "visitor"] == ["c-1", "c-2"]


async def test_acked_messages_survive_kill_9_and_restart(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    v = await server.visitor(name="Durable")
    acked = []
    for i in range(40):
        acked.append(await v.send(f"msg {i}"))
    chat = await op.next_chat()
    op_seq = await op.send_to(v.session_id, "operator line")
    token = v.token
    server.kill9()
    server.start()
    v2 = await VisitorClient.connect(server.url, token=token, last_seq=0)
    clients.append(v2)
    assert v2.welcome["state"] == "assigned"
    await v2.wait_for("replay_done")
    seqs = [f["seq"] for f in v2.seen("message")]
    assert set(acked) | {op_seq} <= set(seqs)
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    # The operator's assignment survived too and can be resumed.
    op2 = await server.operator("anna", status=None, sessions={chat["session_id"]: op_seq})
    clients.append(op2)
    assert [c["session_id"] for c in op2.welcome["chats"]] == [v.session_id]
    # Messages continue after the last stored seq.
    assert await v2.send("after restart") == max(seqs) + 1


async def test_messages_only_in_the_journal_survive_kill_9(make_server, clients):
    # No copy into SQLite on a timer: what the kill finds is only in the journal.
    server = make_server({"CHATSERVER_STORE_JOURNAL_INTERVAL": "60"})
    server.start()
    server.add_operator("anna")
    op = await server.operator("anna")
    v = await server.visitor(name="Journal")
    await v.send("first")
    await op.next_chat()  # its history replay copies the journal: "first" is in SQLite
    acked = [await v.send(f"late {i}") for i in range(20)]
    acked.append(await op.send_to(v.session_id, "operator late"))
    db = server.data_dir / "chatserver.sqlite3"
    raw = sqlite3.connect(db)
    in_db = {r[0] for r in raw.execute("SELECT seq FROM messages WHERE session_id = ?",
                                        (v.session_id,))}
    raw.close()
    segments = sorted((server.data_dir / "chatserver.sqlite3.msglog").glob("*.seg"))
    journaled = {r[1] for seg in segments for r in read_segment(seg)[0]}
    assert set(acked) <= journaled and not set(acked) & in_db
    token = v.token
    server.kill9()
    server.start()
    v2 = await VisitorClient.connect(server.url, token=token, last_seq=0)
    clients.append(v2)
    await v2.wait_for("replay_done")
    texts = [f["text"] for f in v2.seen("message") if not f.get("event")]
    assert texts == ["first", *[f"late {i}" for i in range(20)], "operator late"]
    seqs = [f["seq"] for f in v2.seen("message")]
    assert seqs == sorted(set(seqs))
    assert await v2.send("after restart") == max(seqs) + 1
    # The restart copied the old segments into SQLite and deleted them.
    assert not any(p.exists() for p in segments)
    raw = sqlite3.connect(db)
    stored = {
        r[0]
        for r in raw.execute("SELECT seq FROM messages WHERE session_id = ?", (v.session_id,))
    }
    raw.close()
    assert set(acked) <= stored


async def test_waiting_queue_survives_restart(server, clients):
    vs = [await server.visitor(name=f"Q{i}") for i in range(3)]
    for v in vs:
        await v.send("waiting")
        # Queued before the next one writes: the queue order is the arrival order.
        await v.wait_for("state", lambda f: f["state"] == "waiting")
    tokens = [v.token for v in vs]
    server.kill9()
    server.start()
    server.add_operator("anna", capacity=3)
    op = await server.operator("anna")
    clients.append(op)
    got = [(await op.next_chat())["session_id"] for _ in range(3)]
    assert got == [v.session_id for v in vs]
    v = await VisitorClient.connect(server.url, token=tokens[0], last_seq=0)
    clients.append(v)
    assert v.welcome["state"] == "assigned"


async def test_visitor_closes_chat(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    v = await server.visitor()
    clients.append(v)
    await v.send("bye soon")
    await op.next_chat()
    await v.send_frame({"type": "close"})
    closed = await op.wait_for("chat_closed")
    assert closed["by"] == "visitor"
    status = await op.wait_for("status", lambda f: f["load"] == 0)
    assert status["load"] == 0


async def test_visitor_presence_and_info_reach_operator(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna")
    clients.append(op)
    v = await server.visitor(page_url="https://shop.example/a")
    await v.send("hi")
    await op.next_chat()
    await v.send_frame({"type": "info", "page_url": "https://shop.example/b", "name": "Vreni"})
    info = await op.wait_for("visitor", lambda f: f["page_url"] == "https://shop.example/b")
    assert info["name"] == "Vreni" and info["connected"] is True
    await v.close()
    gone = await op.wait_for("visitor", lambda f: f["connected"] is False)
    assert gone["session_id"] == v.session_id


async def test_msgpack_subprotocol(server, clients):
    server.add_operator("anna")
    op = await server.operator("anna", binary=True)
    clients.append(op)
    v = await server.visitor(binary=True, name="Bin")
    clients.append(v)
    assert await v.send("packed") == 1
    chat = await op.next_chat()
    await op.send_to(chat["session_id"], "packed reply")
    reply = await v.wait_for("message", lambda f: f["from"] == "operator")
    assert reply["text"] == "packed reply"


async def test_history_is_only_for_the_chats_operator(server, clients):
    server.add_operator("anna")
    server.add_operator("ben")
    anna = await server.operator("anna")
    ben = await server.operator("ben", status="away")
    clients += [anna, ben]
    v = await server.visitor()
    clients.append(v)
    await v.send("private")
    await anna.next_chat()
    await anna.send_frame({"type": "history", "session_id": v.session_id})
    hist = await anna.wait_for("history")
    assert hist["messages"][0]["text"] == "private"
    await ben.send_frame({"type": "history", "session_id": v.session_id})
    err = await ben.wait_for("error")
    assert err["code"] == "unknown_session"
    await ben.send_frame(
        {"type": "message", "session_id": v.session_id, "client_msg_id": "x", "text": "intrude"}
    )
    err = await ben.wait_for("error")
    assert err["code"] == "not_assigned" and err["ref"] == "x"
    assert "intrude" not in [r[2] for r in stored_messages(server, v.session_id)]


async def test_healthz_widget_and_console_are_served(server):
    import httpx

    async with httpx.AsyncClient(base_url=server.http_url) as http:
        health = (await http.get("/healthz")).json()
        assert health["status"] == "ok"
        js = await http.get("/widget.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        page = await http.get("/")
        assert 'src="/widget.js"' in page.text
        console = await http.get("/console/")
        assert console.status_code == 200
        assert "default-src 'self'" in console.headers["content-security-policy"]
