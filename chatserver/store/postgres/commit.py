"""The write path of :class:`~chatserver.store.postgres.store.PostgresStore`: group commit.

One writer connection (async psycopg, on the event loop: no thread) commits every
queued write in one transaction per batch (a batch is whatever queued up while the
previous commit ran, up to ``max_batch``), in one round trip. A batch of messages only
(the common case) is one simple query of two statements, PostgreSQL's implicit
transaction (:func:`_messages_query`: the sessions' locks, then every message in one
insert, the batch a JSON literal); any other batch is sent in pipeline mode, its
``BEGIN`` and ``COMMIT`` with it (measured: one round trip per batch of 1 or 100
messages, ``bench/pg_round_trips.py``). Futures settle only after the commit
succeeded, in submission order.

What must not clash between nodes is decided inside that transaction:

- a message's seq is its session's highest + 1, under an advisory lock on the
  session (taken for every session of the batch first, in sorted order, so two
  nodes' batches never wait on each other in a cycle); a known
  ``client_msg_id`` stores nothing and answers with the first one's seq, so a
  duplicate leaves no gap. All messages of a batch go in one statement
  (:data:`INSERT_MESSAGES`, arrays of columns: about as much CPU per message as
  SQLite's store), one alone in :data:`INSERT_MESSAGE`;
- a note's number likewise, under a lock of its own per chat;
- a transition locks the session's row (``SELECT ... FOR UPDATE``) and changes
  it only if it is as expected, in one statement.

A batch that fails is retried write by write, each in a transaction of its own,
so a bad write fails alone; a deadlock or serialization failure between nodes
retries the whole batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.pq import Escaping, TransactionStatus

from chatserver.store.base import SESSION_UPDATABLE, DuplicateMessage, MessageRecord, Transition
from chatserver.store.database import LOCK_SPACE, Database, lock_key, nul_free
from chatserver.store.sqlite.rows import column_value, message_params, message_row
from chatserver.types import OperatorId, SessionId, SessionState

log = logging.getLogger("chatserver.store")

# Advisory lock spaces (the first key of pg_advisory_xact_lock(int, int)).
MESSAGE_LOCKS = LOCK_SPACE + 1
NOTE_LOCKS = LOCK_SPACE + 2
# A batch that deadlocks with another node's is tried this often in all.
BATCH_ATTEMPTS = 5

INSERT_MESSAGE = """
WITH ins AS (
    INSERT INTO messages (session_id, seq, ts, sender, sender_id, author, text,
        client_msg_id, event, extra)
    SELECT %(sid)s, COALESCE(MAX(seq), 0) + 1, %(ts)s, %(sender)s, %(sender_id)s,
        %(author)s, %(text)s, %(cmid)s, %(event)s, %(extra)s
    FROM messages WHERE session_id = %(sid)s
    ON CONFLICT (session_id, sender, client_msg_id) WHERE client_msg_id IS NOT NULL
    DO NOTHING
    RETURNING seq
)
SELECT seq, TRUE FROM ins
UNION ALL
SELECT seq, FALSE FROM messages
WHERE session_id = %(sid)s AND sender = %(sender)s AND client_msg_id = %(cmid)s
    AND NOT EXISTS (SELECT 1 FROM ins)
"""

# Every message of a batch in one statement (the common case: one execute, not one
# per message): each is a duplicate of a stored one (``known``), of an earlier one
# of the batch (its ``head``, the first with its client id, is not itself), or new,
# numbered after its session's highest in order. Window functions, no self-joins: the
# database's cost per message stays flat as batches grow (a backlog makes them big).
# The batch is one JSON parameter, an array of rows (:func:`_batch_json`): encoding it
# with orjson costs the node far less than psycopg's dumping of one array per column
# (which walks and escapes every element in Python). Returns (position in the batch
# from 1, seq, whether stored) in order.
INSERT_MESSAGES = """
WITH i AS (
    SELECT r->>0 AS sid, (r->>1)::bigint AS ts, r->>2 AS sender, r->>3 AS sender_id,
        r->>4 AS author, r->>5 AS body, r->>6 AS cmid, r->>7 AS event, r->>8 AS extra, ord
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(r, ord)
),
f AS (
    SELECT i.*,
        (SELECT m.seq FROM messages m WHERE i.cmid IS NOT NULL AND m.session_id = i.sid
            AND m.sender = i.sender AND m.client_msg_id = i.cmid) AS known,
        CASE WHEN i.cmid IS NULL THEN i.ord
            ELSE min(i.ord) OVER (PARTITION BY i.sid, i.sender, i.cmid) END AS head
    FROM i
),
n AS (
    SELECT f.*, (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.session_id = f.sid)
        + row_number() OVER (PARTITION BY f.sid ORDER BY f.ord) AS seq
    FROM f WHERE f.known IS NULL AND f.head = f.ord
),
ins AS (
    INSERT INTO messages (session_id, seq, ts, sender, sender_id, author, text,
        client_msg_id, event, extra)
    SELECT sid, seq, ts, sender, sender_id, author, body, cmid, event, extra FROM n
)
SELECT f.ord, COALESCE(f.known, n.seq), f.known IS NULL AND f.head = f.ord
FROM f LEFT JOIN n ON n.ord = f.head
ORDER BY f.ord
"""

# A batch of messages only (the common case) as ONE simple query: two statements in
# PostgreSQL's implicit transaction of a multi-statement query (both or neither), each
# with its own snapshot, so the insert sees every message committed before its
# sessions' locks were granted. No parameters (the batch is a quoted literal): one
# send and one round trip, none of a pipeline's per-statement work on this side.
_LOCKS_HEAD = b"SELECT pg_advisory_xact_lock(s, k) FROM unnest('{"
_LOCKS_TAIL = b"}'::int[]) AS l(s, k);\n"
_INSERT_HEAD, _, _INSERT_TAIL = (part.encode() for part in INSERT_MESSAGES.partition("%s"))

INSERT_NOTE = (
    "INSERT INTO chat_notes (session_id, n, ts, kind, author_id, author_name, text,"
    " to_id, to_name)"
    " SELECT %s, COALESCE(MAX(n), 0) + 1, %s, %s, %s, %s, %s, %s, %s FROM chat_notes"
    " WHERE session_id = %s"
)


@dataclasses.dataclass(slots=True)
class _Transition:
    session_id: SessionId
    expect: tuple[SessionState, ...]
    expect_operator: OperatorId | None
    updates: dict[str, Any]


@dataclasses.dataclass(slots=True)
class _Write:
    sql: str
    params: tuple[Any, ...] | dict[str, Any]
    future: asyncio.Future[Any]
    message: MessageRecord | None = None  # its seq is assigned at commit
    transition: _Transition | None = None
    note_of: SessionId | None = None  # a note: numbered under this chat's lock
    on_done: Callable[[asyncio.Future[Any]], None] | None = None
    result: Any = None
    cursor: psycopg.AsyncCursor[Any] | None = None


def _message_row(m: MessageRecord) -> tuple[Any, ...]:
    """``m`` as a ``messages`` row (seq 0), its texts without NUL (see ``nul_free``)."""
    row = message_row(m, 0)
    if any("\x00" in v for v in row if isinstance(v, str)):
        return tuple(nul_free(v) for v in row)
    return row


def _message_params(m: MessageRecord) -> dict[str, Any]:
    row = _message_row(m)
    return {
        "sid": row[0],
        "ts": row[2],
        "sender": row[3],
        "sender_id": row[4],
        "author": row[5],
        "text": row[6],
        "cmid": row[7],
        "event": row[8],
        "extra": row[9],
    }


def _transition_sql(t: _Transition) -> tuple[str, dict[str, Any]]:
    names = sorted(t.updates)
    params: dict[str, Any] = {f"v{i}": column_value(t.updates[n]) for i, n in enumerate(names)}
    params["id"] = t.session_id
    params["expect"] = [s.value for s in t.expect]
    sets = ", ".join(f"{n} = %(v{i})s" for i, n in enumerate(names)) or "state = s.state"
    where = "old.state = ANY(%(expect)s)"
    if t.expect_operator is not None:
        where += " AND old.operator_id = %(op)s"
        params["op"] = t.expect_operator
    sql = (
        f"UPDATE sessions s SET {sets}"
        " FROM (SELECT id, state, operator_id FROM sessions WHERE id = %(id)s FOR UPDATE) old"
        f" WHERE s.id = old.id AND {where} RETURNING old.state, old.operator_id"
    )
    return sql, params


class GroupCommit:
    """The writer of one PostgreSQL database (the bottom layer of the store)."""

    def __init__(self, db: Database, *, max_batch: int) -> None:
        self.db = db
        self.max_batch = max_batch
        self._wconn: psycopg.AsyncConnection[Any] | None = None
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.writes = 0
        self.last_batch_size = 0
        self.last_batch_seconds = 0.0
        self.on_batch: Callable[[int, float], None] | None = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        assert self.db.conninfo is not None
        return await psycopg.AsyncConnection.connect(
            self.db.conninfo, autocommit=True, **self.db.pg_kwargs()
        )

    async def _open_writer(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wconn = await self._connect()
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")

    async def _close_writer(self) -> None:
        """Commit every queued write, then stop the writer."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        # Submitted after the writer's last look (between its end and now): refused.
        late, self._pending = self._pending, []
        for write in late:
            write.future.set_exception(RuntimeError("store is closed"))
            if write.on_done is not None:
                _call(write.on_done, write.future)
        if self._wconn is not None:
            await self._wconn.close()
            self._wconn = None

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- submitting --------------------------------------------------------
    def _submit(
        self,
        sql: str,
        params: tuple[Any, ...] | dict[str, Any],
        *,
        message: MessageRecord | None = None,
        transition: _Transition | None = None,
        note_of: SessionId | None = None,
        on_done: Callable[[asyncio.Future[Any]], None] | None = None,
    ) -> asyncio.Future[Any]:
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if (self._closing and self._task is None) or self._loop is None:
            future.set_exception(RuntimeError("store is closed"))
            if on_done is not None:
                on_done(future)
            return future
        self._pending.append(
            _Write(sql, params, future, message, transition, note_of, on_done=on_done)
        )
        self._wake.set()
        return future

    def submit_message(
        self,
        message: MessageRecord,
        on_done: Callable[[asyncio.Future[int]], None] | None = None,
    ) -> asyncio.Future[int]:
        # Its parameters are made when the batch is (one JSON row, or these alone).
        return self._submit(INSERT_MESSAGE, (), message=message, on_done=on_done)

    def submit_transition(
        self,
        session_id: SessionId,
        expect: tuple[SessionState, ...],
        *,
        expect_operator: OperatorId | None = None,
        **updates: Any,
    ) -> asyncio.Future[Transition | None]:
        unknown = set(updates) - SESSION_UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        t = _Transition(session_id, expect, expect_operator, updates)
        sql, params = _transition_sql(t)
        return self._submit(sql, params, transition=t)

    # -- committing --------------------------------------------------------
    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                started = time.perf_counter()
                try:
                    outcomes = await self._commit(batch)
                except Exception as exc:
                    log.exception("store writer failed")
                    outcomes = [exc] * len(batch)
                self._settle(batch, outcomes, started)
            if self._closing:
                return

    def _settle(
        self, batch: list[_Write], outcomes: list[BaseException | None], started: float
    ) -> None:
        self.batches += 1
        self.last_batch_size = len(batch)
        self.last_batch_seconds = time.perf_counter() - started
        if self.on_batch is not None:
            try:
                self.on_batch(len(batch), self.last_batch_seconds)
            except Exception:
                log.exception("on_batch failed")
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

    async def _commit(self, batch: list[_Write]) -> list[BaseException | None]:
        """Commit ``batch`` in one transaction; if it fails, each write alone."""
        for attempt in range(BATCH_ATTEMPTS):
            try:
                await self._run(batch)
                return [_refused(w) for w in batch]
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                log.warning("batch of %d met another node's (attempt %d)", len(batch), attempt)
                continue
            except (psycopg.Error, UnicodeEncodeError) as exc:  # (text not UTF-8: a lone surrogate)
                if await self._reconnect_if_broken() and attempt + 1 < BATCH_ATTEMPTS:
                    # The connection was lost (PostgreSQL restarted, a failover): the
                    # whole batch again on a new one. Had its COMMIT arrived, messages
                    # with a client_msg_id come back as duplicates (their first seq).
                    continue
                if len(batch) == 1:
                    return [exc]
                log.warning("batch of %d failed (%s); retrying singly", len(batch), exc)
                break
        outcomes: list[BaseException | None] = []
        for write in batch:
            try:
                await self._run([write])
                outcomes.append(_refused(write))
            except (psycopg.Error, UnicodeEncodeError) as exc:
                await self._reconnect_if_broken()
                outcomes.append(exc)
        return outcomes

    async def _run_messages(self, conn: psycopg.AsyncConnection[Any], batch: list[_Write]) -> None:
        """A batch of messages only, in one transaction: one simple query (see
        :data:`_LOCKS_HEAD`), results in submission order."""
        cur = conn.cursor()
        try:
            # Never prepared: each batch is a query of its own (its literal), and the
            # prepared statements' bookkeeping would only hash and forget it.
            await cur.execute(_messages_query(conn, batch), prepare=False)
        except BaseException:
            # Cancelled mid-way, the implicit transaction may be left open.
            if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
            raise
        if not cur.nextset():
            raise RuntimeError("no result of the message insert")
        rows = await cur.fetchall()
        if len(rows) != len(batch):
            raise RuntimeError(f"{len(rows)} results for {len(batch)} messages")
        for (_, seq, inserted), write in zip(rows, batch, strict=True):
            _numbered(write, int(seq), bool(inserted))

    async def _reconnect_if_broken(self) -> bool:
        """A new writer connection if the old one is lost; whether one was made."""
        if self._wconn is None or (not self._wconn.closed and not self._wconn.broken):
            return False
        log.warning("store writer lost its connection; reconnecting")
        try:
            self._wconn = await self._connect()
        except psycopg.Error as exc:
            log.error("store writer cannot reconnect: %s", exc)
            return False
        return True

    async def _run(self, batch: list[_Write]) -> None:
        """One transaction for ``batch`` in one round trip: messages only, one simple
        query; else pipelined, with ``BEGIN`` and ``COMMIT``."""
        conn = self._wconn
        assert conn is not None
        if all(w.message is not None for w in batch):
            await self._run_messages(conn, batch)
            return
        locks = sorted(
            {(MESSAGE_LOCKS, lock_key(w.message.session_id)) for w in batch if w.message}
            | {(NOTE_LOCKS, lock_key(w.note_of)) for w in batch if w.note_of}
        )
        try:
            # BEGIN and COMMIT as plain statements: psycopg's transaction() would
            # sync the pipeline on entering and leaving (three more round trips).
            async with conn.pipeline():
                cur = conn.cursor()
                await cur.execute("BEGIN")
                if locks:
                    await cur.execute(
                        "SELECT pg_advisory_xact_lock(s, k)"
                        " FROM unnest(%s::int[], %s::int[]) AS l(s, k)",
                        ([s for s, _ in locks], [k for _, k in locks]),
                    )
                messages = [w for w in batch if w.message is not None]
                bulk: psycopg.AsyncCursor[Any] | None = None
                for write in batch:
                    write.cursor = None
                    if write.message is not None and len(messages) > 1:
                        if bulk is None:  # all of them, where the first one was
                            bulk = conn.cursor()
                            await bulk.execute(INSERT_MESSAGES, (_batch_json(messages),))
                    elif write.message is not None:
                        write.cursor = conn.cursor()
                        await write.cursor.execute(write.sql, _message_params(write.message))
                    elif write.transition is not None:
                        write.cursor = conn.cursor()
                        await write.cursor.execute(write.sql, write.params)
                    else:
                        await cur.execute(write.sql, write.params)
                await cur.execute("COMMIT")
        except BaseException:
            # A failed statement leaves the transaction aborted (COMMIT was skipped).
            if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
            raise
        if bulk is not None:
            rows = await bulk.fetchall()
            if len(rows) != len(messages):
                raise RuntimeError(f"{len(rows)} results for {len(messages)} messages")
            for (_, seq, inserted), write in zip(rows, messages, strict=True):
                _numbered(write, int(seq), bool(inserted))
        for write in batch:
            if write.cursor is None:
                continue
            row = await write.cursor.fetchone()
            write.cursor = None
            if write.message is not None:
                if row is None:
                    raise RuntimeError("message insert returned nothing")
                _numbered(write, int(row[0]), bool(row[1]))
            else:
                write.result = (
                    None
                    if row is None
                    else Transition(SessionState(row[0]), OperatorId(row[1]) if row[1] else None)
                )


def _messages_query(conn: psycopg.AsyncConnection[Any], messages: list[_Write]) -> bytes:
    """The one query of a batch of messages only (see :data:`_LOCKS_HEAD`): their
    sessions' locks (sorted) and the batch as a literal (escaped by libpq, for this
    connection)."""
    keys = sorted({lock_key(w.message.session_id) for w in messages if w.message is not None})
    literal = Escaping(conn.pgconn).escape_literal(_batch_json(messages).encode())
    return b"".join(
        (
            _LOCKS_HEAD,
            ",".join(str(MESSAGE_LOCKS) for _ in keys).encode(),
            b"}'::int[], '{",
            ",".join(map(str, keys)).encode(),
            _LOCKS_TAIL,
            _INSERT_HEAD,
            literal,
            _INSERT_TAIL,
        )
    )


def _batch_json(messages: list[_Write]) -> str:
    """The parameter of :data:`INSERT_MESSAGES`: a JSON array of the messages' rows
    (without their seq), texts without NUL (PostgreSQL's ``->>`` refuses ``\\u0000``)."""
    rows = [message_params(w.message) for w in messages if w.message is not None]
    try:
        data = orjson.dumps(rows)
    except orjson.JSONEncodeError:
        # Not UTF-8 (a lone surrogate): escaped, PostgreSQL refuses the batch and each
        # message is tried alone, so only the bad one fails.
        return json.dumps(rows)
    if b"\\u0000" in data:
        data = orjson.dumps([tuple(nul_free(v) for v in row) for row in rows])
    return data.decode()


def _numbered(write: _Write, seq: int, stored: bool) -> None:
    """Give a message write its outcome: its seq, or (not stored) a duplicate's."""
    assert write.message is not None
    if stored:
        write.message.seq = write.result = seq
    else:
        # Nothing stored (no gap); the future fails with this alone.
        write.result = DuplicateMessage(seq)


def _refused(write: _Write) -> BaseException | None:
    """The outcome of a committed write: a duplicate message fails its own future."""
    if isinstance(write.result, DuplicateMessage):
        error, write.result = write.result, None
        return error
    return None


def _call(fn: Callable[[asyncio.Future[Any]], None], future: asyncio.Future[Any]) -> None:
    try:
        fn(future)
    except Exception:
        log.exception("store callback failed")
