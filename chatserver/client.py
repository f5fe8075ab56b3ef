"""Python clients for the visitor and operator endpoints.

Used by the tests and the benchmark, and usable by integrations::

    async with VisitorClient.connect("ws://127.0.0.1:8000", name="Anna") as visitor:
        seq = await visitor.send("Hello")
        reply = await visitor.wait_for("message", lambda f: f["from"] == "operator")

Every received frame is kept in ``frames`` (in arrival order); ``wait_for``
looks through frames not yet consumed by an earlier ``wait_for``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx
import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chatserver.protocol import MSGPACK_SUBPROTOCOL

Frame = dict[str, Any]


class ClientError(Exception):
    """The server answered a request with an ``error`` frame."""

    def __init__(self, frame: Frame) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.frame = frame
        self.code = frame.get("code")


class _Client:
    path = ""

    def __init__(self, ws: ClientConnection, binary: bool) -> None:
        self.ws = ws
        self.binary = binary
        self.frames: list[Frame] = []
        self._cursor = 0
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.close_code: int | None = None
        self.closed = asyncio.Event()

    @staticmethod
    async def _open(base_url: str, path: str, binary: bool, origin: str | None) -> ClientConnection:
        return await connect(
            base_url.rstrip("/") + path,
            subprotocols=[MSGPACK_SUBPROTOCOL] if binary else None,  # type: ignore[list-item]
            origin=origin,  # type: ignore[arg-type]
            max_size=2**22,
            open_timeout=10,
        )

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                frame = msgpack.unpackb(data) if isinstance(data, bytes) else json.loads(data)
                async with self._changed:
                    self.frames.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code
            self.close_code = code if code is not None else 1006
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def send_frame(self, frame: Frame) -> None:
        if self.binary:
            await self.ws.send(msgpack.packb(frame))
        else:
            await self.ws.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def wait_for(
        self,
        kind: str,
        predicate: Callable[[Frame], bool] | None = None,
        timeout: float = 10.0,
    ) -> Frame:
        """Return the first unconsumed frame of type ``kind`` matching ``predicate``."""
        return await self._wait(
            lambda f: f.get("type") == kind and (predicate is None or predicate(f)),
            kind,
            timeout,
        )

    async def _wait(self, match: Callable[[Frame], bool], what: str, timeout: float) -> Frame:
        """Consume and return the first frame for which ``match`` is true.

        Earlier unmatched frames stay available to later waits.
        """

        async def wait() -> Frame:
            async with self._changed:
                while True:
                    for index in range(self._cursor, len(self.frames)):
                        frame = self.frames[index]
                        if match(frame):
                            self.frames[index] = {"type": "_consumed", "was": frame}
                            return frame
                    if self.closed.is_set():
                        raise ConnectionError(f"closed ({self.close_code}) waiting for {what}")
                    await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    def seen(self, kind: str) -> list[Frame]:
        """All frames of ``kind`` received so far, consumed or not."""
        out = []
        for frame in self.frames:
            if frame.get("type") == "_consumed":
                frame = frame["was"]
            if frame.get("type") == kind:
                out.append(frame)
        return out

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def new_client_msg_id() -> str:
    return uuid.uuid4().hex


class VisitorClient(_Client):
    """A visitor session. ``welcome`` holds the server's answer to ``hello``."""

    welcome: Frame

    @classmethod
    async def connect(
        cls,
        base_url: str,
        *,
        token: str | None = None,
        last_seq: int = 0,
        binary: bool = False,
        origin: str | None = None,
        **hello: Any,
    ) -> VisitorClient:
        ws = await cls._open(base_url, "/ws/visitor", binary, origin)
        client = cls(ws, binary)
        await client.send_frame({"type": "hello", "token": token, "last_seq": last_seq, **hello})
        first = await client.wait_for_any(("welcome", "error"))
        if first["type"] == "error":
            await client.wait_closed()
            raise ClientError(first)
        client.welcome = first
        return client

    async def wait_for_any(self, kinds: tuple[str, ...], timeout: float = 10.0) -> Frame:
        return await self._wait(lambda f: f.get("type") in kinds, "/".join(kinds), timeout)

    @property
    def token(self) -> str:
        return str(self.welcome["token"])

    @property
    def session_id(self) -> str:
        return str(self.welcome["session_id"])

    async def send(self, text: str, client_msg_id: str | None = None, timeout: float = 10.0) -> int:
        """Send a message and return its seq once the server acks it as durable."""
        cmid = client_msg_id or new_client_msg_id()
        await self.send_frame({"type": "message", "client_msg_id": cmid, "text": text})
        return await self.await_ack(cmid, timeout)

    async def await_ack(self, client_msg_id: str, timeout: float = 10.0) -> int:
        """The seq of ``client_msg_id``'s ack; raises ``ClientError`` if it was refused."""
        frame = await self._wait(
            lambda f: (
                (f.get("type") == "ack" and f.get("client_msg_id") == client_msg_id)
                or (f.get("type") == "error" and f.get("ref") == client_msg_id)
            ),
            f"ack of {client_msg_id}",
            timeout,
        )
        if frame["type"] == "error":
            raise ClientError(frame)
        return int(frame["seq"])


class OperatorClient(VisitorClient):
    """An operator console connection. ``welcome`` holds the server's answer."""

    @staticmethod
    async def login(http_url: str, username: str, password: str) -> str:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                http_url.rstrip("/") + "/api/login",
                json={"username": username, "password": password},
            )
        if response.status_code != 200:
            raise ClientError({"code": "login_failed", "message": response.text})
        return str(response.json()["token"])

    @classmethod
    async def connect(  # type: ignore[override]
        cls,
        base_url: str,
        *,
        token: str,
        status: str | None = "online",
        sessions: dict[str, int] | None = None,
        binary: bool = False,
        origin: str | None = None,
    ) -> OperatorClient:
        ws = await cls._open(base_url, "/ws/operator", binary, origin)
        client = cls(ws, binary)
        hello: Frame = {"type": "hello", "token": token}
        if status is not None:
            hello["status"] = status
        if sessions:
            hello["sessions"] = sessions
        await client.send_frame(hello)
        first = await client.wait_for_any(("welcome", "error"))
        if first["type"] == "error":
            await client.wait_closed()
            raise ClientError(first)
        client.welcome = first
        return client

    async def send_to(
        self, session_id: str, text: str, client_msg_id: str | None = None, timeout: float = 10.0
    ) -> int:
        cmid = client_msg_id or new_client_msg_id()
        await self.send_frame(
            {"type": "message", "session_id": session_id, "client_msg_id": cmid, "text": text}
        )
        return await self.await_ack(cmid, timeout)

    async def set_status(self, status: str) -> Frame:
        await self.send_frame({"type": "status", "status": status})
        return await self.wait_for("status", lambda f: f["status"] == status)

    async def next_chat(self, timeout: float = 10.0) -> Frame:
        frame = await self.wait_for("chat_assigned", timeout=timeout)
        return dict(frame["chat"])
