"""Tickets, attachments and mail bookkeeping on the store's database (SQLite or
PostgreSQL): the :class:`~chatserver.tickets.store.base.TicketStorage` contract.

Ticket work is human-paced, so every operation is one short transaction on a
dedicated connection and thread (:mod:`chatserver.store.database`: the same SQL
on both backends); several processes may share the database (on PostgreSQL a
change of a ticket holds that ticket's advisory lock, numbers come from a
sequence). Ticket events and attachments are append-only (triggers
refuse UPDATE and DELETE); the ``tickets`` table is a projection of the events
that :meth:`TicketStore.verify` checks against them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chatserver.attachments.blobs import BlobStore
from chatserver.attachments.files import AttachmentRecord, new_attachment_id
from chatserver.store.database import (
    INTEGRITY_ERRORS,
    Connection,
    Database,
    as_database,
    connect,
)
from chatserver.tickets.model import (
    FIRST_NUMBER,
    GENESIS,
    TicketPriority,
    TicketState,
    apply_event,
    event_hash,
)
from chatserver.tickets.store.audit import problems
from chatserver.tickets.store.base import (
    DuplicateChatTicket,
    FollowUp,
    InboundKey,
    InboundOutcome,
    Mutation,
    NewEvent,
    TicketRow,
)
from chatserver.tickets.store.mail_sqlite import (
    MailTables,
    claim_inbound,
    insert_mail,
    record_inbound,
)

if TYPE_CHECKING:
    from chatserver.tickets.store.base import TicketStorage

_T = TypeVar("_T")

_TICKET_COLUMNS = (
    "number, subject, state, priority, department, level, assignee, channel, requester_name,"
    " requester_email, customer_id, session_id, created_at, updated_at, events, head"
)
_SLA_COLUMNS = (
    "plan, sla_first_due, sla_first_warn, sla_resolution_due, sla_resolution_warn,"
    " first_response_at, resolved_at, paused_since, sla_breached"
)
_TICKET_SELECT = f"{_TICKET_COLUMNS}, {_SLA_COLUMNS}, lang"
_ATTACHMENT_COLUMNS = (
    "id, owner, filename, content_type, size, sha256, storage, uploaded_by, created_at"
)


# What a second ticket of one chat violates: SQLite names the column, PostgreSQL the index.
_CHAT_UNIQUE = ("tickets.session_id", "tickets_chat")
_CHAT_TICKET = "SELECT 1 FROM tickets WHERE session_id = ? AND channel = 'chat'"
_CANNED_COLUMNS = "id, department, title, text, lang, owner, shortcut"
# What PATCH /api/canned/{id} may change (operator_tools checks each value).
_CANNED_EDITABLE = ("department", "title", "text", "lang", "shortcut")


def _canned_row(r: Sequence[Any]) -> dict[str, Any]:
    keys = ("id", "department", "title", "text", "lang", "owner", "shortcut")
    return dict(zip(keys, r, strict=True))


def _ticket(row: Sequence[Any]) -> TicketRow:
    return TicketRow(
        row[0],
        row[1],
        TicketState(row[2]),
        TicketPriority(row[3]),
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
        row[15],
        *row[16:26],
    )


def _attachment(row: Sequence[Any]) -> AttachmentRecord:
    return AttachmentRecord(*row)


class TicketStore(MailTables):
    """:class:`~chatserver.tickets.store.base.TicketStorage` on the store's SQLite
    file; all methods are coroutines run on one thread (the mail bookkeeping is in
    :mod:`~chatserver.tickets.store.mail_sqlite`)."""

    def __init__(self, path: Path | Database, files: BlobStore) -> None:
        self.db = as_database(path)
        self.files = files
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: Connection | None = None
        # Metrics hooks (set by the app): a ticket was created (its channel), a
        # mail delivery attempt ended ("ok" or "error").
        self.on_ticket_created: Callable[[str], None] | None = None
        self.on_mail_result: Callable[[str], None] | None = None

    async def open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tickets")
        self._conn = await self._run(lambda: self._connect(self.db))

    @staticmethod
    def _connect(db: Database) -> Connection:
        conn = connect(db)
        if conn.kind == "sqlite":
            conn.execute("PRAGMA synchronous=FULL")
        return conn

    def _connection(self) -> Connection:
        """The connection (a new one if PostgreSQL dropped the old: a restart)."""
        conn = self._conn
        assert conn is not None
        if conn.broken:
            conn.close()
            conn = self._conn = self._connect(self.db)
        return conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, fn: Callable[[], _T]) -> _T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _tx(self, fn: Callable[[Connection], _T]) -> _T:
        with self._connection().transaction() as conn:
            return fn(conn)

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()

    # ------------------------------------------------------------ attachments
    async def add_attachment(self, record: AttachmentRecord) -> None:
        def insert(conn: Connection) -> None:
            conn.execute(
                f"INSERT INTO attachments ({_ATTACHMENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                dataclasses.astuple(record),
            )

        await self._run(lambda: self._tx(insert))

    async def attachment(self, attachment_id: str) -> AttachmentRecord | None:
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?", (attachment_id,)
            )
        )
        return _attachment(rows[0]) if rows else None

    async def attachments_of(self, owner: str, ids: Sequence[str]) -> list[AttachmentRecord]:
        """The attachments among ``ids`` that belong to ``owner``, in the order of ``ids``."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_ATTACHMENT_COLUMNS} FROM attachments"
                f" WHERE owner = ? AND id IN ({marks})",
                (owner, *ids),
            )
        )
        found = {r[0]: _attachment(r) for r in rows}
        return [found[i] for i in ids if i in found]

    async def all_attachments_of(self, owner: str) -> list[AttachmentRecord]:
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_ATTACHMENT_COLUMNS} FROM attachments WHERE owner = ?"
                " ORDER BY created_at, id",
                (owner,),
            )
        )
        return [_attachment(r) for r in rows]

    # ---------------------------------------------------------------- tickets
    async def create(
        self,
        *,
        subject: str,
        priority: TicketPriority,
        department: str,
        level: int,
        assignee: str | None,
        channel: str,
        requester_name: str | None,
        requester_email: str | None,
        customer_id: str | None,
        session_id: str | None,
        actor: dict[str, Any],
        events: list[NewEvent],
        carry: Sequence[AttachmentRecord] = (),
        adopt: Sequence[AttachmentRecord] = (),
        state: TicketState = TicketState.OPEN,
        plan: str | None = None,
        reason: str | None = None,
        lang: str | None = None,
        inbound: InboundKey | None = None,
        follow_up: FollowUp | None = None,
    ) -> tuple[TicketRow, dict[str, str]]:
        """Create a ticket with its ``created`` event followed by ``events``.

        Every attachment in ``carry`` is copied (file and record) into the
        ticket; the returned map gives each old attachment id its new one, and
        ``events`` may name old ids: they are rewritten. A second ticket for the
        same chat (``channel`` "chat", same ``session_id``) raises
        :class:`DuplicateChatTicket` (an ``sqlite3.IntegrityError`` too, for
        callers that catch that). Records in ``adopt`` (files stored, no row
        yet) become the ticket's as they are.
        """
        copies: dict[str, AttachmentRecord] = {}
        for att in carry:
            storage = await self._run(lambda att=att: self.files.copy(att.storage))  # type: ignore[misc]
            copies[att.attachment_id] = dataclasses.replace(
                att,
                attachment_id=new_attachment_id(),
                storage=storage,
            )

        def work(conn: Connection) -> TicketRow:
            claim_inbound(conn, inbound)
            if channel == "chat" and session_id is not None:
                # Refused before a number is drawn (PostgreSQL's sequence keeps no gap then).
                conn.lock(f"chat-ticket:{session_id}")
                if conn.execute(_CHAT_TICKET, (session_id,)).fetchone() is not None:
                    raise _ChatTicketExists(f"UNIQUE constraint failed: {_CHAT_UNIQUE[0]}")
            number = conn.next_ticket_number(FIRST_NUMBER)
            now = round(time.time(), 3)
            for rec in [*copies.values(), *adopt]:
                rec.owner = f"t:{number}"
                rec.created_at = now
                conn.execute(
                    f"INSERT INTO attachments ({_ATTACHMENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    dataclasses.astuple(rec),
                )
            created = NewEvent(
                "created",
                actor,
                {
                    "subject": subject,
                    "state": state.value,
                    "priority": priority.value,
                    "department": department,
                    "level": level,
                    "assignee": assignee,
                    "channel": channel,
                    "requester_name": requester_name,
                    "requester_email": requester_email,
                    "customer_id": customer_id,
                    "session_id": session_id,
                    "reason": reason,
                },
                ts=now,
            )
            conn.execute(
                f"INSERT INTO tickets ({_TICKET_COLUMNS}, priority_rank, plan, lang) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?)",
                (
                    number,
                    subject,
                    state.value,
                    priority.value,
                    department,
                    level,
                    assignee,
                    channel,
                    requester_name,
                    requester_email,
                    customer_id,
                    session_id,
                    now,
                    now,
                    GENESIS,
                    priority.rank,
                    plan,
                    lang,
                ),
            )
            for event in events:
                _rewrite_attachments(event.body, copies)
            self._append(conn, number, [created, *events])
            row = self._row(conn, number)
            record_inbound(conn, inbound, InboundOutcome("created", number))
            self._follow(conn, row, follow_up)
            return row

        try:
            row = await self._run(lambda: self._tx(work))
        except INTEGRITY_ERRORS as exc:
            # SQLite names the column, PostgreSQL the index.
            if channel == "chat" and any(n in str(exc) for n in _CHAT_UNIQUE):
                raise _ChatTicketExists(str(exc)) from exc
            raise
        if self.on_ticket_created is not None:
            self.on_ticket_created(channel)
        return row, {old: new.attachment_id for old, new in copies.items()}

    @staticmethod
    def _follow(conn: Connection, row: TicketRow, follow_up: FollowUp | None) -> None:
        for mail in follow_up(row) if follow_up is not None else ():
            insert_mail(conn, mail)

    @staticmethod
    def _row(conn: Connection, number: int) -> TicketRow:
        row = conn.execute(
            f"SELECT {_TICKET_SELECT} FROM tickets WHERE number = ?", (number,)
        ).fetchone()
        return _ticket(row)

    @staticmethod
    def _append(conn: Connection, number: int, events: list[NewEvent]) -> list[dict[str, Any]]:
        n, head = conn.execute(
            "SELECT events, head FROM tickets WHERE number = ?", (number,)
        ).fetchone()
        stored: list[dict[str, Any]] = []
        now = round(time.time(), 3)
        for event in events:
            n += 1
            record: dict[str, Any] = {
                "ticket": number,
                "n": n,
                "ts": event.ts if event.ts is not None else now,
                "kind": event.kind,
                "actor": event.actor,
                "internal": event.internal,
                "body": event.body,
                "prev_hash": head,
            }
            record["hash"] = head = event_hash(record)
            conn.execute(
                "INSERT INTO ticket_events (ticket, n, ts, kind, actor, internal, body,"
                " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    number,
                    n,
                    record["ts"],
                    event.kind,
                    json.dumps(event.actor, ensure_ascii=False),
                    int(event.internal),
                    json.dumps(event.body, ensure_ascii=False),
                    record["prev_hash"],
                    record["hash"],
                ),
            )
            stored.append(record)
        # The projection follows the events (replayed from the new ones only).
        view = TicketStore._row(conn, number)
        for record in stored:
            if record["kind"] != "created":
                apply_event(view, record)
        conn.execute(
            "UPDATE tickets SET state = ?, priority = ?, priority_rank = ?, department = ?,"
            " level = ?, assignee = ?, updated_at = ?, events = ?, head = ? WHERE number = ?",
            (
                view.state.value,
                view.priority.value,
                view.priority.rank,
                view.department,
                view.level,
                view.assignee,
                now,
                n,
                head,
                number,
            ),
        )
        return stored

    async def mutate(
        self,
        number: int,
        mutation: Mutation,
        *,
        adopt: Sequence[AttachmentRecord] = (),
        inbound: InboundKey | None = None,
        follow_up: FollowUp | None = None,
    ) -> tuple[TicketRow, list[dict[str, Any]]]:
        """Run ``mutation`` on the ticket inside one transaction and append its events
        (with ``adopt``'s records, ``inbound`` recorded and ``follow_up``'s mails).

        Raises ``KeyError`` if there is no such ticket.
        """

        def work(conn: Connection) -> tuple[TicketRow, list[dict[str, Any]]]:
            claim_inbound(conn, inbound)
            conn.lock(f"ticket:{number}")  # one change of a ticket at a time, on any node
            row = conn.execute(
                f"SELECT {_TICKET_SELECT} FROM tickets WHERE number = ?", (number,)
            ).fetchone()
            if row is None:
                raise KeyError(number)
            events = mutation(_ticket(row))
            for rec in adopt:
                conn.execute(
                    f"INSERT INTO attachments ({_ATTACHMENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    dataclasses.astuple(rec),
                )
            stored = self._append(conn, number, events) if events else []
            after = self._row(conn, number)
            record_inbound(conn, inbound, InboundOutcome("reply", number))
            self._follow(conn, after, follow_up)
            return after, stored

        return await self._run(lambda: self._tx(work))

    async def set_sla(self, number: int, **fields: Any) -> None:
        """Store the derived SLA columns (recomputed from the events after each change)."""
        allowed = {
            "sla_first_due",
            "sla_first_warn",
            "sla_resolution_due",
            "sla_resolution_warn",
            "first_response_at",
            "resolved_at",
            "paused_since",
        }
        if set(fields) - allowed:
            raise ValueError(f"not SLA columns: {sorted(set(fields) - allowed)}")
        names = sorted(fields)
        sql = f"UPDATE tickets SET {', '.join(f'{n} = ?' for n in names)} WHERE number = ?"
        await self._run(
            lambda: self._tx(lambda c: c.execute(sql, (*(fields[n] for n in names), number)))
        )

    async def record_breaches(self, now: float) -> list[tuple[str, str, float]]:
        """Record every first-response or resolution clock that ran out (once, in any
        process); returns the newly recorded ``(ref, kind, due)``."""

        def work(conn: Connection) -> list[tuple[str, str, float]]:
            found: list[tuple[str, str, float]] = []
            for number, due in conn.execute(
                "SELECT number, sla_first_due FROM tickets WHERE first_response_at IS NULL"
                " AND sla_first_due < ? AND state != 'closed'",
                (now,),
            ).fetchall():
                found.append((f"#{number}", "first_response", due))
            for number, due in conn.execute(
                "SELECT number, sla_resolution_due FROM tickets WHERE resolved_at IS NULL"
                " AND sla_resolution_due < ? AND state != 'closed'",
                (now,),
            ).fetchall():
                found.append((f"#{number}", "resolution", due))
            for session_id, due in conn.execute(
                "SELECT id, sla_first_due FROM sessions WHERE state IN ('waiting', 'assigned')"
                " AND first_response_at IS NULL AND sla_first_due < ?",
                (now,),
            ).fetchall():
                found.append((f"chat:{session_id}", "first_response", due))
            new: list[tuple[str, str, float]] = []
            for ref, kind, due in found:
                cur = conn.execute(
                    "INSERT INTO sla_breaches (ref, kind, due, recorded_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (ref, kind, due, now),
                )
                if cur.rowcount:
                    new.append((ref, kind, due))
                    if ref.startswith("#"):
                        conn.execute(
                            "UPDATE tickets"
                            " SET sla_breached = TRIM(sla_breached || ' ' || CAST(? AS TEXT))"
                            " WHERE number = ?",
                            (kind, int(ref[1:])),
                        )
            return new

        return await self._run(lambda: self._tx(work))

    async def customer_plan(self, customer_id: str | None, email: str | None) -> str | None:
        """The plan of a known customer (by id, else by e-mail)."""
        rows: list[Any] = []
        if customer_id:
            rows = await self._run(
                lambda: self._q("SELECT plan FROM customers WHERE id = ?", (customer_id,))
            )
        if not rows and email:
            rows = await self._run(
                lambda: self._q(
                    "SELECT plan FROM customers WHERE lower(email) = ? LIMIT 1", (email.lower(),)
                )
            )
        return str(rows[0][0]) if rows else None

    async def add_time(
        self,
        *,
        operator_id: str,
        customer_id: str | None,
        ticket: int | None,
        session_id: str | None,
        seconds: int,
        note: str,
    ) -> int:
        def insert(conn: Connection) -> int:
            return int(
                conn.execute(
                    "INSERT INTO time_entries (ts, operator_id, customer_id, ticket, session_id,"
                    " seconds, note) VALUES (?,?,?,?,?,?,?) RETURNING id",
                    (time.time(), operator_id, customer_id, ticket, session_id, seconds, note),
                ).fetchone()[0]
            )

        return await self._run(lambda: self._tx(insert))

    async def canned(
        self,
        department: str | None,
        lang: str | None = None,
        *,
        viewer: str | None = None,
        q: str | None = None,
    ) -> list[dict[str, Any]]:
        # A substring on both backends: LIKE, its wildcards in the query escaped.
        like = "%" + re.sub(r"([!%_])", r"!\1", q.lower()) + "%" if q else None
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_CANNED_COLUMNS} FROM canned_responses"
                " WHERE (department IS NULL OR department = CAST(? AS TEXT))"
                " AND (CAST(? AS TEXT) IS NULL OR lang IS NULL OR lang = CAST(? AS TEXT))"
                " AND (owner IS NULL OR owner = CAST(? AS TEXT))"
                " AND (CAST(? AS TEXT) IS NULL OR lower(title) LIKE ? ESCAPE '!'"
                " OR lower(coalesce(shortcut, '')) LIKE ? ESCAPE '!'"
                " OR lower(text) LIKE ? ESCAPE '!')"
                " ORDER BY title, id",
                (department, lang, lang, viewer, like, like, like, like),
            )
        )
        return [_canned_row(r) for r in rows]

    async def canned_one(self, canned_id: int) -> dict[str, Any] | None:
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_CANNED_COLUMNS} FROM canned_responses WHERE id = ?", (canned_id,)
            )
        )
        return _canned_row(rows[0]) if rows else None

    async def add_canned(
        self,
        department: str | None,
        title: str,
        text: str,
        lang: str | None = None,
        *,
        owner: str | None = None,
        shortcut: str | None = None,
    ) -> dict[str, Any]:
        def insert(conn: Connection) -> int:
            return int(
                conn.execute(
                    "INSERT INTO canned_responses (department, title, text, created_at, lang,"
                    " owner, shortcut) VALUES (?,?,?,?,?,?,?) RETURNING id",
                    (department, title, text, time.time(), lang, owner, shortcut),
                ).fetchone()[0]
            )

        canned_id = await self._run(lambda: self._tx(insert))
        return {
            "id": canned_id,
            "department": department,
            "title": title,
            "text": text,
            "lang": lang,
            "owner": owner,
            "shortcut": shortcut,
        }

    async def update_canned(self, canned_id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        fields = [k for k in changes if k in _CANNED_EDITABLE]

        def update(conn: Connection) -> int:
            sets = ", ".join(f"{k} = ?" for k in fields) + (", " if fields else "")
            cur = conn.execute(
                f"UPDATE canned_responses SET {sets}updated_at = ? WHERE id = ?",
                (*[changes[k] for k in fields], time.time(), canned_id),
            )
            return cur.rowcount

        if not await self._run(lambda: self._tx(update)):
            return None
        return await self.canned_one(canned_id)

    async def delete_canned(self, canned_id: int) -> bool:
        def delete(conn: Connection) -> int:
            return conn.execute("DELETE FROM canned_responses WHERE id = ?", (canned_id,)).rowcount

        return bool(await self._run(lambda: self._tx(delete)))

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, name, email, plan, contract, package_minutes, lang FROM customers"
                " WHERE id = ?",
                (customer_id,),
            )
        )
        if not rows:
            return None
        keys = ("id", "name", "email", "plan", "contract", "package_minutes", "lang")
        return dict(zip(keys, rows[0], strict=True))

    async def tickets_of_email(self, email: str) -> list[TicketRow]:
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_TICKET_SELECT} FROM tickets WHERE requester_email = ?"
                " ORDER BY created_at DESC LIMIT 20",
                (email.lower(),),
            )
        )
        return [_ticket(r) for r in rows]

    async def ticket(self, number: int) -> TicketRow | None:
        rows = await self._run(
            lambda: self._q(f"SELECT {_TICKET_SELECT} FROM tickets WHERE number = ?", (number,))
        )
        return _ticket(rows[0]) if rows else None

    async def ticket_for_session(self, session_id: str) -> TicketRow | None:
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_TICKET_SELECT} FROM tickets WHERE session_id = ? AND channel = 'chat'",
                (session_id,),
            )
        )
        return _ticket(rows[0]) if rows else None

    async def events(self, number: int, *, internal: bool = True) -> list[dict[str, Any]]:
        sql = (
            "SELECT ticket, n, ts, kind, actor, internal, body, prev_hash, hash"
            " FROM ticket_events WHERE ticket = ?"
        )
        if not internal:
            sql += " AND internal = 0"
        rows = await self._run(lambda: self._q(sql + " ORDER BY n", (number,)))
        return [event_row(r) for r in rows]

    async def search(
        self,
        *,
        states: Sequence[str] = (),
        department: str | None = None,
        level: int | None = None,
        assignee: str | None = None,
        unassigned: bool = False,
        customer_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[TicketRow], int]:
        """Tickets matching every given filter: urgent first, then oldest first."""
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        if department is not None:
            where.append("department = ?")
            params.append(department)
        if level is not None:
            where.append("level = ?")
            params.append(level)
        if assignee is not None:
            where.append("assignee = ?")
            params.append(assignee)
        if unassigned:
            where.append("assignee IS NULL")
        owner: list[str] = []
        if customer_id is not None:
            owner.append("customer_id = ?")
            params.append(customer_id)
        if session_id is not None:
            owner.append("session_id = ?")
            params.append(session_id)
        if owner:
            where.append("(" + " OR ".join(owner) + ")")
        clause = (" WHERE " + " AND ".join(where)) if where else ""

        def run() -> tuple[list[TicketRow], int]:
            total = self._q("SELECT COUNT(*) FROM tickets" + clause, params)[0][0]
            rows = self._q(
                f"SELECT {_TICKET_SELECT} FROM tickets{clause}"
                " ORDER BY priority_rank, created_at, number LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            return [_ticket(r) for r in rows], int(total)

        return await self._run(run)

    # ----------------------------------------------------------------- audit
    async def verify(self) -> list[str]:
        """Check every ticket's chain, projection and attachment files; list the problems."""
        return await self._run(self._verify_sync)

    def _verify_sync(self) -> list[str]:
        tickets, bad = {}, []
        for r in self._q(f"SELECT {_TICKET_SELECT} FROM tickets"):
            try:
                tickets[r[0]] = _ticket(r)
            except ValueError:  # a state or priority no history can give
                bad.append(f"ticket #{r[0]}: column state or priority holds an unknown value")
        by_ticket: dict[int, list[dict[str, Any]]] = {}
        for r in self._q(
            "SELECT ticket, n, ts, kind, actor, internal, body, prev_hash, hash"
            " FROM ticket_events ORDER BY ticket, n"
        ):
            by_ticket.setdefault(r[0], []).append(event_row(r))
        attachments = [
            _attachment(r)
            for r in self._q(
                f"SELECT {_ATTACHMENT_COLUMNS} FROM attachments WHERE owner LIKE 't:%'"
            )
        ]
        ranks = dict(self._q("SELECT number, priority_rank FROM tickets"))
        return bad + problems(tickets, by_ticket, attachments, self.files.digest, ranks)


def event_row(r: Sequence[Any]) -> dict[str, Any]:
    """A ``ticket_events`` row (ticket, n, ts, kind, actor, internal, body, prev_hash,
    hash) as its chain hashes it."""
    return {
        "ticket": r[0],
        "n": r[1],
        "ts": r[2],
        "kind": r[3],
        "actor": json.loads(r[4]),
        "internal": bool(r[5]),
        "body": json.loads(r[6]),
        "prev_hash": r[7],
        "hash": r[8],
    }


def _rewrite_attachments(body: dict[str, Any], copies: dict[str, AttachmentRecord]) -> None:
    atts = body.get("attachments")
    if atts:
        body["attachments"] = [
            copies[a["id"]].public() if a.get("id") in copies else a for a in atts
        ]


class _ChatTicketExists(DuplicateChatTicket, sqlite3.IntegrityError):
    """:class:`DuplicateChatTicket`, still an ``sqlite3.IntegrityError`` as before."""


if TYPE_CHECKING:
    # The contract is kept (mypy checks this assignment).
    _CONFORMS: type[TicketStorage] = TicketStore
