"""Where the data lives (SQLite file or PostgreSQL), and plain sync connections to it.

:func:`parse_database_url` turns ``settings.database_url`` (``--database-url``)
into a :class:`Database`: empty means the SQLite file under the data directory
(the default), ``sqlite:///path`` another SQLite file, ``postgresql://...`` a
PostgreSQL database, optionally in one schema (``--database-schema``: every
connection's ``search_path``; tests isolate with it).

:func:`connect` gives the human-paced code (tickets, audit, operator and CLI
commands) one sync :class:`Connection` for both backends, schema migrated, so
that the same SQL serves both:

- write ``?`` placeholders (translated to ``%s`` on PostgreSQL, where a ``%``
  of the text is escaped); ``bool`` parameters are stored as ``0``/``1``; on
  PostgreSQL a NUL character in a text parameter is stored as U+FFFD (its text
  type cannot hold one);
- write portable SQL: ``INSERT ... ON CONFLICT (...) DO NOTHING`` or ``DO
  UPDATE SET c = excluded.c`` (not ``INSERT OR IGNORE/REPLACE``), ``RETURNING
  id`` (not ``lastrowid``), no ``rowid``, no ``PRAGMA``;
- group writes in ``with conn.transaction():`` (SQLite ``BEGIN IMMEDIATE``,
  PostgreSQL ``BEGIN``); outside it each statement commits on its own;
- what must not clash between nodes on PostgreSQL takes :meth:`Connection.lock`
  first (SQLite's write lock already covers the whole transaction);
- catch :data:`INTEGRITY_ERRORS` and :data:`DB_ERRORS`, not one driver's.

:func:`migrate` brings either backend to the latest schema (``chatserver
migrate``, and every connect and store open): one numbered list of steps, each
in SQLite's form (:data:`chatserver.store.sqlite.schema.MIGRATIONS`) and in
PostgreSQL's (:data:`chatserver.store.postgres.schema.PG_MIGRATIONS`), the same
number in both.

The message store itself does not use :class:`Connection` (it has a backend
each: :mod:`chatserver.store.sqlite`, :mod:`chatserver.store.postgres`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import sqlite3
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
import psycopg.errors

from chatserver.store.postgres import schema as pg_schema
from chatserver.store.sqlite import schema as sqlite_schema

Kind = Literal["sqlite", "postgresql"]

# Errors of either driver, for code that serves both backends.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    psycopg.errors.IntegrityError,
)
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SQLITE_FILE = "chatserver.sqlite3"


@dataclasses.dataclass(frozen=True, slots=True)
class Database:
    """One database: a SQLite file (``path``) or PostgreSQL (``conninfo``, ``schema``)."""

    kind: Kind
    path: Path | None = None
    conninfo: str | None = None
    schema: str | None = None

    def describe(self) -> str:
        """The location for logs and messages (no password)."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        parts = urllib.parse.urlsplit(self.conninfo or "")
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return shown + (f" (schema {self.schema})" if self.schema else "")

    def pg_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``psycopg.connect`` besides the conninfo."""
        return {"options": f"-c search_path={self.schema}"} if self.schema else {}


def parse_database_url(
    url: str, *, data_dir: Path | None = None, schema: str | None = None
) -> Database:
    """The :class:`Database` of ``url`` (see the module docstring); ``ValueError``
    naming the problem for anything else."""
    url = url.strip()
    if schema and not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"database schema {schema!r}: lower-case letters, digits and _ only")
    if not url:
        if data_dir is None:
            raise ValueError("no database URL and no data directory")
        return Database("sqlite", path=data_dir / SQLITE_FILE)
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme == "sqlite":
        # sqlite:///abs/path (also sqlite:////abs/path), or sqlite:relative/path
        path = rest
        if not rest.strip("/"):
            raise ValueError(f"database URL {url!r} names no file")
        if rest.startswith("//"):
            path = "/" + rest.lstrip("/")
            if not rest[2:].startswith("/"):
                raise ValueError(f"database URL {url!r}: a SQLite URL names no host")
        return Database("sqlite", path=Path(urllib.parse.unquote(path)))
    if scheme in {"postgresql", "postgres"}:
        if not rest.startswith("//"):
            raise ValueError(f"database URL {url!r}: expected postgresql://user@host/db")
        return Database("postgresql", conninfo=url, schema=schema or None)
    raise ValueError(f"database URL {url!r}: expected sqlite:///path or postgresql://...")


def as_database(db: Path | Database) -> Database:
    """``db`` itself, or the SQLite file at a path (the call sites of before)."""
    return db if isinstance(db, Database) else Database("sqlite", path=db)


class Cursor(Protocol):
    """What a statement returns on either backend."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``sql`` with ``?`` placeholders (outside quotes) as ``%s`` and ``%`` as ``%%``."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


def _params(params: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


def nul_free(value: Any) -> Any:
    """``value``, a text without NUL characters (PostgreSQL's text cannot hold one:
    each becomes U+FFFD); anything else as it is."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _pg_params(params: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(int(p) if isinstance(p, bool) else nul_free(p) for p in params)


class Connection:
    """A sync connection to either backend (see the module docstring); not thread-safe."""

    def __init__(self, kind: Kind, raw: sqlite3.Connection | psycopg.Connection[Any]) -> None:
        self.kind: Kind = kind
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if isinstance(self.raw, sqlite3.Connection):
            return self.raw.execute(sql, _params(params))
        if not params:
            return self.raw.execute(sql)
        return self.raw.execute(to_pyformat(sql), _pg_params(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if isinstance(self.raw, sqlite3.Connection):
            self.raw.executemany(sql, (_params(r) for r in rows))
        else:
            with self.raw.cursor() as cur:
                cur.executemany(to_pyformat(sql), [_pg_params(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction (SQLite: ``BEGIN IMMEDIATE``, the write lock at once);
        committed at the end, rolled back on an exception."""
        if isinstance(self.raw, sqlite3.Connection):
            conn = self.raw
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        else:
            with self.raw.transaction():
                yield self

    def lock(self, key: str) -> None:
        """Inside :meth:`transaction`: serialise with every other node that locks
        ``key`` (PostgreSQL: an advisory lock until the end of the transaction)."""
        if self.kind == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_SPACE, lock_key(key)))

    def next_ticket_number(self, first: int) -> int:
        """Inside :meth:`transaction`: a new ticket number, never below ``first``
        (PostgreSQL: the sequence ``ticket_numbers``; SQLite: the highest + 1,
        inside the write lock)."""
        if self.kind == "postgresql":
            return int(self.execute("SELECT nextval('ticket_numbers')").fetchone()[0])
        top = self.execute("SELECT MAX(number) FROM tickets").fetchone()[0]
        return max(int(top or 0) + 1, first)

    @property
    def broken(self) -> bool:
        """Whether the connection is lost (PostgreSQL restarted): open a new one."""
        return isinstance(self.raw, psycopg.Connection) and (self.raw.closed or self.raw.broken)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The class id of this package's advisory locks (objid: a hash of the key).
LOCK_SPACE = 0x43_53  # "CS"


def lock_key(key: str) -> int:
    """A signed 32-bit lock id of ``key``."""
    value = zlib.crc32(key.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def connect_raw(db: Database) -> Connection:
    """A connection without migrating (the migration itself, tests)."""
    if db.kind == "sqlite":
        assert db.path is not None
        db.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return Connection("sqlite", conn)
    assert db.conninfo is not None
    return Connection("postgresql", psycopg.connect(db.conninfo, autocommit=True, **db.pg_kwargs()))


def migrate(db: Database, target: int | None = None) -> tuple[int, int]:
    """Bring ``db``'s schema to ``target`` (default: the latest); returns the
    versions (before, after). Several nodes may run this at once: one migrates."""
    conn = connect_raw(db)
    try:
        return migrate_connection(conn, db, target)
    finally:
        conn.close()


def migrate_connection(
    conn: Connection, db: Database, target: int | None = None
) -> tuple[int, int]:
    """:func:`migrate` on an open connection."""
    if isinstance(conn.raw, sqlite3.Connection):
        found = sqlite_schema.migrate(conn.raw, target)
        return found, max(found, target if target is not None else sqlite_schema.SCHEMA_VERSION)
    return pg_schema.migrate(conn.raw, db.schema, target)


def connect(db: Path | Database) -> Connection:
    """A connection to ``db`` (a path: the SQLite file), its schema migrated."""
    database = as_database(db)
    conn = connect_raw(database)
    try:
        migrate_connection(conn, database)
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(db: Database) -> int:
    """The schema version ``db`` has now (0: none)."""
    conn = connect_raw(db)
    try:
        if isinstance(conn.raw, sqlite3.Connection):
            return int(conn.raw.execute("PRAGMA user_version").fetchone()[0])
        return pg_schema.version(conn.raw, db.schema)
    finally:
        conn.close()


SCHEMA_VERSION = sqlite_schema.SCHEMA_VERSION
