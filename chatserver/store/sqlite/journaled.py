"""The message journal of :class:`~chatserver.store.sqlite.SqliteStore`, and its reads.

With ``journal`` (a single node owns the file), a message is stored by
appending it to the journal (:mod:`chatserver.store.journal`):
:meth:`JournaledStore.append_message` returns its seq at once, durable against
a crash of the process. Every ``journal_interval`` seconds, sooner once
``journal_copy_rows`` messages wait, and before any read of messages, the
journal is copied into the database in one bulk write through the group
commit; a crashed predecessor's journal is copied before the store serves.

Reads go through :meth:`JournaledStore._fetchall` on a connection of their
own, so that every read of messages sees every acknowledged message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

from chatserver.store.base import DuplicateMessage, MessageRecord, client_key
from chatserver.store.journal import (
    COLUMNS,
    Journal,
    JournalBusy,
    journal_dir,
    read_segment,
    unpack_row,
)
from chatserver.store.sqlite.commit import GroupCommit
from chatserver.store.sqlite.rows import INSERT_MESSAGE, message_row
from chatserver.store.sqlite.schema import connect_sync
from chatserver.types import SessionId

log = logging.getLogger("chatserver.store")

# A single node's journal is copied into SQLite every store_journal_interval,
# or as soon as this many messages wait. A copy's cost is mostly per page it
# dirties (each active session's last pages, whatever its count of new rows),
# so fewer, larger copies cost less CPU per message, and rows in key order
# (session, seq) dirty each page once: about 6.5 µs per row at 8192 rows against
# 21 at 1024 unsorted (200 active chats). A copy runs on the writer thread, many
# rows per statement, so SQLite does it without the GIL and the event loop goes
# on serving; reads of messages wait for it.
JOURNAL_COPY_ROWS = 8192
# A journal session with no message for about this long is forgotten (see _forget_idle).
JOURNAL_IDLE_SECONDS = 10.0

# Copies journal rows (see journal.py); a row already there (a crash came
# between the copy and the segment's deletion) is skipped.
_INGEST = (
    f"INSERT OR IGNORE INTO messages ({', '.join(COLUMNS)})"
    f" VALUES ({', '.join(['?'] * len(COLUMNS))})"
)


# Rows per INSERT of a copy: 900 parameters, under the oldest SQLite limit (999).
_CHUNK_ROWS = 90
_ingests: dict[tuple[str, int], str] = {}


def _ingest_sql(ingest: str, rows: int) -> str:
    """``ingest`` (``INSERT ... VALUES (?, ...)``) for ``rows`` rows at once."""
    sql = _ingests.get((ingest, rows))
    if sql is None:
        head, _, one = ingest.partition(" VALUES ")
        sql = _ingests[(ingest, rows)] = f"{head} VALUES {', '.join([one] * rows)}"
    return sql


_yield_core: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


def _ingest_rows(conn: sqlite3.Connection, packed: list[bytes]) -> int:
    """Copy the journal rows ``packed`` (msgpack, as the journal wrote them) in one
    transaction, in key order, :data:`_CHUNK_ROWS` rows per statement (SQLite runs
    each without the GIL); returns how many were new. Rows are decoded a chunk at
    a time, so the copy never holds thousands of tuples for the GC to examine."""
    # A row is a msgpack array whose first item is its session id and second its
    # seq (a non-negative int, packed in the shortest of the big-endian forms, so
    # byte order is numeric order): sorting the encoded rows (memcmp, about 1 ms
    # for 8192 rows, the GIL held) puts each session's rows together, seq ascending.
    rows = sorted(packed)
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = conn.total_changes
        for start in range(0, len(rows), _CHUNK_ROWS):
            if start:
                # The node's threads share a core: let the event loop's thread, if it
                # waits for the core, run before the next chunk (well under a ms) rather
                # than after the scheduler's slice of several ms. Fair shares are kept.
                _yield_core()
            part = rows[start : start + _CHUNK_ROWS]
            values = [v for data in part for v in unpack_row(data)]
            conn.execute(_ingest_sql(_INGEST, len(part)), values)
        added = conn.total_changes - before
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return added


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a background future's exception as seen (it is reported elsewhere)."""
    if not future.cancelled():
        future.exception()


@dataclasses.dataclass(slots=True)
class _Active:
    """A session with journaled messages: its last seq and its senders' ids."""

    last_seq: int
    client_ids: dict[str, int]  # by client_key(sender, client_msg_id)
    generation: int  # the journal generation of its last message


# What :meth:`SqliteStore.append_message` raises: a duplicate, or nothing stored.
APPEND_ERRORS: tuple[type[Exception], ...] = (
    DuplicateMessage,
    OSError,
    sqlite3.Error,
    RuntimeError,
)


class JournaledStore(GroupCommit):
    """The group-committing writer, plus the journal and the read connection."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str,
        max_batch: int,
        inline: bool,
        window: float,
        journal: bool,
        journal_interval: float,
        journal_copy_rows: int,
    ) -> None:
        super().__init__(
            path, synchronous=synchronous, max_batch=max_batch, inline=inline, window=window
        )
        self._reader: aiosqlite.Connection | None = None
        # Journal mode (see SqliteStore.__init__).
        self._journal = Journal(journal_dir(path)) if journal else None
        # Whether messages go to the journal (an attribute: read per message).
        self.journal_enabled = journal
        self.journal_interval = journal_interval
        self.journal_copy_rows = journal_copy_rows
        # Set when journal_copy_rows messages wait: the copy loop copies at once.
        self._copy_due = asyncio.Event()
        self._seed: sqlite3.Connection | None = None
        self._active: dict[SessionId, _Active] = {}
        # Incremented by every copy as it starts: a message journaled in
        # generation g is in the database once the copy that started g + 1 is.
        self._generation = 0
        # Rows of a copy that failed, tried again with the next one.
        self._retry: list[bytes] = []
        # The copy under way (one at a time); callers wait for it shielded, so
        # a cancelled reader never leaves a half-settled copy behind.
        self._copy: asyncio.Future[None] | None = None
        # _forget_idle: when it last ran, and the generation copied then.
        self._forgot_at = time.monotonic()
        self._forget_mark = 0
        self._copier: asyncio.Task[None] | None = None
        self.journal_copies = 0
        self.journal_rows = 0
        self.journal_copy_failures = 0

    # -- lifecycle ---------------------------------------------------------
    async def _open_journal(self) -> None:
        """Copy what a crashed predecessor journaled; with a journal of our own,
        lock it and start appending and copying."""
        if self._journal is None:
            await self._recover_foreign_journal()
        else:
            await self._take_over(self._journal)
            self._journal.start()
            self._journal.accepting = True
            # Reads on the loop's thread, once per session that starts a burst.
            self._seed = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self._copier = asyncio.create_task(self._copy_loop(), name="store-journal")

    async def _stop_journal(self) -> None:
        """Stop appending and copy what the journal holds (before the writer stops)."""
        if self._journal is not None:
            if self._copier is not None:
                self._copier.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._copier
                self._copier = None
            self._journal.accepting = False
            with contextlib.suppress(Exception):
                await self.sync_journal()

    async def _close_reads(self) -> None:
        """Close the read connections and unlock the journal (after the writer)."""
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._seed is not None:
            self._seed.close()
            self._seed = None
        if self._journal is not None:
            self._journal.close()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, timeout=5.0, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run a read; one of messages first copies the journal (read your writes)."""
        if self._journal is not None and "messages" in sql and self._journal_dirty():
            await self.sync_journal()
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    def submit_message(
        self,
        message: MessageRecord,
        on_done: Callable[[asyncio.Future[int]], None] | None = None,
    ) -> asyncio.Future[int]:
        """Queue an insert; the future resolves to the seq the store gave it.

        It fails with :class:`DuplicateMessage` if the sender's ``client_msg_id``
        is already stored. ``on_done`` runs with the settled future as the
        batch settles, in commit order. With the journal, both happen before
        this returns.
        """
        if self._journal is not None:
            return self._journal_message(message, on_done)
        return self._submit(INSERT_MESSAGE, (), message, on_done=on_done)

    # -- journal -------------------------------------------------------------
    def _recover_journal(self, segments: list[Path]) -> None:
        """On a thread, before serving: copy what a previous process journaled."""
        if not segments:
            return
        conn = connect_sync(self.path)
        try:
            for path in segments:
                rows, whole = read_segment(path)
                conn.execute("BEGIN IMMEDIATE")
                before = conn.total_changes
                conn.executemany(_INGEST, rows)
                conn.execute("COMMIT")
                log.info(
                    "journal %s: %d messages, %d new",
                    path.name,
                    len(rows),
                    conn.total_changes - before,
                )
                if whole:
                    path.unlink()
                else:
                    path.rename(path.with_suffix(".bad"))
        finally:
            conn.close()

    async def _recover_foreign_journal(self) -> None:
        """Without a journal of our own: copy the segments a single node left
        (it crashed, and the node now starts with Redis or ``FULL``)."""
        directory = journal_dir(self.path)
        if not directory.is_dir() or not any(directory.glob("*.seg")):
            return
        journal = Journal(directory)
        try:
            await self._take_over(journal)
        except JournalBusy:
            log.warning("%s is in use by a single-node process; not copying it", directory)
            return
        journal.close()

    async def _take_over(self, journal: Journal) -> None:
        """Lock ``journal`` and copy the segments a previous process left
        (on failure it is closed again: :class:`JournalBusy` if locked)."""
        left = journal.open()
        try:
            await asyncio.to_thread(self._recover_journal, left)
        except BaseException:
            journal.close()
            raise

    def _activate(self, session_id: SessionId) -> _Active:
        """The journal's view of a session, from the database (complete there:
        see :meth:`sync_journal`)."""
        conn = self._seed
        assert conn is not None
        (last,) = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()
        ids = {
            client_key(sender, cmid): seq
            for sender, cmid, seq in conn.execute(
                "SELECT sender, client_msg_id, seq FROM messages"
                " WHERE session_id = ? AND client_msg_id IS NOT NULL",
                (session_id,),
            )
        }
        active = self._active[session_id] = _Active(int(last), ids, self._generation)
        return active

    def append_message(self, m: MessageRecord) -> int:
        """With the journal: store ``m`` now, set ``m.seq`` and return it; it is
        durable against a process crash when this returns (no future, no
        callback: the hub's path for clients' messages).

        Raises :class:`DuplicateMessage` for a known ``client_msg_id``, or
        ``OSError``/``sqlite3.Error``/``RuntimeError`` if it was not stored
        (and nothing of it was); ``RuntimeError`` without a journal.
        """
        journal = self._journal
        if journal is None or not journal.accepting:
            raise RuntimeError("store is closed" if journal is not None else "no journal")
        sid = m.session_id
        try:
            active = self._active.get(sid) or self._activate(sid)
            key = client_key(m.sender, m.client_msg_id) if m.client_msg_id is not None else None
            known = active.client_ids.get(key) if key is not None else None
            if known is not None:
                raise DuplicateMessage(known)
            seq = active.last_seq + 1
            journal.append(message_row(m, seq))
            if len(journal.pending) >= self.journal_copy_rows:
                self._copy_due.set()
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            log.error("journal write failed for %s: %s", sid, exc)
            raise
        m.seq = active.last_seq = seq
        if key is not None:
            active.client_ids[key] = seq
        active.generation = self._generation
        self.writes += 1
        return seq

    def _journal_message(
        self, m: MessageRecord, on_done: Callable[[asyncio.Future[int]], None] | None
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = (self._loop or asyncio.get_running_loop()).create_future()
        try:
            future.set_result(self.append_message(m))
        except APPEND_ERRORS as exc:
            future.set_exception(exc)
        if on_done is not None:
            try:
                on_done(future)
            except Exception:
                log.exception("store callback failed")
        return future

    @property
    def journal_pending(self) -> int:
        """Acked messages not copied into the database yet."""
        if self._journal is None:
            return 0
        return len(self._journal.pending) + len(self._retry)

    def _journal_dirty(self) -> bool:
        assert self._journal is not None
        copying = self._copy is not None and not self._copy.done()
        return bool(self._journal.pending or self._retry or copying)

    async def _copy_loop(self) -> None:
        due = self._copy_due
        while True:
            if not due.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(due.wait(), self.journal_interval)
            due.clear()
            try:
                await self.sync_journal()
            except Exception:
                log.exception("copying the journal failed; trying again")

    async def sync_journal(self) -> None:
        """Copy every journaled message into the database (in one transaction,
        through the group commit) and delete the copied segments. Reads of
        messages wait for this, so they see every acknowledged message."""
        journal = self._journal
        if journal is None:
            return
        running = self._copy
        if running is not None and not running.done():
            # It may have started before the rows the caller needs: wait, then copy.
            with contextlib.suppress(Exception):
                await asyncio.shield(running)
        if not journal.pending and not self._retry:
            return
        running = self._copy
        if running is None or running.done():
            running = self._copy = asyncio.ensure_future(self._copy_journal())
            # Its failure reaches whoever waits; with nobody left, it is logged there.
            running.add_done_callback(_retrieve)
        await asyncio.shield(running)

    async def _copy_journal(self) -> None:
        """One copy (see :meth:`sync_journal`); never two at a time."""
        journal = self._journal
        assert journal is not None
        rows = self._retry + journal.take_pending()
        self._retry = []
        segments = len(journal.closed)
        copied = self._generation  # every generation up to this one
        self._generation += 1
        try:
            added = await self._exclusive(lambda conn: _ingest_rows(conn, rows))
        except BaseException:
            self._retry = rows + self._retry
            self.journal_copy_failures += 1
            raise
        if added != len(rows):
            log.error(
                "journal copy: %d of %d rows were already stored", len(rows) - added, len(rows)
            )
        journal.ingested(segments)
        self.journal_copies += 1
        self.journal_rows += len(rows)
        self._forget_idle(copied)

    def _forget_idle(self, copied: int) -> None:
        """Forget the sessions whose messages are all in the database and that
        have been idle for ``JOURNAL_IDLE_SECONDS`` (the next message of one
        reads its state back); not after every copy, nor scanning every time."""
        now = time.monotonic()
        if now - self._forgot_at < JOURNAL_IDLE_SECONDS:
            return
        self._forgot_at = now
        idle_before = min(copied, self._forget_mark)
        self._forget_mark = copied
        for sid in [s for s, a in self._active.items() if a.generation < idle_before]:
            del self._active[sid]
