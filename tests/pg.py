"""A PostgreSQL database of one's own for a test: a fresh schema, dropped after.

PostgreSQL is at ``PG_URL`` (``CHATSERVER_TEST_PG_URL`` overrides it); tests
that need it skip when it does not answer (CI's ``.ci/run`` makes sure it does).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from chatserver.store.database import Database, parse_database_url

PG_URL = os.environ.get("CHATSERVER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextlib.contextmanager
def pg_database() -> Iterator[Database]:
    """A :class:`Database` on a new schema ``t_<random>`` (created by the first
    migration), dropped with everything in it at exit; skips the test without
    PostgreSQL."""
    if not pg_available():
        pytest.skip(f"PostgreSQL does not answer at {PG_URL}")
    schema = f"t_{secrets.token_hex(6)}"
    try:
        yield parse_database_url(PG_URL, schema=schema)
    finally:
        drop_schema(schema)
