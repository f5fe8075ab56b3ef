"""``chatserver migrate-store``: a SQLite desk made by a real server, copied into
PostgreSQL; the copy holds every row and file, and ``chatserver audit verify`` passes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from chatserver.attachments.pg_blobs import PgBlobStore
from chatserver.store.database import Database
from tests.conftest import ServerProcess
from tests.pg import PG_URL, pg_database
from tests.store.desk import AUDIT_KEY, COUNTED, PNG, build_desk, cli, counts, wait_sealed


def pg_env(db: Database) -> dict[str, str]:
    return {"CHATSERVER_DATABASE_URL": PG_URL, "CHATSERVER_DATABASE_SCHEMA": db.schema or ""}


def move(source: Path, db: Database, *extra: str) -> Any:
    return cli(
        "migrate-store", "--from", f"sqlite:///{source}", "--to", PG_URL,
        "--to-schema", db.schema or "", *extra,
    )  # fmt: skip


async def test_a_desk_moves_to_postgresql_whole(
    make_server: Any, clients: list[Any], tmp_path: Path
) -> None:
    desk: ServerProcess = make_server(env={"CHATSERVER_AUDIT_KEY": AUDIT_KEY})
    desk.start()
    made = await build_desk(desk, clients)
    source = desk.data_dir / "chatserver.sqlite3"
    await wait_sealed(source, made["closed"])
    for client in clients:
        await client.close()
    clients.clear()
    desk.stop()
    with contextlib.closing(sqlite3.connect(source)) as conn:
        before = counts(conn)
        storages = [r[0] for r in conn.execute("SELECT storage FROM attachments")]
    assert before["attachments"] == 2 and before["chat_seals"] >= 1

    with pg_database() as db:
        done = await asyncio.to_thread(move, source, db)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "copied" in done.stdout and "and 2 attachment files" in done.stdout
        for table in COUNTED:
            assert f"{table}: {before[table]} rows" in done.stdout

        with psycopg.connect(PG_URL, **db.pg_kwargs()) as conn:
            assert counts(conn) == before
            moved = [r[0] for r in conn.execute("SELECT storage FROM attachments")]
            # The ids continue after the copied ones.
            (number,) = conn.execute("SELECT nextval('ticket_numbers')").fetchone() or (0,)
            assert number > made["ticket"]
        assert all(name.startswith("db:") for name in moved)
        assert set(moved).isdisjoint(storages)
        blobs = PgBlobStore(PG_URL, db.schema)
        await blobs.open()
        try:
            for name in moved:
                assert b"".join([c async for c in await blobs.stream(name)]) == PNG
        finally:
            await blobs.close()

        checked = await asyncio.to_thread(cli, "audit", "verify", **pg_env(db))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "1 tickets" in checked.stdout and "signed (key id verified)" in checked.stdout

        # A second copy into the same (now full) database is refused, nothing changes.
        again = await asyncio.to_thread(move, source, db)
        assert again.returncode == 1
        assert "not empty" in again.stderr and "migrate-store copies into an empty" in again.stderr
        with psycopg.connect(PG_URL, **db.pg_kwargs()) as conn:
            assert counts(conn) == before
            (blob_rows,) = conn.execute("SELECT COUNT(*) FROM attachment_blobs").fetchone() or (0,)
            assert blob_rows == 2


def test_migrate_store_refuses_bad_arguments(tmp_path: Path) -> None:
    with pg_database() as db:
        missing = move(tmp_path / "nope.sqlite3", db)
        assert missing.returncode == 2 and "no SQLite database at" in missing.stderr
        swapped = cli("migrate-store", "--from", PG_URL, "--to", PG_URL)
        assert swapped.returncode == 2 and "--from must be a SQLite database" in swapped.stderr
        to_sqlite = cli(
            "migrate-store", "--from", f"sqlite:///{tmp_path}/a.sqlite3",
            "--to", f"sqlite:///{tmp_path}/b.sqlite3",
        )  # fmt: skip
        assert to_sqlite.returncode == 2 and "--to must be a PostgreSQL" in to_sqlite.stderr
        junk = cli("migrate-store", "--from", "mysql://x", "--to", PG_URL)
        assert junk.returncode == 2 and "expected sqlite:///path" in junk.stderr
        with psycopg.connect(PG_URL) as conn:
            (exists,) = conn.execute(
                "SELECT COUNT(*) FROM pg_namespace WHERE nspname = %s", (db.schema,)
            ).fetchone() or (0,)
        assert exists == 0  # nothing was created for the refused copies


def test_a_copy_that_fails_part_way_leaves_the_target_empty(tmp_path: Path) -> None:
    from chatserver.store.database import migrate, parse_database_url

    data = tmp_path / "data"
    source = parse_database_url("", data_dir=data)
    migrate(source)
    files = data / "attachments" / "ab"
    files.mkdir(parents=True)
    (files / ("ab" * 16)).write_bytes(PNG)
    with contextlib.closing(sqlite3.connect(data / "chatserver.sqlite3")) as conn:
        conn.execute(
            "INSERT INTO attachments VALUES ('a_1', 's:x', 'f.png', 'image/png', ?, 'x',"
            " ?, 'visitor', 1.0)",
            (len(PNG), "ab/" + "ab" * 16),
        )
        # SQLite keeps what PostgreSQL's types refuse.
        conn.execute(
            "INSERT INTO operators (id, username, name, password_hash, role, departments,"
            " capacity, created_at) VALUES ('o_1', 'anna', 'Anna', 'x', 'operator', '',"
            " 'many', 1.0)"
        )
        conn.commit()
    with pg_database() as db:
        failed = move(data / "chatserver.sqlite3", db)
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert "copying operators failed, nothing was kept" in failed.stderr
        assert "Traceback" not in failed.stderr
        with psycopg.connect(PG_URL, **db.pg_kwargs()) as conn:
            assert conn.execute("SELECT COUNT(*) FROM attachments").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM attachment_chunks").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM attachment_blobs").fetchone() == (0,)


async def test_knowledge_base_articles_move_and_stay_searchable(tmp_path: Path) -> None:
    from chatserver.kb.model import IMPORT_AUTHOR, check_fields, query_terms
    from chatserver.kb.service import indexed
    from chatserver.kb.store.base import Counter, SearchQuery
    from chatserver.kb.store.postgres import PostgresKbStore
    from chatserver.kb.store.sqlite import SqliteKbStore

    source = tmp_path / "data" / "chatserver.sqlite3"
    lite = SqliteKbStore(source)
    await lite.open()
    printer = check_fields(
        {"lang": "de", "title": "Drucker druckt nicht", "body": "Prüfen Sie das **Kabel**.",
         "status": "published"}
    )  # fmt: skip
    made = await lite.create(printer, indexed(printer), IMPORT_AUTHOR, 1_800_000_000.0)
    lite.count(Counter.VIEWS, 2, 1_800_000_000.0, made.id)
    await lite.close()

    def search(text: str) -> SearchQuery:
        return SearchQuery(text, {"de": query_terms(text, "de")})

    with pg_database() as db:
        done = await asyncio.to_thread(move, source, db)
        assert done.returncode == 0, done.stdout + done.stderr
        for table in ("kb_articles: 1 rows", "kb_revisions: 1 rows", "kb_fts: 1 rows"):
            assert table in done.stdout
        store = PostgresKbStore(db)
        await store.open()
        try:
            copied = await store.article(made.id)
            assert copied is not None and copied.fields == printer and copied.views == 2
            assert [r.n for r in await store.revisions(made.id)] == [1]
            # Found on the copy by a stemmed word and by a prefix, as at the source.
            for text in ("Kabels ", "Druck"):
                hits, _ = await store.search(search(text))
                assert [hit.article.id for hit in hits] == [made.id], text
            # New articles number on after the copied ones.
            other = check_fields({"lang": "de", "title": "Rechnung", "status": "published"})
            assert (await store.create(other, indexed(other), IMPORT_AUTHOR, 1.0)).id > made.id
        finally:
            await store.close()
