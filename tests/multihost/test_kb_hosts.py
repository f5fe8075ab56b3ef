"""One knowledge base for many hosts: two ``chatserver serve`` processes with data
directories of their own on one PostgreSQL schema (and one Redis prefix). What one host
writes, the other finds at once; the counters of both add up in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chatserver.store.database import Database
from tests.conftest import ServerProcess
from tests.pg import PG_URL, pg_database
from tests.redis_keys import forget_prefix
from tests.waiting import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database() -> Iterator[Database]:
    with pg_database() as db:
        yield db


@pytest.fixture
def two_hosts(
    make_server: Any, tmp_path: Path, database: Database
) -> Iterator[list[ServerProcess]]:
    prefix = f"cst-{uuid.uuid4().hex[:8]}"
    nodes: list[ServerProcess] = []
    for i in range(2):
        node: ServerProcess = make_server(
            env={
                "CHATSERVER_REDIS_URL": REDIS_URL,
                "CHATSERVER_REDIS_PREFIX": prefix,
                "CHATSERVER_NODE_ID": f"host{i}",
            },
            data_dir=tmp_path / f"host{i}",
            database=database,
        )
        node.start()
        nodes.append(node)
    yield nodes
    for node in nodes:  # before the schema is dropped
        node.stop()

    forget_prefix(prefix)


async def login(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post("/api/login", json={"username": username, "password": "pw-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_an_article_published_on_one_host_is_found_on_the_other(
    two_hosts: list[ServerProcess], database: Database, clients: list[Any]
) -> None:
    a, b = two_hosts
    a.add_operator("sam", name="Sam Supervisor", role="supervisor")
    async with (
        httpx.AsyncClient(base_url=a.http_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.http_url, timeout=10) as on_b,
    ):
        sam_a, sam_b = await login(on_a, "sam"), await login(on_b, "sam")
        made = await on_a.post(
            "/api/kb/manage/articles",
            headers=sam_a,
            json={"title": "Drucker druckt nicht", "lang": "de", "body": "Prüfen Sie das Kabel."},
        )
        assert made.status_code == 201, made.text
        article = made.json()
        # A draft: host B's visitors find nothing yet.
        found = await on_b.get("/api/kb/search", params={"q": "Druckers ", "lang": "de"})
        assert found.json() == {"results": []}
        published = await on_a.post(
            f"/api/kb/manage/articles/{article['id']}/publish", headers=sam_a
        )
        assert published.status_code == 200
        # Published on A: found on B at once (no local file of either host holds it).
        for q in ("Druckers ", "Kabel", "druck"):
            found = await on_b.get("/api/kb/search", params={"q": q, "lang": "de"})
            assert [r["id"] for r in found.json()["results"]] == [article["id"]], q
        page = await on_b.get("/help/de/drucker-druckt-nicht")
        assert page.status_code == 200 and "Drucker druckt nicht" in page.text

        # Edited on B (from the revision A wrote): A searches the new words.
        edited = await on_b.put(
            f"/api/kb/manage/articles/{article['id']}",
            headers=sam_b,
            json={"title": "Drucker offline", "revision": published.json()["revision"]},
        )
        assert edited.status_code == 200 and edited.json()["revision"] == 3
        found = await on_a.get("/api/kb/search", params={"q": "offline", "lang": "de"})
        assert [r["title"] for r in found.json()["results"]] == ["Drucker offline"]
        # An editor on A still at the old revision is told it changed meanwhile.
        stale = await on_a.put(
            f"/api/kb/manage/articles/{article['id']}",
            headers=sam_a,
            json={"body": "Neu.", "revision": published.json()["revision"]},
        )
        assert stale.status_code == 409 and "changed meanwhile" in stale.json()["message"]
        # The slug is unique across hosts.
        twin = await on_b.post(
            "/api/kb/manage/articles",
            headers=sam_b,
            json={"title": "Drucker", "lang": "de", "slug": "drucker-druckt-nicht"},
        )
        assert twin.status_code == 409

        # A visitor of host A answers on host B: the session is known there too.
        visitor = await a.visitor()
        clients.append(visitor)
        url = "/api/kb/articles/de/drucker-druckt-nicht/feedback"
        for node in (on_b, on_a):  # once per session, whichever host is asked
            answer = await node.post(url, json={"helped": True, "session": visitor.session_id})
            assert answer.status_code == 204
        await on_a.get("/api/kb/articles/de/drucker-druckt-nicht")
        await on_b.get("/api/kb/articles/de/drucker-druckt-nicht")

        async def figures() -> dict[str, Any] | None:
            response = await on_a.get(f"/api/kb/manage/articles/{article['id']}", headers=sam_a)
            data: dict[str, Any] = response.json()
            return data if data["views"] == 3 else None

        # Both hosts' views (flushed each second) add up in PostgreSQL: B's help page
        # and each host's API read.
        done = await eventually(figures, timeout=10)
        assert done is not None and (done["helped"], done["not_helped"]) == (1, 0)
    with psycopg.connect(PG_URL, **database.pg_kwargs()) as conn:
        [(n,)] = conn.execute("SELECT SUM(n) FROM kb_counts WHERE counter = 'deflected'").fetchall()
        assert n == 1
        assert not any((node.data_dir / "chatserver.sqlite3").exists() for node in (a, b))
