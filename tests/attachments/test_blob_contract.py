"""One contract, two blob stores: a directory and PostgreSQL (``conftest.blobs``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from chatserver.attachments.blobs import CHUNK_BYTES, BlobStore, chunks_of, read_all
from chatserver.errors import NotFound, TooLarge


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def collect(store: BlobStore, storage: str) -> list[bytes]:
    return [chunk async for chunk in await store.stream(storage)]


async def test_save_and_stream_round_trip_in_bounded_chunks(blobs: BlobStore):
    data = os.urandom(CHUNK_BYTES * 2 + 12345)
    # Uneven input pieces: the store re-cuts them.
    blob = await blobs.save(pieces(data[:1000], data[1000:700000], data[700000:]), limit=10**7)
    assert blob.size == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    chunks = await collect(blobs, blob.storage)
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= CHUNK_BYTES
    assert len(chunks) == 3
    assert await blobs.exists(blob.storage)
    assert blobs.digest(blob.storage) == blob.sha256
    assert blobs.read(blob.storage) == data


async def test_empty_and_exact_limit(blobs: BlobStore):
    empty = await blobs.save(pieces(), limit=0)
    assert empty.size == 0 and await collect(blobs, empty.storage) == []
    assert blobs.read(empty.storage) == b""
    exact = await blobs.save(chunks_of(b"x" * 100), limit=100)
    assert blobs.read(exact.storage) == b"x" * 100


async def test_over_the_limit_keeps_nothing(blobs: BlobStore):
    before = await _names(blobs)
    with pytest.raises(TooLarge):
        await blobs.save(pieces(b"a" * 60, b"b" * 60), limit=100)
    assert await _names(blobs) == before


async def test_a_failing_source_keeps_nothing(blobs: BlobStore):
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * (CHUNK_BYTES + 5)
        raise ConnectionResetError("client went away")

    before = await _names(blobs)
    with pytest.raises(ConnectionResetError):
        await blobs.save(broken(), limit=10**7)
    assert await _names(blobs) == before


async def test_unknown_names_are_not_found(blobs: BlobStore):
    for name in ["db:" + "0" * 32, "ab/" + "ab" * 16, "../../etc/passwd", "", "x" * 300]:
        assert not await blobs.exists(name)
        with pytest.raises(NotFound):
            await blobs.stream(name)
        with pytest.raises(NotFound):
            blobs.read(name)
        with pytest.raises(NotFound):
            blobs.copy(name)
        assert blobs.digest(name) is None
        assert await blobs.delete(name) is False


async def test_delete_removes_only_that_blob(blobs: BlobStore):
    a = await blobs.save(chunks_of(b"first"), limit=100)
    b = await blobs.save(chunks_of(b"second"), limit=100)
    assert a.storage != b.storage
    assert await blobs.delete(a.storage) is True
    assert not await blobs.exists(a.storage)
    with pytest.raises(NotFound):
        await blobs.stream(a.storage)
    assert await blobs.delete(a.storage) is False
    assert blobs.read(b.storage) == b"second"


async def test_blocking_put_and_copy_are_independent_blobs(blobs: BlobStore):
    data = os.urandom(CHUNK_BYTES + 3)
    storage, digest = blobs.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    copied = blobs.copy(storage)
    assert copied != storage
    assert await blobs.delete(storage)
    assert b"".join(await collect(blobs, copied)) == data
    assert blobs.digest(copied) == digest


async def test_read_all_is_bounded(blobs: BlobStore):
    blob = await blobs.save(chunks_of(b"z" * 5000), limit=10**6)
    assert await read_all(blobs, blob.storage, limit=5000) == b"z" * 5000
    with pytest.raises(TooLarge):
        await read_all(blobs, blob.storage, limit=4999)


async def _names(blobs: BlobStore) -> set[str]:
    """Everything the store holds, complete or not (files, or rows of either table)."""
    from chatserver.attachments.files import FileStore
    from chatserver.attachments.pg_blobs import PgBlobStore

    if isinstance(blobs, FileStore):
        return {str(p.relative_to(blobs.root)) for p in blobs.root.rglob("*") if p.is_file()}
    assert isinstance(blobs, PgBlobStore)
    async with blobs.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT blob_id FROM attachment_blobs UNION ALL"
                " SELECT blob_id || '#' || n FROM attachment_chunks"
            )
        ).fetchall()
    return {r[0] for r in rows}


async def test_nodes_opening_at_once_share_the_tables(pg_schema: str):
    """PostgreSQL only: the tables come from the migration, every node sees them."""
    import asyncio

    from chatserver.attachments.pg_blobs import PgBlobStore
    from tests.attachments.conftest import PG_URL

    stores = [PgBlobStore(PG_URL, pg_schema, pool_size=1) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        blob = await stores[0].save(chunks_of(b"shared"), limit=100)
        for store in stores:
            assert stores[0] is store or store.read(blob.storage) == b"shared"
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_opening_before_the_migration_is_refused_and_creates_nothing():
    """PostgreSQL only: a schema older than step 15 is not patched behind the
    migration's back; open() says what to run."""
    import psycopg

    from chatserver.attachments.pg_blobs import PgBlobStore
    from chatserver.store.database import migrate
    from tests.pg import PG_URL, pg_database

    with pg_database() as db:
        assert db.schema is not None
        migrate(db, 14)
        store = PgBlobStore(PG_URL, db.schema, pool_size=1)
        with pytest.raises(RuntimeError, match="chatserver migrate"):
            await store.open()
        with pytest.raises(RuntimeError, match="open"):
            _ = store.pool
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            found = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = %s"
                " AND tablename IN ('attachment_blobs', 'attachment_chunks')",
                (db.schema,),
            ).fetchone()
        assert found == (0,)
        assert migrate(db)[0] == 14
        await store.open()  # the migration made them
        await store.close()
