"""Attachment bytes in PostgreSQL: a :class:`~chatserver.attachments.blobs.BlobStore`.

A blob is rows of ``attachment_chunks(blob_id, n, data BYTEA)``, each at most
:data:`~chatserver.attachments.blobs.CHUNK_BYTES`, plus one row of
``attachment_blobs(blob_id, size, sha256, chunks, created_at)`` written last in the
same transaction: a blob exists exactly when that row does. Writing inserts chunk by
chunk as the bytes arrive; reading fetches one chunk per query on a pooled connection
(none is held between chunks, so a slow download holds no connection). Copies are made
inside the database (``INSERT … SELECT``), never through this process.

The tables come from the store's migrations (step 15 of
:data:`chatserver.store.postgres.schema.PG_MIGRATIONS`, run by ``chatserver migrate``
and by every node's start); :meth:`PgBlobStore.open` only checks they are there.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from chatserver.attachments.blobs import CHUNK_BYTES, StoredBlob, limited
from chatserver.errors import NotFound

_PREFIX = "db:"


def _options(schema: str | None) -> str | None:
    if not schema:
        return None
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"not a schema name: {schema!r}")
    return f"-c search_path={schema}"


class PgBlobStore:
    """Attachment bytes in the database at ``conninfo`` (``search_path`` ``schema``).

    Storage names are ``db:<hex>``. The async methods use a pool of up to
    ``pool_size`` connections opened by :meth:`open`; the blocking ones open a
    connection of their own per call (they are rare: copies into tickets, audits,
    raw inbound mail).
    """

    def __init__(self, conninfo: str, schema: str | None = None, *, pool_size: int = 4) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self._options = _options(schema)
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None

    def _kwargs(self) -> dict[str, str]:
        return {"options": self._options} if self._options else {}

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True, **self._kwargs()},
            open=False,
        )
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                found = await (
                    await conn.execute("SELECT to_regclass('attachment_chunks') IS NOT NULL")
                ).fetchone()
        except BaseException:
            await pool.close()
            raise
        if not (found and found[0]):
            await pool.close()
            raise RuntimeError(
                "no attachment tables in the database (schema older than version 15):"
                " run `chatserver migrate`"
            )
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("PgBlobStore.open() was not called")
        return self._pool

    @staticmethod
    def _new_name() -> str:
        return _PREFIX + secrets.token_hex(16)

    async def save(self, chunks: AsyncIterable[bytes], *, limit: int) -> StoredBlob:
        storage = self._new_name()
        sha = hashlib.sha256()
        size = n = 0
        async with self.pool.connection() as conn, conn.transaction():
            async for chunk in limited(chunks, limit):
                await conn.execute(
                    "INSERT INTO attachment_chunks (blob_id, n, data) VALUES (%s, %s, %s)",
                    (storage, n, chunk),
                )
                sha.update(chunk)
                size += len(chunk)
                n += 1
            await conn.execute(
                "INSERT INTO attachment_blobs (blob_id, size, sha256, chunks, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (storage, size, sha.hexdigest(), n, time.time()),
            )
        return StoredBlob(storage, size, sha.hexdigest())

    async def _chunk_count(self, storage: str) -> int | None:
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT chunks FROM attachment_blobs WHERE blob_id = %s", (storage,)
                )
            ).fetchone()
        return None if row is None else int(row[0])

    async def stream(self, storage: str) -> AsyncIterator[bytes]:
        count = await self._chunk_count(storage)
        if count is None:
            raise NotFound("no such attachment file")
        return self._chunks(storage, count)

    async def _chunks(self, storage: str, count: int) -> AsyncIterator[bytes]:
        for n in range(count):
            async with self.pool.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT data FROM attachment_chunks WHERE blob_id = %s AND n = %s",
                        (storage, n),
                    )
                ).fetchone()
            if row is None:
                raise NotFound("the attachment file was removed while it was read")
            yield bytes(row[0])

    async def delete(self, storage: str) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("DELETE FROM attachment_blobs WHERE blob_id = %s", (storage,))
            await conn.execute("DELETE FROM attachment_chunks WHERE blob_id = %s", (storage,))
            return cur.rowcount > 0

    async def exists(self, storage: str) -> bool:
        return await self._chunk_count(storage) is not None

    # ------------------------------------------------------------ blocking side
    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        conn = psycopg.connect(self.conninfo, autocommit=True, options=self._options or "")
        try:
            yield conn
        finally:
            conn.close()

    def put(self, data: bytes) -> tuple[str, str]:
        storage = self._new_name()
        digest = hashlib.sha256(data).hexdigest()
        pieces = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
        with self._connect() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO attachment_chunks (blob_id, n, data) VALUES (%s, %s, %s)",
                    [(storage, n, piece) for n, piece in enumerate(pieces)],
                )
            conn.execute(
                "INSERT INTO attachment_blobs (blob_id, size, sha256, chunks, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (storage, len(data), digest, len(pieces), time.time()),
            )
        return storage, digest

    def copy(self, storage: str) -> str:
        new = self._new_name()
        with self._connect() as conn, conn.transaction():
            cur = conn.execute(
                "INSERT INTO attachment_blobs (blob_id, size, sha256, chunks, created_at)"
                " SELECT %s, size, sha256, chunks, %s FROM attachment_blobs WHERE blob_id = %s",
                (new, time.time(), storage),
            )
            if cur.rowcount == 0:
                raise NotFound("no such attachment file")
            conn.execute(
                "INSERT INTO attachment_chunks (blob_id, n, data)"
                " SELECT %s, n, data FROM attachment_chunks WHERE blob_id = %s",
                (new, storage),
            )
        return new

    @staticmethod
    def _blocking_chunks(
        conn: psycopg.Connection[tuple[Any, ...]], storage: str
    ) -> Iterator[bytes]:
        """The chunks of a blob in order; :class:`NotFound` if there is none."""
        row = conn.execute(
            "SELECT chunks FROM attachment_blobs WHERE blob_id = %s", (storage,)
        ).fetchone()
        if row is None:
            raise NotFound("no such attachment file")
        for n in range(int(row[0])):
            got = conn.execute(
                "SELECT data FROM attachment_chunks WHERE blob_id = %s AND n = %s",
                (storage, n),
            ).fetchone()
            # A missing chunk reads as empty: the digest then disagrees, as it should.
            yield b"" if got is None else bytes(got[0])

    def read(self, storage: str) -> bytes:
        with self._connect() as conn:
            return b"".join(self._blocking_chunks(conn, storage))

    def digest(self, storage: str) -> str | None:
        sha = hashlib.sha256()
        with self._connect() as conn:
            try:
                for chunk in self._blocking_chunks(conn, storage):
                    sha.update(chunk)
            except NotFound:
                return None
        return sha.hexdigest()
