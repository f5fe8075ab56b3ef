"""The OpenAPI description (chatserver.web.openapi) is complete and true.

* Every HTTP route of the app is documented with its methods, and nothing is documented
  that the app does not serve.
* ``GET /api/openapi.json`` serves it.
* schemathesis fuzzes every operation against a real server (positive and negative data,
  a fixed seed, a few examples each): no answer is a 5xx, and every status, content type
  and JSON body is one the description allows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Mount, Route, WebSocketRoute

from chatserver.client import OperatorClient
from chatserver.config import Settings
from chatserver.web.app import create_app
from chatserver.web.openapi import SPEC

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
METHODS = {"get", "put", "post", "delete", "patch"}


def served_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(demo_operator=False))
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, WebSocketRoute | Mount):
            continue  # chat sockets: docs/protocol.md; /console: static files
        assert isinstance(route, Route), route
        for method in route.methods or ():
            if method != "HEAD":
                out.add((route.path, method.lower()))
    return out


def documented_routes() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_is_documented_and_nothing_more() -> None:
    served, documented = served_routes(), documented_routes()
    assert served - documented == set(), "routes missing from chatserver/web/openapi.py"
    assert documented - served == set(), "documented routes the app does not serve"


def test_the_description_is_valid_openapi() -> None:
    schema = schemathesis.openapi.from_dict(SPEC)
    failed = [r for r in schema.get_all_operations() if not r.ok()]
    assert failed == []
    # Every operation names its answers, errors included, and refs resolve.
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            assert op["responses"], (path, method)
            if op.get("security"):
                assert "401" in op["responses"], (path, method)


def test_openapi_json_is_served(server: Any) -> None:
    response = httpx.get(server.http_url + "/api/openapi.json")
    assert response.status_code == 200
    assert response.json() == SPEC


@pytest.mark.timeout(300)
# schemathesis' negative data uses ``random`` inside its strategies (its own affair).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_schemathesis_finds_no_server_error_and_no_departure(
    make_server: Any, clients: list[Any]
) -> None:
    server = make_server()
    server.start()
    server.add_operator("ada", role="admin")
    token = await OperatorClient.login(server.http_url, "ada", "pw-secret")
    visitor = await server.visitor(name="Vera")
    clients.append(visitor)
    tokens = {"operatorToken": token, "visitorToken": visitor.token}

    schema = schemathesis.openapi.from_dict(SPEC)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Logging out revokes the operator's token: last.
    operations.sort(key=lambda op: op.path == "/api/logout")
    assert len(operations) == len(documented_routes())
    for operation in operations:
        security = operation.definition.raw.get("security") or []
        scheme = next(iter(security[0]), None) if security else None
        headers = {"Authorization": f"Bearer {tokens[scheme]}"} if scheme else {}
        raw = operation.definition.raw
        negative = bool(raw.get("parameters") or raw.get("requestBody"))  # else nothing to break
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negative else ()
        for mode in modes or (GenerationMode.POSITIVE,):
            await asyncio.to_thread(run_operation, operation, mode, server.http_url, headers)
    # The server logged no traceback (make_server checks that at teardown too).
    assert "Traceback" not in server.log()


def run_operation(
    operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]
) -> None:
    """A few cases of ``operation`` in ``mode``, each sent and checked against CHECKS."""
    strategy = operation.as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(
        max_examples=8,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=20)
        case.validate_response(response, checks=CHECKS)

    check()
