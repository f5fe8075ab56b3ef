"""chatserver.transport.wire on uvicorn and websockets versions it was not made for:
what it needs is found by feature, and a server whose versions lack any of it runs
uvicorn's stock websockets-sansio protocol after one warning."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from chatserver.config import ConfigError, Settings
from chatserver.transport.wire import (
    BASE_ATTRIBUTES,
    BASE_METHODS,
    DRAIN_NAMES,
    PARSER_ATTRIBUTES,
    SEND_NOWAIT,
    STOCK_WS_PROTOCOL,
    ChatWebSocketProtocol,
    StockWebSocketProtocol,
    choose_ws_protocol,
    stock_protocol,
    wire_supported,
)
from tests.conftest import ROOT

WIRE_LOGGER = "chatserver.transport.wire"


def remove(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
    """Make ``name`` missing on ``cls`` and its instances, as in a release without it:
    deleted from the class that defines it (a method, a property) and from each
    instance once made."""
    for klass in cls.__mro__:
        if name in vars(klass):
            monkeypatch.delattr(klass, name)
            break
    init = cls.__init__

    def init_without(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        vars(self).pop(name, None)

    monkeypatch.setattr(cls, "__init__", init_without)


def wire_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.name == WIRE_LOGGER and r.levelno >= logging.WARNING
    ]


def test_the_installed_versions_have_what_wire_needs(caplog: pytest.LogCaptureFixture) -> None:
    assert wire_supported() is None
    assert choose_ws_protocol("chat") is ChatWebSocketProtocol
    assert wire_warnings(caplog) == []


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        *[(WebSocketsSansIOProtocol, name) for name in BASE_METHODS + BASE_ATTRIBUTES],
        *[(ServerProtocol, name) for name in PARSER_ATTRIBUTES],
        (StreamReader, "buffer"),
        (uvicorn.Config, "ws_max_size"),
    ],
)
def test_a_missing_name_falls_back_to_the_stock_protocol_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, cls: type, name: str
) -> None:
    remove(monkeypatch, cls, name)
    why = wire_supported()
    assert why is not None and name in why
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=WIRE_LOGGER):
        assert choose_ws_protocol("chat") == stock_protocol()
    [warning] = wire_warnings(caplog)
    assert name in warning
    assert f"uvicorn {uvicorn.__version__}" in warning
    assert f"stock {STOCK_WS_PROTOCOL} protocol" in warning and SEND_NOWAIT in warning


def test_the_stock_setting_needs_no_check_and_warns_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    remove(monkeypatch, ServerProtocol, "current_size")  # as in websockets 15
    with caplog.at_level(logging.WARNING, logger=WIRE_LOGGER):
        assert choose_ws_protocol("stock") is StockWebSocketProtocol
    assert wire_warnings(caplog) == []


def test_the_stock_layer_is_uvicorns_with_the_closing_drain_where_it_can_be(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StockWebSocketProtocol overrides only DRAIN_NAMES; without one of them the stock
    layer is uvicorn's protocol itself."""
    assert stock_protocol() is StockWebSocketProtocol
    assert StockWebSocketProtocol.__bases__ == (WebSocketsSansIOProtocol,)
    for name in DRAIN_NAMES:
        assert name in BASE_METHODS or name == "data_received"
    remove(monkeypatch, WebSocketsSansIOProtocol, "handle_parser_exception")
    assert stock_protocol() == STOCK_WS_PROTOCOL


def test_wire_imports_without_the_uvicorn_module_and_says_so() -> None:
    """The app imports wire (SEND_NOWAIT) whatever uvicorn is installed: an
    import that fails inside wire is reported, not raised."""
    script = (
        "import sys\n"
        "sys.modules['uvicorn.protocols.websockets.websockets_sansio_impl'] = None\n"
        "from chatserver.transport import wire\n"
        "print(wire.wire_supported())\n"
        "print(wire.choose_ws_protocol('chat'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    why, chosen = done.stdout.splitlines()
    assert "websockets_sansio_impl" in why
    assert chosen == STOCK_WS_PROTOCOL
    [warning] = done.stderr.splitlines()  # logging's last-resort handler
    assert "websockets_sansio_impl" in warning and "stock" in warning


def test_the_ws_protocol_setting() -> None:
    assert Settings.load(env={}).ws_protocol == "chat"
    assert Settings.load(env={"CHATSERVER_WS_PROTOCOL": "stock"}).ws_protocol == "stock"
    with pytest.raises(ConfigError, match="ws_protocol"):
        Settings.load(env={"CHATSERVER_WS_PROTOCOL": "wsproto"})


@pytest.mark.parametrize(("setting", "layer"), [(None, "chat"), ("stock", "stock")])
async def test_a_chat_on_either_websocket_layer(
    make_server: Any, clients: list[Any], setting: str | None, layer: str
) -> None:
    """`chatserver serve` over real sockets: on uvicorn's stock protocol the scope
    has no send_nowait and every frame takes the ASGI send; the chat is the same."""
    server = make_server(env={"CHATSERVER_WS_PROTOCOL": setting} if setting else None)
    server.start()
    async with httpx.AsyncClient() as http:
        health = (await http.get(server.http_url + "/healthz", timeout=5)).json()
    assert health["ws_protocol"] == layer
    server.add_operator("anna", name="Anna")
    op = await server.operator("anna", binary=True)
    clients.append(op)
    visitor = await server.visitor(name="Vera")
    clients.append(visitor)
    assert await visitor.send("Grüezi") == 1
    chat = await op.next_chat()
    assert chat["session_id"] == visitor.session_id
    first = await op.wait_for("message", lambda f: f["from"] == "visitor")
    assert first["text"] == "Grüezi"
    long = " ".join(["Ich schaue nach."] * 20)  # a frame past 125 bytes: a longer header
    reply_seq = await op.send_to(visitor.session_id, long)
    reply = await visitor.wait_for("message", lambda f: f["from"] == "operator")
    assert reply["seq"] == reply_seq and reply["text"] == long
    assert "cannot run on uvicorn" not in server.log()
