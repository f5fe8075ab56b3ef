"""The write path of :class:`~chatserver.store.sqlite.SqliteStore`: group commit.

One writer connection commits every queued write in one transaction per batch
(a batch is whatever queued up while the previous commit ran, up to
``max_batch``), on a thread of its own or, ``inline``, on the event loop's
thread. A write that fails in a batch is retried alone, so it fails alone.
Checkpoints of the WAL run on a third connection in a worker thread, never
inside a commit that acknowledgements wait for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chatserver.store.base import (
    SESSION_UPDATABLE,
    DuplicateMessage,
    MessageRecord,
    Transition,
)
from chatserver.store.sqlite.rows import INSERT_MESSAGE, column_value, message_params
from chatserver.types import OperatorId, SessionId, SessionState

log = logging.getLogger("chatserver.store")

_T = TypeVar("_T")

# The writer leaves checkpoints to a thread, this often (if anything was written).
CHECKPOINT_SECONDS = 1.0
# How long a RESTART checkpoint waits for other writers and readers (ms).
RESTART_WAIT_MS = 200


@dataclasses.dataclass(slots=True)
class _Transition:
    session_id: SessionId
    expect: tuple[SessionState, ...]
    expect_operator: Any  # ANY_OPERATOR or an id
    updates: dict[str, Any]


@dataclasses.dataclass(slots=True)
class _Write:
    sql: str
    params: tuple[Any, ...]
    future: asyncio.Future[Any]
    message: MessageRecord | None = None  # its seq is assigned at commit
    transition: _Transition | None = None
    result: Any = None  # what the future resolves to
    on_done: Callable[[asyncio.Future[Any]], None] | None = None
    bulk: bool = False  # params is a sequence of rows for one executemany


ANY_OPERATOR: Any = object()


class GroupCommit:
    """The writer of one SQLite file (the bottom layer of :class:`SqliteStore`).

    Every write goes through :meth:`_submit`: queued, committed with the
    others of its batch, its future settled (and its ``on_done`` run) in
    submission order. :meth:`_open_writer` and :meth:`_close_writer` start
    and stop it; :meth:`_close_writer` commits what is queued first.
    """

    def __init__(
        self, path: Path, *, synchronous: str, max_batch: int, inline: bool, window: float
    ) -> None:
        self.path = path
        self.inline = inline
        self.window = window
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        self._wconn: sqlite3.Connection | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()
        self._flush_soon = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Loop time before which no commit starts (see ``window``).
        self._next_commit = 0.0
        # True while a RESTART checkpoint runs: inline commits wait in _pending.
        self._hold = False
        # Jobs running on the writer thread with the writer connection to themselves
        # (see _exclusive): inline commits wait in _pending, even while closing.
        self._offloop = 0
        self._task: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._closing = False
        # Observability for metrics and benchmarks.
        self.batches = 0
        self.writes = 0
        self.last_batch_size = 0
        self.last_batch_seconds = 0.0
        self.wal_restarts = 0
        # Called with (writes, seconds) after every commit (metrics); must not raise.
        self.on_batch: Callable[[int, float], None] | None = None

    # -- lifecycle ---------------------------------------------------------
    async def _open_writer(self) -> None:
        """Connect the writer on its thread (the loop must be set)."""
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._wconn = await self._in_writer(self._connect_writer)

    def _start_writer(self) -> None:
        """Start committing, and checkpointing the WAL."""
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="store-checkpoint")

    async def _close_writer(self) -> None:
        """Commit every queued write, then stop the writer and the checkpoints."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._wconn is not None:
            await self._in_writer(self._wconn.close)
            self._wconn = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _in_writer(self, fn: Callable[..., _T], *args: Any) -> _T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # Checkpoints (and their fsyncs) run on a thread of their own, never
        # inside a commit that acks wait for: see _checkpoint_loop.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database file, off the loop and the writer.

        Every ``CHECKPOINT_SECONDS`` in which something was committed, on its
        own connection in a worker thread: first a PASSIVE checkpoint, which
        blocks no one, then a RESTART one for the few frames committed
        meanwhile, so that the next commit writes the WAL from its start again.
        PASSIVE alone never completes under steady traffic (frames keep
        arriving while it copies), and then the WAL grows without end and
        every page lookup searches more of its index. Inline commits are held
        back (queued, not lost) while the RESTART runs, so the event loop never
        waits on its lock.
        """
        done = 0  # writes already checkpointed (as of the last checkpoint)
        conn = await asyncio.to_thread(self._connect_checkpointer)
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_SECONDS)
                if self.writes == done:
                    continue
                done = self.writes
                await self._checkpoint(conn, "PASSIVE")
                self._hold = True
                try:
                    if await self._checkpoint(conn, "RESTART"):
                        self.wal_restarts += 1
                finally:
                    self._release()
        finally:
            conn.close()

    async def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool:
        """:meth:`_checkpoint_sync` on a worker thread; a cancel waits for it to
        end (the connection is never closed under a running checkpoint)."""
        running = asyncio.ensure_future(asyncio.to_thread(self._checkpoint_sync, conn, mode))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await running
            raise

    def _release(self) -> None:
        """End a hold: commit what queued up meanwhile."""
        if not self._hold:
            return
        self._hold = False
        if self._pending and self.inline:
            self._schedule_flush()

    @staticmethod
    def _checkpoint_sync(conn: sqlite3.Connection, mode: str) -> bool:
        """Run one checkpoint; ``True`` if it copied the whole WAL."""
        try:
            busy, log_frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:
            log.warning("checkpoint failed: %s", exc)
            return False
        return not busy and log_frames == copied

    def _connect_checkpointer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        # RESTART waits this long at most for other writers and readers (other
        # nodes, the reader thread); then it gives up until the next round.
        conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- group commit ------------------------------------------------------
    def _submit(
        self,
        sql: str,
        params: tuple[Any, ...],
        message: MessageRecord | None = None,
        *,
        transition: _Transition | None = None,
        on_done: Callable[[asyncio.Future[Any]], None] | None = None,
        bulk: bool = False,
    ) -> asyncio.Future[Any]:
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._closing and self._task is None:
            future.set_exception(RuntimeError("store is closed"))
            if on_done is not None:
                on_done(future)
            return future
        self._pending.append(
            _Write(sql, params, future, message, transition=transition, on_done=on_done, bulk=bulk)
        )
        if not self.inline:
            self._wake.set()
        else:
            self._schedule_flush()
        return future

    def _schedule_flush(self) -> None:
        """Inline: commit once this loop iteration's writes are all in (the batch
        is everything the ready callbacks of one iteration submitted), or when
        the window since the last commit has passed."""
        if self._flush_soon:
            return
        self._flush_soon = True
        loop = self._loop or asyncio.get_running_loop()
        wait = self._next_commit - loop.time()
        if wait > 0:
            loop.call_later(wait, self._flush_inline)
        else:
            loop.call_soon(self._flush_inline)

    def _flush_inline(self) -> None:
        self._flush_soon = False
        if (self._hold and not self._closing) or self._offloop:
            return  # a RESTART checkpoint or _exclusive runs: each flushes when it ends
        while self._pending:
            batch = self._take_batch()
            started = time.perf_counter()
            self._settle(batch, self._commit_guarded(batch), started)
            self._commit_done()

    async def _exclusive(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(writer connection)`` on the writer thread, counted as one batch of
        one write; inline commits queue meanwhile (the event loop goes on serving:
        ``fn`` should spend its time in SQLite, which runs without the GIL).

        ``fn`` opens and ends its own transaction. A cancel waits for ``fn`` to end,
        so that the connection is never shared.
        """
        self._offloop += 1
        started = time.perf_counter()
        assert self._executor is not None and self._wconn is not None
        conn = self._wconn
        running = asyncio.get_running_loop().run_in_executor(self._executor, fn, conn)
        try:
            try:
                result = await asyncio.shield(running)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await running
                raise
        finally:
            self._offloop -= 1
            if not self._offloop and self._pending and self.inline:
                self._schedule_flush()
        self.batches += 1
        self.writes += 1
        self.last_batch_size = 1
        self.last_batch_seconds = time.perf_counter() - started
        if self.on_batch is not None:
            self.on_batch(1, self.last_batch_seconds)
        self._commit_done()
        return result

    def _commit_done(self) -> None:
        if self.window > 0 and self._loop is not None:
            self._next_commit = self._loop.time() + self.window

    def _take_batch(self) -> list[_Write]:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        return batch

    def _commit_guarded(self, batch: list[_Write]) -> list[BaseException | None]:
        """:meth:`_commit_sync`, with a failure of the writer itself failing every write."""
        try:
            return self._commit_sync(batch)
        except Exception as exc:
            log.exception("store writer failed")
            return [exc] * len(batch)

    def _settle(
        self, batch: list[_Write], outcomes: list[BaseException | None], started: float
    ) -> None:
        """Resolve the futures of a committed (or failed) batch."""
        self.batches += 1
        self.last_batch_size = len(batch)
        self.last_batch_seconds = time.perf_counter() - started
        if self.on_batch is not None:
            self.on_batch(len(batch), self.last_batch_seconds)
        for write, outcome in zip(batch, outcomes, strict=True):
            if write.future.done():
                continue
            if outcome is None:
                self.writes += 1
                write.future.set_result(write.result)
            else:
                write.future.set_exception(outcome)
            if write.on_done is not None:
                try:
                    write.on_done(write.future)
                except Exception:
                    log.exception("store callback failed")

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.inline:
                # Commits happen in _flush_inline; this task only sees the close.
                self._flush_inline()
            elif len(self._pending) < self.max_batch and not self._closing:
                # Under load, gather the writes of a window: one commit (and fsync).
                wait = self._next_commit - (self._loop or asyncio.get_running_loop()).time()
                if wait > 0:
                    await asyncio.sleep(wait)
            while self._pending:
                batch = self._take_batch()
                started = time.perf_counter()
                try:
                    outcomes = await self._in_writer(self._commit_guarded, batch)
                except Exception as exc:  # the executor itself failed
                    log.exception("store writer thread failed")
                    outcomes = [exc] * len(batch)
                self._settle(batch, outcomes, started)
                self._commit_done()
            if self._closing:
                return

    def _commit_sync(self, batch: list[_Write]) -> list[BaseException | None]:
        """On the writer thread: commit ``batch`` in one transaction.

        If that fails, each write is retried alone so one bad write cannot sink
        the others; the outcome of each write is returned in order.
        """
        try:
            self._run_sync(batch)
            return [None] * len(batch)
        except sqlite3.Error as exc:
            if len(batch) == 1:
                return [self._explain(batch[0], exc)]
            log.warning("batch of %d failed (%s); retrying singly", len(batch), exc)
        outcomes: list[BaseException | None] = []
        for write in batch:
            try:
                self._run_sync([write])
                outcomes.append(None)
            except sqlite3.Error as exc:
                outcomes.append(self._explain(write, exc))
        return outcomes

    def _explain(self, write: _Write, exc: sqlite3.Error) -> BaseException:
        """Turn a unique violation on ``client_msg_id`` into :class:`DuplicateMessage`."""
        m = write.message
        if (
            m is not None
            and m.client_msg_id is not None
            and isinstance(exc, sqlite3.IntegrityError)
        ):
            assert self._wconn is not None
            row = self._wconn.execute(
                "SELECT seq FROM messages"
                " WHERE session_id = ? AND sender = ? AND client_msg_id = ?",
                (m.session_id, m.sender, m.client_msg_id),
            ).fetchone()
            if row is not None:
                return DuplicateMessage(int(row[0]))
        return exc

    def _run_sync(self, batch: list[_Write]) -> None:
        conn = self._wconn
        assert conn is not None
        if len(batch) == 1 and batch[0].message is not None:
            # One statement is its own transaction: no BEGIN/COMMIT round.
            self._insert_message(conn, batch[0])
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            start = 0
            while start < len(batch):
                write = batch[start]
                if write.bulk:
                    before = conn.total_changes
                    conn.executemany(write.sql, write.params)
                    write.result = conn.total_changes - before
                    start += 1
                    continue
                if write.transition is not None:
                    self._transition_sync(conn, write)
                    start += 1
                    continue
                if write.message is not None:
                    self._insert_message(conn, write)
                    start += 1
                    continue
                end = start + 1
                sql = write.sql
                while (
                    end < len(batch)
                    and batch[end].sql == sql
                    and batch[end].message is None
                    and batch[end].transition is None
                ):
                    end += 1
                conn.executemany(sql, [w.params for w in batch[start:end]])
                start = end
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert_message(conn: sqlite3.Connection, write: _Write) -> None:
        m = write.message
        assert m is not None
        # fetchall: the statement runs to its end (and, alone, commits).
        m.seq = int(conn.execute(INSERT_MESSAGE, message_params(m)).fetchall()[0][0])
        write.result = m.seq

    @staticmethod
    def _transition_sync(conn: sqlite3.Connection, write: _Write) -> None:
        t = write.transition
        assert t is not None
        row = conn.execute(
            "SELECT state, operator_id FROM sessions WHERE id = ?", (t.session_id,)
        ).fetchone()
        if (
            row is None
            or row[0] not in {s.value for s in t.expect}
            or (t.expect_operator is not ANY_OPERATOR and row[1] != t.expect_operator)
        ):
            write.result = None
            return
        names = sorted(t.updates)
        conn.execute(
            f"UPDATE sessions SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
            (*(column_value(t.updates[n]) for n in names), t.session_id),
        )
        write.result = Transition(SessionState(row[0]), OperatorId(row[1]) if row[1] else None)

    def submit_transition(
        self,
        session_id: SessionId,
        expect: tuple[SessionState, ...],
        *,
        expect_operator: OperatorId | None = None,
        **updates: Any,
    ) -> asyncio.Future[Transition | None]:
        """Change a session only if it is in one of ``expect`` (compare-and-set).

        Resolves to the state and operator it had before, or ``None`` if it was
        not in an expected state (someone else changed it first: any process).
        ``expect_operator`` (default: any) also requires that operator.
        """
        unknown = set(updates) - SESSION_UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        return self._submit(
            "",
            (),
            transition=_Transition(
                session_id,
                expect,
                ANY_OPERATOR if expect_operator is None else expect_operator,
                updates,
            ),
        )
