"""3rd-level consults: an operators-only thread on a chat (and on a ticket) that the
visitor never sees. Real server, real WebSockets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatserver.client import ClientError, VisitorClient
from tests.conftest import ServerProcess


async def api(srv: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as http:
        return await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)


async def login(srv: ServerProcess, username: str) -> str:
    async with httpx.AsyncClient(base_url=srv.http_url) as http:
        r = await http.post("/api/login", json={"username": username, "password": "pw-secret"})
    return str(r.json()["token"])


async def test_consult_third_level_on_a_chat(server: ServerProcess, clients: list[Any]) -> None:
    server.add_operator("anna", name="Anna")
    cleo_id = server.add_operator("cleo", name="Cleo", levels=(3,))
    server.add_operator("bert", name="Bert")
    anna = await server.operator("anna")
    cleo = await server.operator("cleo")
    bert = await server.operator("bert", status="away")
    clients += [anna, cleo, bert]
    visitor = await server.visitor(name="Vera")
    clients.append(visitor)
    await visitor.send("Die Datenbank repliziert nicht")
    chat = await anna.next_chat()
    sid = chat["session_id"]
    await anna.send_to(sid, "Ich frage nach.")

    # The operator list shows who is there, with levels.
    r = await api(server, "GET", "/api/operators", await login(server, "anna"))
    listed = {o["username"]: o for o in r.json()["operators"]}
    assert listed["cleo"]["levels"] == [3] and listed["cleo"]["status"] == "online"
    assert listed["bert"]["status"] == "away"

    # Bad consults are refused and change nothing.
    for bad, code in (
        ({"operator_id": "o_nobody"}, "bad_frame"),
        ({"operator_id": anna.welcome["operator"]["id"]}, "bad_frame"),
        ({"text": "   "}, "bad_frame"),
    ):
        frame = {"type": "consult", "session_id": sid, "text": "x", **bad}
        await anna.send_frame(frame)
        err = await anna.wait_for("error", lambda f, c=code: f["code"] == c)
        assert err["code"] == code
    await bert.send_frame(
        {"type": "consult", "session_id": sid, "operator_id": cleo_id, "text": "hijack"}
    )
    assert (await bert.wait_for("error"))["code"] == "not_assigned"
    await anna.send_frame({"type": "consult", "session_id": "s_nope", "text": "x"})
    assert await anna.wait_for("error", lambda f: f["code"] == "unknown_session")

    # Anna asks Cleo: Cleo sees the chat read-only, with history and the question.
    await anna.send_frame(
        {"type": "consult", "session_id": sid, "operator_id": cleo_id, "text": "Replikation?"}
    )
    consulted = await cleo.wait_for("consulted")
    assert consulted["chat"]["session_id"] == sid and consulted["by"]["name"] == "Anna"
    history = await cleo.wait_for(
        "message", lambda f: f.get("session_id") == sid and f["from"] == "visitor"
    )
    assert history["text"] == "Die Datenbank repliziert nicht"
    notes = await cleo.wait_for("notes", lambda f: f["session_id"] == sid)
    assert notes["notes"][-1]["text"] == "Replikation?"
    assert notes["notes"][-1]["to"] == {"id": cleo_id, "name": "Cleo"}
    mine = await anna.wait_for("note", lambda f: f["text"] == "Replikation?")
    assert mine["kind"] == "consult"
    # Cleo answers on the thread; she cannot write to the visitor.
    await cleo.send_frame({"type": "consult", "session_id": sid, "text": "Slave neu starten"})
    answer = await anna.wait_for("note", lambda f: f["text"] == "Slave neu starten")
    assert answer["author"]["name"] == "Cleo" and answer["to"] is None
    with pytest.raises(ClientError) as err:
        await cleo.send_to(sid, "Hallo Kundin")
    assert err.value.frame["code"] == "not_assigned"
    # Live chat messages reach Cleo too.
    await visitor.send("Noch da?")
    await cleo.wait_for("message", lambda f: f.get("text") == "Noch da?")
    # Cleo's console reconnects: she is back in the consulted chat, history and all.
    await cleo.close()
    cleo = await server.operator("cleo")
    clients.append(cleo)
    back = await cleo.wait_for("consulted", lambda f: f["chat"]["session_id"] == sid)
    assert back["by"] is None
    await cleo.wait_for("message", lambda f: f.get("text") == "Noch da?")
    await visitor.send("Immer noch da")
    await cleo.wait_for("message", lambda f: f.get("text") == "Immer noch da")

    # The visitor never sees the thread: not live, not in a replay.
    await anna.send_to(sid, "Gleich gelöst.")
    await visitor.wait_for("message", lambda f: f.get("text") == "Gleich gelöst.")
    seen = [f.get("text") for f in visitor.seen("message")] + [
        f.get("type") for f in visitor.seen("note")
    ]
    assert "Replikation?" not in seen and "Slave neu starten" not in seen
    again = await VisitorClient.connect(server.url, token=visitor.token)
    clients.append(again)
    await again.wait_for("replay_done")
    texts = [f.get("text") for f in again.seen("message")]
    assert "Gleich gelöst." in texts
    assert "Replikation?" not in texts and "Slave neu starten" not in texts
    assert not again.seen("note")


async def test_consult_on_a_ticket_is_an_internal_note(
    server: ServerProcess, clients: list[Any]
) -> None:
    server.add_operator("anna", name="Anna")
    cleo_id = server.add_operator("cleo", name="Cleo", levels=(3,))
    anna = await server.operator("anna")
    clients.append(anna)
    visitor = await server.visitor(name="Vera", email="vera@example.ch")
    clients.append(visitor)
    await visitor.send("Fehler 500")
    await anna.next_chat()
    token = await login(server, "anna")
    r = await api(
        server,
        "POST",
        f"/api/sessions/{visitor.session_id}/escalate",
        token,
        json={"subject": "Fehler 500", "level": 3},
    )
    number = r.json()["ticket"]["number"]
    r = await api(
        server,
        "POST",
        f"/api/tickets/{number}/replies",
        token,
        json={"text": "Kannst du ins Log schauen?", "consult": cleo_id},
    )
    assert r.status_code == 400  # a consult must be internal
    r = await api(
        server,
        "POST",
        f"/api/tickets/{number}/replies",
        token,
        json={"text": "x", "internal": True, "consult": "o_nobody"},
    )
    assert r.status_code == 400
    r = await api(
        server,
        "POST",
        f"/api/tickets/{number}/replies",
        token,
        json={"text": "Kannst du ins Log schauen?", "internal": True, "consult": cleo_id},
    )
    assert r.status_code == 201
    event = r.json()["event"]
    assert event["internal"] is True and event["body"]["consult"] == {"id": cleo_id, "name": "Cleo"}
    r = await api(server, "GET", f"/api/visitor/tickets/{number}", visitor.token)
    assert "Log" not in r.text
