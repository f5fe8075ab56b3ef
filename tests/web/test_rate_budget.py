"""Frame budgets per role over real sockets: operators juggle several chats and get five times
a visitor's CHATSERVER_RATE_LIMIT_PER_10S (chatserver.web.app)."""

from __future__ import annotations

from typing import Any

import pytest

from chatserver.client import ClientError

LIMIT = 10


async def test_an_operator_may_send_more_than_a_visitors_budget(
    make_server: Any, clients: list[Any]
) -> None:
    server = make_server(env={"CHATSERVER_RATE_LIMIT_PER_10S": str(LIMIT)})
    server.start()
    server.add_operator("anna")
    anna = await server.operator("anna")
    clients.append(anna)
    vera = await server.visitor(name="Vera")
    clients.append(vera)
    await vera.send("Hallo")
    chat = await anna.next_chat()
    assert chat["session_id"] == vera.session_id

    # Twice a visitor's budget, back to back (well within one 10-second window): all taken.
    for i in range(2 * LIMIT):
        await anna.send_to(vera.session_id, f"Antwort {i}", client_msg_id=f"a{i}")
    assert not [e for e in anna.seen("error") if e["code"] == "rate_limited"]

    # A visitor at the same pace is held to the visitor's budget.
    hans = await server.visitor(name="Hans")
    clients.append(hans)
    for i in range(LIMIT):
        await hans.send(f"Frage {i}", client_msg_id=f"h{i}")
    with pytest.raises(ClientError) as refused:
        await hans.send("noch eine", client_msg_id="h-over")
    assert refused.value.code == "rate_limited"
    assert refused.value.frame["ref"] == "h-over"
    # Still within the operator's budget (2 x LIMIT + 1 of 5 x LIMIT frames).
    assert await anna.send_to(vera.session_id, "Gern geschehen", client_msg_id="a-last") > 0
