"""Tickets, attachments and mail bookkeeping on the store's SQLite file.

Ticket work is human-paced, so every operation is one short ``BEGIN
IMMEDIATE`` transaction on a dedicated connection and thread; several processes
may share the file. Ticket events and attachments are append-only (triggers
refuse UPDATE and DELETE); the ``tickets`` table is a projection of the events
that :meth:`TicketStore.verify` checks against them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..attachments import AttachmentRecord, FileStore, new_attachment_id
from ..tickets import (
    FIRST_NUMBER,
    GENESIS,
    TicketPriority,
    TicketState,
    apply_event,
    event_hash,
    replay,
    verify_chain,
)
from .sqlite import connect_sync

_T = TypeVar("_T")

_TICKET_COLUMNS = (
    "number, subject, state, priority, department, level, assignee, channel, requester_name,"
    " requester_email, customer_id, session_id, created_at, updated_at, events, head"
)
_SLA_COLUMNS = (
    "plan, sla_first_due, sla_first_warn, sla_resolution_due, sla_resolution_warn,"
    " first_response_at, resolved_at, paused_since, sla_breached"
)
_TICKET_SELECT = f"{_TICKET_COLUMNS}, {_SLA_COLUMNS}"
_ATTACHMENT_COLUMNS = (
    "id, owner, filename, content_type, size, sha256, storage, uploaded_by, created_at"
)


@dataclasses.dataclass(slots=True)
class TicketRow:
    number: int
    subject: str
    state: TicketState
    priority: TicketPriority
    department: str
    level: int
    assignee: str | None
    channel: str
    requester_name: str | None
    requester_email: str | None
    customer_id: str | None
    session_id: str | None
    created_at: float
    updated_at: float
    events: int
    head: str
    plan: str | None = None
    sla_first_due: float | None = None
    sla_first_warn: float | None = None
    sla_resolution_due: float | None = None
    sla_resolution_warn: float | None = None
    first_response_at: float | None = None
    resolved_at: float | None = None
    paused_since: float | None = None
    sla_breached: str = ""


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
        *row[16:25],
    )


def _attachment(row: Sequence[Any]) -> AttachmentRecord:
    return AttachmentRecord(*row)


@dataclasses.dataclass(slots=True)
class NewEvent:
    """An event to append; ``n``, ``ts`` and hashes are filled in by the store."""

    kind: str
    actor: dict[str, Any]
    body: dict[str, Any]
    internal: bool = False
    ts: float | None = None


# A mutation runs inside the ticket's transaction: it sees the current row and
# returns the events to append (it may raise a ChatError to refuse).
Mutation = Callable[[TicketRow], list[NewEvent]]


@dataclasses.dataclass(slots=True)
class OutboxMail:
    mail_id: int
    ticket: int | None
    to_addr: str
    subject: str
    body: str
    message_id: str
    refs: list[str]
    attachments: list[str]
    attempts: int


@dataclasses.dataclass(slots=True)
class ReviewMail:
    review_id: int
    received_at: float
    sender: str
    subject: str
    message_id: str | None
    ticket: int | None
    reason: str
    storage: str


class TicketStore:
    """Tickets and attachments; all methods are coroutines run on one thread."""

    def __init__(self, path: Path, files: FileStore) -> None:
        self.path = path
        self.files = files
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # Metrics hooks (set by the app): a ticket was created (its channel), a
        # mail delivery attempt ended ("ok" or "error").
        self.on_ticket_created: Callable[[str], None] | None = None
        self.on_mail_result: Callable[[str], None] | None = None

    async def open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tickets")
        self._conn = await self._run(lambda: self._connect(self.path))

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = connect_sync(path)
        conn.execute("PRAGMA synchronous=FULL")
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

    def _tx(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    # ------------------------------------------------------------ attachments
    async def add_attachment(self, record: AttachmentRecord) -> None:
        def insert(conn: sqlite3.Connection) -> None:
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
    ) -> tuple[TicketRow, dict[str, str]]:
        """Create a ticket with its ``created`` event followed by ``events``.

        Every attachment in ``carry`` is copied (file and record) into the
        ticket; the returned map gives each old attachment id its new one, and
        ``events`` may name old ids: they are rewritten. A second ticket for the
        same chat (``channel`` "chat", same ``session_id``) raises
        ``sqlite3.IntegrityError``. Records in ``adopt`` (files stored, no row
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

        def work(conn: sqlite3.Connection) -> TicketRow:
            top = conn.execute("SELECT MAX(number) FROM tickets").fetchone()[0]
            number = max(int(top or 0) + 1, FIRST_NUMBER)
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
                f"INSERT INTO tickets ({_TICKET_COLUMNS}, priority_rank, plan) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?)",
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
                ),
            )
            for event in events:
                _rewrite_attachments(event.body, copies)
            self._append(conn, number, [created, *events])
            return self._row(conn, number)

        row = await self._run(lambda: self._tx(work))
        if self.on_ticket_created is not None:
            self.on_ticket_created(channel)
        return row, {old: new.attachment_id for old, new in copies.items()}

    @staticmethod
    def _row(conn: sqlite3.Connection, number: int) -> TicketRow:
        row = conn.execute(
            f"SELECT {_TICKET_SELECT} FROM tickets WHERE number = ?", (number,)
        ).fetchone()
        return _ticket(row)

    @staticmethod
    def _append(
        conn: sqlite3.Connection, number: int, events: list[NewEvent]
    ) -> list[dict[str, Any]]:
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
        self, number: int, mutation: Mutation
    ) -> tuple[TicketRow, list[dict[str, Any]]]:
        """Run ``mutation`` on the ticket inside one transaction and append its events.

        Raises ``KeyError`` if there is no such ticket.
        """

        def work(conn: sqlite3.Connection) -> tuple[TicketRow, list[dict[str, Any]]]:
            row = conn.execute(
                f"SELECT {_TICKET_SELECT} FROM tickets WHERE number = ?", (number,)
            ).fetchone()
            if row is None:
                raise KeyError(number)
            events = mutation(_ticket(row))
            stored = self._append(conn, number, events) if events else []
            return self._row(conn, number), stored

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

        def work(conn: sqlite3.Connection) -> list[tuple[str, str, float]]:
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
                    "INSERT OR IGNORE INTO sla_breaches (ref, kind, due, recorded_at)"
                    " VALUES (?, ?, ?, ?)",
                    (ref, kind, due, now),
                )
                if cur.rowcount:
                    new.append((ref, kind, due))
                    if ref.startswith("#"):
                        conn.execute(
                            "UPDATE tickets SET sla_breached = TRIM(sla_breached || ' ' || ?)"
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
        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO time_entries (ts, operator_id, customer_id, ticket, session_id,"
                " seconds, note) VALUES (?,?,?,?,?,?,?)",
                (time.time(), operator_id, customer_id, ticket, session_id, seconds, note),
            )
            return int(cur.lastrowid or 0)

        return await self._run(lambda: self._tx(insert))

    async def canned(self, department: str | None) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, department, title, text FROM canned_responses"
                " WHERE department IS NULL OR department = ? ORDER BY title, id",
                (department,),
            )
        )
        return [{"id": r[0], "department": r[1], "title": r[2], "text": r[3]} for r in rows]

    async def add_canned(self, department: str | None, title: str, text: str) -> dict[str, Any]:
        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO canned_responses (department, title, text, created_at)"
                " VALUES (?,?,?,?)",
                (department, title, text, time.time()),
            )
            return int(cur.lastrowid or 0)

        canned_id = await self._run(lambda: self._tx(insert))
        return {"id": canned_id, "department": department, "title": title, "text": text}

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, name, email, plan, contract, package_minutes FROM customers"
                " WHERE id = ?",
                (customer_id,),
            )
        )
        if not rows:
            return None
        keys = ("id", "name", "email", "plan", "contract", "package_minutes")
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
        return [_event(r) for r in rows]

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

    # ------------------------------------------------------------------ mail
    async def remember_mail_id(self, message_id: str, number: int) -> None:
        await self._run(
            lambda: self._tx(
                lambda c: c.execute(
                    "INSERT OR IGNORE INTO mail_ids (message_id, ticket) VALUES (?, ?)",
                    (message_id, number),
                )
            )
        )

    async def ticket_for_mail_ids(self, ids: Sequence[str]) -> int | None:
        if not ids:
            return None
        marks = ",".join("?" * len(ids))
        rows = await self._run(
            lambda: self._q(f"SELECT ticket FROM mail_ids WHERE message_id IN ({marks})", ids)
        )
        return int(rows[0][0]) if rows else None

    async def queue_mail(
        self,
        *,
        ticket: int | None,
        to_addr: str,
        subject: str,
        body: str,
        message_id: str,
        refs: Sequence[str] = (),
        attachments: Sequence[str] = (),
    ) -> int:
        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO mail_outbox (ticket, to_addr, subject, body, message_id, refs,"
                " attachments, created_at, next_attempt) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    ticket,
                    to_addr,
                    subject,
                    body,
                    message_id,
                    json.dumps(list(refs)),
                    json.dumps(list(attachments)),
                    time.time(),
                    time.time(),
                ),
            )
            if ticket is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO mail_ids (message_id, ticket) VALUES (?, ?)",
                    (message_id, ticket),
                )
            return int(cur.lastrowid or 0)

        return await self._run(lambda: self._tx(insert))

    async def due_mail(self, limit: int = 20) -> list[OutboxMail]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, ticket, to_addr, subject, body, message_id, refs, attachments,"
                " attempts FROM mail_outbox WHERE sent_at IS NULL AND next_attempt <= ?"
                " ORDER BY id LIMIT ?",
                (time.time(), limit),
            )
        )
        return [
            OutboxMail(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]), r[8])
            for r in rows
        ]

    async def mail_sent(self, mail_id: int) -> None:
        await self._run(
            lambda: self._tx(
                lambda c: c.execute(
                    "UPDATE mail_outbox SET sent_at = ?, last_error = NULL WHERE id = ?",
                    (time.time(), mail_id),
                )
            )
        )
        if self.on_mail_result is not None:
            self.on_mail_result("ok")

    async def mail_failed(self, mail_id: int, error: str, retry_in: float) -> None:
        await self._run(
            lambda: self._tx(
                lambda c: c.execute(
                    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
                    " next_attempt = ? WHERE id = ?",
                    (error[:500], time.time() + retry_in, mail_id),
                )
            )
        )
        if self.on_mail_result is not None:
            self.on_mail_result("error")

    async def outbox(self) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, ticket, to_addr, subject, attempts, sent_at, last_error"
                " FROM mail_outbox ORDER BY id"
            )
        )
        keys = ("id", "ticket", "to", "subject", "attempts", "sent_at", "last_error")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def hold_for_review(
        self,
        *,
        sender: str,
        subject: str,
        message_id: str | None,
        ticket: int | None,
        reason: str,
        raw: bytes,
    ) -> int:
        storage, _ = await self._run(lambda: self.files.put(raw))

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO mail_review (received_at, sender, subject, message_id, ticket,"
                " reason, storage) VALUES (?,?,?,?,?,?,?)",
                (time.time(), sender, subject, message_id, ticket, reason, storage),
            )
            return int(cur.lastrowid or 0)

        return await self._run(lambda: self._tx(insert))

    async def review_mails(self) -> list[ReviewMail]:
        rows = await self._run(
            lambda: self._q(
                "SELECT id, received_at, sender, subject, message_id, ticket, reason, storage"
                " FROM mail_review ORDER BY id"
            )
        )
        return [ReviewMail(*r) for r in rows]

    # ----------------------------------------------------------------- audit
    async def verify(self) -> list[str]:
        """Check every ticket's chain, projection and attachment files; list the problems."""
        return await self._run(self._verify_sync)

    def _verify_sync(self) -> list[str]:
        problems: list[str] = []
        tickets = {r[0]: _ticket(r) for r in self._q(f"SELECT {_TICKET_SELECT} FROM tickets")}
        by_ticket: dict[int, list[dict[str, Any]]] = {}
        for r in self._q(
            "SELECT ticket, n, ts, kind, actor, internal, body, prev_hash, hash"
            " FROM ticket_events ORDER BY ticket, n"
        ):
            by_ticket.setdefault(r[0], []).append(_event(r))
        for number in sorted(set(tickets) | set(by_ticket)):
            events = by_ticket.get(number, [])
            row = tickets.get(number)
            label = f"ticket #{number}"
            if row is None:
                problems.append(f"{label}: history without a ticket")
                continue
            for p in verify_chain(events):
                problems.append(f"{label} event {p.n}: {p.problem}")
            if row.events != len(events) or (events and row.head != events[-1]["hash"]):
                problems.append(f"{label}: history was cut short or extended behind its back")
            if not events:
                continue
            try:
                view = replay(number, events)
            except (KeyError, ValueError) as exc:
                problems.append(f"{label}: history cannot be replayed ({exc})")
                continue
            current = (
                row.subject,
                row.state,
                row.priority,
                row.department,
                row.level,
                row.assignee,
            )
            replayed = (
                view.subject,
                view.state,
                view.priority,
                view.department,
                view.level,
                view.assignee,
            )
            if current != replayed:
                problems.append(f"{label}: current state differs from its history")
        for r in self._q(f"SELECT {_ATTACHMENT_COLUMNS} FROM attachments WHERE owner LIKE 't:%'"):
            att = _attachment(r)
            digest = self.files.digest(att.storage)
            if digest is None:
                problems.append(f"attachment {att.attachment_id} ({att.owner}): file is missing")
            elif digest != att.sha256:
                problems.append(f"attachment {att.attachment_id} ({att.owner}): file was changed")
        return problems


def _event(r: Sequence[Any]) -> dict[str, Any]:
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
