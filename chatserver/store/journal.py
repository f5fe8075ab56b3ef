"""Append-only message journal: a message is durable once it is copied into
the journal's shared memory map.

A single node (no other process writes the SQLite file) stores a chat message
by appending it, msgpack-encoded, to the current journal segment, a file
allocated whole and mapped into memory: one memory copy, no system call, no
transaction, on the caller's step. The data is then in the kernel's page
cache, so it survives a ``kill -9`` of the server (the same promise as a
``write()``, and as a SQLite commit with ``synchronous=NORMAL``, which does not
fsync either). :class:`~chatserver.store.sqlite.SqliteStore` copies the
journal into its ``messages`` table every fraction of a second in one
transaction (a bulk insert: a fraction of the cost of a commit per message);
a segment is deleted once it is full and copied. After a crash the store
copies what is left before it serves (again, for rows copied already: that
stores nothing twice).

A segment is a stream of msgpack arrays, one per message, in the order of the
``messages`` columns, followed by the zeros of its unwritten part. A torn last
record (the process died inside a copy) is dropped: its message was never
acknowledged. A segment that does not decode is kept beside the others as
``*.bad`` after its readable part is saved.

Only one process may use a journal directory: :meth:`Journal.open` takes an
exclusive ``flock`` and fails with :class:`JournalBusy` otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
from pathlib import Path
from typing import Any

import msgpack

log = logging.getLogger("chatserver.store")

# A journal row: the values of the ``messages`` columns, in order.
Row = tuple[Any, ...]
COLUMNS = (
    "session_id",
    "seq",
    "ts",
    "sender",
    "sender_id",
    "author",
    "text",
    "client_msg_id",
    "event",
    "extra",
)
_SUFFIX = ".seg"
# The size at which a segment is closed: at most this much is copied again
# after a crash (some 25 000 messages, well under a second).
SEGMENT_BYTES = 4 << 20


def journal_dir(db_path: Path) -> Path:
    """The journal directory of the database file ``db_path``."""
    return db_path.with_name(db_path.name + ".msglog")


class JournalBusy(RuntimeError):
    """Another process holds this journal directory."""


def _valid(row: Any) -> bool:
    return (
        isinstance(row, list)
        and len(row) == len(COLUMNS)
        and isinstance(row[0], str)
        and isinstance(row[1], int)
        and isinstance(row[2], int)
        and isinstance(row[3], str)
        and isinstance(row[6], str)
    )


def unpack_row(data: bytes) -> Row:
    """A row as :meth:`Journal.append` wrote it."""
    row: Row = msgpack.unpackb(data, raw=False, use_list=False)
    return row


def read_segment(path: Path) -> tuple[list[Row], bool]:
    """The rows of a segment, and whether all of it decoded (a torn last
    record counts as decoded: it was never acknowledged)."""
    # A segment is allocated whole and filled from the start; the rest is
    # zeros. No record ends in a zero byte (the last column, ``extra``, is nil
    # or JSON text), so stripping them leaves the records, a torn last one
    # included.
    data = path.read_bytes().rstrip(b"\0")
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1024))
    unpacker.feed(data)
    rows: list[Row] = []
    try:
        for item in unpacker:
            if not _valid(item):
                log.error("journal %s: record %d is not a message row", path, len(rows))
                return rows, False
            rows.append(tuple(item))
    except (ValueError, msgpack.UnpackException) as exc:
        log.error("journal %s: undecodable after record %d: %s", path, len(rows), exc)
        return rows, False
    torn = len(data) - unpacker.tell()
    if torn:
        log.warning("journal %s: dropped a torn last record (%d bytes)", path, torn)
    return rows, True


class Journal:
    """The segments of one directory; the current one takes appends."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._path: Path | None = None
        self._map: mmap.mmap | None = None
        self._offset = 0
        self._copied = 0
        # The segment and offset the last take_pending() handed to a copy.
        self._taken_at: tuple[Path | None, int] = (None, 0)
        self._next = 1
        self._packer = msgpack.Packer(use_bin_type=True)
        # Rows appended since the last take_pending(), in order, as written
        # (msgpack): bytes are no work for the cyclic GC, a tuple per row is
        # (a young-generation pause of milliseconds every second at 5 000 msg/s).
        self.pending: list[bytes] = []
        # Closed segments whose rows have not been ingested yet, oldest first.
        self.closed: list[Path] = []
        # Appends are refused unless True (set by the owner once it serves).
        self.accepting = False

    def open(self) -> list[Path]:
        """Lock the directory; return the segments a previous process left
        behind (oldest first). Call :meth:`start` once they are ingested."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalBusy(
                f"{self.directory} is in use by another process: nodes sharing one"
                " database need Redis (--redis-url)"
            ) from None
        self._lock_fd = fd
        left = sorted(self.directory.glob("*" + _SUFFIX))
        numbers = [int(p.stem) for p in left if p.stem.isdigit()]
        self._next = max(numbers, default=0) + 1
        return left

    def start(self) -> mmap.mmap:
        """Open a fresh segment for appends: :data:`SEGMENT_BYTES` allocated
        on disk now (a full disk fails here, never inside a write to the map)
        and mapped shared; returns the map."""
        path = self.directory / f"{self._next:012d}{_SUFFIX}"
        self._next += 1
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        size = SEGMENT_BYTES
        try:
            os.posix_fallocate(fd, 0, size)
            mm = self._map = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        self._fd = fd
        self._path = path
        self._offset = 0
        self._copied = 0  # bytes of the current segment in the database
        return mm

    def append(self, row: Row) -> None:
        """Write ``row`` to the current segment; durable (against a process
        crash) when this returns. On an error nothing of it stays written.

        The write is a copy into the shared map of the segment: the data is
        then in the kernel's page cache, exactly as after a ``write()``, at
        the cost of a memory copy instead of a system call and an inode update.
        """
        mm = self._map
        if mm is None:
            if self._lock_fd is None:
                raise RuntimeError("journal is closed")
            mm = self.start()  # the last one could not be made (disk full?): try again
        data = self._packer.pack(row)
        end = self._offset + len(data)
        if end > len(mm):
            if len(data) > SEGMENT_BYTES:
                raise OSError(errno.EFBIG, "a journal row is larger than a segment")
            self.closed.append(self._close_segment())
            mm = self.start()
            end = len(data)
        mm[end - len(data) : end] = data
        self._offset = end
        self.pending.append(data)

    def _close_segment(self) -> Path:
        """Unmap and close the current segment, cut to its data; returns its path."""
        assert self._map is not None and self._fd is not None and self._path is not None
        self._map.close()
        self._map = None
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._offset)
        os.close(self._fd)
        self._fd = None
        return self._path

    def take_pending(self) -> list[bytes]:
        """The rows appended since the last call, msgpack-encoded (:func:`unpack_row`
        decodes one), for a copy. The current
        segment stays open until it is full (:data:`SEGMENT_BYTES`), so a copy
        costs no file creation or deletion (after a crash its copied rows are
        copied again, which stores nothing twice)."""
        rows, self.pending = self.pending, []
        if self._map is None:
            self.start()
        self._taken_at = (self._path, self._offset)
        return rows

    def ingested(self, count: int) -> None:
        """The oldest ``count`` closed segments are in the database: delete them."""
        path, offset = self._taken_at
        if path == self._path:
            self._copied = offset
        done, self.closed = self.closed[:count], self.closed[count:]
        for path in done:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        """Close the current segment and unlock; the segment is deleted if
        every row of it is in the database (or it is empty)."""
        if self._map is not None:
            copied = self._offset == self._copied and not self.pending
            path = self._close_segment()
            if copied:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
