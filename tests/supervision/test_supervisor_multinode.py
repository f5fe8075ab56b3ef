"""The supervisor board and actions across nodes sharing Redis and the store."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chatserver.supervision.board import apply_patch
from tests.chat.test_multinode import cluster  # noqa: F401  (the fixture)


async def bus_lag_count(node) -> float:
    async with httpx.AsyncClient(base_url=node.http_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "chatserver_bus_lag_seconds_count":
                return float(s.value)
    raise AssertionError("no bus lag series")


async def test_supervisor_on_one_node_sees_and_acts_on_another(cluster, clients):  # noqa: F811
    a, b = cluster(2, CHATSERVER_BOARD_INTERVAL="0.2")
    a.add_operator("sam", name="Sam", role="supervisor")
    a.add_operator("anna", name="Anna")
    sup = await a.operator("sam", status="away")
    clients.append(sup)
    frame = await sup.wait_for("board")
    state, rev = frame["board"], frame["rev"]

    async def until(predicate):
        nonlocal state, rev
        while not predicate(state):
            patch = await sup.wait_for("board_patch")
            assert patch["rev"] == rev + 1
            state, rev = apply_patch(state, patch["patch"]), patch["rev"]
        return state

    def anna(b):
        return next((r for r in b["operators"] if r["name"] == "Anna"), None)

    # Anna goes online on node B; the supervisor on node A sees it.
    op = await b.operator("anna")
    clients.append(op)
    await until(lambda s: (anna(s) or {}).get("status") == "online")
    assert state["staff"]["online"] == 1

    # A visitor on node A is served by Anna on node B.
    v = await a.visitor(name="Vera")
    clients.append(v)
    await v.send("hello from A")
    await op.next_chat()
    await until(lambda s: [c["session_id"] for c in anna(s)["chats"]] == [v.session_id])
    assert state["counts"]["day"]["answered"] == 1

    # A whisper from node A reaches Anna on node B, not the visitor.
    await sup.send_frame({"type": "whisper", "session_id": v.session_id, "text": "be nice"})
    note = await op.wait_for("note")
    assert (note["text"], note["author"]["name"]) == ("be nice", "Sam")
    await op.send_to(v.session_id, "Hi!")
    await v.wait_for("message", lambda f: f["from"] == "operator")
    assert not [f for f in v.frames if f.get("type") == "note"]

    # Taking the chat over from node A: Anna's console on B lets go of it.
    await sup.send_frame({"type": "take_over", "session_id": v.session_id})
    assert (await sup.next_chat())["session_id"] == v.session_id
    removed = await op.wait_for("chat_removed")
    assert removed["reason"] == "reassigned"
    await v.wait_for("state", lambda f: (f["operator"] or {}).get("name") == "Sam")
    await until(lambda s: anna(s)["load"] == 0 and anna(s)["chats"] == [])
    await sup.send_to(v.session_id, "Sam here")
    assert (await v.wait_for("message", lambda f: f["from"] == "operator"))["author"] == "Sam"

    # The nodes measured the bus between them.
    counts = await asyncio.gather(bus_lag_count(a), bus_lag_count(b))
    assert all(c > 0 for c in counts), counts
