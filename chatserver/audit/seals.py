"""Sealing: the heads of closed chats' message chains and of tickets' event chains,
signed with the audit key, in ``chat_seals`` and ``ticket_seals``.

A :class:`Sealer` runs in every server (``run``: a sweep at start, then whenever the
hub reports a closed chat, and every ``interval`` seconds for ticket heads) and in
``chatserver audit seal``. It never sits on a message's path: the hub only calls
:meth:`Sealer.chat_closed` (no await, no I/O) once the chat's ``closed`` message is
stored; the reading, hashing and writing happen later on the sealer's own thread and
connection. Sealing is idempotent and safe on several nodes at once (each writes the
same seal).

A chat is sealed once its messages include its ``closed`` event; messages stored later
(an escalation notice) extend the seal, which is only done when the messages already
sealed still give the sealed head. A ticket is sealed when its chain verifies, and
re-sealed as it grows, on the same condition. A seal made without a key is unsigned;
a server with a key signs unsigned seals and those of another key (key rotation), again
only when the chain still gives the sealed head.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from chatserver.audit.chain import MESSAGE_FIELDS, chain_heads, key_id, sign
from chatserver.store.base import MessageRecord, MessageStore
from chatserver.store.database import Connection, Database, as_database, connect
from chatserver.tickets.model import verify_chain
from chatserver.tickets.store.sqlite import event_row
from chatserver.types import SessionId

log = logging.getLogger("chatserver.audit")

_T = TypeVar("_T")
PAGE = 1000

MESSAGE_SELECT = (
    "SELECT session_id, seq, ts, sender, sender_id, author, text, client_msg_id, event, extra"
    " FROM messages WHERE session_id = ? ORDER BY seq"
)
EVENT_SELECT = (
    "SELECT ticket, n, ts, kind, actor, internal, body, prev_hash, hash"
    " FROM ticket_events WHERE ticket = ? ORDER BY n"
)


def message_row(r: Sequence[Any]) -> dict[str, Any]:
    """A ``messages`` row (columns of :data:`MESSAGE_SELECT`) as the chain hashes it."""
    return {
        **dict(zip(MESSAGE_FIELDS[:-1], r[:-1], strict=True)),
        "extra": json.loads(r[-1]) if r[-1] else None,
    }


def message_dict(record: MessageRecord) -> dict[str, Any]:
    """A stored message, read through the store, as the chain hashes it."""
    return {f: getattr(record, f) for f in MESSAGE_FIELDS}


def chat_messages(conn: Connection, session_id: str) -> list[dict[str, Any]]:
    return [message_row(r) for r in conn.execute(MESSAGE_SELECT, (session_id,))]


def ticket_events(conn: Connection, number: int) -> list[dict[str, Any]]:
    return [event_row(r) for r in conn.execute(EVENT_SELECT, (number,))]


class Sealer:
    """Seals closed chats and signs ticket heads; one per process.

    ``messages`` (the server's store) is read for chats the hub reports closed, so
    messages still in the store's journal are sealed too; the start-up sweep and
    ``audit seal`` read the database directly.
    """

    def __init__(
        self,
        db_path: Path | Database,
        key: bytes | None,
        messages: MessageStore | None = None,
        *,
        interval: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = as_database(db_path)
        self.key = key
        self.key_id = key_id(key) if key is not None else None
        self.messages = messages
        self.interval = interval
        self.clock = clock
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: Connection | None = None
        self._pending: dict[str, int] = {}  # session id -> tries left
        self._wake: asyncio.Event | None = None

    async def open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit")
        self._conn = await self._run(lambda: connect(self.db))
        self._wake = asyncio.Event()

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

    # ------------------------------------------------------------------ the hub's hook
    def chat_closed(self, session_id: str) -> None:
        """The hub's hook: ``session_id``'s ``closed`` message (or a later system
        message of a closed chat) is stored. Never blocks and never raises."""
        self._pending[session_id] = 5
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Seal what the last run left (and chats closed before sealing existed),
        then each chat as it closes and ticket heads every ``interval`` seconds."""
        assert self._wake is not None
        try:
            await self.seal_all()
        except Exception:
            log.exception("sealing sweep failed")
        last_tickets = self.clock()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.seal_pending()
                if self.clock() - last_tickets >= self.interval:
                    last_tickets = self.clock()
                    await self._run(self._seal_tickets_sync)
            except Exception:
                log.exception("sealing failed")

    async def seal_pending(self) -> None:
        """Seal the chats the hub reported; one not ready yet (its ``closed`` message
        not visible) is tried again a few times, then left to the next sweep."""
        for session_id in list(self._pending):
            tries = self._pending.pop(session_id)
            messages = None
            if self.messages is not None:
                messages = await self._read_through_store(session_id)
            done = await self._run(functools.partial(self._seal_chat_sync, session_id, messages))
            if done is None and tries > 1:
                self._pending.setdefault(session_id, tries - 1)
        if self._pending and self._wake is not None:
            await asyncio.sleep(0.2)
            self._wake.set()

    async def _read_through_store(self, session_id: str) -> list[dict[str, Any]]:
        assert self.messages is not None
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.messages.messages_after(SessionId(session_id), after, PAGE)
            out += [message_dict(r) for r in page]
            if len(page) < PAGE:
                return out
            after = page[-1].seq

    async def seal_all(self) -> tuple[int, int]:
        """Seal every closed chat and ticket not (fully) sealed, or not signed by the
        current key; returns (chats sealed, tickets sealed)."""
        chats = await self._run(self._seal_chats_sync)
        tickets = await self._run(self._seal_tickets_sync)
        return chats, tickets

    # ------------------------------------------------------------------ on the thread
    def _needs_key(self, sig_key_id: str | None) -> bool:
        return self.key_id is not None and sig_key_id != self.key_id

    def _signature(self, kind: str, ident: str, count: int, head: str) -> str | None:
        return sign(self.key, kind, ident, count, head) if self.key is not None else None

    def _seal_chats_sync(self) -> int:
        conn = self._conn
        assert conn is not None
        rows = conn.execute(
            "SELECT s.id FROM sessions s LEFT JOIN chat_seals c ON c.session_id = s.id"
            " WHERE s.state = 'closed' AND (c.session_id IS NULL"
            " OR c.last_seq < (SELECT MAX(seq) FROM messages m WHERE m.session_id = s.id)"
            " OR (CAST(? AS TEXT) IS NOT NULL AND (c.key_id IS NULL OR c.key_id <> ?)))",
            (self.key_id, self.key_id),
        ).fetchall()
        return sum(1 for (session_id,) in rows if self._seal_chat_sync(session_id, None))

    def _seal_chat_sync(
        self, session_id: str, messages: list[dict[str, Any]] | None
    ) -> bool | None:
        """Seal one chat: True if a seal was written, False if there was nothing to do
        (or the sealed messages changed: logged), None if it is not closed yet."""
        conn = self._conn
        assert conn is not None
        if messages is None:
            messages = chat_messages(conn, session_id)
        if not any(m.get("event") == "closed" for m in messages):
            return None
        heads = chain_heads(messages)
        last_seq, head = int(messages[-1]["seq"]), heads[-1]
        old = conn.execute(
            "SELECT last_seq, messages, head, key_id FROM chat_seals WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if old is not None:
            old_seq, old_count, old_head, old_key = old
            if old_seq == last_seq and not self._needs_key(old_key):
                return False
            if old_seq > last_seq or old_count > len(messages) or heads[old_count - 1] != old_head:
                log.warning(
                    "chat %s: its sealed messages changed; not sealing it again", session_id
                )
                return False
        sig = self._signature("chat", session_id, last_seq, head)
        conn.execute(
            "INSERT INTO chat_seals (session_id, last_seq, messages, head, sig,"
            " key_id, sealed_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (session_id) DO UPDATE SET"
            " last_seq = excluded.last_seq, messages = excluded.messages, head = excluded.head,"
            " sig = excluded.sig, key_id = excluded.key_id, sealed_at = excluded.sealed_at",
            (session_id, last_seq, len(messages), head, sig, self.key_id, self.clock()),
        )
        return True

    def _seal_tickets_sync(self) -> int:
        conn = self._conn
        assert conn is not None
        rows = conn.execute(
            "SELECT t.number FROM tickets t LEFT JOIN ticket_seals s ON s.ticket = t.number"
            " WHERE s.ticket IS NULL OR s.events <> t.events"
            " OR (CAST(? AS TEXT) IS NOT NULL AND (s.key_id IS NULL OR s.key_id <> ?))",
            (self.key_id, self.key_id),
        ).fetchall()
        sealed = 0
        for (number,) in rows:
            events = ticket_events(conn, number)
            if not events or verify_chain(events):
                log.warning("ticket #%s: its chain does not verify; not sealing it", number)
                continue
            old = conn.execute(
                "SELECT events, head, key_id FROM ticket_seals WHERE ticket = ?", (number,)
            ).fetchone()
            if old is not None:
                old_events, old_head, old_key = old
                if old_events == len(events) and not self._needs_key(old_key):
                    continue
                if old_events > len(events) or events[old_events - 1]["hash"] != old_head:
                    log.warning("ticket #%s: its sealed history changed; not sealing it", number)
                    continue
            head = str(events[-1]["hash"])
            conn.execute(
                "INSERT INTO ticket_seals (ticket, events, head, sig, key_id,"
                " sealed_at) VALUES (?,?,?,?,?,?) ON CONFLICT (ticket) DO UPDATE SET"
                " events = excluded.events, head = excluded.head, sig = excluded.sig,"
                " key_id = excluded.key_id, sealed_at = excluded.sealed_at",
                (
                    number,
                    len(events),
                    head,
                    self._signature("ticket", str(number), len(events), head),
                    self.key_id,
                    self.clock(),
                ),
            )
            sealed += 1
        return sealed
