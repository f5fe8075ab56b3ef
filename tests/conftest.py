"""Shared fixtures: real ``chatserver serve`` processes on free ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.cli import create_operator
from chatserver.client import OperatorClient, VisitorClient
from chatserver.store.database import Database

ROOT = Path(__file__).resolve().parent.parent


# Under pytest-xdist (`make test` runs two workers) each worker hands out ports from
# its own range below Linux's ephemeral ports (32768-60999), so two workers never get
# the same free port between one's probe and its server's bind, and no client socket
# takes a port a server is about to bind. A lone run asks the kernel for any port.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_PORT_SPAN = 2000
_next_port = 0


def free_port() -> int:
    """A port on 127.0.0.1 free right now, not handed out before in this process."""
    global _next_port
    if not _WORKER.startswith("gw"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    base = 20000 + int(_WORKER[2:]) % 6 * _PORT_SPAN
    for _ in range(_PORT_SPAN):
        port = base + _next_port % _PORT_SPAN
        _next_port += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {base}-{base + _PORT_SPAN - 1}")


class ServerProcess:
    """A real server in a subprocess; ``kill9`` and ``start`` again to test crashes."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, database: Database | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        # None: the SQLite file in data_dir; else (PostgreSQL) given to the server by env.
        self.database = database
        self.env = {
            **os.environ,
            "CHATSERVER_DEMO_OPERATOR": "false",
            "CHATSERVER_QUEUE_UPDATE_INTERVAL": "0.1",
            "CHATSERVER_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            # A crash in C (a signal) still leaves a traceback in the log.
            "PYTHONFAULTHANDLER": "1",
            **(
                {
                    "CHATSERVER_DATABASE_URL": database.conninfo or "",
                    "CHATSERVER_DATABASE_SCHEMA": database.schema or "",
                }
                if database is not None
                else {}
            ),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = self._spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:"
                    f" {self.log_path.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.http_url + "/healthz", timeout=0.5).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatserver",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
        finally:
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def add_operator(self, username: str, password: str = "pw-secret", **kw: Any) -> str:
        where = self.database or self.data_dir / "chatserver.sqlite3"
        return create_operator(where, username, password, **kw)

    async def operator(
        self, username: str, password: str = "pw-secret", **kw: Any
    ) -> OperatorClient:
        token = await OperatorClient.login(self.http_url, username, password)
        return await OperatorClient.connect(self.url, token=token, **kw)

    async def visitor(self, **kw: Any) -> VisitorClient:
        return await VisitorClient.connect(self.url, **kw)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[ServerProcess] = []

    def make(
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        database: Database | None = None,
    ) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(servers)}", env, database)
        servers.append(server)
        return server

    yield make
    for server in servers:
        code = server.stop()
        assert "Traceback" not in server.log(), server.log()[-5000:]
        # uvicorn re-raises SIGTERM after a graceful shutdown.
        assert code in (None, 0, -signal.SIGTERM), (
            f"server exited with {code}: {server.log()[-3000:]}"
        )


@pytest.fixture
def server(make_server: Any) -> ServerProcess:
    srv: ServerProcess = make_server()
    srv.start()
    return srv


@pytest.fixture
async def clients() -> AsyncIterator[list[Any]]:
    """Collects clients and closes them after the test."""
    opened: list[Any] = []
    yield opened
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()
