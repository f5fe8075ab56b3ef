"""Blob stores for the contract suite: a directory, and PostgreSQL in a schema of its own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from chatserver.attachments.blobs import BlobStore
from chatserver.attachments.files import FileStore
from chatserver.attachments.pg_blobs import PgBlobStore
from chatserver.store.database import migrate, parse_database_url
from tests.pg import PG_URL

__all__ = ["PG_URL"]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the test database, migrated (the attachment tables are step
    15), dropped with everything in it afterwards."""
    name = "t_" + secrets.token_hex(6)
    migrate(parse_database_url(PG_URL, schema=name))
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture(params=["directory", "postgresql"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    store: BlobStore
    if request.param == "directory":
        store = FileStore(tmp_path / "attachments")
    else:
        store = PgBlobStore(PG_URL, request.getfixturevalue("pg_schema"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()
