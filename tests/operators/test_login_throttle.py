"""Login throttling on a real server: per account, per client address, logged.

A tiny configured backoff keeps the test fast; the test waits for the lock to pass by
asking again (refused attempts do not count), never by sleeping.
"""

from __future__ import annotations

import json

import pytest

from tests.operators.helpers import login
from tests.waiting import eventually

THROTTLE = {
    "CHATSERVER_LOGIN_THROTTLE_FREE": "3",
    "CHATSERVER_LOGIN_THROTTLE_ADDRESS_FREE": "6",
    "CHATSERVER_LOGIN_THROTTLE_BASE_SECONDS": "1",
    "CHATSERVER_LOGIN_THROTTLE_MAX_SECONDS": "1",
    "CHATSERVER_LOG_JSON": "true",
    "CHATSERVER_LOG_LEVEL": "info",
}


@pytest.fixture
def server(make_server):
    srv = make_server(env=THROTTLE)
    srv.start()
    srv.add_operator("anna")
    srv.add_operator("ben")
    return srv


def log_entries(server) -> list[dict]:
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "login":
                out.append(entry)
    return out


async def test_account_backoff_then_the_right_password_after_it(server):
    addr = "10.0.0.1"
    for _ in range(4):  # three free failures, the fourth locks the account
        wrong = await login(server, "anna", "wrong-password", address=addr)
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_credentials"
    locked = await login(server, "anna", address=addr)  # the right password
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"] == "login_throttled"
    assert int(locked.headers["Retry-After"]) >= 1
    # Once the backoff has passed the right password works again.
    async def logged_in() -> bool:
        return (await login(server, "anna", address=addr)).status_code == 200

    await eventually(logged_in, timeout=10, message="anna's lock passes")
    # Success cleared the account's count: one wrong password no longer locks it.
    assert (await login(server, "anna", "wrong", address=addr)).status_code == 401
    assert (await login(server, "anna", address=addr)).status_code == 200
    # Every success and failure was logged with the client address.
    entries = log_entries(server)
    failed = [e for e in entries if e["outcome"] == "failed" and e["username"] == "anna"]
    assert len(failed) == 5 and {e["client"] for e in failed} == {addr}
    assert any(e["outcome"] == "throttled" and e["client"] == addr for e in entries)
    ok = [e for e in entries if e["outcome"] == "ok" and e["username"] == "anna"]
    assert ok and all(e["client"] == addr and e["operator_id"] for e in ok)


async def test_unknown_users_count_and_answer_like_wrong_passwords(server):
    unknown = await login(server, "nobody", "whatever", address="10.0.1.1")
    wrong = await login(server, "anna", "whatever", address="10.0.1.1")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    for _ in range(2):  # with the one above: three, the free ones
        await login(server, "nobody", "whatever", address="10.0.1.2")
    assert (await login(server, "nobody", "whatever", address="10.0.1.2")).status_code == 401
    assert (await login(server, "nobody", "whatever", address="10.0.1.3")).status_code == 429


async def test_per_address_backoff(server):
    addr = "10.0.2.1"
    for i in range(7):  # one failure per username: no account locks, the address does
        answer = await login(server, f"guess{i}", "wrong", address=addr)
        assert answer.status_code == 401
    refused = await login(server, "ben", address=addr)
    assert refused.status_code == 429 and "address" in refused.json()["message"]
    assert "Retry-After" in refused.headers
    assert (await login(server, "ben", address="10.0.2.2")).status_code == 200

    async def logged_in() -> bool:
        return (await login(server, "ben", address=addr)).status_code == 200

    await eventually(logged_in, timeout=10, message="the address's lock passes")


async def test_locked_account_shown_to_admins(make_server):
    srv = make_server(env={**THROTTLE, "CHATSERVER_LOGIN_THROTTLE_BASE_SECONDS": "60",
                           "CHATSERVER_LOGIN_THROTTLE_MAX_SECONDS": "60"})  # fmt: skip
    srv.start()
    srv.add_operator("root", role="admin")
    anna = srv.add_operator("anna")
    from tests.operators.helpers import call, token

    admin = await token(srv, "root")
    for _ in range(4):
        await login(srv, "anna", "wrong", address="10.0.3.1")
    # Locked for the account, from any address, even with the right password.
    assert (await login(srv, "anna", address="10.0.3.9")).status_code == 429
    shown = (await call(srv, "GET", f"/api/operators/{anna}", admin)).json()["operator"]
    assert shown["locked_until"] is not None
    listed = (await call(srv, "GET", "/api/operators", admin)).json()["operators"]
    assert {o["username"]: o["locked_until"] for o in listed}["root"] is None
