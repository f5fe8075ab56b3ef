"""The hub: the I/O shell around the pure session and routing core.

It owns the live sessions of this node, the client connections, and the glue
to the store and the presence backend. Hot path for a chat message: validate,
take the next seq, submit the insert to the group-committing store, and when
the batch commits, ack the sender and fan the frame (encoded once) out to the
other participants. No per-message awaited database round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from . import auth
from .config import Settings
from .connection import Connection
from .errors import (
    BadFrame,
    ChatClosed,
    ChatError,
    NotAssigned,
    Unauthorized,
    Unavailable,
    UnknownSession,
)
from .presence.base import Presence
from .protocol import Outgoing
from .routing import QueueEntry
from .sessions import ChatSession
from .store.base import MessageRecord, OperatorRecord, SessionRecord
from .store.sqlite import DuplicateMessage, SqliteStore
from .types import (
    PLAN_PRIORITY,
    NodeId,
    OperatorId,
    OperatorStatus,
    Priority,
    Role,
    Sender,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.hub")

HISTORY_PAGE = 500


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclasses.dataclass(slots=True)
class Visitor:
    name: str | None = None
    email: str | None = None
    page_url: str | None = None
    user_agent: str | None = None
    customer_id: str | None = None
    plan: str | None = None

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email}


@dataclasses.dataclass(slots=True, eq=False)
class LiveSession:
    """A session this node holds in memory: state, visitor info, connections."""

    chat: ChatSession
    token_hash: str
    visitor: Visitor
    enqueued_at: float | None = None
    conns: set[Connection] = dataclasses.field(default_factory=set)
    # (sender, client_msg_id) -> seq of committed messages, and futures of
    # those still being committed: resends are answered from here.
    client_ids: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    inflight: dict[tuple[str, str], asyncio.Future[int]] = dataclasses.field(default_factory=dict)
    abandon_timer: asyncio.TimerHandle | None = None
    preview: str | None = None  # the first visitor message, for the queue list

    @property
    def session_id(self) -> SessionId:
        return self.chat.session_id


@dataclasses.dataclass(slots=True, eq=False)
class LiveOperator:
    record: OperatorRecord
    status: OperatorStatus = OperatorStatus.OFFLINE
    conn: Connection | None = None
    chats: set[SessionId] = dataclasses.field(default_factory=set)
    grace_timer: asyncio.TimerHandle | None = None

    @property
    def operator_id(self) -> OperatorId:
        return self.record.operator_id


class Hub:
    """Routes chats between visitors and operators on one node."""

    def __init__(self, settings: Settings, store: SqliteStore, presence: Presence) -> None:
        self.settings = settings
        self.store = store
        self.presence = presence
        self.node_id = NodeId(settings.node_id or f"{socket.gethostname()}-{os.getpid()}")
        self.sessions: dict[SessionId, LiveSession] = {}
        self.by_token: dict[str, SessionId] = {}
        self.operators: dict[OperatorId, LiveOperator] = {}
        self.tokens: auth.OperatorTokens | None = None
        self._dispatching = False
        self._dispatch_again = False
        self._queue_dirty = False
        self._positions: dict[SessionId, int] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._closing = False
        self._background: set[asyncio.Future[Any]] = set()
        self.clock: Callable[[], float] = time.time
        # Counters for health and metrics.
        self.messages_in = 0
        self.messages_out = 0

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        secret = self.settings.secret_key or await self.store.setdefault_meta(
            "secret_key", secrets.token_hex(32)
        )
        self.tokens = auth.OperatorTokens(secret.encode(), self.settings.operator_token_ttl)
        await self._recover()
        self._ticker = asyncio.create_task(self._tick_loop(), name="hub-ticker")

    async def _recover(self) -> None:
        """Rebuild queue and assignments from the store after a (re)start."""
        records = await self.store.open_sessions()
        for record in records:
            live = await self._live_from_record(record)
            chat = live.chat
            if chat.state is SessionState.WAITING:
                await self.presence.enqueue(self._queue_entry(live, requeued=False))
            elif chat.state is SessionState.ASSIGNED and chat.operator_id is not None:
                op = await self._live_operator(chat.operator_id)
                if op is None:  # operator deleted: back to the queue
                    chat.requeue()
                    await self.presence.enqueue(self._queue_entry(live, requeued=True))
                    continue
                op.chats.add(chat.session_id)
                await self.presence.add_load(op.operator_id, 1)
                self._start_grace(op)
        if records:
            log.info("recovered %d open sessions", len(records))
            self._queue_dirty = True

    async def stop(self) -> None:
        """Tell every client to reconnect (1012) and flush the store."""
        self._closing = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        conns = [c for live in self.sessions.values() for c in live.conns]
        conns += [op.conn for op in self.operators.values() if op.conn is not None]
        for conn in conns:
            conn.close(1012)
        await asyncio.gather(*(c.drain(2.0) for c in conns))
        for op in self.operators.values():
            if op.grace_timer is not None:
                op.grace_timer.cancel()
        for live in self.sessions.values():
            if live.abandon_timer is not None:
                live.abandon_timer.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # --------------------------------------------------------------- helpers
    async def _live_from_record(self, record: SessionRecord) -> LiveSession:
        existing = self.sessions.get(record.session_id)
        if existing is not None:
            return existing
        client_ids = await self.store.client_msg_ids(record.session_id)
        existing = self.sessions.get(record.session_id)  # loaded meanwhile?
        if existing is not None:
            return existing
        chat = ChatSession(
            session_id=record.session_id,
            created_at=record.created_at,
            state=record.state,
            operator_id=record.operator_id,
            priority=record.priority,
            department=record.department,
            last_seq=record.last_seq,
            visitor_read_seq=record.visitor_read_seq,
            operator_read_seq=record.operator_read_seq,
            assigned_at=record.assigned_at,
            closed_at=record.closed_at,
            previous_operator=record.previous_operator,
        )
        live = LiveSession(
            chat=chat,
            token_hash=record.token_hash,
            visitor=Visitor(
                record.visitor_name,
                record.visitor_email,
                record.page_url,
                record.user_agent,
                record.customer_id,
                record.plan,
            ),
            enqueued_at=record.enqueued_at,
            client_ids=client_ids,
        )
        self.sessions[record.session_id] = live
        self.by_token[record.token_hash] = record.session_id
        return live

    def _evict_if_idle(self, live: LiveSession) -> None:
        if live.conns or live.inflight:
            return
        if live.chat.state in (SessionState.CLOSED, SessionState.NEW):
            self.sessions.pop(live.session_id, None)
            self.by_token.pop(live.token_hash, None)

    async def _live_operator(self, operator_id: OperatorId) -> LiveOperator | None:
        op = self.operators.get(operator_id)
        if op is not None:
            return op
        record = await self.store.operator(operator_id)
        if record is None:
            return None
        op = self.operators.get(operator_id)
        if op is None:
            op = LiveOperator(record)
            self.operators[operator_id] = op
            await self.presence.register_operator(
                operator_id, capacity=record.capacity, departments=record.departments
            )
        return op

    def _queue_entry(self, live: LiveSession, *, requeued: bool) -> QueueEntry:
        enqueued = live.enqueued_at if live.enqueued_at is not None else self.clock()
        return QueueEntry(
            session_id=live.session_id,
            enqueued_at=enqueued,
            priority=live.chat.priority,
            department=live.chat.department,
            requeued=requeued,
        )

    def _summary(self, live: LiveSession) -> dict[str, Any]:
        chat, v = live.chat, live.visitor
        return {
            "session_id": chat.session_id,
            "state": chat.state.value,
            "visitor": {
                "name": v.name,
                "email": v.email,
                "page_url": v.page_url,
                "user_agent": v.user_agent,
                "connected": bool(live.conns),
                "customer_id": v.customer_id,
                "plan": v.plan,
            },
            "priority": chat.priority.label,
            "created_at": int(chat.created_at * 1000),
            "assigned_at": int(chat.assigned_at * 1000) if chat.assigned_at else None,
            "last_seq": chat.last_seq,
            "read_seq": chat.operator_read_seq,
            "visitor_read_seq": chat.visitor_read_seq,
        }

    def _chat_operator(self, live: LiveSession) -> dict[str, Any] | None:
        op_id = live.chat.operator_id
        if op_id is None:
            return None
        op = self.operators.get(op_id)
        return {"id": op_id, "name": op.record.name if op else "Operator"}

    def _state_frame(self, live: LiveSession, position: int | None) -> Outgoing:
        return Outgoing(
            {
                "type": "state",
                "state": live.chat.state.value,
                "operator": self._chat_operator(live),
                "queue_position": position,
            }
        )

    def _send_visitors(
        self, live: LiveSession, out: Outgoing, *, skip: Connection | None = None
    ) -> None:
        for conn in live.conns:
            if conn is not skip:
                conn.send(out)

    def _operator_conn(self, live: LiveSession) -> Connection | None:
        op_id = live.chat.operator_id
        if op_id is None:
            return None
        op = self.operators.get(op_id)
        return op.conn if op is not None else None

    # ------------------------------------------------------ message pipeline
    def _append(
        self,
        live: LiveSession,
        sender: Sender,
        text: str,
        *,
        sender_id: str | None,
        author: str | None,
        client_msg_id: str | None = None,
        event: str | None = None,
        origin: Connection | None = None,
    ) -> asyncio.Future[int]:
        """Store a message and, once committed, ack ``origin`` and fan it out.

        Returns a future resolving to the seq (given by the store) when durable.
        """
        record = MessageRecord(
            live.session_id,
            0,
            now_ms(),
            sender.value,
            sender_id,
            author,
            text,
            client_msg_id,
            event,
        )
        result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        key = (sender.value, client_msg_id) if client_msg_id is not None else None
        if key is not None:
            live.inflight[key] = result

        def committed(fut: asyncio.Future[int]) -> None:
            if key is not None:
                live.inflight.pop(key, None)
            exc = fut.exception()
            if isinstance(exc, DuplicateMessage):
                # Stored before (by another connection or node): ack, deliver nothing.
                if key is not None:
                    live.client_ids[key] = exc.seq
                result.set_result(exc.seq)
                if origin is not None:
                    origin.send_frame(self._ack(client_msg_id, exc.seq, duplicate=True))
                return
            if exc is not None:
                log.error("store write failed for %s: %s", live.session_id, exc)
                result.set_exception(Unavailable("the message could not be stored"))
                if origin is not None:
                    origin.send_frame(
                        Unavailable("the message could not be stored", ref=client_msg_id).to_frame()
                    )
                return
            seq = fut.result()
            if key is not None:
                live.client_ids[key] = seq
            result.set_result(seq)
            if origin is not None:
                origin.send_frame(self._ack(client_msg_id, seq, duplicate=False, ts=record.ts))
            self._deliver(live, record, origin)

        self.store.submit_message(record).add_done_callback(committed)
        return result

    @staticmethod
    def _ack(
        client_msg_id: str | None, seq: int, *, duplicate: bool, ts: int | None = None
    ) -> dict[str, Any]:
        return {
            "type": "ack",
            "client_msg_id": client_msg_id,
            "seq": seq,
            "ts": ts if ts is not None else now_ms(),
            "duplicate": duplicate,
        }

    def _deliver(
        self, live: LiveSession, record: MessageRecord, origin: Connection | None = None
    ) -> None:
        """Fan a committed message out to this node's participants, in seq order."""
        live.chat.note_seq(record.seq)
        out = Outgoing(record.to_frame())
        for conn in live.conns:
            if conn is not origin:
                conn.deliver(record.seq, out)
                self.messages_out += 1
        op_conn = self._operator_conn(live)
        if op_conn is not None and op_conn is not origin:
            op_conn.deliver(record.seq, out)
            self.messages_out += 1
        self._evict_if_idle(live)

    def _resend(
        self, live: LiveSession, conn: Connection, sender: Sender, client_msg_id: str
    ) -> bool:
        """Answer a resend of a known ``client_msg_id``; ``False`` if it is new."""
        key = (sender.value, client_msg_id)
        seq = live.client_ids.get(key)
        if seq is not None:
            conn.send_frame(self._ack(client_msg_id, seq, duplicate=True))
            return True
        pending = live.inflight.get(key)
        if pending is not None:

            def done(fut: asyncio.Future[int]) -> None:
                if not fut.exception():
                    conn.send_frame(self._ack(client_msg_id, fut.result(), duplicate=True))

            pending.add_done_callback(done)
            return True
        return False

    def _system(self, live: LiveSession, event: str, text: str) -> None:
        self._append(live, Sender.SYSTEM, text, sender_id=None, author=None, event=event)

    # --------------------------------------------------------------- visitor
    async def visitor_hello(self, conn: Connection, frame: dict[str, Any]) -> LiveSession:
        """Create or resume a session; registers ``conn`` and replays what it missed."""
        token = frame.get("token")
        if self._closing:
            raise Unavailable("the server is shutting down")
        customer_id = plan = None
        if frame.get("identity"):
            customer_id, plan = auth.verify_identity(
                frame["identity"], self.settings.identity_secret
            )
        if token:
            live = await self._resume_session(token)
            new_token = token
            resumed = True
        else:
            new_token = auth.new_visitor_token()
            live = await self._create_session(new_token, frame)
            resumed = False
        # Info the visitor brought with it (a new page, a name).
        changes: dict[str, Any] = {}
        v = live.visitor
        for field, column in (
            ("name", "visitor_name"),
            ("email", "visitor_email"),
            ("page_url", "page_url"),
            ("user_agent", "user_agent"),
        ):
            value = frame.get(field)
            if value and value != getattr(v, field):
                setattr(v, field, value)
                changes[column] = value
        if customer_id is not None and (customer_id, plan) != (v.customer_id, v.plan):
            v.customer_id, v.plan = customer_id, plan
            changes.update(customer_id=customer_id, plan=plan)
            if live.chat.state is SessionState.NEW and plan is not None:
                live.chat.priority = PLAN_PRIORITY.get(plan, Priority.NORMAL)
                changes["priority"] = live.chat.priority
        if changes and resumed:
            self.store.submit_session_update(live.session_id, **changes)
        if live.abandon_timer is not None:
            live.abandon_timer.cancel()
            live.abandon_timer = None

        last_seq = frame.get("last_seq") or 0
        position = None
        if live.chat.state is SessionState.WAITING:
            position = await self.presence.position(live.session_id)
        # No await from here until welcome is queued: it must be the first frame.
        conn.replaying = resumed
        was_connected = bool(live.conns)
        live.conns.add(conn)
        conn.send_frame(
            {
                "type": "welcome",
                "session_id": live.session_id,
                "token": new_token,
                "state": live.chat.state.value,
                "resumed": resumed,
                "last_seq": live.chat.last_seq,
                "operator": self._chat_operator(live),
                "queue_position": position,
                "visitor": v.public(),
                "read_seq": live.chat.operator_read_seq,
            }
        )
        if resumed:
            await self._replay(conn, live, last_seq)
        if not was_connected or changes:
            self._notify_visitor_presence(live)
        return live

    async def _create_session(self, token: str, frame: dict[str, Any]) -> LiveSession:
        session_id = SessionId("s_" + secrets.token_urlsafe(12))
        now = self.clock()
        chat = ChatSession(session_id=session_id, created_at=now)
        live = LiveSession(chat=chat, token_hash=auth.token_hash(token), visitor=Visitor())
        record = SessionRecord(session_id, live.token_hash, SessionState.NEW, now)
        for field in ("name", "email", "page_url", "user_agent"):
            setattr(live.visitor, field, frame.get(field) or None)
        record.visitor_name = live.visitor.name
        record.visitor_email = live.visitor.email
        record.page_url = live.visitor.page_url
        record.user_agent = live.visitor.user_agent
        self.sessions[session_id] = live
        self.by_token[live.token_hash] = session_id
        # The token must be durable before the client learns it.
        await self.store.submit_session(record)
        return live

    async def _resume_session(self, token: str) -> LiveSession:
        hashed = auth.token_hash(token)
        session_id = self.by_token.get(hashed)
        if session_id is not None and session_id in self.sessions:
            return self.sessions[session_id]
        record = await self.store.session_by_token_hash(hashed)
        if record is None:
            raise Unauthorized("unknown session token")
        return await self._live_from_record(record)

    async def _replay(self, conn: Connection, live: LiveSession, after_seq: int) -> int:
        """Send stored messages after ``after_seq``, then what arrived meanwhile."""
        sent = after_seq
        complete = True
        try:
            while True:
                rows = await self.store.messages_after(live.session_id, sent, HISTORY_PAGE)
                for row in rows:
                    conn.send(Outgoing(row.to_frame()))
                    sent = row.seq
                if len(rows) < HISTORY_PAGE:
                    break
        except Exception:
            log.exception("replay of %s failed", live.session_id)
            complete = False
        sent = conn.end_replay(sent)
        frame: dict[str, Any] = {"type": "replay_done", "last_seq": sent, "complete": complete}
        if conn.role == "operator":
            frame["session_id"] = live.session_id
        conn.send_frame(frame)
        return sent

    async def visitor_frame(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        kind = frame["type"]
        chat = live.chat
        if kind == "message":
            self.messages_in += 1
            cmid = frame["client_msg_id"]
            if self._resend(live, conn, Sender.VISITOR, cmid):
                return
            if not chat.is_open:
                raise ChatClosed("this chat has ended; start a new one", ref=cmid)
            if self._closing:
                raise Unavailable("the server is shutting down", ref=cmid)
            self._append(
                live,
                Sender.VISITOR,
                frame["text"],
                sender_id=None,
                author=live.visitor.name or "Visitor",
                client_msg_id=cmid,
                origin=conn,
            )
            if chat.state is SessionState.NEW:
                live.preview = frame["text"][:120]
                await self._start_waiting(live)
        elif kind == "typing":
            op_conn = self._operator_conn(live)
            out = Outgoing(
                {
                    "type": "typing",
                    "session_id": live.session_id,
                    "from": "visitor",
                    "active": frame["active"],
                }
            )
            if op_conn is not None:
                op_conn.send(out)
        elif kind == "read":
            if chat.mark_read(True, frame["seq"]):
                self.store.submit_session_update(
                    live.session_id, visitor_read_seq=chat.visitor_read_seq
                )
                out = Outgoing(
                    {
                        "type": "read",
                        "session_id": live.session_id,
                        "by": "visitor",
                        "seq": chat.visitor_read_seq,
                    }
                )
                self._send_visitors(live, out, skip=conn)
                op_conn = self._operator_conn(live)
                if op_conn is not None:
                    op_conn.send(out)
        elif kind == "info":
            changes: dict[str, Any] = {}
            for field, column in (
                ("name", "visitor_name"),
                ("email", "visitor_email"),
                ("page_url", "page_url"),
            ):
                value = frame.get(field)
                if value is not None and value != getattr(live.visitor, field):
                    setattr(live.visitor, field, value or None)
                    changes[column] = value or None
            if changes:
                self.store.submit_session_update(live.session_id, **changes)
                self._notify_visitor_presence(live)
        elif kind == "close":
            if chat.is_open:
                await self._close_chat(live, by=Sender.VISITOR)
        elif kind == "ping":
            conn.send_frame({"type": "pong"})

    async def visitor_gone(self, conn: Connection, live: LiveSession) -> None:
        live.conns.discard(conn)
        if live.conns:
            return
        if live.chat.state is SessionState.WAITING and self.settings.visitor_abandon_seconds > 0:
            loop = asyncio.get_running_loop()
            live.abandon_timer = loop.call_later(
                self.settings.visitor_abandon_seconds,
                lambda: self._spawn(self._abandon(live)),
            )
        self._notify_visitor_presence(live)
        self._evict_if_idle(live)

    async def _abandon(self, live: LiveSession) -> None:
        live.abandon_timer = None
        if not live.conns and live.chat.state is SessionState.WAITING:
            await self._close_chat(
                live, by=Sender.SYSTEM, reason="The visitor left before an operator was free."
            )

    def _notify_visitor_presence(self, live: LiveSession) -> None:
        op_conn = self._operator_conn(live)
        if op_conn is None:
            return
        v = live.visitor
        op_conn.send_frame(
            {
                "type": "visitor",
                "session_id": live.session_id,
                "connected": bool(live.conns),
                "name": v.name,
                "email": v.email,
                "page_url": v.page_url,
                "user_agent": v.user_agent,
            }
        )

    async def _start_waiting(self, live: LiveSession) -> None:
        live.chat.start_waiting()
        live.enqueued_at = self.clock()
        self.store.submit_session_update(
            live.session_id,
            state=SessionState.WAITING,
            enqueued_at=live.enqueued_at,
            priority=live.chat.priority,
        )
        position = await self.presence.enqueue(self._queue_entry(live, requeued=False))
        self._send_visitors(live, self._state_frame(live, position))
        self._queue_dirty = True
        await self.dispatch()

    async def _close_chat(
        self, live: LiveSession, *, by: Sender, reason: str | None = None
    ) -> None:
        chat = live.chat
        before = chat.state
        operator_id = chat.operator_id
        chat.close(self.clock())
        self.store.submit_session_update(
            live.session_id,
            state=SessionState.CLOSED,
            closed_at=chat.closed_at,
            previous_operator=chat.previous_operator,
        )
        if before is SessionState.WAITING:
            await self.presence.dequeue(live.session_id)
            self._queue_dirty = True
        if live.abandon_timer is not None:
            live.abandon_timer.cancel()
            live.abandon_timer = None
        text = reason or {
            Sender.VISITOR: "The visitor ended the chat.",
            Sender.OPERATOR: "The operator ended the chat.",
        }.get(by, "The chat was closed.")
        self._system(live, "closed", text)
        self._send_visitors(live, self._state_frame(live, None))
        if operator_id is not None:
            op = self.operators.get(operator_id)
            if op is not None:
                op.chats.discard(live.session_id)
                if op.conn is not None:
                    op.conn.send_frame(
                        {"type": "chat_closed", "session_id": live.session_id, "by": by.value}
                    )
                    self._send_status(op)
            await self.presence.add_load(operator_id, -1)
            await self.dispatch()
        self._evict_if_idle(live)

    # -------------------------------------------------------------- dispatch
    async def dispatch(self) -> None:
        """Assign waiting chats to free operators. Re-entrant calls coalesce."""
        if self._dispatching:
            self._dispatch_again = True
            return
        self._dispatching = True
        try:
            while True:
                self._dispatch_again = False
                for assignment in await self.presence.assign_next():
                    await self._carry_out(assignment.session_id, assignment.operator_id)
                if not self._dispatch_again:
                    break
        finally:
            self._dispatching = False

    async def _carry_out(self, session_id: SessionId, operator_id: OperatorId) -> None:
        live = self.sessions.get(session_id)
        op = self.operators.get(operator_id)
        if live is None or op is None or live.chat.state is not SessionState.WAITING:
            # The reservation is void: give the capacity back.
            await self.presence.add_load(operator_id, -1)
            return
        now = self.clock()
        live.chat.assign(operator_id, now)
        op.chats.add(session_id)
        self._queue_dirty = True
        self._positions.pop(session_id, None)
        self.store.submit_session_update(
            session_id, state=SessionState.ASSIGNED, operator_id=operator_id, assigned_at=now
        )
        self._system(live, "assigned", f"{op.record.name} joined the chat.")
        self._send_visitors(live, self._state_frame(live, None))
        if op.conn is not None:
            op.conn.send_frame({"type": "chat_assigned", "chat": self._summary(live)})
            self._send_status(op)

    async def _requeue_operator_chats(self, op: LiveOperator, text: str) -> None:
        for session_id in sorted(op.chats):
            live = self.sessions.get(session_id)
            if live is None or live.chat.state is not SessionState.ASSIGNED:
                continue
            live.chat.requeue()
            self.store.submit_session_update(
                session_id,
                state=SessionState.WAITING,
                operator_id=None,
                assigned_at=None,
                previous_operator=op.operator_id,
            )
            position = await self.presence.enqueue(self._queue_entry(live, requeued=True))
            await self.presence.add_load(op.operator_id, -1)
            self._system(live, "requeued", text)
            self._send_visitors(live, self._state_frame(live, position))
            if op.conn is not None:
                op.conn.send_frame(
                    {"type": "chat_removed", "session_id": session_id, "reason": "requeued"}
                )
        op.chats.clear()
        self._queue_dirty = True

    # -------------------------------------------------------------- operator
    async def login(self, username: str, password: str) -> tuple[str, OperatorRecord]:
        record = await self.store.operator_by_username(username)
        ok = await asyncio.to_thread(
            auth.verify_password, record.password_hash if record else auth.DUMMY_HASH, password
        )
        if record is None or not ok:
            raise Unauthorized("wrong username or password")
        assert self.tokens is not None
        return self.tokens.issue(record.operator_id), record

    async def operator_hello(self, conn: Connection, frame: dict[str, Any]) -> LiveOperator:
        assert self.tokens is not None
        if self._closing:
            raise Unavailable("the server is shutting down")
        operator_id = self.tokens.verify(frame["token"])
        op = await self._live_operator(operator_id)
        if op is None:
            raise Unauthorized("unknown operator")
        previous = op.conn
        op.conn = conn
        if previous is not None:
            previous.close(4008)
        reconnect = op.grace_timer is not None or previous is not None
        if op.grace_timer is not None:
            op.grace_timer.cancel()
            op.grace_timer = None
        wanted = frame.get("status")
        if isinstance(wanted, str) and wanted in OperatorStatus.__members__.values():
            status = OperatorStatus(wanted)
        elif reconnect and op.status is not OperatorStatus.OFFLINE:
            status = op.status
        else:
            status = OperatorStatus.ONLINE
        op.status = status
        slot = await self.presence.set_status(operator_id, status)
        chats = [self.sessions[s] for s in sorted(op.chats) if s in self.sessions]
        conn.send_frame(
            {
                "type": "welcome",
                "operator": {**op.record.public(), "status": status.value, "load": slot.load},
                "chats": [self._summary(live) for live in chats],
                "queue": await self._queue_frame_body(),
            }
        )
        known = frame.get("sessions") or {}
        if not isinstance(known, dict):
            raise BadFrame("sessions must map session ids to seqs")
        for session_id, last_seq in known.items():
            live = self.sessions.get(SessionId(str(session_id)))
            if (
                live is None
                or live.chat.operator_id != operator_id
                or not isinstance(last_seq, int)
            ):
                conn.send_frame(UnknownSession(f"cannot resume {str(session_id)[:64]}").to_frame())
                continue
            conn.replaying = True
            await self._replay(conn, live, last_seq)
        if status is OperatorStatus.OFFLINE:
            await self._requeue_operator_chats(
                op, f"{op.record.name} went offline. You are back in the queue."
            )
        await self.dispatch()
        return op

    def _send_status(self, op: LiveOperator) -> None:
        if op.conn is None:
            return
        op.conn.send_frame(
            {
                "type": "status",
                "status": op.status.value,
                "load": len(op.chats),
                "capacity": op.record.capacity,
            }
        )

    def _own_chat(self, op: LiveOperator, session_id: str) -> LiveSession:
        live = self.sessions.get(SessionId(session_id))
        if live is None:
            raise UnknownSession(f"no chat {session_id[:64]}")
        if live.chat.operator_id != op.operator_id:
            raise NotAssigned("this chat is not assigned to you")
        if live.chat.state is SessionState.CLOSED:
            raise ChatClosed("this chat has ended")
        return live

    async def operator_frame(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        kind = frame["type"]
        if kind == "message":
            self.messages_in += 1
            cmid = frame["client_msg_id"]
            live = self.sessions.get(SessionId(frame["session_id"]))
            if live is not None and self._resend(live, conn, Sender.OPERATOR, cmid):
                return
            try:
                live = self._own_chat(op, frame["session_id"])
            except ChatError as exc:
                exc.ref = cmid
                raise
            if self._closing:
                raise Unavailable("the server is shutting down", ref=cmid)
            self._append(
                live,
                Sender.OPERATOR,
                frame["text"],
                sender_id=op.operator_id,
                author=op.record.name,
                client_msg_id=cmid,
                origin=conn,
            )
        elif kind == "typing":
            live = self._own_chat(op, frame["session_id"])
            self._send_visitors(
                live,
                Outgoing(
                    {
                        "type": "typing",
                        "session_id": live.session_id,
                        "from": "operator",
                        "active": frame["active"],
                    }
                ),
            )
        elif kind == "read":
            live = self._own_chat(op, frame["session_id"])
            if live.chat.mark_read(False, frame["seq"]):
                self.store.submit_session_update(
                    live.session_id, operator_read_seq=live.chat.operator_read_seq
                )
                self._send_visitors(
                    live,
                    Outgoing(
                        {
                            "type": "read",
                            "session_id": live.session_id,
                            "by": "operator",
                            "seq": live.chat.operator_read_seq,
                        }
                    ),
                )
        elif kind == "status":
            try:
                status = OperatorStatus(frame["status"])
            except ValueError:
                raise BadFrame("status must be online, away or offline") from None
            op.status = status
            await self.presence.set_status(op.operator_id, status)
            if status is OperatorStatus.OFFLINE:
                await self._requeue_operator_chats(
                    op, f"{op.record.name} went offline. You are back in the queue."
                )
            self._send_status(op)
            self._queue_dirty = True
            await self.dispatch()
        elif kind == "history":
            await self._history(conn, op, frame)
        elif kind == "close_chat":
            live = self._own_chat(op, frame["session_id"])
            await self._close_chat(live, by=Sender.OPERATOR)
        elif kind == "ping":
            conn.send_frame({"type": "pong"})

    async def _history(self, conn: Connection, op: LiveOperator, frame: dict[str, Any]) -> None:
        session_id = SessionId(frame["session_id"])
        live = self.sessions.get(session_id)
        if live is not None:
            allowed = op.operator_id in (live.chat.operator_id, live.chat.previous_operator)
        else:
            record = await self.store.session(session_id)
            allowed = record is not None and op.operator_id in (
                record.operator_id,
                record.previous_operator,
            )
        if not allowed and op.record.role in (Role.SUPERVISOR, Role.ADMIN):
            allowed = live is not None or await self.store.session(session_id) is not None
        if not allowed:
            raise UnknownSession(f"no chat {session_id[:64]} for you")
        limit = min(max(1, frame.get("limit") or HISTORY_PAGE), 2000)
        rows = await self.store.messages_after(session_id, frame.get("after_seq") or 0, limit)
        conn.send_frame(
            {
                "type": "history",
                "session_id": session_id,
                "messages": [r.to_frame() for r in rows],
                "last_seq": rows[-1].seq if rows else (frame.get("after_seq") or 0),
            }
        )

    async def operator_gone(self, conn: Connection, op: LiveOperator) -> None:
        if op.conn is not conn:
            return  # replaced by a newer connection
        op.conn = None
        # Not eligible for new chats while away from the socket.
        await self.presence.set_status(op.operator_id, OperatorStatus.OFFLINE)
        if op.chats or op.status is not OperatorStatus.OFFLINE:
            self._start_grace(op)

    def _start_grace(self, op: LiveOperator) -> None:
        if op.grace_timer is not None:
            op.grace_timer.cancel()
        loop = asyncio.get_running_loop()
        op.grace_timer = loop.call_later(
            self.settings.operator_grace_seconds, lambda: self._spawn(self._operator_lost(op))
        )

    async def _operator_lost(self, op: LiveOperator) -> None:
        op.grace_timer = None
        if op.conn is not None:
            return
        log.info("operator %s lost; re-queueing %d chats", op.operator_id, len(op.chats))
        op.status = OperatorStatus.OFFLINE
        await self.presence.set_status(op.operator_id, OperatorStatus.OFFLINE)
        await self._requeue_operator_chats(
            op, f"{op.record.name} lost the connection. You are back in the queue."
        )
        await self.dispatch()

    # ----------------------------------------------------------------- queue
    async def _queue_frame_body(self) -> dict[str, Any]:
        entries = await self.presence.queue_snapshot()
        now = self.clock()
        listed = []
        for position, entry in enumerate(entries[:50], start=1):
            live = self.sessions.get(entry.session_id)
            listed.append(
                {
                    "session_id": entry.session_id,
                    "name": live.visitor.name if live else None,
                    "priority": entry.priority.label,
                    "waiting_since": int(entry.enqueued_at * 1000),
                    "waiting_seconds": round(now - entry.enqueued_at, 1),
                    "position": position,
                    "requeued": entry.requeued,
                    "preview": live.preview if live else None,
                }
            )
        return {"total": len(entries), "entries": listed}

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.queue_update_interval)
            if not self._queue_dirty:
                continue
            self._queue_dirty = False
            try:
                await self._publish_queue()
            except Exception:
                log.exception("queue update failed")

    async def _publish_queue(self) -> None:
        entries = await self.presence.queue_snapshot()
        positions: dict[SessionId, int] = {}
        for position, entry in enumerate(entries, start=1):
            positions[entry.session_id] = position
            if self._positions.get(entry.session_id) != position:
                live = self.sessions.get(entry.session_id)
                if live is not None and live.conns:
                    self._send_visitors(live, Outgoing({"type": "queue", "position": position}))
        self._positions = positions
        body = await self._queue_frame_body()
        out = Outgoing({"type": "queue", **body})
        for op in self.operators.values():
            if op.conn is not None:
                op.conn.send(out)

    # ------------------------------------------------------------ inspection
    def stats(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "sessions_live": len(self.sessions),
            "operators_connected": sum(1 for o in self.operators.values() if o.conn is not None),
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "store_batches": self.store.batches,
            "store_writes": self.store.writes,
        }
