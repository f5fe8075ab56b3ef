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

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A real server in a subprocess; ``kill9`` and ``start`` again to test crashes."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {
            **os.environ,
            "CHATSERVER_DEMO_OPERATOR": "false",
            "CHATSERVER_QUEUE_UPDATE_INTERVAL": "0.1",
            "CHATSERVER_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            # A crash in C (a signal) still leaves a traceback in the log.
            "PYTHONFAULTHANDLER": "1",
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
        return create_operator(self.data_dir / "chatserver.sqlite3", username, password, **kw)

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

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(servers)}", env)
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
