"""One numbered schema, two backends (``chatserver.store.database``).

Both backends have every migration, end with the same tables and columns, and
bring a database with data from the oldest schema to the latest with its rows
intact; PostgreSQL's migration is safe for nodes starting at once; ``chatserver
migrate`` reports the versions.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatserver.cli import main
from chatserver.config import ConfigError, Settings
from chatserver.store.base import MessageRecord
from chatserver.store.database import (
    SCHEMA_VERSION,
    Database,
    as_database,
    connect,
    connect_raw,
    migrate,
    parse_database_url,
    schema_version,
)
from chatserver.store.postgres.schema import PG_MIGRATIONS, PG_SCHEMA_VERSION
from chatserver.store.postgres.store import PostgresStore
from chatserver.store.sqlite import SqliteStore
from chatserver.store.sqlite.schema import MIGRATIONS
from chatserver.types import SessionId
from tests.pg import PG_URL, pg_database

# Columns PostgreSQL has beyond SQLite's (SQLite's FTS5 table has a hidden rowid; its
# terms, weighted, and the title's alone are columns here, step 16). SQLite's FTS5
# shadow tables have no PostgreSQL twin.
PG_EXTRA = {"kb_fts": {"rowid", "terms", "title_terms"}}
# Tables only PostgreSQL has: attachment bytes in the database (step 15,
# chatserver.attachments.pg_blobs); a SQLite node keeps its attachments as files.
PG_ONLY = {"attachment_blobs", "attachment_chunks"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield as_database(tmp_path / "chatserver.sqlite3")
    else:
        with pg_database() as db:
            yield db


def test_every_migration_has_both_forms() -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS) == PG_SCHEMA_VERSION == SCHEMA_VERSION


def test_both_backends_end_with_the_same_tables_and_columns(tmp_path: Path) -> None:
    lite = connect(tmp_path / "chatserver.sqlite3")
    assert isinstance(lite.raw, sqlite3.Connection)
    tables = [
        name
        for (name,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        if not name.startswith("kb_fts_")
    ]
    sqlite_columns = {
        t: {row[1] for row in lite.execute(f"PRAGMA table_info({t})")} for t in tables
    }
    lite.close()
    with pg_database() as db, connect(db) as pg:
        pg_columns: dict[str, set[str]] = {}
        for table, column in pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?",
            (db.schema,),
        ):
            if table != "schema_version":
                pg_columns.setdefault(table, set()).add(column)
    for table, extra in PG_EXTRA.items():
        pg_columns[table] -= extra
    assert PG_ONLY <= set(pg_columns) and not PG_ONLY & set(sqlite_columns)
    for table in PG_ONLY:
        del pg_columns[table]
    assert pg_columns == sqlite_columns


def _old_desk(db: Database) -> None:
    """A desk at schema 1: an operator, a chat with messages (one a system message
    of before notices), a setting."""
    assert migrate(db, 1) == (0, 1)
    with connect_raw(db) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO operators (id, username, name, password_hash, role, departments,"
            " capacity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("o1", "anna", "Anna", "h", "operator", "sales", 3, 1.5),
        )
        conn.execute(
            "INSERT INTO sessions (id, token_hash, state, created_at, visitor_name)"
            " VALUES (?, ?, ?, ?, ?)",
            ("s1", "th", "closed", 2.0, "Vera"),
        )
        for seq, sender, text in (
            (1, "visitor", "hello 100%"),
            (2, "system", "Anna joined the chat."),
            (3, "system", "Something else."),
        ):
            conn.execute(
                "INSERT INTO messages (session_id, seq, ts, sender, text, client_msg_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                ("s1", seq, 1000 + seq, sender, text, f"c{seq}" if seq == 1 else None),
            )
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("secret", "k"))


async def test_a_desk_of_the_oldest_schema_migrates_with_its_rows(database: Database) -> None:
    _old_desk(database)
    assert schema_version(database) == 1
    assert migrate(database) == (1, SCHEMA_VERSION)
    assert migrate(database) == (SCHEMA_VERSION, SCHEMA_VERSION)  # nothing left to do
    store = (
        PostgresStore(database)
        if database.kind == "postgresql"
        else SqliteStore(database.path or Path())
    )
    await store.open()
    try:
        operator = await store.operator_by_username("anna")
        assert operator is not None
        assert (operator.departments, operator.levels, operator.token_version) == (
            ("sales",),
            (1,),
            0,
        )
        session = await store.session(SessionId("s1"))
        assert session is not None
        assert (session.visitor_name, session.kind, session.level, session.last_seq) == (
            "Vera",
            "chat",
            1,
            3,
        )
        rows = await store.messages_after(SessionId("s1"), 0, 10)
        assert [r.text for r in rows] == ["hello 100%", "Anna joined the chat.", "Something else."]
        # Step 8 gave the old system text its notice; an unknown text stays text-only.
        assert rows[1].extra == {"notice": {"code": "operator_joined", "params": {"name": "Anna"}}}
        assert rows[2].extra is None
        assert await store.get_meta("secret") == "k"
        # Numbering goes on after the migrated messages; the old client id is known.
        new = MessageRecord(SessionId("s1"), 0, 2000, "visitor", None, "V", "again", "c9")
        assert await store.submit_message(new) == 4
        assert await store.client_msg_ids(SessionId("s1")) == {
            ("visitor", "c1"): 1,
            ("visitor", "c9"): 4,
        }
    finally:
        await store.close()


def test_a_database_newer_than_the_code_is_refused(database: Database) -> None:
    migrate(database)
    with connect_raw(database) as conn:
        if conn.kind == "sqlite":
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        else:
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer than this chatserver"):
        migrate(database)
    with pytest.raises(RuntimeError, match="newer"):
        connect(database)


def test_nodes_starting_at_once_migrate_once() -> None:
    with pg_database() as db, concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrate(db), range(4)))
        # Exactly one found nothing; the others found it done (under the lock).
        assert sorted(results) == [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 3
        assert schema_version(db) == SCHEMA_VERSION


def test_ticket_numbers_come_from_a_sequence_on_postgresql() -> None:
    with pg_database() as db, connect(db) as conn:
        with conn.transaction():
            first = conn.next_ticket_number(100001)
        with contextlib.suppress(ZeroDivisionError), conn.transaction():
            conn.next_ticket_number(100001)
            raise ZeroDivisionError  # rolled back: the sequence does not go back
        with conn.transaction():
            assert conn.next_ticket_number(100001) == first + 2
        assert first == 100001


def test_the_migrate_command_reports_versions(capsys: pytest.CaptureFixture[str]) -> None:
    with pg_database() as db:
        assert db.schema is not None
        args = ["migrate", "--database-url", PG_URL, "--database-schema", db.schema]
        assert main(args) == 0
        assert f"schema version 0 -> {SCHEMA_VERSION} (migrated)" in capsys.readouterr().out
        assert main(args) == 0
        out = capsys.readouterr().out
        assert f"schema version {SCHEMA_VERSION} -> {SCHEMA_VERSION} (already up to date)" in out
        assert "@127.0.0.1" in out and "password" not in out


def test_the_migrate_command_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--data-dir", str(tmp_path)]) == 0
    assert f"0 -> {SCHEMA_VERSION}" in capsys.readouterr().out
    assert schema_version(as_database(tmp_path / "chatserver.sqlite3")) == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("url", "schema", "problem"),
    [
        ("mysql://x@y/z", None, "expected sqlite:///path or postgresql://"),
        ("postgresql:x", None, "expected postgresql://user@host/db"),
        ("sqlite://", None, "names no file"),
        ("sqlite://host/x.db", None, "names no host"),
        (PG_URL, "Bad-Name", "lower-case letters"),
        (PG_URL, "x; DROP TABLE y", "lower-case letters"),
    ],
)
def test_a_bad_database_setting_is_refused_before_anything(
    url: str, schema: str | None, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_database_url(url, schema=schema)
    args = ["migrate", "--database-url", url] + (["--database-schema", schema] if schema else [])
    assert main(args) == 2
    assert "configuration error: database_url" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"CHATSERVER_DATABASE_SCHEMA": "s1"}, "database_schema: only with a PostgreSQL"),
        ({"CHATSERVER_DATABASE_URL": PG_URL, "CHATSERVER_STORE_JOURNAL": "1",
          "CHATSERVER_STORE_SYNCHRONOUS": "NORMAL"}, "store_journal: only with the SQLite"),
        ({"CHATSERVER_DATABASE_URL": "oracle://x"}, "database_url: database URL"),
    ],
)  # fmt: skip
def test_database_settings_that_do_not_fit_are_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.load(env=env)


def test_sqlite_urls_name_their_file(tmp_path: Path) -> None:
    assert parse_database_url(f"sqlite://{tmp_path}/a.db").path == tmp_path / "a.db"
    assert parse_database_url(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"
    assert parse_database_url("sqlite:///srv/desk/x%20y.db").path == Path("/srv/desk/x y.db")
    assert parse_database_url("sqlite:rel/b.db").path == Path("rel/b.db")
    assert parse_database_url("", data_dir=tmp_path).path == tmp_path / "chatserver.sqlite3"
    pg = parse_database_url("postgres://u:secret@h:5433/db", schema="s1")
    assert pg.kind == "postgresql" and pg.describe() == "postgres://u@h:5433/db (schema s1)"


def test_attachment_tables_an_older_node_made_itself_survive_step_15() -> None:
    """Before step 15, PgBlobStore.open() created the attachment tables; the step
    takes them as they are, blobs and all."""
    with pg_database() as db:
        migrate(db, 14)
        with connect_raw(db) as conn:
            conn.execute(
                "CREATE TABLE attachment_blobs (blob_id TEXT PRIMARY KEY, size BIGINT NOT NULL,"
                " sha256 TEXT NOT NULL, chunks INTEGER NOT NULL,"
                " created_at DOUBLE PRECISION NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE attachment_chunks (blob_id TEXT NOT NULL, n INTEGER NOT NULL,"
                " data BYTEA NOT NULL, PRIMARY KEY (blob_id, n))"
            )
            conn.execute("INSERT INTO attachment_blobs VALUES ('db:1', 2, 'h', 1, 1.0)")
        assert migrate(db) == (14, SCHEMA_VERSION)
        with connect_raw(db) as conn:
            rows = conn.execute("SELECT blob_id, size FROM attachment_blobs").fetchall()
            storage = conn.execute(
                "SELECT attstorage FROM pg_attribute WHERE attname = 'data'"
                " AND attrelid = 'attachment_chunks'::regclass"
            ).fetchone()
        assert [tuple(r) for r in rows] == [("db:1", 2)]
        assert storage is not None and storage[0] == "e"  # EXTERNAL
