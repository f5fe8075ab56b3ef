"""HTTP API of operator accounts: login (throttled), logout (revokes), and the admins'
team administration (see docs/http-api.md, "Operators and the team").

Handlers translate HTTP to :class:`~chatserver.chat.accounts.Accounts` calls; every
refusal is a :class:`~chatserver.errors.ChatError` answered as ``{"error", "message"}``
with its HTTP status (429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatserver.errors import (
    BadRequest,
    ChatError,
    Forbidden,
    LoginThrottled,
    RateLimited,
    Unauthorized,
)
from chatserver.operators import auth
from chatserver.operators.throttle import LoginGuard, MemoryFailures, RedisFailures
from chatserver.store.base import OperatorRecord
from chatserver.types import Role
from chatserver.web import inputs

log = logging.getLogger("chatserver.web.team")

Handler = Callable[[Request], Awaitable[Response]]


def _json_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ChatError as exc:
            headers = None
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                headers = {"Retry-After": str(max(1, exc.retry_after))}
            body = {"error": exc.code, "message": exc.message}
            return JSONResponse(body, exc.http_status, headers)

    return wrapped


def client_address(request: Request) -> str:
    """The peer's address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client is not None else "unknown"


def login_guard(request: Request) -> LoginGuard:
    """The node's :class:`LoginGuard`: failures counted in Redis when nodes share it."""
    state = request.app.state
    guard: LoginGuard | None = getattr(state, "login_guard", None)
    if guard is None:
        settings = state.settings
        redis = getattr(state, "redis", None)
        counter = (
            RedisFailures(redis, settings.redis_prefix) if redis is not None else MemoryFailures()
        )
        guard = state.login_guard = LoginGuard(settings, counter)
    return guard


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 2000:
        raise Unauthorized("an Authorization: Bearer token is required")
    return token.strip()


async def signed_in(request: Request) -> OperatorRecord:
    """The caller's account, if their token is valid and not revoked."""
    record: OperatorRecord = await request.app.state.hub.accounts.authenticate(bearer(request))
    return record


def admin_view(record: OperatorRecord, locked_until: float | None) -> dict[str, Any]:
    """An account as admins see it."""
    return {
        **record.public(),
        "disabled": record.disabled_at is not None,
        "disabled_at": record.disabled_at,
        "created_at": record.created_at,
        "locked_until": locked_until,
    }


async def account_locks(request: Request, records: list[OperatorRecord]) -> dict[str, float]:
    """``{username: locked until}`` of the accounts locked by failed logins now."""
    return await login_guard(request).account_locks(r.username for r in records)


# ------------------------------------------------------------------ login, logout
@_json_errors
async def login(request: Request) -> Response:
    """``POST /api/login``: throttled per account and per client address; every
    success and failure logged with the client address."""
    hub = request.app.state.hub
    address = client_address(request)
    body = await inputs.read_json(request, 16 * 1024)
    username, password = body.get("username"), body.get("password")
    if not (isinstance(username, str) and isinstance(password, str)) or not (
        0 < len(username) <= 100 and 0 < len(password) <= 1000
    ):
        raise BadRequest("give username and password (strings)")
    guard = login_guard(request)
    fields = {"client": address, "username": username, "event": "login"}
    try:
        await guard.check(username, address)
    except LoginThrottled:
        log.warning("login refused: throttled", extra={**fields, "outcome": "throttled"})
        raise
    record = await hub.store.operator_by_username(username)
    # Unknown users cost an argon2 verification too: timing tells no usernames.
    ok = await asyncio.to_thread(
        auth.verify_password, record.password_hash if record else auth.dummy_hash(), password
    )
    if record is None or record.removed_at is not None or not ok:
        locked = await guard.failed(username, address)
        log.warning(
            "login failed",
            extra={**fields, "outcome": "failed", "locked_until": locked or None},
        )
        return JSONResponse(
            {"error": "invalid_credentials", "message": "wrong username or password"}, 401
        )
    if record.disabled_at is not None:
        log.warning("login refused: account disabled", extra={**fields, "outcome": "disabled"})
        return JSONResponse(
            {"error": "account_disabled", "message": "this account is disabled"}, 403
        )
    await guard.succeeded(username)
    assert hub.tokens is not None
    token = hub.tokens.issue(record.operator_id, version=record.token_version)
    log.info(
        "login succeeded",
        extra={**fields, "outcome": "ok", "operator_id": record.operator_id},
    )
    return JSONResponse({"token": token, "operator": record.public()})


@_json_errors
async def logout(request: Request) -> Response:
    """``POST /api/logout``: revokes every token of the caller's account (all its
    consoles, on every node, are closed with 4004)."""
    record = await request.app.state.hub.accounts.logout(bearer(request))
    log.info(
        "logout",
        extra={"client": client_address(request), "operator_id": record.operator_id},
    )
    return JSONResponse({"ok": True})


# ----------------------------------------------------------------- administration
async def _admin(request: Request) -> OperatorRecord:
    actor = await signed_in(request)
    if actor.role != Role.ADMIN.value:
        raise Forbidden("admins only")
    return actor


async def _one(request: Request, record: OperatorRecord, status: int = 200) -> Response:
    locks = await account_locks(request, [record])
    return JSONResponse(
        {"operator": admin_view(record, locks.get(record.username))}, status_code=status
    )


@_json_errors
async def show_operator(request: Request) -> Response:
    await _admin(request)
    record = await request.app.state.hub.accounts.target(request.path_params["operator_id"])
    return await _one(request, record)


@_json_errors
async def create_operator(request: Request) -> Response:
    actor = await _admin(request)
    body = await inputs.read_json(request)
    record = await request.app.state.hub.accounts.create(actor, body)
    return await _one(request, record, 201)


@_json_errors
async def change_operator(request: Request) -> Response:
    actor = await _admin(request)
    accounts = request.app.state.hub.accounts
    await accounts.target(request.path_params["operator_id"])  # 404 before 400
    body = await inputs.read_json(request)
    record = await accounts.change(actor, request.path_params["operator_id"], body)
    return await _one(request, record)


@_json_errors
async def set_password(request: Request) -> Response:
    actor = await _admin(request)
    accounts = request.app.state.hub.accounts
    await accounts.target(request.path_params["operator_id"])
    body = await inputs.read_json(request)
    record = await accounts.set_password(actor, request.path_params["operator_id"], body)
    return await _one(request, record)


@_json_errors
async def disable_operator(request: Request) -> Response:
    actor = await _admin(request)
    record = await request.app.state.hub.accounts.disable(
        actor, request.path_params["operator_id"]
    )
    return await _one(request, record)


@_json_errors
async def enable_operator(request: Request) -> Response:
    actor = await _admin(request)
    record = await request.app.state.hub.accounts.enable(
        actor, request.path_params["operator_id"]
    )
    return await _one(request, record)


@_json_errors
async def remove_operator(request: Request) -> Response:
    actor = await _admin(request)
    await request.app.state.hub.accounts.remove(actor, request.path_params["operator_id"])
    return Response(status_code=204)


ROUTES = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/operators", create_operator, methods=["POST"]),
    Route("/api/operators/{operator_id}", show_operator, methods=["GET"]),
    Route("/api/operators/{operator_id}", change_operator, methods=["PATCH"]),
    Route("/api/operators/{operator_id}", remove_operator, methods=["DELETE"]),
    Route("/api/operators/{operator_id}/disable", disable_operator, methods=["POST"]),
    Route("/api/operators/{operator_id}/enable", enable_operator, methods=["POST"]),
    Route("/api/operators/{operator_id}/password", set_password, methods=["POST"]),
]
