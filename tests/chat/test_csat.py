"""Customer satisfaction: visitors rate a chat; the supervisor board shows the day's average."""

from __future__ import annotations

from typing import Any

from tests.conftest import ServerProcess
from tests.stored import connect_stored


async def test_visitor_rates_chat_and_board_shows_it(
    server: ServerProcess, clients: list[Any]
) -> None:
    server.add_operator("anna", name="Anna")
    server.add_operator("sue", name="Sue", role="supervisor")
    anna = await server.operator("anna")
    clients.append(anna)
    visitor = await server.visitor()
    clients.append(visitor)
    # Nothing to rate before an operator answered.
    await visitor.send_frame({"type": "rate", "score": 5})
    assert (await visitor.wait_for("error"))["code"] == "invalid_state"
    await visitor.send("Hallo")
    chat = await anna.next_chat()
    await anna.send_frame({"type": "close_chat", "session_id": chat["session_id"]})
    await visitor.wait_for("state", lambda f: f["state"] == "closed")
    for bad in (0, 6, "5", True, None):
        await visitor.send_frame({"type": "rate", "score": bad})
        err = await visitor.wait_for("error", lambda f: f["code"] == "bad_frame")
        assert err["code"] == "bad_frame"
    await visitor.send_frame({"type": "rate", "score": 4, "comment": "Schnell <b>und</b> nett"})
    assert (await visitor.wait_for("rated"))["score"] == 4
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        row = conn.execute(
            "SELECT csat_score, csat_comment FROM sessions WHERE id = ?", (visitor.session_id,)
        ).fetchone()
    finally:
        conn.close()
    assert row == (4, "Schnell <b>und</b> nett")
    sue = await server.operator("sue", status="away")
    clients.append(sue)
    board = await sue.wait_for("board")
    assert board["board"]["csat"] == {"n": 1, "avg": 4.0}
