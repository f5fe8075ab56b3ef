"""HTTP helpers for the operator account tests (real servers from tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ServerProcess


async def login(
    server: ServerProcess, username: str, password: str = "pw-secret", address: str | None = None
) -> httpx.Response:
    """``POST /api/login``; ``address`` poses as that client (X-Forwarded-For from
    127.0.0.1 is trusted by uvicorn)."""
    headers = {"X-Forwarded-For": address} if address else {}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=20) as http:
        return await http.post(
            "/api/login", json={"username": username, "password": password}, headers=headers
        )


async def token(server: ServerProcess, username: str, password: str = "pw-secret") -> str:
    response = await login(server, username, password)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def call(
    server: ServerProcess, method: str, path: str, token: str | None, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=20) as http:
        return await http.request(method, path, headers=headers, **kw)
