"""Revocation and login throttling across two real nodes sharing Redis and one store."""

from __future__ import annotations

from chatserver.errors import CLOSE_REVOKED
from tests.chat.test_multinode import cluster  # noqa: F401  (the two-node fixture)
from tests.operators.helpers import call, login, token
from tests.waiting import eventually

LONG_GRACE = {"CHATSERVER_OPERATOR_GRACE_SECONDS": "600"}


async def test_disable_on_one_node_closes_the_console_on_the_other(cluster, clients):  # noqa: F811
    a, b = cluster(2, **LONG_GRACE)
    a.add_operator("root", role="admin")
    anna_id = a.add_operator("anna", name="Anna")
    a.add_operator("ben", name="Ben")
    anna = await b.operator("anna")  # on node B
    clients.append(anna)
    visitor = await a.visitor(name="Vera")
    clients.append(visitor)
    await visitor.send("Grüezi")
    assert (await anna.next_chat())["session_id"] == visitor.session_id
    ben = await a.operator("ben")  # on node A
    clients.append(ben)
    old = await token(b, "anna")
    # The admin acts on node A.
    done = await call(a, "POST", f"/api/operators/{anna_id}/disable", await token(a, "root"))
    assert done.status_code == 200, done.text
    assert await anna.wait_closed(5) == CLOSE_REVOKED
    assert anna.seen("error")[-1]["code"] == "revoked"
    assert (await ben.next_chat())["session_id"] == visitor.session_id
    # The visitor reads it in the order it happened: back in the queue, then Ben.
    await visitor.wait_for("message", lambda f: f.get("event") == "assigned" and f["seq"] > 2)
    events = [f.get("event") for f in visitor.seen("message") if f.get("from") == "system"]
    assert events == ["assigned", "requeued", "assigned"], events
    for node in (a, b):
        assert (await login(node, "anna")).status_code == 403
        assert (await call(node, "GET", "/api/operators", old)).status_code == 401


async def test_logout_on_one_node_closes_the_console_on_the_other(cluster, clients):  # noqa: F811
    a, b = cluster(2)
    a.add_operator("anna")
    anna = await b.operator("anna")
    clients.append(anna)
    mine = await token(a, "anna")
    assert (await call(a, "POST", "/api/logout", mine)).status_code == 200
    assert await anna.wait_closed(5) == CLOSE_REVOKED


async def test_throttling_is_shared_between_nodes(cluster):  # noqa: F811
    a, b = cluster(
        2,
        CHATSERVER_LOGIN_THROTTLE_FREE="2",
        CHATSERVER_LOGIN_THROTTLE_BASE_SECONDS="1",
        CHATSERVER_LOGIN_THROTTLE_MAX_SECONDS="1",
    )
    a.add_operator("anna")
    # Failures on alternating nodes add up to one count in Redis.
    for node in (a, b, a):
        assert (await login(node, "anna", "wrong", address="10.1.0.1")).status_code == 401
    refused = await login(b, "anna", address="10.1.0.2")
    assert refused.status_code == 429 and "Retry-After" in refused.headers

    async def logged_in() -> bool:
        return (await login(b, "anna", address="10.1.0.2")).status_code == 200

    await eventually(logged_in, timeout=10, message="the shared lock passes")
