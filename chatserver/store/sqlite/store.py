"""SqliteStore: the :class:`~chatserver.store.base.Store` contract on one SQLite file.

Built in layers, one module per concern, each a class on the one below:

- :mod:`~chatserver.store.sqlite.commit`: the writer and its group commit
- :mod:`~chatserver.store.sqlite.journaled`: the single node's message journal, and reads
- :mod:`~chatserver.store.sqlite.board`: the supervisor board's reads, chat notes
- this module: the store itself (opening and closing, sessions, messages,
  operators, meta)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatserver.store.base import (
    SESSION_UPDATABLE,
    MessageRecord,
    OperatorRecord,
    SessionRecord,
    operator_update_sql,
)
from chatserver.store.sqlite.board import BoardAndNotes
from chatserver.store.sqlite.journaled import JOURNAL_COPY_ROWS
from chatserver.store.sqlite.rows import (
    INSERT_SESSION,
    OPERATOR_COLUMNS,
    SELECT_SESSION,
    column_value,
    operator_from_row,
    session_from_row,
    session_params,
)
from chatserver.store.sqlite.schema import connect_sync
from chatserver.types import OperatorId, SessionId

if TYPE_CHECKING:
    from chatserver.store.base import Store


class SqliteStore(BoardAndNotes):
    """:class:`~chatserver.store.base.Store` on one SQLite file.

    Several processes may share the file (WAL, busy timeout 5 s), each with
    its own store, unless one runs with ``journal``.
    """

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
        super().__init__(
            path,
            synchronous=synchronous,
            max_batch=max_batch,
            inline=inline,
            window=window,
            journal=journal,
            journal_interval=journal_interval,
            journal_copy_rows=journal_copy_rows,
        )

    # -- lifecycle ---------------------------------------------------------
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(lambda: connect_sync(self.path).close())
        await self._open_journal()
        await self._open_writer()
        self._reader = await self._connect()
        self._start_writer()

    async def close(self) -> None:
        await self._stop_journal()
        await self._close_writer()
        await self._close_reads()

    async def ping(self) -> None:
        """A trivial read; raises if the database cannot be read."""
        await self._fetchall("SELECT 1")

    # -- sessions ----------------------------------------------------------
    def submit_session(self, record: SessionRecord) -> asyncio.Future[None]:
        return self._submit(INSERT_SESSION, session_params(record))

    def submit_session_update(self, session_id: SessionId, **fields: Any) -> asyncio.Future[None]:
        unknown = set(fields) - SESSION_UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        names = sorted(fields)
        sql = f"UPDATE sessions SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?"
        values = tuple(column_value(fields[n]) for n in names)
        return self._submit(sql, (*values, session_id))

    def submit_first_response(self, session_id: SessionId, at: float) -> asyncio.Future[None]:
        """Record the chat's first operator reply, unless one is recorded (by any node)."""
        return self._submit(
            "UPDATE sessions SET first_response_at = ? WHERE id = ? AND first_response_at IS NULL",
            (at, session_id),
        )

    # -- reads -------------------------------------------------------------
    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        rows = await self._fetchall(SELECT_SESSION + " WHERE token_hash = ?", (token_hash,))
        return session_from_row(rows[0]) if rows else None

    async def session(self, session_id: SessionId) -> SessionRecord | None:
        rows = await self._fetchall(SELECT_SESSION + " WHERE id = ?", (session_id,))
        return session_from_row(rows[0]) if rows else None

    async def open_sessions(self) -> list[SessionRecord]:
        rows = await self._fetchall(
            SELECT_SESSION + " WHERE state IN ('waiting', 'assigned') ORDER BY created_at"
        )
        return [session_from_row(r) for r in rows]

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
            SELECT_SESSION + " WHERE state = 'assigned' AND operator_id = ?", (operator_id,)
        )
        return [session_from_row(r) for r in rows]

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
            SELECT_SESSION + f" WHERE {where} AND id != ? ORDER BY created_at DESC LIMIT ?",
            (key, exclude, limit),
        )
        return [session_from_row(r) for r in rows]

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
                f"INSERT INTO operators ({OPERATOR_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    record.lang,
                    record.token_version,
                    record.disabled_at,
                    record.removed_at,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"operator {record.username!r} exists") from exc

    async def set_customer_lang(self, customer_id: str, lang: str | None) -> None:
        await self._write_now("UPDATE customers SET lang = ? WHERE id = ?", (lang, customer_id))

    async def set_operator_lang(self, operator_id: OperatorId, lang: str | None) -> None:
        await self._write_now("UPDATE operators SET lang = ? WHERE id = ?", (lang, operator_id))

    async def update_operator(
        self, operator_id: OperatorId, *, revoke: bool = False, **fields: Any
    ) -> OperatorRecord | None:
        update = operator_update_sql(fields, revoke, "?")
        if update is not None:
            sql, values = update
            await self._write_now(sql, (*values, operator_id))
        return await self.operator(operator_id)

    async def operator_by_username(self, username: str) -> OperatorRecord | None:
        rows = await self._fetchall(
            f"SELECT {OPERATOR_COLUMNS} FROM operators WHERE username = ?", (username,)
        )
        return operator_from_row(rows[0]) if rows else None

    async def operator(self, operator_id: OperatorId) -> OperatorRecord | None:
        rows = await self._fetchall(
            f"SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?", (operator_id,)
        )
        return operator_from_row(rows[0]) if rows else None

    async def operators(self) -> list[OperatorRecord]:
        rows = await self._fetchall(f"SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY username")
        return [operator_from_row(r) for r in rows]

    async def operators_changes(self) -> int:
        rows = await self._fetchall("SELECT n FROM operators_changed WHERE id = 1")
        return int(rows[0][0]) if rows else 0

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


if TYPE_CHECKING:
    # The contract is kept (mypy checks this assignment).
    _CONFORMS: type[Store] = SqliteStore
