"""The admins' team API on a real server: role checks, unknown ids, bad bodies."""

from __future__ import annotations

import pytest

from tests.operators.helpers import call, login, token


@pytest.fixture
def team(server):
    ids = {
        "root": server.add_operator("root", role="admin"),
        "sue": server.add_operator("sue", role="supervisor"),
        "anna": server.add_operator("anna", departments=["billing"]),
    }
    return server, ids


def actions(target: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/api/operators/{target}", None),
        ("POST", "/api/operators", {"username": "neo", "password": "long-enough-1"}),
        ("PATCH", f"/api/operators/{target}", {"capacity": 3}),
        ("POST", f"/api/operators/{target}/disable", None),
        ("POST", f"/api/operators/{target}/enable", None),
        ("POST", f"/api/operators/{target}/password", {"password": "long-enough-1"}),
        ("DELETE", f"/api/operators/{target}", None),
    ]


async def test_only_admins_administer(team):
    server, ids = team
    for who in ("anna", "sue"):
        caller = await token(server, who)
        for target in (ids["anna"], ids["root"]):
            for method, path, body in actions(target):
                answer = await call(server, method, path, caller, json=body)
                assert answer.status_code == 403, (who, method, path, answer.text)
                assert answer.json()["error"] == "forbidden"
    for method, path, body in actions(ids["anna"]):
        answer = await call(server, method, path, None, json=body)
        assert answer.status_code == 401, (method, path)
    # Nothing changed: anna still logs in with her password, nobody "neo" exists.
    assert (await login(server, "anna")).status_code == 200
    assert (await login(server, "neo", "long-enough-1")).status_code == 401


async def test_unknown_ids_are_404(team):
    server, _ = team
    admin = await token(server, "root")
    for method, path, body in actions("o_nobody"):
        if path == "/api/operators":
            continue
        answer = await call(server, method, path, admin, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("method", "suffix", "body", "message"),
    [
        ("PATCH", "", {"capacity": 0}, "capacity"),
        ("PATCH", "", {"capacity": "x"}, "capacity"),
        ("PATCH", "", {"role": "king"}, "role"),
        ("PATCH", "", {"levels": [4]}, "levels"),
        ("PATCH", "", {"levels": []}, "levels"),
        ("PATCH", "", {"departments": ["no spaces"]}, "departments"),
        ("PATCH", "", {"departments": "billing"}, None),  # a string: accepted (comma list)
        ("PATCH", "", {"name": ""}, "name"),
        ("PATCH", "", {"username": "other"}, "cannot change username"),
        ("PATCH", "", {}, "nothing to change"),
        ("PATCH", "", {"capacity": 3, "role": "king"}, "role"),
        ("POST", "/password", {"password": "short"}, "password"),
        ("POST", "/password", {}, "password"),
        ("POST", "/password", {"password": "long-enough-1", "x": 1}, "password"),
    ],
)
async def test_bad_bodies_are_400_and_change_nothing(team, method, suffix, body, message):
    server, ids = team
    admin = await token(server, "root")
    path = f"/api/operators/{ids['anna']}{suffix}"
    before = (await call(server, "GET", f"/api/operators/{ids['anna']}", admin)).json()
    answer = await call(server, method, path, admin, json=body)
    if message is None:
        assert answer.status_code == 200, answer.text
        return
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]
    after = (await call(server, "GET", f"/api/operators/{ids['anna']}", admin)).json()
    assert after == before
    assert (await login(server, "anna")).status_code == 200  # password unchanged


async def test_not_json_is_400(team):
    server, ids = team
    admin = await token(server, "root")
    for method, path in (("PATCH", f"/api/operators/{ids['anna']}"), ("POST", "/api/operators")):
        answer = await call(server, method, path, admin, content=b"{nope")
        assert answer.status_code == 400, answer.text


async def test_create_list_and_guards(team):
    server, ids = team
    admin = await token(server, "root")
    made = await call(server, "POST", "/api/operators", admin, json={
        "username": "neo", "password": "long-enough-1", "name": "Neo", "role": "operator",
        "departments": ["Technical"], "levels": [1, 2], "capacity": 4,
    })  # fmt: skip
    assert made.status_code == 201, made.text
    neo = made.json()["operator"]
    assert (neo["username"], neo["departments"], neo["levels"], neo["capacity"]) == (
        "neo", ["technical"], [1, 2], 4
    )
    assert neo["disabled"] is False and neo["locked_until"] is None
    assert (await login(server, "neo", "long-enough-1")).status_code == 200
    taken = await call(server, "POST", "/api/operators", admin,
                       json={"username": "neo", "password": "long-enough-1"})  # fmt: skip
    assert taken.status_code == 409
    bad = await call(server, "POST", "/api/operators", admin,
                     json={"username": "has space", "password": "long-enough-1"})  # fmt: skip
    assert bad.status_code == 400
    listed = (await call(server, "GET", "/api/operators", admin)).json()["operators"]
    assert {"root", "sue", "anna", "neo"} <= {o["username"] for o in listed}
    assert all("locked_until" in o for o in listed)
    # An admin cannot lock themselves out, nor remove the last admin.
    for method, path, body in (
        ("POST", f"/api/operators/{ids['root']}/disable", None),
        ("DELETE", f"/api/operators/{ids['root']}", None),
        ("PATCH", f"/api/operators/{ids['root']}", {"role": "operator"}),
    ):
        answer = await call(server, method, path, admin, json=body)
        assert answer.status_code == 409, (method, path, answer.text)
    assert (await call(server, "GET", "/api/operators", admin)).status_code == 200
