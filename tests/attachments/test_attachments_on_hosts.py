"""Attachments on two hosts with PostgreSQL: uploaded on one node, downloaded from the
other, bytes in the database and in no node's data directory; a missing file is 404."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import psycopg

from chatserver.store.database import Database
from tests.conftest import ServerProcess
from tests.pg import PG_URL, pg_database

REDIS_URL = "redis://127.0.0.1:6379/0"
DATA = b"%PDF-1.7\n" + os.urandom(700_000)  # three chunks


async def test_upload_on_one_host_download_on_the_other(
    make_server: Any, tmp_path: Path, clients: list[Any]
) -> None:
    with pg_database() as db:
        env = {
            "CHATSERVER_REDIS_URL": REDIS_URL,
            "CHATSERVER_REDIS_PREFIX": f"cst-att-{os.getpid()}-{id(db) % 10000}",
            "CHATSERVER_MAX_UPLOAD_BYTES": str(1 << 20),
        }
        a: ServerProcess = make_server(env=env, data_dir=tmp_path / "a", database=db)
        b: ServerProcess = make_server(env=env, data_dir=tmp_path / "b", database=db)
        a.start()
        b.start()
        try:
            await _exchange(a, b, db, clients)
        finally:
            for client in clients:
                await client.close()
            clients.clear()
            a.stop()
            b.stop()
        for node in (a, b):
            files = [p for p in (node.data_dir / "attachments").rglob("*") if p.is_file()]
            assert files == [], files


async def _exchange(a: ServerProcess, b: ServerProcess, db: Database, clients: list[Any]) -> None:
    a.add_operator("anna")
    op = await b.operator("anna")
    v = await a.visitor()
    clients += [op, v]
    await v.send("here is the invoice")
    await op.next_chat()
    async with httpx.AsyncClient(timeout=30) as http:
        auth = {"Authorization": f"Bearer {v.token}"}
        r = await http.post(
            a.http_url + "/api/attachments", headers=auth, files={"file": ("inv.pdf", DATA)}
        )
        assert r.status_code == 201, r.text
        att = r.json()
        got = await http.get(f"{b.http_url}/api/attachments/{att['id']}", headers=auth)
        assert got.status_code == 200 and got.content == DATA
        assert got.headers["content-type"] == "application/pdf"

        too_big = await http.post(
            a.http_url + "/api/attachments",
            headers=auth,
            files={"file": ("big.pdf", b"%PDF-" + bytes(1 << 20))},
        )
        assert too_big.status_code == 413

        with psycopg.connect(PG_URL, **db.pg_kwargs()) as conn:
            (storage,) = conn.execute(
                "SELECT storage FROM attachments WHERE id = %s", (att["id"],)
            ).fetchone() or ("",)
            chunks = conn.execute(
                "SELECT COUNT(*), SUM(LENGTH(data)) FROM attachment_chunks WHERE blob_id = %s",
                (storage,),
            ).fetchone()
            assert chunks == (3, len(DATA))
            (blobs,) = conn.execute("SELECT COUNT(*) FROM attachment_blobs").fetchone() or (0,)
            assert blobs == 1  # the refused upload left nothing
            # The bytes vanish (an operator's mistake, a bad restore): 404, not 500.
            conn.execute("DELETE FROM attachment_blobs WHERE blob_id = %s", (storage,))
            conn.commit()
        gone = await http.get(f"{a.http_url}/api/attachments/{att['id']}", headers=auth)
        assert gone.status_code == 404 and gone.json()["error"] == "not_found"


async def test_a_streamed_upload_past_the_limit_is_413_and_keeps_nothing(
    make_server: Any, tmp_path: Path, clients: list[Any]
) -> None:
    """Without a Content-Length (chunked), the limit holds while the body streams in."""
    srv: ServerProcess = make_server(env={"CHATSERVER_MAX_UPLOAD_BYTES": str(1 << 20)})
    srv.start()
    v = await srv.visitor()
    clients.append(v)
    await v.send("hello")
    boundary = "cs-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-"
    ).encode()

    async def body(extra: int) -> Any:
        yield head
        for _ in range(extra // 65536):
            yield bytes(65536)
        yield f"\r\n--{boundary}--\r\n".encode()

    async with httpx.AsyncClient(timeout=30) as http:
        headers = {
            "Authorization": f"Bearer {v.token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        big = await http.post(
            srv.http_url + "/api/attachments", headers=headers, content=body(3 << 20)
        )
        assert big.status_code == 413, big.text
        assert big.json()["error"] == "too_large"
        # Just under the limit, streamed in the same way: stored whole.
        ok = await http.post(
            srv.http_url + "/api/attachments", headers=headers, content=body(900 * 1024)
        )
        assert ok.status_code == 201, ok.text
        att = ok.json()
        assert att["size"] == 5 + 900 * 1024 // 65536 * 65536
        got = await http.get(f"{srv.http_url}/api/attachments/{att['id']}", headers=headers)
        assert got.status_code == 200 and len(got.content) == att["size"]
    files = [p for p in (srv.data_dir / "attachments").rglob("*") if p.is_file()]
    assert len(files) == 1, files  # the refused upload left no file, complete or partial
