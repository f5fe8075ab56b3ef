"""Nodes that share nothing but the network: each ``chatserver serve`` runs in a
network namespace of its own (``ip netns``, a veth pair to the root namespace), with
its own data directory, and reaches PostgreSQL and Redis over that link."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatserver.client import VisitorClient
from chatserver.store.database import Database
from tests.conftest import ServerProcess
from tests.multihost.test_many_hosts import assert_gapless, stored_messages
from tests.network_lock import network_changes
from tests.pg import pg_database
from tests.redis_keys import forget_prefix

FORWARD = Path(__file__).with_name("forward.py")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class NamespacedServer(ServerProcess):
    """A :class:`ServerProcess` run by ``ip netns exec`` and reached at its own address."""

    def __init__(self, namespace: str, address: str, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.namespace = namespace
        self.address = address

    @property
    def url(self) -> str:
        return f"ws://{self.address}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        argv = [
            "ip", "netns", "exec", self.namespace, sys.executable, "-m", "chatserver",
            "serve", "--host", self.address, "--port", str(self.port),
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        return subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)


class Link:
    """A namespace, its veth pair (``10.N.i.1`` here, ``10.N.i.2`` there) and the
    forwarders of PostgreSQL and Redis on this side."""

    def __init__(self, tag: str, net: int, index: int) -> None:
        self.namespace = f"cs{tag}{index}"
        self.outer = f"10.{net}.{index}.1"
        self.inner = f"10.{net}.{index}.2"
        self._here, self._there = f"vh{tag}{index}", f"vp{tag}{index}"
        self._forwarders: list[subprocess.Popen[str]] = []

    def up(self) -> None:
        ip("netns", "add", self.namespace)
        ip("link", "add", self._here, "type", "veth", "peer", "name", self._there)
        ip("link", "set", self._there, "netns", self.namespace)
        ip("addr", "add", f"{self.outer}/24", "dev", self._here)
        ip("link", "set", self._here, "up")
        inside = ("netns", "exec", self.namespace, "ip")
        ip(*inside, "addr", "add", f"{self.inner}/24", "dev", self._there)
        ip(*inside, "link", "set", self._there, "up")
        ip(*inside, "link", "set", "lo", "up")
        for port in (5432, 6379):
            proc = subprocess.Popen(
                [sys.executable, str(FORWARD), self.outer, str(port), "127.0.0.1", str(port)],
                stdout=subprocess.PIPE,
                text=True,
            )
            self._forwarders.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def down(self) -> None:
        for proc in self._forwarders:
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", self._here)  # takes its peer with it
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", self.namespace)


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[Any]:
    """``linked(n)``: n nodes, each in its own namespace; one schema, one Redis prefix."""
    tag = secrets.token_hex(2)
    net = 100 + secrets.randbelow(100)
    prefix = f"cst-{uuid.uuid4().hex[:8]}"
    links: list[Link] = []
    nodes: list[NamespacedServer] = []
    # Interfaces come and go here: no browser test may run meanwhile (network_lock.py).
    with network_changes(), pg_database() as db:

        def start(n: int, **env: str) -> tuple[Database, list[NamespacedServer]]:
            for i in range(n):
                link = Link(tag, net, i)
                links.append(link)
                link.up()
                node = NamespacedServer(
                    link.namespace,
                    link.inner,
                    tmp_path / f"ns{i}",
                    {
                        "CHATSERVER_DATABASE_URL": f"postgresql://postgres@{link.outer}:5432/test",
                        "CHATSERVER_REDIS_URL": f"redis://{link.outer}:6379/0",
                        "CHATSERVER_REDIS_PREFIX": prefix,
                        "CHATSERVER_NODE_ID": f"ns{i}",
                        "CHATSERVER_RATE_LIMIT_PER_10S": "100000",
                        **env,
                    },
                    db,
                )
                nodes.append(node)
                node.start()
            return db, nodes

        try:
            yield start
        finally:
            for node in nodes:
                node.stop()
            for link in links:
                link.down()
    for node in nodes:
        assert "Traceback" not in node.log(), node.log()[-3000:]

    forget_prefix(prefix)


async def test_nodes_in_their_own_network_namespaces(linked: Any, clients: list[Any]) -> None:
    db, (a, b) = linked(2, CHATSERVER_PRESENCE_TTL="1", CHATSERVER_OPERATOR_GRACE_SECONDS="1")
    # Inside a namespace the host's loopback services are out of reach: only the link.
    probe = "import socket; socket.create_connection(('127.0.0.1', 6379), timeout=2)"
    for node in (a, b):
        done = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", node.namespace, sys.executable, "-c", probe],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode != 0 and "ConnectionRefusedError" in done.stderr
    a.add_operator("anna", name="Anna")
    a.add_operator("carl", name="Carl")
    anna = await b.operator("anna")
    carl = await a.operator("carl", status="away")
    v = await a.visitor(name="Vera")
    clients += [carl, v]
    acked = [await v.send("Grüezi")]
    assert (await anna.next_chat())["session_id"] == v.session_id
    for k in range(30):
        acked.append(await anna.send_to(v.session_id, f"answer {k}"))
        acked.append(await v.send(f"more {k}"))
    await anna.wait_for("message", lambda f: f.get("seq") == acked[-1])

    b.kill9()  # anna's node: its chat goes back to the queue on a
    await v.wait_for("message", lambda f: f.get("event") == "requeued", timeout=20)
    await carl.set_status("online")
    assert (await carl.next_chat(timeout=20))["session_id"] == v.session_id
    await carl.wait_for("replay_done", lambda f: f["session_id"] == v.session_id)
    stored = stored_messages(db, v.session_id)
    assert_gapless(stored)
    assert set(acked) <= {m[0] for m in stored}
    # The visitor's page reloads: it resumes on a with its token.
    again = await VisitorClient.connect(a.url, token=v.token, last_seq=acked[-1])
    clients.append(again)
    reply = await carl.send_to(v.session_id, "Carl here")
    assert (await again.wait_for("message", lambda f: f["text"] == "Carl here"))["seq"] == reply
