"""Routing policies over real WebSockets: recurring contact person, support levels,
transfers, asking for another operator, SLA due times on chats."""

from __future__ import annotations

from typing import Any

import pytest

from chatserver.client import ClientError
from chatserver.operators.auth import sign_identity
from tests.conftest import ServerProcess

SECRET = "policy-secret"


@pytest.fixture
def desk(make_server: Any) -> ServerProcess:
    srv: ServerProcess = make_server(
        {"CHATSERVER_IDENTITY_SECRET": SECRET, "CHATSERVER_RECURRING_CONTACT_GRACE": "2"}
    )
    srv.start()
    return srv


def identity(customer: str, plan: str = "standard") -> dict[str, str]:
    return {"customer_id": customer, "plan": plan, "sig": sign_identity(customer, plan, SECRET)}


async def test_returning_customer_gets_their_previous_operator(
    desk: ServerProcess, clients: list[Any]
) -> None:
    desk.add_operator("anna", name="Anna")
    desk.add_operator("bert", name="Bert")
    anna = await desk.operator("anna")
    clients.append(anna)
    first = await desk.visitor(identity=identity("K-7"))
    clients.append(first)
    await first.send("Erste Frage")
    chat = await anna.next_chat()
    await anna.send_frame({"type": "close_chat", "session_id": chat["session_id"]})
    await anna.wait_for("chat_closed")
    # Anna is busy with another chat and Bert idle: normally Bert (least loaded) would win.
    other = await desk.visitor()
    clients.append(other)
    await other.send("jemand anderes")
    await anna.wait_for("chat_assigned", lambda f: f["chat"]["session_id"] == other.session_id)
    bert = await desk.operator("bert")
    clients.append(bert)
    # Now K-7 comes back: offered to Anna first, even though Bert may have less load.
    again = await desk.visitor(identity=identity("K-7"))
    clients.append(again)
    await again.send("Ich bin's wieder")
    frame = await anna.wait_for(
        "chat_assigned", lambda f: f["chat"]["session_id"] == again.session_id
    )
    assert frame["chat"]["visitor"]["customer_id"] == "K-7"
    assert not [
        f for f in bert.seen("chat_assigned") if f["chat"]["session_id"] == again.session_id
    ]


async def test_preferred_operator_busy_then_anyone_after_grace(
    desk: ServerProcess, clients: list[Any]
) -> None:
    desk.add_operator("anna", name="Anna", capacity=1)
    desk.add_operator("bert", name="Bert")
    anna = await desk.operator("anna")
    clients.append(anna)
    first = await desk.visitor(identity=identity("K-8"))
    clients.append(first)
    await first.send("hallo")
    chat = await anna.next_chat()
    await anna.send_frame({"type": "close_chat", "session_id": chat["session_id"]})
    busy = await desk.visitor()
    clients.append(busy)
    await busy.send("ich belege Anna")
    await anna.wait_for("chat_assigned", lambda f: f["chat"]["session_id"] == busy.session_id)
    bert = await desk.operator("bert")
    clients.append(bert)
    back = await desk.visitor(identity=identity("K-8"))
    clients.append(back)
    await back.send("wieder da")
    # Anna is full: the chat waits for her up to the grace (2 s), then Bert takes it.
    frame = await bert.wait_for(
        "chat_assigned", lambda f: f["chat"]["session_id"] == back.session_id, timeout=15
    )
    assert frame["chat"]["session_id"] == back.session_id


async def test_transfer_to_second_level_and_to_a_colleague(
    desk: ServerProcess, clients: list[Any]
) -> None:
    desk.add_operator("first", name="Fiona")
    desk.add_operator("second", name="Sam", levels=(2,))
    desk.add_operator("colleague", name="Cleo")
    fiona = await desk.operator("first")
    sam = await desk.operator("second")
    clients += [fiona, sam]
    visitor = await desk.visitor(name="Vera")
    clients.append(visitor)
    await visitor.send("Server down")
    chat = await fiona.next_chat()  # new chats go to 1st level only
    assert chat["level"] == 1 and not sam.seen("chat_assigned")
    sid = chat["session_id"]
    # Bad transfers are refused and change nothing.
    for bad, code in (
        ({"level": 4}, "bad_frame"),
        ({}, "bad_frame"),
        ({"operator_id": "o_nobody"}, "bad_frame"),
        ({"level": "2"}, "bad_frame"),
    ):
        await fiona.send_frame({"type": "transfer", "session_id": sid, **bad})
        err = await fiona.wait_for("error", lambda f, c=code: f["code"] == c)
        assert err["code"] == code
    await fiona.send_frame({"type": "transfer", "session_id": "s_unknown", "level": 2})
    await fiona.wait_for("error", lambda f: f["code"] == "unknown_session")
    await fiona.send_frame({"type": "transfer", "session_id": sid, "level": 2})
    removed = await fiona.wait_for("chat_removed")
    assert removed["session_id"] == sid
    moved = await sam.next_chat()
    assert moved["session_id"] == sid and moved["level"] == 2
    notice = await visitor.wait_for(
        "message", lambda f: f.get("event") == "requeued" and "2nd-level" in f["text"]
    )
    assert notice["transfer"]["level"] == 2
    state = await visitor.wait_for(
        "state", lambda f: f["state"] == "assigned" and f["operator"]["name"] == "Sam"
    )
    assert state["operator"]["name"] == "Sam"
    # Sam hands it to Cleo by name; Cleo is not yet online: it waits for her (grace).
    cleo_id = desk.add_operator("cleo2", name="Cleo Two", levels=(1, 2))
    await sam.send_frame({"type": "transfer", "session_id": sid, "operator_id": cleo_id})
    await sam.wait_for("chat_removed")
    cleo = await desk.operator("cleo2")
    clients.append(cleo)
    got = await cleo.next_chat()
    assert got["session_id"] == sid
    # The transferring operator can no longer write into it.
    with pytest.raises(ClientError):
        await sam.send_to(sid, "still mine?")


async def test_visitor_asks_for_another_operator(desk: ServerProcess, clients: list[Any]) -> None:
    desk.add_operator("anna", name="Anna")
    desk.add_operator("bert", name="Bert")
    anna = await desk.operator("anna")
    clients.append(anna)
    visitor = await desk.visitor()
    clients.append(visitor)
    await visitor.send("hallo")
    await anna.next_chat()
    bert = await desk.operator("bert")
    clients.append(bert)
    await visitor.send_frame({"type": "another_operator"})
    await anna.wait_for("chat_removed")
    chat = await bert.next_chat()
    assert chat["session_id"] == visitor.session_id
    # Only while someone serves the chat.
    fresh = await desk.visitor()
    clients.append(fresh)
    await fresh.send_frame({"type": "another_operator"})
    err = await fresh.wait_for("error")
    assert err["code"] == "invalid_state"


async def test_chats_carry_sla_due_times(desk: ServerProcess, clients: list[Any]) -> None:
    desk.add_operator("anna")
    anna = await desk.operator("anna")
    clients.append(anna)
    vip = await desk.visitor(identity=identity("K-VIP", "vip"))
    clients.append(vip)
    await vip.send("dringend")
    chat = await anna.next_chat()
    sla = chat["sla"]
    assert sla["plan"] == "vip"
    due = sla["first_response"]["due"]
    # VIP: 4 h round the clock.
    assert due is not None and abs(due - chat["created_at"] / 1000 - 4 * 3600) < 60
    assert sla["first_response"]["state"] in ("ok", "warning")
    # Resolution: VIP 24 h round the clock, from when the chat was queued.
    resolution = sla["resolution"]
    assert abs(resolution["due"] - chat["created_at"] / 1000 - 24 * 3600) < 60
    assert resolution["state"] == "ok" and resolution["done_at"] is None


async def test_identity_name_and_email_prefill_what_the_visitor_did_not_give(
    desk: ServerProcess, clients: list[Any]
) -> None:
    desk.add_operator("anna")
    anna = await desk.operator("anna")
    clients.append(anna)
    ident = {**identity("K-9", "standard"), "name": "Hans Host", "email": "hans@host.example"}
    visitor = await desk.visitor(identity=ident)
    clients.append(visitor)
    assert visitor.welcome["visitor"] == {"name": "Hans Host", "email": "hans@host.example"}
    typed = await desk.visitor(identity=ident, name="Typed Name")
    clients.append(typed)
    assert typed.welcome["visitor"]["name"] == "Typed Name"  # what the visitor gave wins
