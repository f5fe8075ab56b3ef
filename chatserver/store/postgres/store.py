"""PostgresStore: the :class:`~chatserver.store.base.Store` contract on PostgreSQL.

Writes go through the group commit of :mod:`~chatserver.store.postgres.commit`
(one writer connection); reads through a small pool
(``psycopg_pool.AsyncConnectionPool``), each read on whichever connection is
free, so reads see every committed write of every node. There is no journal:
several nodes share the database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from chatserver.store.base import (
    SESSION_UPDATABLE,
    MessageRecord,
    OperatorRecord,
    SessionRecord,
    operator_update_sql,
)
from chatserver.store.database import Database, migrate, nul_free
from chatserver.store.postgres.commit import INSERT_NOTE, GroupCommit
from chatserver.store.sqlite.rows import (
    OPERATOR_COLUMNS,
    SESSION_COLUMNS,
    column_value,
    operator_from_row,
    session_from_row,
    session_params,
)
from chatserver.supervision.board import (
    TICKET_CLOCK_COLUMNS,
    ChatStat,
    OpenChat,
    SlaClock,
    ticket_clocks_of,
)
from chatserver.types import OperatorId, SessionId

if TYPE_CHECKING:
    from chatserver.store.base import Store

INSERT_SESSION = f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({', '.join(['%s'] * 27)})"
SELECT_SESSION = (
    f"SELECT {SESSION_COLUMNS},"
    " (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.session_id = s.id)"
    " FROM sessions s"
)



async def open_pool(db: Database, size: int, name: str) -> AsyncConnectionPool[Any]:
    """Migrate ``db`` (off the loop), then open a pool of up to ``size`` autocommit
    connections to it, one connection made before returning."""
    await asyncio.to_thread(migrate, db)
    assert db.conninfo is not None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        db.conninfo,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, **db.pg_kwargs()},
        open=False,
        name=name,
    )
    await pool.open(wait=True)
    return pool

class PostgresStore(GroupCommit):
    """:class:`~chatserver.store.base.Store` on a PostgreSQL database (``db``,
    see :mod:`chatserver.store.database`); any number of nodes may share it."""

    def __init__(self, db: Database, *, max_batch: int = 512, pool_size: int = 4) -> None:
        if db.kind != "postgresql":
            raise ValueError(f"not a PostgreSQL database: {db.describe()}")
        super().__init__(db, max_batch=max_batch)
        self.pool_size = pool_size
        self._pool: AsyncConnectionPool[Any] | None = None

    @property
    def journal_enabled(self) -> bool:
        return False

    # -- lifecycle ---------------------------------------------------------
    async def open(self) -> None:
        self._pool = await open_pool(self.db, self.pool_size, "store-reads")
        await self._open_writer()

    async def close(self) -> None:
        await self._close_writer()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        await self._fetchall("SELECT 1")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._pool is None:
            raise RuntimeError("store is closed")
        attempts = self.pool_size + 1
        for attempt in range(attempts):
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(sql, params or None)
                    rows: list[Any] = await cur.fetchall()
                    return rows
            except psycopg.OperationalError:
                # A connection PostgreSQL dropped (a restart): the pool discards it and
                # the read goes to the next (at worst every pooled one was dropped).
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    # -- messages ----------------------------------------------------------
    def append_message(self, message: MessageRecord) -> int:
        raise RuntimeError("no journal")

    async def messages_after(
        self, session_id: SessionId, after_seq: int, limit: int
    ) -> list[MessageRecord]:
        rows = await self._fetchall(
            "SELECT session_id, seq, ts, sender, sender_id, author, text, client_msg_id, event,"
            " extra FROM messages WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (session_id, after_seq, limit),
        )
        return [
            MessageRecord(
                SessionId(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                json.loads(r[9]) if r[9] else None,
            )
            for r in rows
        ]  # fmt: skip

    async def client_msg_ids(self, session_id: SessionId) -> dict[tuple[str, str], int]:
        rows = await self._fetchall(
            "SELECT sender, client_msg_id, seq FROM messages"
            " WHERE session_id = %s AND client_msg_id IS NOT NULL",
            (session_id,),
        )
        return {(r[0], r[1]): r[2] for r in rows}

    # -- sessions ----------------------------------------------------------
    def submit_session(self, record: SessionRecord) -> asyncio.Future[None]:
        return self._submit(INSERT_SESSION, tuple(nul_free(v) for v in session_params(record)))

    def submit_session_update(self, session_id: SessionId, **fields: Any) -> asyncio.Future[None]:
        unknown = set(fields) - SESSION_UPDATABLE
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        names = sorted(fields)
        sql = f"UPDATE sessions SET {', '.join(f'{n} = %s' for n in names)} WHERE id = %s"
        values = (nul_free(column_value(fields[n])) for n in names)
        return self._submit(sql, (*values, session_id))

    def submit_first_response(self, session_id: SessionId, at: float) -> asyncio.Future[None]:
        return self._submit(
            "UPDATE sessions SET first_response_at = %s"
            " WHERE id = %s AND first_response_at IS NULL",
            (at, session_id),
        )

    async def _sessions(self, where: str, params: Sequence[Any] = ()) -> list[SessionRecord]:
        return [session_from_row(r) for r in await self._fetchall(SELECT_SESSION + where, params)]

    async def session(self, session_id: SessionId) -> SessionRecord | None:
        found = await self._sessions(" WHERE id = %s", (session_id,))
        return found[0] if found else None

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        found = await self._sessions(" WHERE token_hash = %s", (token_hash,))
        return found[0] if found else None

    async def open_sessions(self) -> list[SessionRecord]:
        return await self._sessions(
            " WHERE state IN ('waiting', 'assigned') ORDER BY created_at, id"
        )

    async def assigned_sessions(self, operator_id: OperatorId) -> list[SessionRecord]:
        return await self._sessions(
            " WHERE state = 'assigned' AND operator_id = %s", (operator_id,)
        )

    async def assigned_by_operator(self) -> dict[OperatorId, list[SessionId]]:
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
        if customer_id:
            where, key = "customer_id = %s", customer_id
        elif email:
            where, key = "lower(visitor_email) = %s", email.lower()
        else:
            return []
        return await self._sessions(
            f" WHERE {where} AND id != %s ORDER BY created_at DESC LIMIT %s",
            (key, exclude, limit),
        )

    async def last_operator_of_customer(
        self, customer_id: str, exclude: SessionId
    ) -> OperatorId | None:
        rows = await self._fetchall(
            "SELECT COALESCE(operator_id, previous_operator) FROM sessions"
            " WHERE customer_id = %s AND id != %s"
            " AND COALESCE(operator_id, previous_operator) IS NOT NULL"
            " ORDER BY created_at DESC LIMIT 1",
            (customer_id, exclude),
        )
        return OperatorId(rows[0][0]) if rows else None

    async def set_customer_lang(self, customer_id: str, lang: str | None) -> None:
        await self._submit("UPDATE customers SET lang = %s WHERE id = %s", (lang, customer_id))

    # -- operators and meta ----------------------------------------------------
    async def add_operator(self, record: OperatorRecord) -> None:
        try:
            await self._submit(
                f"INSERT INTO operators ({OPERATOR_COLUMNS}) VALUES ({', '.join(['%s'] * 13)})",
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
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"operator {record.username!r} exists") from exc

    async def set_operator_lang(self, operator_id: OperatorId, lang: str | None) -> None:
        await self._submit("UPDATE operators SET lang = %s WHERE id = %s", (lang, operator_id))

    async def update_operator(
        self, operator_id: OperatorId, *, revoke: bool = False, **fields: Any
    ) -> OperatorRecord | None:
        update = operator_update_sql(fields, revoke, "%s")
        if update is not None:
            sql, values = update
            await self._submit(sql, (*values, operator_id))
        return await self.operator(operator_id)

    async def _operators(self, where: str, params: Sequence[Any] = ()) -> list[OperatorRecord]:
        rows = await self._fetchall(f"SELECT {OPERATOR_COLUMNS} FROM operators{where}", params)
        return [operator_from_row(r) for r in rows]

    async def operator_by_username(self, username: str) -> OperatorRecord | None:
        found = await self._operators(" WHERE username = %s", (username,))
        return found[0] if found else None

    async def operator(self, operator_id: OperatorId) -> OperatorRecord | None:
        found = await self._operators(" WHERE id = %s", (operator_id,))
        return found[0] if found else None

    async def operators(self) -> list[OperatorRecord]:
        return await self._operators(" ORDER BY username")

    async def operators_changes(self) -> int:
        rows = await self._fetchall("SELECT n FROM operators_changed WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetchall("SELECT value FROM meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._submit(
            "INSERT INTO meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def setdefault_meta(self, key: str, value: str) -> str:
        await self._submit(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
            (key, value),
        )
        stored = await self.get_meta(key)
        assert stored is not None
        return stored

    # -- chat notes ------------------------------------------------------------
    def submit_note(
        self,
        session_id: SessionId,
        ts: float,
        kind: str,
        author_id: str,
        author_name: str,
        text: str,
        to: tuple[str, str] | None = None,
    ) -> asyncio.Future[None]:
        to_id, to_name = to if to is not None else (None, None)
        return self._submit(
            INSERT_NOTE,
            (session_id, ts, kind, author_id, author_name, text, to_id, to_name, session_id),
            note_of=session_id,
        )

    async def notes(self, session_id: SessionId, limit: int = 500) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT n, ts, kind, author_id, author_name, text, to_id, to_name FROM chat_notes"
            " WHERE session_id = %s ORDER BY n DESC LIMIT %s",
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

    async def consulted(self, session_id: SessionId, operator_id: OperatorId) -> bool:
        rows = await self._fetchall(
            "SELECT 1 FROM chat_notes WHERE to_id = %s AND session_id = %s LIMIT 1",
            (operator_id, session_id),
        )
        return bool(rows)

    async def consulted_open(self, operator_id: OperatorId) -> list[SessionId]:
        rows = await self._fetchall(
            "SELECT DISTINCT n.session_id FROM chat_notes n JOIN sessions s ON s.id = n.session_id"
            " WHERE n.to_id = %s AND s.state IN ('waiting', 'assigned')",
            (operator_id,),
        )
        return [SessionId(r[0]) for r in rows]

    # -- the supervisor board ----------------------------------------------------
    async def open_chats(self) -> list[OpenChat]:
        rows = await self._fetchall(
            "SELECT id, state, operator_id, assigned_at, visitor_name, enqueued_at,"
            " first_response_at, sla_first_due, sla_first_warn FROM sessions"
            " WHERE state IN ('waiting', 'assigned')"
        )
        return [OpenChat(*r) for r in rows]

    async def first_session_rowid(self, since: float) -> int:
        """Always 0: PostgreSQL narrows :meth:`chat_stats` by its ``enqueued_at`` index."""
        return 0

    async def chat_stats(self, since: float, from_rowid: int = 0) -> list[ChatStat]:
        rows = await self._fetchall(
            "SELECT s.enqueued_at, s.state,"
            " s.assigned_at IS NOT NULL OR s.previous_operator IS NOT NULL,"
            " s.assigned_at, s.first_response_at,"
            " EXISTS (SELECT 1 FROM tickets t WHERE t.session_id = s.id AND t.channel = 'chat')"
            " FROM sessions s WHERE s.enqueued_at >= %s",
            (since,),
        )
        return [ChatStat(r[0], r[1], bool(r[2]), r[3], r[4], bool(r[5])) for r in rows]

    async def csat_since(self, since: float) -> list[int]:
        rows = await self._fetchall(
            "SELECT csat_score FROM sessions WHERE csat_at >= %s AND csat_score IS NOT NULL",
            (since,),
        )
        return [int(r[0]) for r in rows]

    async def ticket_sla_clocks(self) -> list[SlaClock]:
        rows = await self._fetchall(
            f"SELECT {TICKET_CLOCK_COLUMNS} FROM tickets WHERE state IN"
            " ('open', 'in_progress', 'feedback_needed', 'information', 'answered')"
        )
        return ticket_clocks_of(rows)

    async def sla_breaches_since(self, since: float) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT kind, COUNT(*) FROM sla_breaches WHERE recorded_at >= %s GROUP BY kind",
            (since,),
        )
        return {str(kind): int(n) for kind, n in rows}


if TYPE_CHECKING:
    # The contract is kept (mypy checks this assignment).
    _CONFORMS: type[Store] = PostgresStore
