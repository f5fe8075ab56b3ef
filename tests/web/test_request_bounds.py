"""No input makes an HTTP endpoint answer 500 (chatserver.web.inputs), over a real server.

Every JSON endpoint reads its body through one reader (size and nesting depth bounded:
400 ``bad_request`` naming the problem, 413 past the size), and query parameters are
typed and bounded (400 ``bad_request``); nothing is stored.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatserver.client import OperatorClient
from chatserver.web.inputs import MAX_BODY_BYTES, MAX_DEPTH
from chatserver.web.openapi import SPEC
from tests.stored import connect_stored


def json_endpoints() -> list[tuple[str, str, str | None]]:
    """(method, path template, security scheme) of every JSON-body operation documented.

    The scheme is the first one named: ``{}`` in a security list (OpenAPI's "no token
    needed", e.g. ``[{}, {"operatorToken": []}]``: anyone, or an operator) names none;
    None when no requirement names one."""
    out = []
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                named = [name for requirement in op.get("security") or [] for name in requirement]
                out.append((method, path, named[0] if named else None))
    return out


def count(server: Any, sql: str) -> int:
    conn = connect_stored(server.data_dir / "chatserver.sqlite3")
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
async def ctx(server: Any, clients: list[Any]) -> dict[str, Any]:
    server.add_operator("ada", role="admin")
    token = await OperatorClient.login(server.http_url, "ada", "pw-secret")
    visitor = await server.visitor(name="Vera")
    clients.append(visitor)
    return {
        "server": server,
        "auth": {
            "operatorToken": {"Authorization": f"Bearer {token}"},
            "visitorToken": {"Authorization": f"Bearer {visitor.token}"},
            None: {},
        },
        "params": {
            "number": "100000",
            "session_id": visitor.session_id,
            "operator_id": "o_nobody",
        },
    }


def fill(path: str, params: dict[str, str]) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    return path


def deep(levels: int) -> bytes:
    return b'{"":' * levels + b"1" + b"}" * levels


async def test_a_body_nested_50000_deep_is_a_400_on_every_json_endpoint(
    ctx: dict[str, Any],
) -> None:
    server = ctx["server"]
    endpoints = json_endpoints()
    assert len(endpoints) >= 15
    refused = []
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        for method, path, scheme in endpoints:
            for body in (b"[" * 50_000 + b"]" * 50_000, deep(50_000), deep(MAX_DEPTH + 1)):
                response = await http.request(
                    method.upper(),
                    fill(path, ctx["params"]),
                    content=body,
                    headers={**ctx["auth"][scheme], "Content-Type": "application/json"},
                )
                assert response.status_code < 500, (method, path, response.text)
                if response.status_code in (400, 413):
                    data = response.json()
                    assert data["error"] in ("bad_request", "too_large"), (method, path, data)
                    refused.append(path)
    # Those that read the body before looking anything up all refused it (login's body
    # limit is 16 KiB: 413 for the two big ones).
    for path in ("/api/login", "/api/visitor/offline", "/api/canned", "/api/me/preferences"):
        assert refused.count(path) == 3, path
    assert count(server, "SELECT COUNT(*) FROM tickets") == 0
    assert "Traceback" not in server.log()


UNUSABLE_BODIES = (
    (b"{not json", "must be JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b'{"email": "\\ud800"}', "must be JSON"),
    (b"\xff\xfe{}", "must be JSON"),
    (b'{"a": NaN}', "must be JSON"),
    (deep(MAX_DEPTH + 1), f"deeper than {MAX_DEPTH}"),
)


async def test_unusable_bodies_are_named(ctx: dict[str, Any]) -> None:
    server = ctx["server"]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for body, message in UNUSABLE_BODIES:
            response = await http.post(
                "/api/canned", content=body, headers=ctx["auth"]["operatorToken"]
            )
            assert response.status_code == 400, body
            assert response.json()["error"] == "bad_request"
            assert message in response.json()["message"], body
    assert count(server, "SELECT COUNT(*) FROM canned_responses") == 0


async def test_a_body_within_the_depth_limit_gets_to_the_field_checks(ctx: dict[str, Any]) -> None:
    server = ctx["server"]
    nested: Any = 1
    for _ in range(MAX_DEPTH - 2):
        nested = [nested]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        response = await http.post(
            "/api/canned",
            json={"title": "Gruss", "text": "Guten Tag", "x": nested},
            headers=ctx["auth"]["operatorToken"],
        )
        assert response.status_code == 201, response.text
        too_big = await http.post(
            "/api/canned",
            content=b'{"title": "t", "text": "' + b"x" * MAX_BODY_BYTES + b'"}',
            headers=ctx["auth"]["operatorToken"],
        )
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "too_large"
    assert count(server, "SELECT COUNT(*) FROM canned_responses") == 1


BAD_QUERIES = (
    ("offset=99999999999999999999999", "offset"),
    ("offset=-1", "offset"),
    ("offset=1000000001", "offset"),
    ("offset=1.5", "offset"),
    ("limit=0", "limit"),
    ("limit=201", "limit"),
    ("limit=abc", "limit"),
    ("limit=%EF%BC%91", "limit"),  # a full-width digit
    ("level=4", "level"),
    ("level=x", "level"),
    ("state=" + "a" * 201, "state"),
    ("assignee=%00", "assignee"),
)


async def test_bad_ticket_query_parameters_are_400(ctx: dict[str, Any]) -> None:
    server = ctx["server"]
    headers = ctx["auth"]["operatorToken"]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for query, name in BAD_QUERIES:
            response = await http.get("/api/tickets?" + query, headers=headers)
            assert response.status_code == 400, (query, response.text)
            assert response.json()["error"] == "bad_request"
            assert name in response.json()["message"]
        good = await http.get(
            "/api/tickets?offset=1000000000&limit=200&level=3",
            headers=ctx["auth"]["operatorToken"],
        )
    assert good.status_code == 200
    assert good.json() == {"tickets": [], "total": 0}


async def test_bad_canned_query_parameters_are_400(ctx: dict[str, Any]) -> None:
    server = ctx["server"]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        response = await http.get(
            "/api/canned?department=" + "d" * 65, headers=ctx["auth"]["operatorToken"]
        )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


async def test_time_in_minutes_out_of_range_is_refused(ctx: dict[str, Any]) -> None:
    server = ctx["server"]
    session = ctx["params"]["session_id"]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for body in (b'{"minutes": 1e400}', b'{"minutes": 1e300}', b'{"minutes": -5}'):
            response = await http.post(
                f"/api/sessions/{session}/time",
                content=body,
                headers=ctx["auth"]["operatorToken"],
            )
            assert response.status_code == 400, response.text
    assert count(server, "SELECT COUNT(*) FROM time_entries") == 0


def test_the_depth_check_needs_no_recursion() -> None:
    from chatserver.errors import BadRequest
    from chatserver.web.inputs import check_depth, parse_json_object

    value: Any = 1
    for _ in range(100_000):  # deeper than Python's recursion limit
        value = {"a": [value]}
    with pytest.raises(BadRequest, match="deeper than"):
        check_depth(value)
    check_depth({"a": [[{"b": 1}]]}, limit=4)
    with pytest.raises(BadRequest, match="deeper than 3"):
        check_depth({"a": [[{"b": 1}]]}, limit=3)
    assert parse_json_object(deep(MAX_DEPTH)) is not None
    with pytest.raises(BadRequest, match="deeper than"):
        parse_json_object(b"[" * 5000 + b"]" * 5000)
