"""SQLite store (aiosqlite, WAL) with group commit.

Two connections: a writer that commits every queued write in one transaction
per batch (a batch is whatever queued up while the previous commit ran, up to
``max_batch``), and a reader for queries. WAL lets readers run beside the
writer and lets several processes share one file (busy timeout 5 s).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ..board import ChatStat, OpenChat, SlaClock
from ..types import OperatorId, Priority, SessionId, SessionState
from .base import SESSION_UPDATABLE, MessageRecord, OperatorRecord, SessionRecord
from .journal import COLUMNS, Journal, JournalBusy, Row, journal_dir, read_segment

log = logging.getLogger("chatserver.store")

_T = TypeVar("_T")

# Each entry migrates from version i to i + 1. Never edit a landed entry.
MIGRATIONS: list[str | list[str]] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        departments TEXT NOT NULL DEFAULT '',
        capacity INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        visitor_name TEXT,
        visitor_email TEXT,
        page_url TEXT,
        user_agent TEXT,
        customer_id TEXT,
        plan TEXT,
        priority INTEGER NOT NULL DEFAULT 2,
        department TEXT,
        operator_id TEXT,
        previous_operator TEXT,
        assigned_at REAL,
        enqueued_at REAL,
        closed_at REAL,
        visitor_read_seq INTEGER NOT NULL DEFAULT 0,
        operator_read_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_open ON sessions(state) WHERE state IN ('waiting', 'assigned');
    CREATE TABLE messages (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        sender TEXT NOT NULL,
        sender_id TEXT,
        author TEXT,
        text TEXT NOT NULL,
        client_msg_id TEXT,
        event TEXT,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX messages_client_msg_id
        ON messages(session_id, sender, client_msg_id) WHERE client_msg_id IS NOT NULL;
    """,
    # 2: attachments, tickets with their append-only hash-chained history, mail.
    [
        "ALTER TABLE messages ADD COLUMN extra TEXT",
        """CREATE TABLE attachments (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            storage TEXT NOT NULL,
            uploaded_by TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX attachments_owner ON attachments(owner)",
        """CREATE TABLE tickets (
            number INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            state TEXT NOT NULL,
            priority TEXT NOT NULL,
            priority_rank INTEGER NOT NULL,
            department TEXT NOT NULL,
            level INTEGER NOT NULL,
            assignee TEXT,
            channel TEXT NOT NULL,
            requester_name TEXT,
            requester_email TEXT,
            customer_id TEXT,
            session_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            events INTEGER NOT NULL,
            head TEXT NOT NULL
        )""",
        "CREATE INDEX tickets_inbox ON tickets(state, priority_rank, created_at)",
        "CREATE INDEX tickets_customer ON tickets(customer_id)",
        "CREATE INDEX tickets_session ON tickets(session_id)",
        # A chat becomes a ticket at most once (forms may send several).
        "CREATE UNIQUE INDEX tickets_chat ON tickets(session_id) WHERE channel = 'chat'",
        "CREATE INDEX tickets_email ON tickets(requester_email)",
        """CREATE TABLE ticket_events (
            ticket INTEGER NOT NULL,
            n INTEGER NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            internal INTEGER NOT NULL,
            body TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (ticket, n)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER ticket_events_append_only_u BEFORE UPDATE ON ticket_events
            BEGIN SELECT RAISE(ABORT, 'ticket history is append-only'); END""",
        """CREATE TRIGGER ticket_events_append_only_d BEFORE DELETE ON ticket_events
            BEGIN SELECT RAISE(ABORT, 'ticket history is append-only'); END""",
        """CREATE TRIGGER attachments_append_only_u BEFORE UPDATE ON attachments
            BEGIN SELECT RAISE(ABORT, 'attachments are append-only'); END""",
        """CREATE TRIGGER attachments_append_only_d BEFORE DELETE ON attachments
            BEGIN SELECT RAISE(ABORT, 'attachments are append-only'); END""",
        "CREATE TABLE mail_ids (message_id TEXT PRIMARY KEY, ticket INTEGER NOT NULL)",
        """CREATE TABLE mail_outbox (
            id INTEGER PRIMARY KEY,
            ticket INTEGER,
            to_addr TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            message_id TEXT NOT NULL,
            refs TEXT NOT NULL,
            attachments TEXT NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL,
            sent_at REAL,
            last_error TEXT
        )""",
        "CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt) WHERE sent_at IS NULL",
        """CREATE TABLE mail_review (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            sender TEXT NOT NULL,
            subject TEXT NOT NULL,
            message_id TEXT,
            ticket INTEGER,
            reason TEXT NOT NULL,
            storage TEXT NOT NULL
        )""",
    ],
    # 3: service levels, internal chat threads, time tracking, customers, canned
    # responses, callback requests.
    [
        "ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'",
        "ALTER TABLE sessions ADD COLUMN phone TEXT",
        "ALTER TABLE sessions ADD COLUMN preferred_times TEXT",
        "ALTER TABLE sessions ADD COLUMN level INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE sessions ADD COLUMN first_response_at REAL",
        "ALTER TABLE sessions ADD COLUMN sla_first_due REAL",
        "ALTER TABLE tickets ADD COLUMN plan TEXT",
        "ALTER TABLE tickets ADD COLUMN sla_first_due REAL",
        "ALTER TABLE tickets ADD COLUMN sla_resolution_due REAL",
        "ALTER TABLE tickets ADD COLUMN first_response_at REAL",
        "ALTER TABLE tickets ADD COLUMN resolved_at REAL",
        "ALTER TABLE tickets ADD COLUMN paused_since REAL",
        "ALTER TABLE tickets ADD COLUMN paused_seconds REAL NOT NULL DEFAULT 0",
        "ALTER TABLE tickets ADD COLUMN sla_breached TEXT NOT NULL DEFAULT ''",
        # Operators-only threads on a chat: supervisor whispers, 3rd-level consults.
        """CREATE TABLE chat_notes (
            session_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            author_id TEXT NOT NULL,
            author_name TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (session_id, n)
        ) WITHOUT ROWID""",
        """CREATE TABLE time_entries (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            operator_id TEXT NOT NULL,
            customer_id TEXT,
            ticket INTEGER,
            session_id TEXT,
            seconds INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX time_entries_customer ON time_entries(customer_id, ts)",
        """CREATE TRIGGER time_entries_append_only_u BEFORE UPDATE ON time_entries
            BEGIN SELECT RAISE(ABORT, 'time entries are append-only'); END""",
        """CREATE TRIGGER time_entries_append_only_d BEFORE DELETE ON time_entries
            BEGIN SELECT RAISE(ABORT, 'time entries are append-only'); END""",
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT,
            plan TEXT NOT NULL DEFAULT 'free',
            contract TEXT NOT NULL DEFAULT 'hourly',
            package_minutes INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE canned_responses (
            id INTEGER PRIMARY KEY,
            department TEXT,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE TABLE sla_breaches (ref TEXT NOT NULL, kind TEXT NOT NULL, due REAL NOT NULL,"
        " recorded_at REAL NOT NULL, PRIMARY KEY (ref, kind))",
    ],
    # 4: support levels of operators; SLA warning times.
    [
        "ALTER TABLE operators ADD COLUMN levels TEXT NOT NULL DEFAULT '1'",
        "ALTER TABLE tickets ADD COLUMN sla_first_warn REAL",
        "ALTER TABLE tickets ADD COLUMN sla_resolution_warn REAL",
        "ALTER TABLE sessions ADD COLUMN sla_first_warn REAL",
    ],
    # 5: consults on a chat's operators-only thread name the colleague asked.
    [
        "ALTER TABLE chat_notes ADD COLUMN to_id TEXT",
        "ALTER TABLE chat_notes ADD COLUMN to_name TEXT",
        "CREATE INDEX chat_notes_to ON chat_notes(to_id, session_id) WHERE to_id IS NOT NULL",
    ],
    # 6: customer satisfaction ratings of chats.
    [
        "ALTER TABLE sessions ADD COLUMN csat_score INTEGER",
        "ALTER TABLE sessions ADD COLUMN csat_comment TEXT",
        "ALTER TABLE sessions ADD COLUMN csat_at REAL",
        "CREATE INDEX sessions_csat ON sessions(csat_at) WHERE csat_at IS NOT NULL",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)

# The writer leaves checkpoints to a thread, this often (if anything was written).
CHECKPOINT_SECONDS = 1.0
# A single node's journal is copied into SQLite every store_journal_interval,
# or as soon as this many messages wait. A copy's cost is mostly per page it
# dirties (each active session's last pages, whatever its count of new rows),
# so fewer, larger copies cost less CPU per message; this bounds how long one
# copy holds the event loop (about 15 µs per row) at high message rates.
JOURNAL_COPY_ROWS = 1024
# How long a RESTART checkpoint waits for other writers and readers (ms).
RESTART_WAIT_MS = 200
# A journal session with no message for about this long is forgotten (see _forget_idle).
JOURNAL_IDLE_SECONDS = 10.0

# The seq is numbered inside the statement, under the write lock: every process
# sharing the file numbers one session's messages without gaps or clashes.
_INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, seq, ts, sender, sender_id, author, text,"
    " client_msg_id, event, extra) VALUES (?1,"
    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1),"
    " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq"
)
# Copies journal rows (see journal.py); a row already there (a crash came
# between the copy and the segment's deletion) is skipped.
_INGEST = (
    f"INSERT OR IGNORE INTO messages ({', '.join(COLUMNS)})"
    f" VALUES ({', '.join(['?'] * len(COLUMNS))})"
)
_SESSION_COLUMNS = (
    "id, token_hash, state, created_at, visitor_name, visitor_email, page_url, user_agent,"
    " customer_id, plan, priority, department, operator_id, previous_operator, assigned_at,"
    " enqueued_at, closed_at, visitor_read_seq, operator_read_seq, kind, phone,"
    " preferred_times, level, first_response_at, sla_first_due, sla_first_warn"
)
_INSERT_SESSION = f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ({', '.join(['?'] * 26)})"
_SELECT_SESSION = (
    f"SELECT {_SESSION_COLUMNS},"
    " (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.session_id = s.id)"
    " FROM sessions s"
)


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
    result: Any = 0
    on_done: Callable[[asyncio.Future[Any]], None] | None = None
    bulk: bool = False  # params is a sequence of rows for one executemany


ANY_OPERATOR: Any = object()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a background future's exception as seen (it is reported elsewhere)."""
    if not future.cancelled():
        future.exception()


@dataclasses.dataclass(slots=True)
class _Active:
    """A session with journaled messages: its last seq and its senders' ids."""

    last_seq: int
    client_ids: dict[tuple[str, str], int]
    generation: int  # the journal generation of its last message


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """What a session was before a successful :meth:`SqliteStore.submit_transition`."""

    state: SessionState
    operator_id: OperatorId | None


class DuplicateMessage(Exception):
    """The message's ``client_msg_id`` is already stored (by any process) as ``seq``."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"already stored as seq {seq}")
        self.seq = seq


# What :meth:`SqliteStore.append_message` raises: a duplicate, or nothing stored.
APPEND_ERRORS: tuple[type[Exception], ...] = (
    DuplicateMessage,
    OSError,
    sqlite3.Error,
    RuntimeError,
)


def connect_sync(path: Path) -> sqlite3.Connection:
    """A plain connection for CLI commands (migrates the schema)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {found} is newer than this chatserver ({SCHEMA_VERSION})"
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > version:
                conn.execute("COMMIT")
                continue
            step = MIGRATIONS[version]
            for statement in step.split(";") if isinstance(step, str) else step:
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store migrated to schema version %d", version + 1)
    return found


def _column_value(value: Any) -> Any:
    if isinstance(value, SessionState):
        return value.value
    if isinstance(value, Priority):
        return int(value)
    return value


def _message_row(m: MessageRecord, seq: int) -> Row:
    """``m`` as a ``messages`` row (the columns of :data:`COLUMNS`) with ``seq``."""
    return (
        m.session_id,
        seq,
        m.ts,
        m.sender,
        m.sender_id,
        m.author,
        m.text,
        m.client_msg_id,
        m.event,
        json.dumps(m.extra, separators=(",", ":")) if m.extra else None,
    )


def _message_params(m: MessageRecord) -> tuple[Any, ...]:
    """The parameters of :data:`_INSERT_MESSAGE`: the row without its seq."""
    row = _message_row(m, 0)
    return (row[0], *row[2:])


def _session_from_row(row: sqlite3.Row | tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        session_id=SessionId(row[0]),
        token_hash=row[1],
        state=SessionState(row[2]),
        created_at=row[3],
        visitor_name=row[4],
        visitor_email=row[5],
        page_url=row[6],
        user_agent=row[7],
        customer_id=row[8],
        plan=row[9],
        priority=Priority(row[10]),
        department=row[11],
        operator_id=OperatorId(row[12]) if row[12] else None,
        previous_operator=OperatorId(row[13]) if row[13] else None,
        assigned_at=row[14],
        enqueued_at=row[15],
        closed_at=row[16],
        visitor_read_seq=row[17],
        operator_read_seq=row[18],
        kind=row[19],
        phone=row[20],
        preferred_times=row[21],
        level=row[22],
        first_response_at=row[23],
        sla_first_due=row[24],
        sla_first_warn=row[25],
        last_seq=row[26],
    )


def _operator_from_row(row: tuple[Any, ...]) -> OperatorRecord:
    return OperatorRecord(
        operator_id=OperatorId(row[0]),
        username=row[1],
        name=row[2],
        password_hash=row[3],
        role=row[4],
        departments=tuple(d for d in row[5].split(",") if d),
        capacity=row[6],
        created_at=row[7],
        levels=tuple(int(v) for v in str(row[8]).split(",") if v.isdigit()) or (1,),
    )


_OPERATOR_COLUMNS = (
    "id, username, name, password_hash, role, departments, capacity, created_at, levels"
)


class SqliteStore:
    """:class:`~chatserver.store.base.Store` on one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        max_batch: int = 512,
        inline: bool = False,
        window: float = 0.0,
        journal: bool = False,
        journal_interval: float = 1.0,
        journal_copy_rows: int = JOURNAL_COPY_ROWS,
    ) -> None:
        """``inline`` commits on the event loop's thread: no thread hand-off per
        batch, but the loop waits for each commit (and its fsync, if any).
        ``window`` (seconds) spaces commits at least that far apart: a write
        after a quiet spell commits at once, but under load the writes of a
        whole window share one commit (and fsync), each waiting at most
        ``window`` longer for its ack.

        ``journal`` stores messages in an append-only journal (see
        :mod:`~chatserver.store.journal`): :meth:`submit_message` settles at
        once, and every ``journal_interval`` seconds (sooner once
        ``journal_copy_rows`` messages wait, and before any read of messages)
        the journal is copied into the database in one transaction.
        Only for a store no other process writes to."""
        self.path = path
        self.inline = inline
        self.window = window
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        self._wconn: sqlite3.Connection | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader: aiosqlite.Connection | None = None
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()
        self._flush_soon = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Loop time before which no commit starts (see ``window``).
        self._next_commit = 0.0
        # True while a RESTART checkpoint runs: inline commits wait in _pending.
        self._hold = False
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
        # Journal mode (see __init__).
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
        self._retry: list[Row] = []
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
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(lambda: connect_sync(self.path).close())
        if self._journal is None:
            await self._recover_foreign_journal()
        else:
            await self._take_over(self._journal)
            self._journal.start()
            self._journal.accepting = True
            # Reads on the loop's thread, once per session that starts a burst.
            self._seed = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self._copier = asyncio.create_task(self._copy_loop(), name="store-journal")
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._wconn = await self._in_writer(self._connect_writer)
        self._reader = await self._connect()
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")
        self._checkpointer = asyncio.create_task(
            self._checkpoint_loop(), name="store-checkpoint"
        )

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

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, timeout=5.0, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def close(self) -> None:
        if self._journal is not None:
            if self._copier is not None:
                self._copier.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._copier
                self._copier = None
            self._journal.accepting = False
            with contextlib.suppress(Exception):
                await self.sync_journal()
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
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._seed is not None:
            self._seed.close()
            self._seed = None
        if self._journal is not None:
            self._journal.close()

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
            _Write(
                sql, params, future, message, transition=transition, on_done=on_done, bulk=bulk
            )
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
        if self._hold and not self._closing:
            return  # a RESTART checkpoint runs: _release() flushes
        while self._pending:
            batch = self._take_batch()
            started = time.perf_counter()
            self._settle(batch, self._commit_guarded(batch), started)
            self._commit_done()

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
        m.seq = int(conn.execute(_INSERT_MESSAGE, _message_params(m)).fetchall()[0][0])
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
            (*(_column_value(t.updates[n]) for n in names), t.session_id),
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
        return self._submit(_INSERT_MESSAGE, (), message, on_done=on_done)

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
                    "journal %s: %d messages, %d new", path.name, len(rows),
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
            (sender, cmid): seq
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
            key = (m.sender, m.client_msg_id) if m.client_msg_id is not None else None
            known = active.client_ids.get(key) if key is not None else None
            if known is not None:
                raise DuplicateMessage(known)
            seq = active.last_seq + 1
            journal.append(_message_row(m, seq))
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
            added = await self._submit(_INGEST, tuple(rows), bulk=True)
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

    def submit_session(self, record: SessionRecord) -> asyncio.Future[int]:
        return self._submit(
            _INSERT_SESSION,
            (
                record.session_id,
                record.token_hash,
                record.state.value,
                record.created_at,
                record.visitor_name,
                record.visitor_email,
                record.page_url,
                record.user_agent,
                record.customer_id,
                record.plan,
                int(record.priority),
                record.department,
                record.operator_id,
                record.previous_operator,
                record.assigned_at,
                record.enqueued_at,
                record.closed_at,
                record.visitor_read_seq,
                record.operator_read_seq,
                record.kind,
                record.phone,
                record.preferred_times,
                record.level,
                record.first_response_at,
                record.sla_first_due,
                record.sla_first_warn,
            ),
        )

    def submit_session_update(self, session_id: SessionId, **fields: Any) -> asyncio.Future[int]:
        unknown = set(fields) - SESSION_UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        names = sorted(fields)
        sql = f"UPDATE sessions SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?"
        values = tuple(_column_value(fields[n]) for n in names)
        return self._submit(sql, (*values, session_id))

    # -- reads -------------------------------------------------------------
    async def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run a read; one of messages first copies the journal (read your writes)."""
        if self._journal is not None and "messages" in sql and self._journal_dirty():
            await self.sync_journal()
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        rows = await self._fetchall(_SELECT_SESSION + " WHERE token_hash = ?", (token_hash,))
        return _session_from_row(rows[0]) if rows else None

    async def session(self, session_id: SessionId) -> SessionRecord | None:
        rows = await self._fetchall(_SELECT_SESSION + " WHERE id = ?", (session_id,))
        return _session_from_row(rows[0]) if rows else None

    async def open_sessions(self) -> list[SessionRecord]:
        rows = await self._fetchall(
            _SELECT_SESSION + " WHERE state IN ('waiting', 'assigned') ORDER BY created_at"
        )
        return [_session_from_row(r) for r in rows]

    async def messages_after(
        self, session_id: SessionId, after_seq: int, limit: int
    ) -> list[MessageRecord]:
        rows = await self._fetchall(
            "SELECT session_id, seq, ts, sender, sender_id, author, text, client_msg_id, event,"
            " extra FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (session_id, after_seq, limit),
        )
        return [
            MessageRecord(
                SessionId(r[0]),
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                json.loads(r[9]) if r[9] else None,
            )
            for r in rows
        ]

    async def assigned_sessions(self, operator_id: OperatorId) -> list[SessionRecord]:
        """Open chats assigned to ``operator_id`` (everyone's ids: ``assigned_by_operator``)."""
        rows = await self._fetchall(
            _SELECT_SESSION + " WHERE state = 'assigned' AND operator_id = ?", (operator_id,)
        )
        return [_session_from_row(r) for r in rows]

    async def assigned_by_operator(self) -> dict[OperatorId, list[SessionId]]:
        """Every open assigned chat's id, by operator: two columns, no message lookup."""
        rows = await self._fetchall(
            "SELECT operator_id, id FROM sessions"
            " WHERE state = 'assigned' AND operator_id IS NOT NULL"
        )
        out: dict[OperatorId, list[SessionId]] = {}
        for operator_id, session_id in rows:
            out.setdefault(OperatorId(operator_id), []).append(SessionId(session_id))
        return out

    async def past_sessions(
        self, customer_id: str | None, email: str | None, *, exclude: SessionId, limit: int = 20
    ) -> list[SessionRecord]:
        """Earlier chats of the same customer (by id, else by e-mail), newest first."""
        if customer_id:
            where, key = "customer_id = ?", customer_id
        elif email:
            where, key = "lower(visitor_email) = ?", email.lower()
        else:
            return []
        rows = await self._fetchall(
            _SELECT_SESSION + f" WHERE {where} AND id != ? ORDER BY created_at DESC LIMIT ?",
            (key, exclude, limit),
        )
        return [_session_from_row(r) for r in rows]

    async def last_operator_of_customer(
        self, customer_id: str, exclude: SessionId
    ) -> OperatorId | None:
        """The operator who last served ``customer_id`` (recurring contact person)."""
        rows = await self._fetchall(
            "SELECT COALESCE(operator_id, previous_operator) FROM sessions"
            " WHERE customer_id = ? AND id != ?"
            " AND COALESCE(operator_id, previous_operator) IS NOT NULL"
            " ORDER BY created_at DESC LIMIT 1",
            (customer_id, exclude),
        )
        return OperatorId(rows[0][0]) if rows else None

    async def client_msg_ids(self, session_id: SessionId) -> dict[tuple[str, str], int]:
        rows = await self._fetchall(
            "SELECT sender, client_msg_id, seq FROM messages"
            " WHERE session_id = ? AND client_msg_id IS NOT NULL",
            (session_id,),
        )
        return {(r[0], r[1]): r[2] for r in rows}

    # -- operators and meta --------------------------------------------------
    async def _write_now(self, sql: str, params: tuple[Any, ...]) -> None:
        await self._submit(sql, params)

    async def add_operator(self, record: OperatorRecord) -> None:
        try:
            await self._write_now(
                f"INSERT INTO operators ({_OPERATOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.operator_id,
                    record.username,
                    record.name,
                    record.password_hash,
                    record.role,
                    ",".join(record.departments),
                    record.capacity,
                    record.created_at,
                    ",".join(str(v) for v in sorted(set(record.levels))),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"operator {record.username!r} exists") from exc

    async def operator_by_username(self, username: str) -> OperatorRecord | None:
        rows = await self._fetchall(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE username = ?", (username,)
        )
        return _operator_from_row(rows[0]) if rows else None

    async def operator(self, operator_id: OperatorId) -> OperatorRecord | None:
        rows = await self._fetchall(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE id = ?", (operator_id,)
        )
        return _operator_from_row(rows[0]) if rows else None

    async def operators(self) -> list[OperatorRecord]:
        rows = await self._fetchall(f"SELECT {_OPERATOR_COLUMNS} FROM operators ORDER BY username")
        return [_operator_from_row(r) for r in rows]

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._write_now(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def setdefault_meta(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` exists (in any process); return what is stored."""
        await self._write_now(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", (key, value)
        )
        stored = await self.get_meta(key)
        assert stored is not None
        return stored

    # -- supervisor board, chat notes, readiness ------------------------------
    async def ping(self) -> None:
        """A trivial read; raises if the database cannot be read."""
        await self._fetchall("SELECT 1")

    def submit_first_response(self, session_id: SessionId, at: float) -> asyncio.Future[int]:
        """Record the chat's first operator reply, unless one is recorded (by any node)."""
        return self._submit(
            "UPDATE sessions SET first_response_at = ? WHERE id = ? AND first_response_at IS NULL",
            (at, session_id),
        )

    async def open_chats(self) -> list[OpenChat]:
        """Every waiting or assigned chat, lean (the ``sessions_open`` index)."""
        rows = await self._fetchall(
            "SELECT id, state, operator_id, assigned_at, visitor_name, enqueued_at,"
            " first_response_at, sla_first_due, sla_first_warn FROM sessions"
            " WHERE state IN ('waiting', 'assigned')"
        )
        return [OpenChat(*r) for r in rows]

    async def first_session_rowid(self, since: float) -> int:
        """A rowid from which on every session was created at or after ``since``.

        Sessions are inserted as they are created, so ``created_at`` grows with
        the rowid (give or take the commit order of concurrent nodes: callers
        ask for a little earlier than they need). A binary search of rowid
        seeks, so range queries from it touch only recent rows.
        """
        rows = await self._fetchall("SELECT MIN(rowid), MAX(rowid) FROM sessions")
        lo, hi = rows[0]
        if lo is None:
            return 0
        hi += 1
        while lo < hi:
            mid = (lo + hi) // 2
            probe = await self._fetchall(
                "SELECT created_at FROM sessions WHERE rowid >= ? ORDER BY rowid LIMIT 1", (mid,)
            )
            if probe and probe[0][0] >= since:
                hi = mid
            else:
                lo = mid + 1
        return int(lo)

    async def csat_since(self, since: float) -> list[int]:
        """The satisfaction scores (1 to 5) visitors gave since ``since``."""
        rows = await self._fetchall(
            "SELECT csat_score FROM sessions WHERE csat_at >= ? AND csat_score IS NOT NULL",
            (since,),
        )
        return [int(r[0]) for r in rows]

    async def chat_stats(self, since: float, from_rowid: int = 0) -> list[ChatStat]:
        """Timings of every chat enqueued at or after ``since`` (rowids ``from_rowid`` on)."""
        rows = await self._fetchall(
            "SELECT s.enqueued_at, s.state,"
            " s.assigned_at IS NOT NULL OR s.previous_operator IS NOT NULL,"
            " s.assigned_at, s.first_response_at,"
            " EXISTS (SELECT 1 FROM tickets t WHERE t.session_id = s.id AND t.channel = 'chat')"
            " FROM sessions s WHERE s.rowid >= ? AND s.enqueued_at >= ?",
            (from_rowid, since),
        )
        return [ChatStat(r[0], r[1], bool(r[2]), r[3], r[4], bool(r[5])) for r in rows]

    async def ticket_sla_clocks(self) -> list[SlaClock]:
        """The first-response and resolution clocks of every ticket not closed."""
        rows = await self._fetchall(
            "SELECT number, created_at, sla_first_due, sla_first_warn, first_response_at,"
            " sla_resolution_due, sla_resolution_warn, resolved_at, sla_breached, paused_since"
            " FROM tickets WHERE state IN"
            " ('open', 'in_progress', 'feedback_needed', 'information', 'answered')"
        )
        clocks = []
        for number, created, f_due, f_warn, f_at, r_due, r_warn, r_at, breached, paused in rows:
            # The kinds recorded as breached: "first_response resolution".
            kinds = set(str(breached or "").replace(",", " ").split())
            unknown = bool(kinds - {"first_response", "resolution"})
            for kind, due, warn, met in (
                ("first_response", f_due, f_warn, f_at),
                ("resolution", r_due, r_warn, r_at),
            ):
                recorded = kind in kinds or unknown
                if due is None and not recorded:
                    continue
                clocks.append(
                    SlaClock(
                        f"#{number}",
                        created,
                        due,
                        met_at=met,
                        recorded=recorded,
                        warn=warn,
                        paused=paused is not None,
                    )
                )
        return clocks

    async def sla_breaches_since(self, since: float) -> dict[str, int]:
        """Breaches recorded at or after ``since``, by kind."""
        rows = await self._fetchall(
            "SELECT kind, COUNT(*) FROM sla_breaches WHERE recorded_at >= ? GROUP BY kind",
            (since,),
        )
        return {str(kind): int(n) for kind, n in rows}

    def submit_note(
        self,
        session_id: SessionId,
        ts: float,
        kind: str,
        author_id: str,
        author_name: str,
        text: str,
        to: tuple[str, str] | None = None,
    ) -> asyncio.Future[int]:
        """Append to a chat's operators-only thread (numbered inside the write lock).

        ``to`` is ``(operator id, name)`` of a colleague consulted by this note.
        """
        to_id, to_name = to if to is not None else (None, None)
        return self._submit(
            "INSERT INTO chat_notes (session_id, n, ts, kind, author_id, author_name, text,"
            " to_id, to_name)"
            " SELECT ?, COALESCE(MAX(n), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM chat_notes"
            " WHERE session_id = ?",
            (session_id, ts, kind, author_id, author_name, text, to_id, to_name, session_id),
        )

    async def consulted_open(self, operator_id: OperatorId) -> list[SessionId]:
        """Open chats (waiting or assigned) ``operator_id`` was consulted on."""
        rows = await self._fetchall(
            "SELECT DISTINCT n.session_id FROM chat_notes n JOIN sessions s ON s.id = n.session_id"
            " WHERE n.to_id = ? AND s.state IN ('waiting', 'assigned')",
            (operator_id,),
        )
        return [SessionId(r[0]) for r in rows]

    async def consulted(self, session_id: SessionId, operator_id: OperatorId) -> bool:
        """Whether ``operator_id`` was consulted on this chat's operators-only thread."""
        rows = await self._fetchall(
            "SELECT 1 FROM chat_notes WHERE to_id = ? AND session_id = ? LIMIT 1",
            (operator_id, session_id),
        )
        return bool(rows)

    async def notes(self, session_id: SessionId, limit: int = 500) -> list[dict[str, Any]]:
        """The last ``limit`` notes of a chat's operators-only thread, oldest first."""
        rows = await self._fetchall(
            "SELECT n, ts, kind, author_id, author_name, text, to_id, to_name FROM chat_notes"
            " WHERE session_id = ? ORDER BY n DESC LIMIT ?",
            (session_id, limit),
        )
        return [
            {
                "n": n,
                "ts": int(ts * 1000),
                "kind": kind,
                "author": {"id": author_id, "name": author_name},
                "text": text,
                "to": {"id": to_id, "name": to_name} if to_id else None,
            }
            for n, ts, kind, author_id, author_name, text, to_id, to_name in reversed(rows)
        ]
