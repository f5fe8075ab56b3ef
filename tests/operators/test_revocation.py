"""Revocation on one real server: disable, remove, a new password or role, logout.

The operator's open console is closed with 4004 ("revoked"), their token is refused on
HTTP and on a new hello, and (except for a logout) their chats go back to the queue at
once — the grace period is set far beyond the tests' deadlines, so only the revocation
can have re-queued them.
"""

from __future__ import annotations

import pytest

from chatserver.client import ClientError, OperatorClient
from chatserver.errors import CLOSE_REVOKED
from tests.operators.helpers import call, login, token

LONG_GRACE = {"CHATSERVER_OPERATOR_GRACE_SECONDS": "600"}


@pytest.fixture
def team(make_server):
    server = make_server(env=LONG_GRACE)
    server.start()
    ids = {
        "root": server.add_operator("root", role="admin"),
        "anna": server.add_operator("anna", name="Anna"),
        "ben": server.add_operator("ben", name="Ben"),
    }
    return server, ids


async def assigned_to_anna(server, clients):
    """anna online with one chat; ben online with none. Returns (anna, ben, visitor)."""
    anna = await server.operator("anna")
    clients.append(anna)
    visitor = await server.visitor(name="Vera")
    clients.append(visitor)
    await visitor.send("Grüezi")
    chat = await anna.next_chat()
    assert chat["session_id"] == visitor.session_id
    ben = await server.operator("ben")
    clients.append(ben)
    return anna, ben, visitor


async def assert_revoked(server, anna, old_token):
    """anna's console got the revoked error and close code; her token is dead."""
    assert await anna.wait_closed(5) == CLOSE_REVOKED
    assert anna.seen("error")[-1]["code"] == "revoked"
    me = await call(server, "GET", "/api/operators", old_token)
    assert me.status_code == 401 and me.json()["error"] == "revoked"
    with pytest.raises(ClientError) as refused:
        await OperatorClient.connect(server.url, token=old_token)
    assert refused.value.code == "revoked"


@pytest.mark.parametrize("action", ["disable", "remove"])
async def test_disable_or_remove_closes_the_console_and_requeues(team, clients, action):
    server, ids = team
    admin = await token(server, "root")
    anna, ben, visitor = await assigned_to_anna(server, clients)
    anna_token = await token(server, "anna")  # a second token of hers, also revoked
    await anna.send_to(visitor.session_id, "Hallo, hier ist Anna")
    if action == "disable":
        done = await call(server, "POST", f"/api/operators/{ids['anna']}/disable", admin)
        assert done.status_code == 200 and done.json()["operator"]["disabled"] is True
    else:
        done = await call(server, "DELETE", f"/api/operators/{ids['anna']}", admin)
        assert done.status_code == 204
    await assert_revoked(server, anna, anna_token)
    # Her chat goes to ben now, long before her grace period would end.
    chat = await ben.next_chat()
    assert chat["session_id"] == visitor.session_id
    # History keeps her name: ben's copy of the chat says who wrote her message.
    hers = await ben.wait_for("message", lambda f: f["text"] == "Hallo, hier ist Anna")
    assert hers["author"] == "Anna"
    await visitor.wait_for("state", lambda f: f["state"] == "assigned"
                           and f["operator"]["name"] == "Ben")  # fmt: skip
    # A new login is refused: disabled (403) or, removed, unknown (401).
    again = await login(server, "anna")
    assert again.status_code == (403 if action == "disable" else 401), again.text
    listed = await call(server, "GET", "/api/operators", admin)
    names = {o["username"]: o for o in listed.json()["operators"]}
    if action == "disable":
        assert names["anna"]["disabled"] is True
        enabled = await call(server, "POST", f"/api/operators/{ids['anna']}/enable", admin)
        assert enabled.status_code == 200 and enabled.json()["operator"]["disabled"] is False
        assert (await login(server, "anna")).status_code == 200
    else:
        assert "anna" not in names
        shown = await call(server, "GET", f"/api/operators/{ids['anna']}", admin)
        assert shown.status_code == 404
    # Colleagues do not see a disabled or removed account.
    ben_view = await call(server, "GET", "/api/operators", await token(server, "ben"))
    assert ("anna" in {o["username"] for o in ben_view.json()["operators"]}) is (
        action == "disable"  # enabled again above
    )


async def test_new_password_revokes_and_requeues(team, clients):
    server, ids = team
    admin = await token(server, "root")
    anna, ben, visitor = await assigned_to_anna(server, clients)
    old = await token(server, "anna")
    done = await call(server, "POST", f"/api/operators/{ids['anna']}/password", admin,
                      json={"password": "brand-new-secret"})  # fmt: skip
    assert done.status_code == 200, done.text
    await assert_revoked(server, anna, old)
    assert (await ben.next_chat())["session_id"] == visitor.session_id
    assert (await login(server, "anna")).status_code == 401
    assert (await login(server, "anna", "brand-new-secret")).status_code == 200


async def test_new_role_revokes_other_changes_do_not(team, clients):
    server, ids = team
    admin = await token(server, "root")
    anna, ben, visitor = await assigned_to_anna(server, clients)
    old = await token(server, "anna")
    # Capacity and name: applied, tokens stay valid, the console stays open.
    done = await call(server, "PATCH", f"/api/operators/{ids['anna']}", admin,
                      json={"capacity": 2, "name": "Anna M."})  # fmt: skip
    assert done.status_code == 200 and done.json()["operator"]["capacity"] == 2
    assert (await call(server, "GET", "/api/operators", old)).status_code == 200
    await anna.send_frame({"type": "ping"})
    await anna.wait_for("pong")
    # A new role revokes.
    done = await call(server, "PATCH", f"/api/operators/{ids['anna']}", admin,
                      json={"role": "supervisor"})  # fmt: skip
    assert done.status_code == 200 and done.json()["operator"]["role"] == "supervisor"
    await assert_revoked(server, anna, old)
    assert (await ben.next_chat())["session_id"] == visitor.session_id
    fresh = await login(server, "anna")
    assert fresh.json()["operator"]["role"] == "supervisor"


async def test_cli_disable_reaches_the_running_server(team, clients):
    """The CLI has no bus: the node's account watch closes the console."""
    server, _ = team
    anna, ben, visitor = await assigned_to_anna(server, clients)
    old = await token(server, "anna")
    from tests.test_cli import run

    done = run("operator", "disable", "anna", "--data-dir", str(server.data_dir))
    assert done.returncode == 0, done.stderr
    await assert_revoked(server, anna, old)
    assert (await ben.next_chat())["session_id"] == visitor.session_id


async def test_logout_revokes_the_token(team, clients):
    server, _ = team
    anna_token = await token(server, "anna")
    anna = await OperatorClient.connect(server.url, token=anna_token)
    clients.append(anna)
    out = await call(server, "POST", "/api/logout", anna_token)
    assert out.status_code == 200 and out.json() == {"ok": True}
    await assert_revoked(server, anna, anna_token)
    again = await call(server, "POST", "/api/logout", anna_token)
    assert again.status_code == 401
    assert (await call(server, "POST", "/api/logout", None)).status_code == 401
    # She logs in again as usual.
    fresh = await token(server, "anna")
    assert (await call(server, "GET", "/api/operators", fresh)).status_code == 200
