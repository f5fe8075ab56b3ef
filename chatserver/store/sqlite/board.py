"""The supervisor board's reads and the chats' operators-only threads, on SQLite.

The :class:`~chatserver.store.base.BoardStore` and
:class:`~chatserver.store.base.NoteStore` parts of
:class:`~chatserver.store.sqlite.SqliteStore`: lean queries on indexes (the
``sessions_open`` partial index, rowid ranges), computed on by
:mod:`chatserver.supervision.board`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chatserver.store.sqlite.journaled import JournaledStore
from chatserver.supervision.board import (
    TICKET_CLOCK_COLUMNS,
    ChatStat,
    OpenChat,
    SlaClock,
    ticket_clocks_of,
)
from chatserver.types import OperatorId, SessionId


class BoardAndNotes(JournaledStore):
    """Board statistics and chat notes (a layer of :class:`SqliteStore`)."""

    # -- supervisor board ----------------------------------------------------
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
            f"SELECT {TICKET_CLOCK_COLUMNS} FROM tickets WHERE state IN"
            " ('open', 'in_progress', 'feedback_needed', 'information', 'answered')"
        )
        return ticket_clocks_of(rows)

    async def sla_breaches_since(self, since: float) -> dict[str, int]:
        """Breaches recorded at or after ``since``, by kind."""
        rows = await self._fetchall(
            "SELECT kind, COUNT(*) FROM sla_breaches WHERE recorded_at >= ? GROUP BY kind",
            (since,),
        )
        return {str(kind): int(n) for kind, n in rows}

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
