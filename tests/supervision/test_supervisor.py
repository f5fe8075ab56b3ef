"""Supervisor board and actions over real WebSockets against a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from chatserver.client import ClientError, OperatorClient, VisitorClient
from chatserver.supervision.board import apply_patch
from tests.stored import connect_stored

BOARD_ENV = {"CHATSERVER_BOARD_INTERVAL": "0.2"}


class BoardView:
    """A supervisor console's copy of the board: the snapshot plus every patch, in order."""

    def __init__(self, client: OperatorClient) -> None:
        self.client = client
        self.state: dict[str, Any] = {}
        self.rev = -1
        self.patches: list[dict[str, Any]] = []

    async def start(self) -> BoardView:
        frame = await self.client.wait_for("board")
        self.state, self.rev = frame["board"], frame["rev"]
        return self

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self.state):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"board never matched; last: {json.dumps(self.state)[:2000]}")
            frame = await self.client.wait_for("board_patch", timeout=left)
            assert frame["rev"] == self.rev + 1, "a patch was skipped"
            self.patches.append(frame["patch"])
            self.state, self.rev = apply_patch(self.state, frame["patch"]), frame["rev"]
        return self.state

    def operator(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.state["operators"] if r["name"] == name), None)


def db(server, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def desk(make_server):
    server = make_server(env=BOARD_ENV)
    server.start()
    server.add_operator("sam", name="Sam Supervisor", role="supervisor", capacity=2)
    server.add_operator("anna", name="Anna", capacity=1)
    server.add_operator("bert", name="Bert", capacity=1)
    server.add_operator("carl", name="Carl", capacity=2)
    return server


async def error_for(client: OperatorClient, frame: dict[str, Any]) -> dict[str, Any]:
    await client.send_frame(frame)
    return await client.wait_for("error")


async def assigned_chat(server, clients, operator: OperatorClient, text: str) -> VisitorClient:
    visitor = await server.visitor(name=f"Visitor {text}")
    clients.append(visitor)
    await visitor.send(text)
    chat = await operator.next_chat()
    assert chat["session_id"] == visitor.session_id
    await visitor.wait_for("state", lambda f: f["state"] == "assigned")
    return visitor


# ---------------------------------------------------------------------- board
async def test_board_updates_as_an_operator_comes_online_and_a_visitor_is_served(desk, clients):
    sup = await desk.operator("sam", status="away")
    clients.append(sup)
    board = await BoardView(sup).start()
    assert board.operator("Sam Supervisor")["status"] == "away"
    assert board.state["queue"]["total"] == 0
    assert board.state["counts"]["day"]["started"] == 0

    # A visitor writes while nobody is online: the queue grows.
    visitor = await desk.visitor(name="Vera")
    clients.append(visitor)
    await visitor.send("Hello?")
    state = await board.until(lambda b: b["queue"]["total"] == 1)
    assert state["queue"]["oldest_since"] is not None
    assert state["counts"]["day"] == {"started": 1, "answered": 0, "missed": 0, "escalated": 0}

    # Anna comes online and gets the chat: her row, the queue and the counts follow.
    anna = await desk.operator("anna", status="online")
    clients.append(anna)
    await anna.next_chat()
    state = await board.until(
        lambda b: (
            b["queue"]["total"] == 0
            and (board.operator("Anna") or {}).get("load") == 1
            and b["counts"]["day"]["answered"] == 1
        )
    )
    row = board.operator("Anna")
    assert row["status"] == "online" and row["capacity"] == 1
    assert row["chats"] == [
        {"session_id": visitor.session_id, "visitor": "Vera", "since": row["chats"][0]["since"]}
    ]
    assert state["staff"]["online"] == 1 and state["staff"]["away"] == 1
    assert state["times"]["day"]["wait"]["n"] == 1
    assert state["history"] and state["history"][-1]["queue"] >= 1  # the minute's peak

    # Her first reply is the chat's first response.
    await anna.send_to(visitor.session_id, "Hi Vera!")
    state = await board.until(lambda b: b["times"]["day"]["first_response"]["n"] == 1)
    assert state["times"]["day"]["first_response"]["avg"] >= 0
    (stored,) = db(desk, "SELECT first_response_at FROM sessions WHERE id = ?", visitor.session_id)
    assert stored[0] is not None
    await anna.send_to(visitor.session_id, "Second reply")  # the first one stays
    assert (
        db(desk, "SELECT first_response_at FROM sessions WHERE id = ?", visitor.session_id)[0]
        == stored
    )

    # Patches only: nothing is resent whole, and unchanged sections are not sent.
    assert len(sup.seen("board")) == 1
    assert board.patches and all(
        set(p) <= {"ts", "set", "operators", "history"} for p in board.patches
    )
    assert all("window" not in p.get("set", {}) for p in board.patches)

    # A fresh snapshot on request equals the patched copy (but for the time).
    await sup.send_frame({"type": "board"})
    fresh = (await sup.wait_for("board"))["board"]
    assert {k: v for k, v in fresh.items() if k not in ("ts", "history")} == {
        k: v for k, v in board.state.items() if k not in ("ts", "history")
    }


async def test_quiet_desk_sends_no_patches(desk, clients):
    sup = await desk.operator("sam", status="away")
    clients.append(sup)
    board = await BoardView(sup).start()
    # Six board intervals of nothing happening: the quiet time is the thing under test.
    await asyncio.sleep(1.2)
    # Marker: a change is patched, so patches of the quiet time would have arrived
    # before it.
    await sup.set_status("online")
    await board.until(lambda b: (board.operator("Sam Supervisor") or {})["status"] == "online")
    quiet = board.patches[:-1]
    # Only a new minute may add a point to the history (and move the time).
    assert all(set(p) <= {"history", "ts"} for p in quiet), quiet
    assert len(quiet) <= 1


async def test_operators_do_not_get_the_board(desk, clients):
    anna = await desk.operator("anna")
    sup = await desk.operator("sam", status="away")
    clients += [anna, sup]
    board = await BoardView(sup).start()
    # Marker: Anna goes away; the supervisor's patch shows it. A patch is sent to every
    # board console at once, so one for Anna would come before her pong.
    await anna.set_status("away")
    await board.until(lambda b: (board.operator("Anna") or {}).get("status") == "away")
    await anna.send_frame({"type": "ping"})
    await anna.wait_for("pong")
    assert anna.seen("board") == [] and anna.seen("board_patch") == []


# ------------------------------------------------------------- watch, whisper
async def test_watch_and_whisper_reach_operators_but_never_the_visitor(desk, clients):
    anna = await desk.operator("anna")
    sup = await desk.operator("sam", status="away")
    clients += [anna, sup]
    visitor = await assigned_chat(desk, clients, anna, "My order is late")
    await anna.send_to(visitor.session_id, "Let me check.")

    # Watching: the history, then live messages; no capacity is taken.
    await sup.send_frame({"type": "watch", "session_id": visitor.session_id})
    watching = await sup.wait_for("watching")
    assert watching["chat"]["session_id"] == visitor.session_id
    assert watching["operator"]["name"] == "Anna"
    try:
        replayed = [
            (await sup.wait_for("message", lambda f: f["session_id"] == visitor.session_id))[
                "seq"
            ]
            for _ in range(3)
        ]
    except TimeoutError:  # once in CI: say what did arrive, and what the server said
        raise AssertionError(
            f"replay incomplete; frames: {sup.frames[-12:]}\nserver: {desk.log()[-3000:]}"
        ) from None
    assert replayed == [1, 2, 3]
    done = await sup.wait_for("replay_done")
    assert done["session_id"] == visitor.session_id and done["last_seq"] == 3
    assert (await sup.wait_for("notes"))["notes"] == []
    await visitor.send("Order 4711")
    live = await sup.wait_for("message", lambda f: f.get("text") == "Order 4711")
    assert live["from"] == "visitor"
    assert sup.welcome["operator"]["load"] == 0
    with pytest.raises(ClientError) as err:
        await sup.send_to(visitor.session_id, "a watcher cannot write")
    assert err.value.code == "not_assigned"

    # A whisper: stored, delivered to the operator and the watcher, not to the visitor.
    secret = "Offer a 10% voucher, nothing more"
    await sup.send_frame({"type": "whisper", "session_id": visitor.session_id, "text": secret})
    note = await anna.wait_for("note")
    assert note == {
        "type": "note",
        "session_id": visitor.session_id,
        "kind": "whisper",
        "author": {"id": sup.welcome["operator"]["id"], "name": "Sam Supervisor"},
        "text": secret,
        "ts": note["ts"],
    }
    assert (await sup.wait_for("note"))["text"] == secret
    assert db(
        desk, "SELECT kind, text FROM chat_notes WHERE session_id = ?", visitor.session_id
    ) == [("whisper", secret)]
    assert not db(desk, "SELECT 1 FROM messages WHERE text = ?", secret)
    # The operator can read the thread back.
    await anna.send_frame({"type": "notes", "session_id": visitor.session_id})
    thread = await anna.wait_for("notes")
    assert [(n["n"], n["kind"], n["text"]) for n in thread["notes"]] == [(1, "whisper", secret)]

    # Nothing reached the visitor: neither live, nor in a replay after resuming.
    await anna.send_to(visitor.session_id, "after the whisper")
    await visitor.wait_for("message", lambda f: f["text"] == "after the whisper")
    assert secret not in json.dumps(visitor.frames)
    assert not [f for f in visitor.frames if f.get("type") == "note"]
    resumed = await VisitorClient.connect(desk.url, token=visitor.token, last_seq=0)
    clients.append(resumed)
    await resumed.wait_for("replay_done")
    assert secret not in json.dumps(resumed.frames)
    assert {f["type"] for f in resumed.frames} <= {"welcome", "message", "replay_done", "_consumed"}

    # Unwatch: no more live messages for the supervisor.
    await sup.send_frame({"type": "unwatch", "session_id": visitor.session_id})
    await sup.send_frame({"type": "ping"})
    await sup.wait_for("pong")
    await visitor.send("not for the supervisor")
    await anna.wait_for("message", lambda f: f.get("text") == "not for the supervisor")
    # Marker: a message goes to the operator and the watchers in one go, so the
    # supervisor's pong comes after it, had it been sent to him.
    await sup.send_frame({"type": "ping"})
    await sup.wait_for("pong")
    assert not [f for f in sup.seen("message") if f["text"] == "not for the supervisor"]


# ------------------------------------------------------ take over, reassign
async def test_take_over_moves_the_chat_to_the_supervisor(desk, clients):
    anna = await desk.operator("anna")
    sup = await desk.operator("sam", status="away")
    clients += [anna, sup]
    visitor = await assigned_chat(desk, clients, anna, "I need a manager")
    await sup.send_frame({"type": "watch", "session_id": visitor.session_id})
    for seq in (1, 2):
        assert (await sup.wait_for("message"))["seq"] == seq
    await sup.wait_for("replay_done")

    await sup.send_frame({"type": "take_over", "session_id": visitor.session_id})
    chat = await sup.next_chat()
    assert chat["session_id"] == visitor.session_id
    # The whole history again, as for any assigned chat (no gap after watching).
    seqs = [
        f["seq"]
        for f in [
            await sup.wait_for("message", lambda f: f["session_id"] == visitor.session_id)
            for _ in range(3)
        ]
    ]
    assert seqs == [1, 2, 3]
    removed = await anna.wait_for("chat_removed")
    assert removed == {
        "type": "chat_removed",
        "reason": "reassigned",
        "session_id": visitor.session_id,
    }
    state = await visitor.wait_for(
        "state", lambda f: (f["operator"] or {}).get("name") == "Sam Supervisor"
    )
    assert state["state"] == "assigned"
    notice = await visitor.wait_for("message", lambda f: f.get("event") == "reassigned")
    assert notice["text"] == "Sam Supervisor took over the chat."

    # The supervisor writes; the old operator cannot any more.
    await sup.send_to(visitor.session_id, "I am the manager.")
    got = await visitor.wait_for("message", lambda f: f["from"] == "operator")
    assert got["author"] == "Sam Supervisor"
    with pytest.raises(ClientError) as err:
        await anna.send_to(visitor.session_id, "still mine?")
    assert err.value.code == "not_assigned"
    assert (await anna.wait_for("status", lambda f: f["load"] == 0))["load"] == 0
    (row,) = db(
        desk,
        "SELECT state, operator_id, previous_operator FROM sessions WHERE id = ?",
        visitor.session_id,
    )
    assert row == ("assigned", sup.welcome["operator"]["id"], anna.welcome["operator"]["id"])
    # Anna's capacity is free again: the next visitor goes to her.
    await assigned_chat(desk, clients, anna, "next one")


async def test_take_over_a_waiting_chat_and_the_supervisors_capacity(desk, clients):
    sup = await desk.operator("sam", status="away")  # capacity 2, gets no routed chats
    clients.append(sup)
    visitors = []
    for i in range(3):
        v = await desk.visitor(name=f"W{i}")
        clients.append(v)
        await v.send(f"waiting {i}")
        await v.wait_for("state", lambda f: f["state"] == "waiting")
        visitors.append(v)
    for v in visitors[:2]:
        await sup.send_frame({"type": "take_over", "session_id": v.session_id})
        assert (await sup.next_chat())["session_id"] == v.session_id
        await v.wait_for("state", lambda f: f["state"] == "assigned")
    err = await error_for(sup, {"type": "take_over", "session_id": visitors[2].session_id})
    assert err["code"] == "invalid_state" and "capacity" in err["message"]
    # Marker: a message of the visitor's, acked once durable: whatever the refused
    # take-over might have stored or sent her came before it.
    await visitors[2].send("still waiting?")
    assert visitors[2].seen("state")[-1]["state"] == "waiting"  # still queued
    position = db(desk, "SELECT state FROM sessions WHERE id = ?", visitors[2].session_id)
    assert position == [("waiting",)]


async def test_reassign_respects_capacity_and_status(desk, clients):
    anna = await desk.operator("anna")  # capacity 1
    clients.append(anna)
    v1 = await assigned_chat(desk, clients, anna, "one")
    bert = await desk.operator("bert")  # capacity 1
    clients.append(bert)
    await assigned_chat(desk, clients, bert, "two")
    carl = await desk.operator("carl", status="away")  # capacity 2
    sup = await desk.operator("sam", status="away")
    clients += [carl, sup]
    ids = {
        c.welcome["operator"]["username"]: c.welcome["operator"]["id"] for c in (anna, bert, carl)
    }

    err = await error_for(
        sup, {"type": "reassign", "session_id": v1.session_id, "operator_id": ids["bert"]}
    )
    assert err["code"] == "invalid_state" and "capacity" in err["message"]
    err = await error_for(
        sup, {"type": "reassign", "session_id": v1.session_id, "operator_id": ids["carl"]}
    )
    assert err["code"] == "invalid_state" and "not online" in err["message"]
    err = await error_for(
        sup, {"type": "reassign", "session_id": v1.session_id, "operator_id": ids["anna"]}
    )
    assert err["code"] == "invalid_state"

    await carl.set_status("online")
    await sup.send_frame(
        {"type": "reassign", "session_id": v1.session_id, "operator_id": ids["carl"]}
    )
    done = await sup.wait_for("reassigned")
    assert done["operator"] == {"id": ids["carl"], "name": "Carl"}
    assert (await carl.next_chat())["session_id"] == v1.session_id
    await carl.wait_for("message", lambda f: f["text"] == "one")  # the history follows
    removed = await anna.wait_for("chat_removed")
    assert removed["reason"] == "reassigned" and removed["session_id"] == v1.session_id
    state = await v1.wait_for("state", lambda f: (f["operator"] or {}).get("name") == "Carl")
    assert state["operator"]["id"] == ids["carl"]
    notice = await v1.wait_for("message", lambda f: f.get("event") == "reassigned")
    assert notice["text"] == "Carl is now looking after your chat."
    await carl.send_to(v1.session_id, "Carl here")
    assert (await v1.wait_for("message", lambda f: f["from"] == "operator"))["author"] == "Carl"

    # Loads follow: Anna is free (the next chat is hers), Carl has 1 of 2.
    await assigned_chat(desk, clients, anna, "three")
    assert (await carl.wait_for("status", lambda f: f["load"] == 1))["capacity"] == 2


# ------------------------------------------------------------ refusals
async def test_operators_are_refused_supervisor_frames_without_being_disconnected(desk, clients):
    anna = await desk.operator("anna")
    clients.append(anna)
    visitor = await assigned_chat(desk, clients, anna, "hi")
    sid = visitor.session_id
    for frame in (
        {"type": "board"},
        {"type": "watch", "session_id": sid},
        {"type": "unwatch", "session_id": sid},
        {"type": "whisper", "session_id": sid, "text": "psst"},
        {"type": "take_over", "session_id": sid},
        {"type": "reassign", "session_id": sid, "operator_id": anna.welcome["operator"]["id"]},
    ):
        err = await error_for(anna, frame)
        assert err["code"] == "forbidden", frame
    await anna.send_frame({"type": "ping"})
    await anna.wait_for("pong")
    assert anna.close_code is None
    assert not db(desk, "SELECT 1 FROM chat_notes")
    # The chat's own thread stays readable for its operator, not for others.
    bert = await desk.operator("bert")
    clients.append(bert)
    err = await error_for(bert, {"type": "notes", "session_id": sid})
    assert err["code"] == "unknown_session"


async def test_bad_supervisor_frames_are_refused(desk, clients):
    anna = await desk.operator("anna")
    sup = await desk.operator("sam", status="away")
    clients += [anna, sup]
    visitor = await assigned_chat(desk, clients, anna, "hi")
    sid = visitor.session_id
    cases = [
        ({"type": "watch", "session_id": "s_nope"}, "unknown_session"),
        ({"type": "whisper", "session_id": "s_nope", "text": "x"}, "unknown_session"),
        ({"type": "take_over", "session_id": "s_nope"}, "unknown_session"),
        ({"type": "reassign", "session_id": "s_nope", "operator_id": "o_x"}, "unknown_session"),
        ({"type": "reassign", "session_id": sid, "operator_id": "o_doesnotexist"}, "not_found"),
        ({"type": "whisper", "session_id": sid, "text": "   "}, "bad_frame"),
        ({"type": "whisper", "session_id": sid, "text": ""}, "bad_frame"),
        ({"type": "whisper", "session_id": sid, "text": "x" * 5000}, "bad_frame"),
        ({"type": "whisper", "session_id": sid}, "bad_frame"),
        ({"type": "watch"}, "bad_frame"),
        ({"type": "reassign", "session_id": sid}, "bad_frame"),
        ({"type": "take_over", "session_id": 42}, "bad_frame"),
    ]
    for frame, code in cases:
        err = await error_for(sup, frame)
        assert err["code"] == code, (frame, err)
    # A new chat (no message yet) cannot be taken; a closed one cannot be touched.
    fresh = await desk.visitor()
    clients.append(fresh)
    err = await error_for(sup, {"type": "take_over", "session_id": fresh.session_id})
    assert err["code"] == "invalid_state"
    await anna.send_frame({"type": "close_chat", "session_id": sid})
    await anna.wait_for("chat_closed")
    for frame in (
        {"type": "watch", "session_id": sid},
        {"type": "whisper", "session_id": sid, "text": "late"},
        {"type": "take_over", "session_id": sid},
    ):
        assert (await error_for(sup, frame))["code"] == "chat_closed"
    assert not db(desk, "SELECT 1 FROM chat_notes")
    await sup.send_frame({"type": "ping"})
    await sup.wait_for("pong")
