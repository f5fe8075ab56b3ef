"""Store backends for the contract suite (``test_contract.py``): one factory each.

Every test of the contract takes the ``backend`` fixture: a fresh database and
a way to open stores on it. Adding an implementation (PostgreSQL) is adding one
entry to :data:`FACTORIES` (and to :data:`SHARED` if several stores may use
one database at once), not copying a test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from chatserver.store.base import Store
from chatserver.store.database import Database, connect
from chatserver.store.postgres.store import PostgresStore
from chatserver.store.sqlite import SqliteStore, connect_sync
from tests.pg import pg_database


class Backend(Protocol):
    """What each factory makes: one test's database, and stores on it."""

    async def store(self) -> Store:
        """A new store on this test's database, opened (closed at teardown if
        the test did not close it)."""
        ...

    def insert(self, table: str, **columns: Any) -> None:
        """Write a row straight into the database: for what the store contract
        reads but another contract writes (tickets, SLA breaches)."""

    async def aclose(self) -> None:
        """Close every store still open."""


class SqliteBackend:
    """One SQLite file per test; ``options`` are :class:`SqliteStore`'s."""

    def __init__(self, directory: Path, **options: Any) -> None:
        self.path = directory / "store.sqlite3"
        self.options = options
        self.opened: list[SqliteStore] = []

    async def store(self) -> Store:
        store = SqliteStore(self.path, **self.options)
        await store.open()
        self.opened.append(store)
        return store

    def insert(self, table: str, **columns: Any) -> None:
        conn = connect_sync(self.path)
        try:
            names = ", ".join(columns)
            marks = ", ".join("?" * len(columns))
            conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(columns.values()))
        finally:
            conn.close()

    async def aclose(self) -> None:
        for store in self.opened:
            if store.healthy:
                await store.close()


class PostgresBackend:
    """One schema of its own per test (see :func:`tests.pg.pg_database`), dropped at the end."""

    def __init__(self, **options: Any) -> None:
        self._schema = contextlib.ExitStack()
        self.db: Database = self._schema.enter_context(pg_database())
        self.options = options
        self.opened: list[PostgresStore] = []

    async def store(self) -> Store:
        store = PostgresStore(self.db, **self.options)
        await store.open()
        self.opened.append(store)
        return store

    def insert(self, table: str, **columns: Any) -> None:
        with connect(self.db) as conn:
            names = ", ".join(columns)
            marks = ", ".join("?" * len(columns))
            conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(columns.values()))

    async def aclose(self) -> None:
        try:
            for store in self.opened:
                if store.healthy:
                    await store.close()
        finally:
            self._schema.close()


FACTORIES: dict[str, Callable[[Path], Backend]] = {
    # The store as several nodes sharing a file run it: commits on a thread, fsync.
    "sqlite": lambda tmp: SqliteBackend(tmp),
    # A single node without the journal: commits on the event loop's thread.
    "sqlite-inline": lambda tmp: SqliteBackend(tmp, inline=True, synchronous="NORMAL"),
    # The single-node default: messages go to the journal, settled at once.
    "sqlite-journal": lambda tmp: SqliteBackend(
        tmp, inline=True, synchronous="NORMAL", journal=True
    ),
    # Many hosts on one PostgreSQL database (skipped where PostgreSQL does not answer).
    "postgresql": lambda tmp: PostgresBackend(),
}
# Backends whose database several stores (processes) may use at once.
SHARED = ["sqlite", "sqlite-inline", "postgresql"]


@pytest.fixture(params=sorted(FACTORIES))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = FACTORIES[request.param](tmp_path)
    yield made
    await made.aclose()


@pytest.fixture(params=SHARED)
async def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = FACTORIES[request.param](tmp_path)
    yield made
    await made.aclose()


@pytest.fixture
async def store(backend: Backend) -> Store:
    """An open store of each backend."""
    return await backend.store()
