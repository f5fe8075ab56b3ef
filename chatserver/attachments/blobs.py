"""Where attachment bytes live: the blob store contract and its helpers.

Two implementations keep the same contract (``tests/attachments/test_blob_contract.py``
runs one suite against both):

- :class:`~chatserver.attachments.files.FileStore`: files in a directory,
  ``<data_dir>/attachments`` by default, or a directory all nodes share
  (``CHATSERVER_ATTACHMENTS_DIR``, e.g. an NFS mount);
- :class:`~chatserver.attachments.pg_blobs.PgBlobStore`: chunks of
  :data:`CHUNK_BYTES` in the PostgreSQL database (tables ``attachment_blobs`` and
  ``attachment_chunks``), the default when the store is PostgreSQL, so a second host
  needs nothing but the database.

A *storage name* (``AttachmentRecord.storage``) is what :meth:`BlobStore.save`
returned; it means nothing outside the store that made it. Writes are all or nothing:
a failed or refused write leaves no blob behind. Bytes go in and out in chunks of at
most :data:`CHUNK_BYTES`, never a whole file in memory (but ``put``/``read``, which the
callers with whole bytes in hand use).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from chatserver.errors import TooLarge

CHUNK_BYTES = 256 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as written: its storage name, its size in bytes and its sha256 (hex)."""

    storage: str
    size: int
    sha256: str


class BlobStore(Protocol):
    """Attachment bytes by storage name.

    The async methods run on the event loop and never block it. The blocking
    methods (``put``, ``copy``, ``read``, ``digest``) are for callers that already
    run on a worker thread (the ticket stores) or hold the bytes anyway.
    """

    async def open(self) -> None:
        """Get ready (connections, directories); idempotent."""

    async def close(self) -> None:
        """Release what :meth:`open` took."""

    async def save(self, chunks: AsyncIterable[bytes], *, limit: int) -> StoredBlob:
        """Store the bytes ``chunks`` yields (any sizes), durably, under a new name.

        More than ``limit`` bytes in all: :class:`TooLarge`, and nothing is kept. A
        failure of the iterator propagates, and nothing is kept either.
        """
        ...

    async def stream(self, storage: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks of at most :data:`CHUNK_BYTES`.

        An unknown name raises :class:`~chatserver.errors.NotFound` here, before any
        chunk, so an HTTP response can still say 404. A blob deleted while it is read
        ends the iteration with ``NotFound``.
        """
        ...

    async def delete(self, storage: str) -> bool:
        """Remove a blob; ``False`` if there was none."""
        ...

    async def exists(self, storage: str) -> bool:
        """Whether a complete blob is stored under ``storage``."""
        ...

    def put(self, data: bytes) -> tuple[str, str]:
        """Blocking: store ``data``; returns ``(storage name, sha256 hex)``."""
        ...

    def copy(self, storage: str) -> str:
        """Blocking: a copy under a new name (for carrying a chat's file into a ticket).

        An unknown name raises :class:`~chatserver.errors.NotFound`.
        """
        ...

    def read(self, storage: str) -> bytes:
        """Blocking: the whole blob (for small ones: a mail's attachments).

        An unknown name raises :class:`~chatserver.errors.NotFound`.
        """
        ...

    def digest(self, storage: str) -> str | None:
        """Blocking: the sha256 of the bytes as stored now, or ``None`` if missing."""
        ...


async def limited(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    """``chunks`` re-cut into pieces of at most :data:`CHUNK_BYTES`; :class:`TooLarge`
    as soon as more than ``limit`` bytes came (before the piece past it is yielded)."""
    total = 0
    pending = bytearray()
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the file is larger than {limit} bytes")
        pending += chunk
        while len(pending) >= CHUNK_BYTES:
            yield bytes(pending[:CHUNK_BYTES])
            del pending[:CHUNK_BYTES]
    if pending:
        yield bytes(pending)


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as an async iterator of :data:`CHUNK_BYTES` pieces (for :meth:`save`)."""
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


async def read_all(store: BlobStore, storage: str, *, limit: int) -> bytes:
    """The whole blob through :meth:`BlobStore.stream`; :class:`TooLarge` past ``limit``."""
    out = bytearray()
    async for chunk in limited(await store.stream(storage), limit):
        out += chunk
    return bytes(out)
