"""Backups that restore: ``chatserver backup`` of a SQLite desk while a server writes,
and ``pg_dump -Fc`` / ``pg_restore`` of a PostgreSQL one (docs/operations.md)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chatserver.attachments.blobs import chunks_of
from chatserver.attachments.pg_blobs import PgBlobStore
from chatserver.store.database import migrate, parse_database_url
from tests.conftest import ServerProcess
from tests.pg import PG_URL, drop_schema
from tests.store.desk import AUDIT_KEY, build_desk, cli, counts, wait_sealed


def restore_into(backup: Path, data_dir: Path) -> None:
    """What docs/operations.md's "Restore" says: the file, and the files beside it."""
    data_dir.mkdir()
    shutil.copyfile(backup, data_dir / "chatserver.sqlite3")
    shutil.copytree(backup.with_name(backup.name + ".attachments"), data_dir / "attachments")


def gapless(conn: sqlite3.Connection) -> None:
    """Each session's seqs run 1..n: the snapshot is of one moment, not torn."""
    for session_id, low, high, n in conn.execute(
        "SELECT session_id, MIN(seq), MAX(seq), COUNT(*) FROM messages GROUP BY session_id"
    ):
        assert (low, high) == (1, n), session_id


async def test_backup_while_a_server_writes_restores_and_verifies(
    make_server: Any, clients: list[Any], tmp_path: Path
) -> None:
    desk: ServerProcess = make_server(
        env={"CHATSERVER_AUDIT_KEY": AUDIT_KEY, "CHATSERVER_RATE_LIMIT_PER_10S": "1000000"}
    )
    desk.start()
    made = await build_desk(desk, clients)
    await wait_sealed(desk.data_dir / "chatserver.sqlite3", made["closed"])
    talker = await desk.visitor(name="Ueli")
    clients.append(talker)
    await talker.send("Hallo")
    await made["op"].next_chat()

    stop = asyncio.Event()
    sent = 0

    async def write() -> None:
        nonlocal sent
        while not stop.is_set():
            await talker.send(f"Nachricht {sent}")
            sent += 1

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)  # the writer is under way (not a timing assertion)
    live = tmp_path / "live.sqlite3"
    done = await asyncio.to_thread(
        cli, "backup", "--to", str(live), "--data-dir", str(desk.data_dir)
    )
    stop.set()
    await writer
    assert done.returncode == 0, done.stdout + done.stderr
    assert "integrity ok" in done.stdout and "attachments: 2 files" in done.stdout
    assert sent > 0

    restored = tmp_path / "restored"
    restore_into(live, restored)
    with contextlib.closing(sqlite3.connect(restored / "chatserver.sqlite3")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        gapless(conn)
        during = counts(conn)
    assert during["tickets"] == 1 and during["attachments"] == 2
    checked = await asyncio.to_thread(cli, "audit", "verify", "--data-dir", str(restored))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 tickets" in checked.stdout and "signed" in checked.stdout

    # Once the server is stopped, a backup holds exactly what the store holds.
    desk.stop()
    final = tmp_path / "final.sqlite3"
    done = await asyncio.to_thread(
        cli, "backup", "--to", str(final), "--data-dir", str(desk.data_dir)
    )
    assert done.returncode == 0, done.stderr
    with contextlib.closing(sqlite3.connect(desk.data_dir / "chatserver.sqlite3")) as conn:
        source = counts(conn)
    again = tmp_path / "again"
    restore_into(final, again)
    with contextlib.closing(sqlite3.connect(again / "chatserver.sqlite3")) as conn:
        assert counts(conn) == source
        (texts,) = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE text LIKE 'Nachricht %'"
        ).fetchone()
    assert texts == sent  # every acked message, once
    assert source["messages"] >= during["messages"]
    checked = await asyncio.to_thread(cli, "audit", "verify", "--data-dir", str(again))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # A server starts on the restored copy and serves the ticket with its attachment.
    back = make_server(env={"CHATSERVER_AUDIT_KEY": AUDIT_KEY}, data_dir=again)
    back.start()
    import httpx

    async with httpx.AsyncClient(base_url=back.http_url, timeout=10) as http:
        r = await http.post("/api/login", json={"username": "anna", "password": "pw-secret"})
        token = r.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        ticket = (await http.get(f"/api/tickets/{made['ticket']}", headers=headers)).json()
        (att,) = ticket["attachments"]
        got = await http.get(f"/api/attachments/{att['id']}", headers=headers)
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")


def test_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = cli("backup", "--to", str(tmp_path / "b.sqlite3"), "--data-dir", str(data))
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "b.sqlite3").exists()

    migrate(parse_database_url("", data_dir=data))
    taken = tmp_path / "taken.sqlite3"
    taken.write_bytes(b"keep me")
    exists = cli("backup", "--to", str(taken), "--data-dir", str(data))
    assert exists.returncode == 1 and "exists already" in exists.stderr
    assert taken.read_bytes() == b"keep me"
    nowhere = cli("backup", "--to", str(tmp_path / "no" / "b.sqlite3"), "--data-dir", str(data))
    assert nowhere.returncode == 1 and "no directory" in nowhere.stderr

    pg = cli("backup", "--to", str(tmp_path / "pg.sqlite3"), "--database-url", PG_URL)
    assert pg.returncode == 2 and "pg_dump" in pg.stderr
    assert not (tmp_path / "pg.sqlite3").exists()
    bad = cli("backup", "--to", str(tmp_path / "x.sqlite3"), "--database-url", "mysql://x")
    assert bad.returncode == 2 and "database_url" in bad.stderr


def test_backup_without_attachments_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    migrate(parse_database_url("", data_dir=data))
    done = cli("backup", "--to", str(tmp_path / "b.sqlite3"), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert "attachments:" not in done.stdout
    with contextlib.closing(sqlite3.connect(tmp_path / "b.sqlite3")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT COUNT(*) FROM operators").fetchone() == (0,)


# ------------------------------------------------------------------ PostgreSQL
async def test_pg_dump_and_pg_restore_into_a_fresh_database(tmp_path: Path) -> None:
    schema = f"t_{secrets.token_hex(6)}"
    restored_db = f"restore_{secrets.token_hex(6)}"
    db = parse_database_url(PG_URL, schema=schema)
    try:
        migrate(db)
        with psycopg.connect(PG_URL, autocommit=True, **db.pg_kwargs()) as conn:
            conn.execute(
                "INSERT INTO operators (id, username, name, password_hash, role, departments,"
                " capacity, created_at) VALUES ('o_1', 'anna', 'Anna', 'x', 'operator', '[]',"
                " 5, 1.0)"
            )
        blobs = PgBlobStore(PG_URL, schema)
        await blobs.open()
        try:
            data = secrets.token_bytes(600_000)
            blob = await blobs.save(chunks_of(data), limit=10**6)
        finally:
            await blobs.close()

        dump = tmp_path / "desk.dump"
        await asyncio.to_thread(
            subprocess.run,
            ["pg_dump", "-Fc", "-n", schema, "-f", str(dump), PG_URL],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(restored_db)))
        target = PG_URL.rsplit("/", 1)[0] + "/" + restored_db
        await asyncio.to_thread(
            subprocess.run,
            ["pg_restore", "--no-owner", "--exit-on-error", "-d", target, str(dump)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

        with psycopg.connect(target, options=f"-c search_path={schema}") as conn:
            assert conn.execute("SELECT username FROM operators").fetchall() == [("anna",)]
            (version,) = conn.execute("SELECT version FROM schema_version").fetchone() or (0,)
            assert version >= 12
        copy = PgBlobStore(target, schema)
        await copy.open()
        try:
            assert b"".join([c async for c in await copy.stream(blob.storage)]) == data
            assert copy.digest(blob.storage) == blob.sha256
        finally:
            await copy.close()
    finally:
        drop_schema(schema)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(restored_db)
                )
            )
