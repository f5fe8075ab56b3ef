"""The operator socket is same-origin only: scheme, host and port (chatserver.web.app).

Behind a TLS proxy the scheme comes from ``X-Forwarded-Proto``, believed only from
``CHATSERVER_TRUSTED_PROXIES`` (uvicorn's forwarded_allow_ips).
"""

from __future__ import annotations

from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chatserver.web.app import operator_origin_allowed


@pytest.mark.parametrize(
    "origin, host, scheme, allowed",
    [
        (None, "chat.example:443", "wss", True),  # programmatic clients send none
        ("https://chat.example", "chat.example", "wss", True),
        ("https://chat.example:443", "chat.example", "https", True),
        ("https://Chat.Example", "chat.example:443", "wss", True),
        ("http://chat.example", "chat.example", "ws", True),
        ("http://chat.example:80", "chat.example", "http", True),
        # The scheme counts: an http page may not drive a console served over TLS ...
        ("http://chat.example:443", "chat.example:443", "wss", False),
        ("http://chat.example", "chat.example", "wss", False),
        # ... nor an https page one served plainly (same host and port).
        ("https://chat.example:8000", "chat.example:8000", "ws", False),
        ("https://chat.example:8443", "chat.example:8000", "wss", False),
        ("https://evil.example", "chat.example", "wss", False),
        ("null", "chat.example", "ws", False),
        ("file:///x", "chat.example", "ws", False),
        ("https://chat.example", None, "wss", False),
    ],
)
def test_origin_compares_scheme_host_and_port(
    origin: str | None, host: str | None, scheme: str, allowed: bool
) -> None:
    assert operator_origin_allowed(origin, host, scheme) is allowed


async def handshake(server: Any, origin: str, proto: str | None = None) -> int:
    """The status of an operator-socket handshake with ``origin`` (101 or 403)."""
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    try:
        async with connect(server.url + "/ws/operator", origin=origin, additional_headers=headers):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_forwarded_proto_from_a_trusted_proxy(server: Any) -> None:
    # 127.0.0.1 is trusted by default (uvicorn's forwarded_allow_ips).
    port = server.port
    assert await handshake(server, f"http://127.0.0.1:{port}") == 101
    assert await handshake(server, f"https://127.0.0.1:{port}") == 403
    assert await handshake(server, f"https://127.0.0.1:{port}", "https") == 101
    assert await handshake(server, f"http://127.0.0.1:{port}", "https") == 403


async def test_forwarded_proto_from_an_untrusted_peer_is_ignored(make_server: Any) -> None:
    server = make_server({"CHATSERVER_TRUSTED_PROXIES": "192.0.2.7"})
    server.start()
    port = server.port
    assert await handshake(server, f"https://127.0.0.1:{port}", "https") == 403
    assert await handshake(server, f"http://127.0.0.1:{port}", "https") == 101
