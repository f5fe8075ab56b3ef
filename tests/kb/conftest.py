"""Fixtures of the knowledge base's tests: each storage implementation, and a service on it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.kb.model import ArticleFields, Author, check_fields
from chatserver.kb.service import KnowledgeBase, indexed
from chatserver.kb.store.base import KbStorage
from chatserver.kb.store.postgres import PostgresKbStore
from chatserver.kb.store.sqlite import SqliteKbStore
from chatserver.store.base import OperatorRecord
from chatserver.store.database import Database, as_database
from chatserver.types import OperatorId
from tests.pg import pg_database

# name -> factory(tmp_path, exit stack): one contract, every implementation; the
# PostgreSQL one on a schema of its own per test, dropped at the end (skipped where
# PostgreSQL does not answer).
STORES: dict[str, Callable[[Path, contextlib.ExitStack], KbStorage]] = {
    "sqlite": lambda tmp, _: SqliteKbStore(tmp / "chatserver.sqlite3"),
    "postgresql": lambda _, stack: PostgresKbStore(stack.enter_context(pg_database())),
}

EDITOR = Author("o_sup", "Sam Supervisor")


@pytest.fixture(params=sorted(STORES))
async def store(request: Any, tmp_path: Path) -> AsyncIterator[KbStorage]:
    with contextlib.ExitStack() as stack:
        made = STORES[request.param](tmp_path, stack)
        await made.open()
        try:
            yield made
        finally:
            await made.close()


def database_of(store: KbStorage) -> Database:
    """The database ``store`` works on (to look at its tables directly)."""
    if isinstance(store, PostgresKbStore):
        return store.db
    assert isinstance(store, SqliteKbStore)
    return as_database(store.path)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


# The visitors' chat sessions the service's tests know (a feedback names one of them).
SESSIONS = {"v1", "v2", "s_AbC-12_x"}


async def session_exists(session_id: str) -> bool:
    return session_id in SESSIONS


@pytest.fixture
def kb(store: KbStorage, clock: Clock) -> KnowledgeBase:
    return KnowledgeBase(store, clock, sessions=session_exists)


def operator(role: str, name: str = "Sam") -> OperatorRecord:
    return OperatorRecord(OperatorId(f"o_{role}"), role, name, "x", role, (), 5, 0.0)


def fields(**data: Any) -> ArticleFields:
    return check_fields({"lang": "de", "status": "published", **data})


async def add(store: KbStorage, now: float = 1_800_000_000.0, **data: Any) -> Any:
    made = fields(**data)
    return await store.create(made, indexed(made), EDITOR, now)
