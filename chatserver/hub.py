"""The hub: the I/O shell around the pure session and routing core.

One hub runs per node. It holds the client connections of this node and a cache
of the sessions they take part in; the store is the source of truth, presence
(queue, operator capacity) is shared through the presence backend, and the bus
carries notes between nodes.

Hot path for a chat message: validate, submit the insert to the group-committing
store (which numbers it), and when the batch commits, ack the sender, fan the
frame (encoded once) out to this node's participants and publish it once on the
bus for the others. No per-message awaited round trip.

State changes (assigned, re-queued, closed) are compare-and-set transitions in
the store plus a system message. Every node applies a change to its cache when
that system message reaches it, in seq order, so all nodes agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgpack
from redis.exceptions import RedisError

from . import auth
from .bus.base import Bus
from .config import Settings
from .connection import Connection
from .errors import (
    BadFrame,
    ChatClosed,
    ChatError,
    Forbidden,
    InvalidState,
    NotAssigned,
    NotFound,
    Unauthorized,
    Unavailable,
    UnknownSession,
)
from .metrics import Metrics
from .presence.base import Presence
from .protocol import Outgoing, ack
from .routing import QueueEntry
from .service_levels import ServiceLevels
from .sessions import ChatSession
from .sla import load_sla_config
from .store.base import MessageRecord, OperatorRecord, SessionRecord
from .store.sqlite import APPEND_ERRORS, DuplicateMessage, SqliteStore
from .store.tickets import TicketStore
from .supervisor import SUPERVISOR_FRAMES, Supervision, may_supervise
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
OPEN_STATES = (SessionState.NEW, SessionState.WAITING, SessionState.ASSIGNED)
# Presence failures: the shared backend (Redis) is unreachable.
PRESENCE_ERRORS = (RedisError, OSError)


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
    """A session cached on this node while one of its participants is here."""

    chat: ChatSession
    token_hash: str
    visitor: Visitor
    enqueued_at: float | None = None
    conns: set[Connection] = dataclasses.field(default_factory=set)
    # (sender, client_msg_id) -> seq of committed messages, and futures of
    # those still being committed: resends are answered from here.
    client_ids: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    inflight: dict[tuple[str, str], asyncio.Future[int]] = dataclasses.field(default_factory=dict)
    # Committed messages that arrived ahead of a gap, by seq, with their origin.
    held: dict[int, tuple[MessageRecord, Connection | None]] = dataclasses.field(
        default_factory=dict
    )
    refilling: bool = False
    abandon_timer: asyncio.TimerHandle | None = None
    preview: str | None = None  # the first visitor message, for the queue list
    remote_visitor: bool = False  # a visitor connection exists on another node
    chat_operator_name: str | None = None
    sla_first_due: float | None = None  # first-response due time (plan's business hours)
    sla_first_warn: float | None = None
    phone: str | None = None  # callback requests
    preferred_times: str | None = None
    # Supervisors' consoles here watching the chat read-only (no capacity taken).
    watchers: set[Connection] = dataclasses.field(default_factory=set)
    # The chat's id (an attribute, not a property: read several times per message).
    session_id: SessionId = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.session_id = self.chat.session_id


@dataclasses.dataclass(slots=True, eq=False)
class LiveOperator:
    record: OperatorRecord
    status: OperatorStatus = OperatorStatus.OFFLINE
    conn: Connection | None = None
    chats: set[SessionId] = dataclasses.field(default_factory=set)
    grace_timer: asyncio.TimerHandle | None = None
    operator_id: OperatorId = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.operator_id = self.record.operator_id


def _pack(note: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(note, use_bin_type=True)
    return packed


class Hub:
    """Routes chats between visitors and operators; one per node."""

    def __init__(
        self,
        settings: Settings,
        store: SqliteStore,
        presence: Presence,
        bus: Bus,
        *,
        shared: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.presence = presence
        self.bus = bus
        self.shared = shared  # other nodes may serve the same chats
        self.node_id = NodeId(settings.node_id or f"{socket.gethostname()}-{os.getpid()}")
        self.sessions: dict[SessionId, LiveSession] = {}
        self.by_token: dict[str, SessionId] = {}
        self.operators: dict[OperatorId, LiveOperator] = {}
        self.tokens: auth.OperatorTokens | None = None
        self._dispatching = False
        self._dispatch_again = False
        self._queue_dirty = False
        self._positions: dict[SessionId, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._background: set[asyncio.Future[Any]] = set()
        self._presence_ok = True
        self._dead_since: dict[OperatorId, float] = {}
        self.clock: Callable[[], float] = time.time
        self.levels = ServiceLevels(
            load_sla_config(settings.sla_config),
            datetime.timedelta(hours=settings.callback_target_hours),
        )
        # Tickets and attachments (set by the app); None: attachments are refused.
        self.records: TicketStore | None = None
        # Nobody online to chat (or the queue is too long): visitors get the offline form.
        self.offline = False
        # Counters for health and metrics.
        self.messages_in = 0
        self.messages_out = 0
        # Prometheus series of this node (``/metrics``); e.g. where SLA breaches are
        # recorded: ``hub.metrics.sla_breaches_total.labels(kind=...).inc()``.
        self.metrics = Metrics()
        self._messages_out = self.metrics.messages_out_total.unlabelled
        # The supervisor board and supervisor actions (watch, whisper, take over).
        self.supervision = Supervision(self)

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        secret = self.settings.secret_key or await self.store.setdefault_meta(
            "secret_key", secrets.token_hex(32)
        )
        self.tokens = auth.OperatorTokens(secret.encode(), self.settings.operator_token_ttl)
        await self.bus.start(self._on_note, self._on_resync)
        await self.bus.subscribe("queue")
        await self._recover()
        await self._refresh_offline()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="hub-ticker"))
        self._tasks.append(asyncio.create_task(self.supervision.run(), name="hub-board"))
        if self.shared:
            self._tasks.append(asyncio.create_task(self._presence_loop(), name="hub-presence"))

    async def _recover(self) -> None:
        """After a (re)start: every waiting chat is queued, every assigned chat's
        operator gets the grace period to come back."""
        records = await self.store.open_sessions()
        for record in records:
            if record.state is SessionState.WAITING:
                with contextlib.suppress(ValueError):  # already queued (shared)
                    await self.presence.enqueue(
                        self._entry_from_record(
                            record, requeued=record.previous_operator is not None
                        )
                    )
            elif record.operator_id is not None and not self.shared:
                op = await self._live_operator(record.operator_id)
                if op is None:
                    continue
                op.chats.add(record.session_id)
                await self.presence.add_load(op.operator_id, 1)
                self._start_grace(op)
        if records:
            log.info("recovered %d open sessions", len(records))
            self._queue_dirty = True

    async def stop(self) -> None:
        """Tell every client to reconnect (1012) and stop the timers."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
        await self.bus.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    @property
    def degraded(self) -> bool:
        return not (self._presence_ok and self.bus.healthy)

    # ------------------------------------------------------- session cache
    async def _load_live(self, session_id: SessionId) -> LiveSession | None:
        live = self.sessions.get(session_id)
        if live is not None:
            return live
        record = await self.store.session(session_id)
        return None if record is None else await self._live_from_record(record)

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
            level=record.level,
            kind=record.kind,
            first_response_at=record.first_response_at,
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
            sla_first_due=record.sla_first_due,
            sla_first_warn=record.sla_first_warn,
            phone=record.phone,
            preferred_times=record.preferred_times,
        )
        if record.operator_id is not None:
            op = await self._live_operator(record.operator_id)
            live.chat_operator_name = op.record.name if op is not None else None
        existing = self.sessions.get(record.session_id)
        if existing is not None:
            return existing
        self._hold(live)
        return live

    def _hold(self, live: LiveSession) -> None:
        self.sessions[live.session_id] = live
        self.by_token[live.token_hash] = live.session_id
        self._spawn(self.bus.subscribe(f"s:{live.session_id}"))

    def _rehold(self, live: LiveSession) -> LiveSession:
        """The cached session for ``live``'s id, caching ``live`` again if it was
        evicted while we awaited (it had no local participant yet)."""
        current = self.sessions.get(live.session_id)
        if current is None:
            self._hold(live)
            return live
        return current

    def _local_operator(self, live: LiveSession) -> LiveOperator | None:
        op_id = live.chat.operator_id
        op = self.operators.get(op_id) if op_id is not None else None
        return op if op is not None and live.session_id in op.chats else None

    def _evict_if_idle(self, live: LiveSession) -> None:
        """Forget a session no participant on this node needs."""
        if (
            live.conns
            or live.inflight
            or live.refilling
            or live.watchers
            or self._local_operator(live)
        ):
            return
        if live.chat.state in (SessionState.WAITING, SessionState.ASSIGNED) and not self.shared:
            # Alone, this node is the only one to tell when the chat changes.
            return
        if self.sessions.get(live.session_id) is live:
            del self.sessions[live.session_id]
            self.by_token.pop(live.token_hash, None)
            self._spawn(self.bus.unsubscribe(f"s:{live.session_id}"))

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
            await self._presence(
                self.presence.register_operator(
                    operator_id,
                    capacity=record.capacity,
                    departments=record.departments,
                    levels=record.levels,
                )
            )
        return op

    def _entry_from_record(self, record: SessionRecord, *, requeued: bool) -> QueueEntry:
        return QueueEntry(
            session_id=record.session_id,
            enqueued_at=record.enqueued_at or record.created_at,
            priority=record.priority,
            department=record.department,
            requeued=requeued,
            name=record.visitor_name,
            level=record.level,
            aging_seconds=self.settings.queue_aging_seconds,
            kind=record.kind,
            plan=self.levels.plan(record.plan).name,
            sla_due=record.sla_first_due,
        )

    def _queue_entry(
        self,
        live: LiveSession,
        *,
        requeued: bool,
        preferred: OperatorId | None = None,
    ) -> QueueEntry:
        enqueued = live.enqueued_at if live.enqueued_at is not None else self.clock()
        return QueueEntry(
            session_id=live.session_id,
            enqueued_at=enqueued,
            priority=live.chat.priority,
            department=live.chat.department,
            requeued=requeued,
            name=live.visitor.name,
            preview=live.preview,
            level=live.chat.level,
            aging_seconds=self.settings.queue_aging_seconds,
            preferred_operator=preferred,
            preferred_until=(
                self.clock() + self.settings.recurring_contact_grace if preferred else 0.0
            ),
            avoid_operator=live.chat.avoid_operator,
            kind=live.chat.kind,
            plan=self.levels.plan(live.visitor.plan).name,
            sla_due=live.sla_first_due,
        )

    async def _presence(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a presence call; a failure marks the node degraded and re-raises."""
        try:
            result = await coro
        except PRESENCE_ERRORS as exc:
            if self._presence_ok:
                log.warning("presence backend unreachable: %s", exc)
            self._presence_ok = False
            raise Unavailable(
                "We cannot connect you to an operator right now. Your messages are saved;"
                " please stay, we will connect you as soon as we can."
            ) from exc
        self._presence_ok = True
        return result

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
                "connected": bool(live.conns) or live.remote_visitor,
                "customer_id": v.customer_id,
                "plan": v.plan,
            },
            "priority": chat.priority.label,
            "created_at": int(chat.created_at * 1000),
            "assigned_at": int(chat.assigned_at * 1000) if chat.assigned_at else None,
            "last_seq": chat.last_seq,
            "read_seq": chat.operator_read_seq,
            "visitor_read_seq": chat.visitor_read_seq,
            "kind": chat.kind,
            "department": chat.department,
            "level": chat.level,
            "callback": (
                {"phone": live.phone, "preferred_times": live.preferred_times}
                if chat.kind == "callback"
                else None
            ),
            "sla": {
                "plan": self.levels.plan(v.plan).name,
                "first_response": self.levels.describe(
                    live.sla_first_due,
                    live.sla_first_warn,
                    chat.first_response_at,
                    self.clock(),
                    False,
                ),
                "resolution": self._chat_resolution(live),
            },
        }

    def _chat_resolution(self, live: LiveSession) -> dict[str, Any]:
        """The chat's resolution clock: the plan's resolution target from when it was
        queued, done when the chat is closed."""
        if live.enqueued_at is None:
            due = warn = None
        else:
            due, warn = self.levels.resolution_due(live.visitor.plan, live.enqueued_at)
        return self.levels.describe(due, warn, live.chat.closed_at, self.clock(), False)

    def _operator_name(self, operator_id: OperatorId | None) -> str:
        op = self.operators.get(operator_id) if operator_id is not None else None
        return op.record.name if op is not None else "Operator"

    def _chat_operator(self, live: LiveSession) -> dict[str, Any] | None:
        op_id = live.chat.operator_id
        if op_id is None or live.chat.state is not SessionState.ASSIGNED:
            return None
        return {"id": op_id, "name": live.chat_operator_name or self._operator_name(op_id)}

    def _state_frame(self, live: LiveSession, position: int | None) -> Outgoing:
        return Outgoing(
            {
                "type": "state",
                "state": live.chat.state.value,
                "operator": self._chat_operator(live),
                "queue_position": position,
                "offline": self.offline,
            }
        )

    async def _refresh_offline(self) -> bool:
        """Recompute :attr:`offline`; tell waiting-to-start visitors here when it flips."""
        # Every second on every node: an online operator here settles it; else one
        # cheap presence call (not the whole operator list).
        online = any(
            op.status is OperatorStatus.ONLINE and op.conn is not None
            for op in self.operators.values()
        )
        if not online:
            try:
                online = await self._presence(self.presence.any_online())
            except ChatError:
                return self.offline
        offline = not online or len(self._positions) >= self.settings.offline_queue_length
        if offline != self.offline:
            self.offline = offline
            for live in self.sessions.values():
                if live.conns and live.chat.state is SessionState.NEW:
                    self._send_visitors(live, self._state_frame(live, None))
        return offline

    def _send_visitors(
        self, live: LiveSession, out: Outgoing, *, skip: Connection | None = None
    ) -> None:
        for conn in live.conns:
            if conn is not skip:
                conn.send(out)

    def _operator_conn(self, live: LiveSession) -> Connection | None:
        op = self._local_operator(live)
        return op.conn if op is not None else None

    def _note(self, live: LiveSession, note: dict[str, Any]) -> None:
        """Tell other nodes holding this session (typing, reads, visitor info)."""
        if self.shared:
            self.bus.publish(f"s:{live.session_id}", _pack(note))

    def _queue_changed(self) -> None:
        self._queue_dirty = True
        if self.shared:
            self.bus.publish("queue", b"q")

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
        extra: dict[str, Any] | None = None,
    ) -> asyncio.Future[int]:
        """Store a message and, once committed, ack ``origin`` and fan it out.

        Returns the store's future: the seq when durable, or ``DuplicateMessage``.
        """
        who: str = sender._value_  # not .value: a property call per use
        record = MessageRecord(
            live.session_id, 0, now_ms(), who, sender_id, author, text, client_msg_id, event, extra
        )
        key = (who, client_msg_id) if client_msg_id is not None else None

        def committed(fut: asyncio.Future[int]) -> None:
            if key is not None:
                live.inflight.pop(key, None)
            exc = fut.exception()
            if exc is None:
                self._stored(live, record, key, origin)
            else:
                self._not_stored(live, record, key, origin, exc)

        future = self.store.submit_message(record, committed)
        if key is not None and not future.done():  # a journal settles at once
            live.inflight[key] = future
        return future

    def _post(
        self,
        live: LiveSession,
        sender: Sender,
        text: str,
        *,
        sender_id: str | None,
        author: str,
        client_msg_id: str,
        origin: Connection,
        extra: dict[str, Any] | None,
    ) -> None:
        """A client's message: :meth:`_append`, but with the journal stored,
        acked and delivered right here, without a future or a callback."""
        store = self.store
        if not store.journal_enabled:
            self._append(
                live,
                sender,
                text,
                sender_id=sender_id,
                author=author,
                client_msg_id=client_msg_id,
                origin=origin,
                extra=extra,
            )
            return
        who: str = sender._value_
        record = MessageRecord(
            live.session_id, 0, now_ms(), who, sender_id, author, text, client_msg_id, None, extra
        )
        try:
            store.append_message(record)
        except APPEND_ERRORS as exc:
            self._not_stored(live, record, (who, client_msg_id), origin, exc)
        else:
            self._stored(live, record, (who, client_msg_id), origin)

    def _stored(
        self,
        live: LiveSession,
        record: MessageRecord,
        key: tuple[str, str] | None,
        origin: Connection | None,
    ) -> None:
        """``record`` is durable: ack ``origin``, tell other nodes, deliver."""
        seq = record.seq
        if key is not None:
            live.client_ids[key] = seq
        if origin is not None:
            origin.send(ack(record.client_msg_id, seq, record.ts, False))
        if record.sender == "operator" and live.chat.first_response_at is None:
            # Once per chat (per node): the store keeps the earliest.
            live.chat.first_response_at = record.ts / 1000
            self.store.submit_first_response(live.session_id, record.ts / 1000)
        if self.shared:
            self.bus.publish(f"s:{live.session_id}", _pack({"k": "m", "r": _record_row(record)}))
        self._deliver(live, record, origin)
        self._evict_if_idle(live)

    def _not_stored(
        self,
        live: LiveSession,
        record: MessageRecord,
        key: tuple[str, str] | None,
        origin: Connection | None,
        exc: BaseException,
    ) -> None:
        if isinstance(exc, DuplicateMessage):
            # Stored before (by another connection or node): ack, deliver nothing.
            if key is not None:
                live.client_ids[key] = exc.seq
            if origin is not None:
                origin.send(self._ack(record.client_msg_id, exc.seq, duplicate=True))
        else:
            log.error(
                "store write failed for %s: %s",
                live.session_id,
                exc,
                extra={"session_id": live.session_id},
            )
            if origin is not None:
                origin.send_frame(
                    Unavailable(
                        "the message could not be stored", ref=record.client_msg_id
                    ).to_frame()
                )
        self._evict_if_idle(live)

    @staticmethod
    def _ack(
        client_msg_id: str | None, seq: int, *, duplicate: bool, ts: int | None = None
    ) -> Outgoing:
        return ack(client_msg_id, seq, ts if ts is not None else now_ms(), duplicate)

    def _deliver(
        self, live: LiveSession, record: MessageRecord, origin: Connection | None = None
    ) -> None:
        """Deliver committed messages to this node's participants strictly in seq order.

        A message ahead of a gap (another node's message not seen yet) is held
        and the gap is refilled from the store.
        """
        last = live.chat.last_seq
        if record.seq <= last:
            return  # seen already (our own publish echoed, a refill overlap)
        if record.seq > last + 1:
            live.held[record.seq] = (record, origin)
            if not live.refilling:
                live.refilling = True
                self._spawn(self._refill(live))
            return
        self._fan_out(live, record, origin)
        while live.held:
            nxt = live.held.pop(live.chat.last_seq + 1, None)
            if nxt is None:
                break
            self._fan_out(live, *nxt)

    async def _refill(self, live: LiveSession) -> None:
        try:
            while True:
                rows = await self.store.messages_after(
                    live.session_id, live.chat.last_seq, HISTORY_PAGE
                )
                for row in rows:
                    if row.seq == live.chat.last_seq + 1:
                        held = live.held.pop(row.seq, None)
                        self._fan_out(live, row, held[1] if held else None)
                if len(rows) < HISTORY_PAGE:
                    break
            while live.held:
                nxt = live.held.pop(live.chat.last_seq + 1, None)
                if nxt is None:
                    break
                self._fan_out(live, *nxt)
            live.held = {s: h for s, h in live.held.items() if s > live.chat.last_seq}
        finally:
            live.refilling = False
        if live.held:  # still a gap: try again shortly
            await asyncio.sleep(0.05)
            if not live.refilling and live.held:
                live.refilling = True
                self._spawn(self._refill(live))
        self._evict_if_idle(live)

    def _fan_out(self, live: LiveSession, record: MessageRecord, origin: Connection | None) -> None:
        live.chat.note_seq(record.seq)
        if record.event is not None:
            self._apply_event(live, record)
        out = Outgoing(record.to_frame())
        sid, seq = record.session_id, record.seq
        sent = 0
        for conn in live.conns:
            if conn is not origin:
                conn.deliver(sid, seq, out)
                sent += 1
        op_conn = self._operator_conn(live)
        if op_conn is not None and op_conn is not origin:
            op_conn.deliver(sid, seq, out)
            sent += 1
        if live.watchers:
            for conn in live.watchers:
                if conn is not origin and conn is not op_conn:
                    conn.deliver(sid, seq, out)
                    sent += 1
        if sent:
            self.messages_out += sent
            self._messages_out.value += sent  # messages_out_total.inc(sent), inlined

    def _apply_event(self, live: LiveSession, record: MessageRecord) -> None:
        """Bring the cached session in line with a state change, and tell local clients."""
        chat = live.chat
        event = record.event
        operator_id = OperatorId(record.sender_id) if record.sender_id else None
        if event == "assigned" and operator_id is not None:
            if chat.state is SessionState.WAITING:
                chat.state = SessionState.ASSIGNED
                chat.operator_id = operator_id
                chat.assigned_at = record.ts / 1000
            live.chat_operator_name = record.author
            self._send_visitors(live, self._state_frame(live, None))
        elif event == "reassigned" and operator_id is not None:
            # A supervisor moved the chat to another operator (supervisor.py).
            old = self._local_operator(live)
            if chat.is_open:
                if chat.operator_id is not None and chat.operator_id != operator_id:
                    chat.previous_operator = chat.operator_id
                chat.state = SessionState.ASSIGNED
                chat.operator_id = operator_id
                chat.assigned_at = chat.assigned_at or record.ts / 1000
            live.chat_operator_name = record.author
            if old is not None and old.operator_id != operator_id:
                self._take_from_operator(
                    old, live, {"type": "chat_removed", "reason": "reassigned"}
                )
            new = self.operators.get(operator_id)
            if new is not None and new.conn is not None and live.session_id not in new.chats:
                self._spawn(self._operator_got_chat(new, live.session_id))
            self._send_visitors(live, self._state_frame(live, None))
        elif event == "requeued":
            op = self._local_operator(live)
            transfer = (record.extra or {}).get("transfer")
            if transfer:
                chat.department = transfer.get("department")
                chat.level = int(transfer.get("level") or 1)
            if chat.state is SessionState.ASSIGNED:
                chat.requeue()
            if op is not None:
                self._take_from_operator(op, live, {"type": "chat_removed", "reason": "requeued"})
            self._send_visitors(live, self._state_frame(live, None))
            self._positions.pop(live.session_id, None)
            self._queue_dirty = True
        elif event == "closed":
            op = self._local_operator(live)
            if chat.is_open:
                chat.close(record.ts / 1000)
            if live.abandon_timer is not None:
                live.abandon_timer.cancel()
                live.abandon_timer = None
            if op is not None:
                self._take_from_operator(
                    op, live, {"type": "chat_closed", "by": record.author or "system"}
                )
            self._send_visitors(live, self._state_frame(live, None))

    def _take_from_operator(
        self, op: LiveOperator, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        """The chat is no longer ``op``'s: tell their console (``frame``) and new load."""
        op.chats.discard(live.session_id)
        if op.conn is not None:
            op.conn.send_frame({**frame, "session_id": live.session_id})
            self._send_status(op)

    def _resend(
        self, live: LiveSession, conn: Connection, sender: Sender, client_msg_id: str
    ) -> bool:
        """Answer a resend of a known ``client_msg_id``; ``False`` if it is new."""
        key: tuple[str, str] = (sender._value_, client_msg_id)
        seq = live.client_ids.get(key)
        if seq is not None:
            conn.send(self._ack(client_msg_id, seq, duplicate=True))
            return True
        pending = live.inflight.get(key)
        if pending is not None:

            def done(fut: asyncio.Future[int]) -> None:
                exc = fut.exception()
                if exc is None:
                    conn.send(self._ack(client_msg_id, fut.result(), duplicate=True))
                elif isinstance(exc, DuplicateMessage):
                    conn.send(self._ack(client_msg_id, exc.seq, duplicate=True))

            pending.add_done_callback(done)
            return True
        return False

    def _system(
        self,
        live: LiveSession,
        event: str,
        text: str,
        *,
        operator_id: OperatorId | None,
        author: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> asyncio.Future[int]:
        return self._append(
            live,
            Sender.SYSTEM,
            text,
            sender_id=operator_id,
            author=author,
            event=event,
            extra=extra,
        )

    async def post_system(
        self,
        session_id: SessionId,
        event: str,
        text: str,
        *,
        operator_id: OperatorId | None = None,
        author: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Store a system message in a chat (on any node) and deliver it; returns its seq."""
        live = await self._load_live(session_id)
        if live is None:
            raise UnknownSession(f"no chat {session_id[:64]}")
        live = self._rehold(live)
        seq = await self._system(
            live, event, text, operator_id=operator_id, author=author, extra=extra
        )
        self._evict_if_idle(live)
        return seq

    async def _message_attachments(
        self, live: LiveSession, frame: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The ``extra`` of a message frame naming attachments of its chat, checked."""
        ids = frame.get("attachments")
        if not ids:
            return None
        if self.records is None:
            raise BadFrame("attachments are not enabled", ref=frame["client_msg_id"])
        found = await self.records.attachments_of(f"s:{live.session_id}", ids)
        if len(found) != len(set(ids)):
            raise NotFound(
                "unknown attachment: upload it into this chat first", ref=frame["client_msg_id"]
            )
        return {"attachments": [a.public() for a in found]}

    # -------------------------------------------------------------- bus notes
    def _on_note(self, channel: str, payload: bytes) -> None:
        if channel == "queue":
            self._queue_dirty = True
            return
        try:
            note = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException):
            log.warning("undecodable bus note on %s", channel)
            return
        kind = note.get("k")
        if channel.startswith("s:"):
            live = self.sessions.get(SessionId(channel[2:]))
            if live is None:
                return
            if kind == "m":
                self._deliver(live, MessageRecord(*note["r"]))
            elif kind == "t":
                out = Outgoing(
                    {
                        "type": "typing",
                        "session_id": live.session_id,
                        "from": note["from"],
                        "active": note["active"],
                    }
                )
                if note["from"] == "visitor":
                    op_conn = self._operator_conn(live)
                    if op_conn is not None:
                        op_conn.send(out)
                else:
                    self._send_visitors(live, out)
            elif kind == "r":
                by_visitor = note["by"] == "visitor"
                if live.chat.mark_read(by_visitor, note["seq"]):
                    out = Outgoing(
                        {
                            "type": "read",
                            "session_id": live.session_id,
                            "by": note["by"],
                            "seq": note["seq"],
                        }
                    )
                    if by_visitor:
                        op_conn = self._operator_conn(live)
                        if op_conn is not None:
                            op_conn.send(out)
                    else:
                        self._send_visitors(live, out)
            elif kind == "v":
                v = live.visitor
                for field in ("name", "email", "page_url", "user_agent"):
                    if note.get(field) is not None:
                        setattr(v, field, note[field])
                live.remote_visitor = bool(note.get("connected"))
                self._notify_visitor_presence(live, publish=False)
            elif kind == "n":  # a supervisor's whisper: operators only
                self.supervision.deliver_note(live, note["note"])
        elif channel.startswith("o:") and kind == "assigned":
            op = self.operators.get(OperatorId(channel[2:]))
            if op is not None and op.conn is not None:
                self._spawn(self._operator_got_chat(op, SessionId(note["sid"])))
        elif channel.startswith("o:") and kind == "consult":
            op = self.operators.get(OperatorId(channel[2:]))
            if op is not None and op.conn is not None:
                self._spawn(self.supervision.bring_in(op, SessionId(note["sid"]), note["by"]))

    async def _on_resync(self) -> None:
        """The bus lost notes: refill every cached session from the store."""
        for live in list(self.sessions.values()):
            if not live.refilling:
                live.refilling = True
                self._spawn(self._refill(live))
        self._queue_dirty = True
        await self._reregister_presence()

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
            # The host site's name and e-mail prefill what the visitor did not give.
            for field, limit in (("name", 100), ("email", 254)):
                value = frame["identity"].get(field)
                if not frame.get(field) and isinstance(value, str) and 0 < len(value) <= limit:
                    frame[field] = value
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
        if changes:  # (a new session's record lacks the identity until now)
            self.store.submit_session_update(live.session_id, **changes)
        if live.abandon_timer is not None:
            live.abandon_timer.cancel()
            live.abandon_timer = None

        last_seq = frame.get("last_seq") or 0
        position = None
        if live.chat.state is SessionState.WAITING:
            with contextlib.suppress(ChatError):
                position = await self._presence(self.presence.position(live.session_id))
        # No await from here until welcome is queued: it must be the first frame.
        if resumed:
            conn.start_replay(live.session_id)
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
                "offline": self.offline,
                "callback_allowed": self.levels.plan(v.plan).phone,
                "kind": live.chat.kind,
            }
        )
        if resumed:
            await self._replay(conn, live, last_seq)
        if not was_connected or changes:
            self._notify_visitor_presence(live)
            with contextlib.suppress(ChatError):
                await self._presence(self.presence.visitor_seen(live.session_id, v.page_url))
        return live

    async def _create_session(self, token: str, frame: dict[str, Any]) -> LiveSession:
        session_id = SessionId("s_" + secrets.token_urlsafe(12))
        now = self.clock()
        chat = ChatSession(session_id=session_id, created_at=now)
        visitor = Visitor(
            frame.get("name") or None,
            frame.get("email") or None,
            frame.get("page_url") or None,
            frame.get("user_agent") or None,
        )
        live = LiveSession(chat=chat, token_hash=auth.token_hash(token), visitor=visitor)
        record = SessionRecord(
            session_id,
            live.token_hash,
            SessionState.NEW,
            now,
            visitor_name=visitor.name,
            visitor_email=visitor.email,
            page_url=visitor.page_url,
            user_agent=visitor.user_agent,
        )
        self._hold(live)
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
                    conn.send_replayed(live.session_id, row.seq, Outgoing(row.to_frame()))
                    sent = row.seq
                if len(rows) < HISTORY_PAGE:
                    break
        except Exception:
            log.exception(
                "replay of %s failed", live.session_id, extra={"session_id": live.session_id}
            )
            complete = False
        sent = conn.end_replay(live.session_id, sent)
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
            extra = (
                await self._message_attachments(live, frame) if frame.get("attachments") else None
            )
            if extra is not None:
                live = self._rehold(live)
                if self._resend(live, conn, Sender.VISITOR, cmid):
                    return
            self._post(
                live,
                Sender.VISITOR,
                frame["text"],
                sender_id=None,
                author=live.visitor.name or "Visitor",
                client_msg_id=cmid,
                origin=conn,
                extra=extra,
            )
            if chat.state is SessionState.NEW:
                live.preview = (frame["text"] or "📎 attachment")[:120]
                await self._start_waiting(live)
        elif kind == "typing":
            note = {"k": "t", "from": "visitor", "active": frame["active"]}
            op_conn = self._operator_conn(live)
            if op_conn is not None:
                op_conn.send_frame(
                    {
                        "type": "typing",
                        "session_id": live.session_id,
                        "from": "visitor",
                        "active": frame["active"],
                    }
                )
            self._note(live, note)
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
                self._note(live, {"k": "r", "by": "visitor", "seq": chat.visitor_read_seq})
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
        elif kind == "rate":
            score = frame["score"]
            if not 1 <= score <= 5:
                raise BadFrame("score must be 1 to 5")
            if chat.assigned_at is None and chat.previous_operator is None:
                raise InvalidState("there is nothing to rate before an operator has answered")
            comment = (frame.get("comment") or "").strip() or None
            await self.store.submit_session_update(
                live.session_id, csat_score=score, csat_comment=comment, csat_at=self.clock()
            )
            conn.send_frame({"type": "rated", "score": score})
        elif kind == "another_operator":
            if chat.state is not SessionState.ASSIGNED or chat.operator_id is None:
                raise InvalidState("no operator is serving this chat")
            await self._transfer(
                live,
                chat.operator_id,
                "You asked for another operator; you are back at the front of the queue.",
                avoid=chat.operator_id,
            )
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
        with contextlib.suppress(ChatError):
            await self._presence(self.presence.visitor_left(live.session_id))

    async def _abandon(self, live: LiveSession) -> None:
        live.abandon_timer = None
        if not live.conns and live.chat.state is SessionState.WAITING:
            await self._close_chat(
                live, by=Sender.SYSTEM, reason="The visitor left before an operator was free."
            )

    def _notify_visitor_presence(self, live: LiveSession, *, publish: bool = True) -> None:
        v = live.visitor
        connected = bool(live.conns) or (live.remote_visitor and not publish)
        if publish:
            self._note(
                live,
                {
                    "k": "v",
                    "connected": bool(live.conns),
                    "name": v.name,
                    "email": v.email,
                    "page_url": v.page_url,
                    "user_agent": v.user_agent,
                },
            )
        op_conn = self._operator_conn(live)
        if op_conn is None:
            return
        op_conn.send_frame(
            {
                "type": "visitor",
                "session_id": live.session_id,
                "connected": connected,
                "name": v.name,
                "email": v.email,
                "page_url": v.page_url,
                "user_agent": v.user_agent,
            }
        )

    async def _start_waiting(self, live: LiveSession) -> None:
        now = self.clock()
        due, warn = self.levels.chat_due(
            live.visitor.plan, now, callback=live.chat.kind == "callback"
        )
        done = await self.store.submit_transition(
            live.session_id,
            (SessionState.NEW,),
            state=SessionState.WAITING,
            enqueued_at=now,
            priority=live.chat.priority,
            sla_first_due=due,
            sla_first_warn=warn,
        )
        if done is None or live.chat.state is not SessionState.NEW:
            return  # another connection started it first
        live.chat.start_waiting()
        live.enqueued_at = now
        live.sla_first_due, live.sla_first_warn = due, warn
        # Recurring contact person: an identified customer's last operator first.
        preferred = None
        if live.visitor.customer_id is not None:
            preferred = await self.store.last_operator_of_customer(
                live.visitor.customer_id, live.session_id
            )
        try:
            position = await self._presence(
                self.presence.enqueue(self._queue_entry(live, requeued=False, preferred=preferred))
            )
        except Unavailable as exc:
            self._send_visitors(live, self._state_frame(live, None))
            self._send_visitors(live, Outgoing(exc.to_frame()))
            return
        self._send_visitors(live, self._state_frame(live, position))
        self._queue_changed()
        await self.dispatch()

    async def _close_chat(
        self, live: LiveSession, *, by: Sender, reason: str | None = None
    ) -> None:
        now = self.clock()
        done = await self.store.submit_transition(
            live.session_id, OPEN_STATES, state=SessionState.CLOSED, closed_at=now
        )
        if done is None:
            return
        if live.chat.is_open:  # at once, so nothing more is accepted here
            live.chat.close(now)
        if done.operator_id is not None:
            self.store.submit_session_update(live.session_id, previous_operator=done.operator_id)
        if done.state is SessionState.WAITING:
            with contextlib.suppress(ChatError):
                await self._presence(self.presence.dequeue(live.session_id))
            self._queue_changed()
        text = reason or {
            Sender.VISITOR: "The visitor ended the chat.",
            Sender.OPERATOR: "The operator ended the chat.",
        }.get(by, "The chat was closed.")
        self._system(live, "closed", text, operator_id=done.operator_id, author=by.value)
        if done.state is SessionState.ASSIGNED and done.operator_id is not None:
            with contextlib.suppress(ChatError):
                await self._presence(self.presence.add_load(done.operator_id, -1))
            await self.dispatch()

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
                try:
                    assignments = await self._presence(self.presence.assign_next())
                except Unavailable:
                    return
                for assignment in assignments:
                    await self._carry_out(assignment.session_id, assignment.operator_id)
                if not self._dispatch_again:
                    break
        finally:
            self._dispatching = False

    async def _carry_out(self, session_id: SessionId, operator_id: OperatorId) -> None:
        op = await self._live_operator(operator_id)
        now = self.clock()
        done = None
        if op is not None:
            done = await self.store.submit_transition(
                session_id,
                (SessionState.WAITING,),
                state=SessionState.ASSIGNED,
                operator_id=operator_id,
                assigned_at=now,
            )
        if op is None or done is None:
            # The chat closed meanwhile: the reservation is void.
            with contextlib.suppress(ChatError):
                await self._presence(self.presence.add_load(operator_id, -1))
            return
        self._queue_changed()
        live = await self._load_live(session_id)
        if live is None:
            return
        if live.enqueued_at is not None:
            self.metrics.assignment_latency_seconds.observe(max(0.0, now - live.enqueued_at))
        self._positions.pop(session_id, None)
        self._system(
            live,
            "assigned",
            f"{op.record.name} joined the chat.",
            operator_id=operator_id,
            author=op.record.name,
        )
        if op.conn is not None:
            await self._operator_got_chat(op, session_id)
        elif self.shared:
            self.bus.publish(f"o:{operator_id}", _pack({"k": "assigned", "sid": session_id}))
        else:
            op.chats.add(session_id)  # kept for the operator's return (grace)
        self._evict_if_idle(live)

    async def _operator_got_chat(self, op: LiveOperator, session_id: SessionId) -> None:
        """A chat was assigned to ``op``, whose console is connected here."""
        if session_id in op.chats:
            return
        live = await self._load_live(session_id)
        if live is None:
            return
        await self._learn_visitor_presence([live])
        conn = op.conn
        if conn is None or session_id in op.chats:
            return
        live = self._rehold(live)
        if live.chat.state is SessionState.WAITING:  # our cache lags the store
            live.chat.assign(op.operator_id, self.clock())
        if live.chat.operator_id != op.operator_id or not live.chat.is_open:
            return
        # No await from here to start_replay: from the moment the chat counts as
        # the operator's, its live messages are held until the history is sent.
        op.chats.add(session_id)
        conn.start_replay(session_id)
        conn.send_frame({"type": "chat_assigned", "chat": self._summary(live)})
        self._send_status(op)
        await self._replay(conn, live, 0)

    async def _requeue(self, operator_id: OperatorId, session_id: SessionId, text: str) -> None:
        done = await self.store.submit_transition(
            session_id,
            (SessionState.ASSIGNED,),
            expect_operator=operator_id,
            state=SessionState.WAITING,
            operator_id=None,
            assigned_at=None,
            previous_operator=operator_id,
        )
        if done is None:
            return
        live = await self._load_live(session_id)
        if live is None:
            return
        with contextlib.suppress(ChatError):
            await self._presence(self.presence.add_load(operator_id, -1))
            await self._presence(self.presence.enqueue(self._queue_entry(live, requeued=True)))
        self._system(live, "requeued", text, operator_id=operator_id)
        self._queue_changed()
        self._evict_if_idle(live)

    async def _transfer(
        self,
        live: LiveSession,
        from_operator: OperatorId,
        text: str,
        *,
        department: str | None = None,
        level: int | None = None,
        target: OperatorId | None = None,
        avoid: OperatorId | None = None,
    ) -> None:
        """Take an assigned chat from ``from_operator`` and queue it again at the front:
        for another department or support level, for ``target`` first (within the
        recurring-contact grace), or for anyone but ``avoid``."""
        updates: dict[str, Any] = {}
        if department is not None:
            updates["department"] = department
        if level is not None:
            updates["level"] = level
        done = await self.store.submit_transition(
            live.session_id,
            (SessionState.ASSIGNED,),
            expect_operator=from_operator,
            state=SessionState.WAITING,
            operator_id=None,
            assigned_at=None,
            previous_operator=from_operator,
            **updates,
        )
        if done is None:
            raise InvalidState("the chat changed meanwhile")
        live = self._rehold(live)
        live.chat.department = department if department is not None else live.chat.department
        live.chat.level = level if level is not None else live.chat.level
        live.chat.avoid_operator = avoid
        extra = {
            "transfer": {
                "department": live.chat.department,
                "level": live.chat.level,
                "to_operator": target,
            }
        }
        # The notice first: every node applies the change in seq order, before any
        # "assigned" that follows the enqueue below.
        self._system(live, "requeued", text, operator_id=from_operator, extra=extra)
        with contextlib.suppress(ChatError):
            await self._presence(self.presence.add_load(from_operator, -1))
            await self._presence(
                self.presence.enqueue(self._queue_entry(live, requeued=True, preferred=target))
            )
        self._queue_changed()
        await self.dispatch()

    async def _requeue_operator_chats(self, op: LiveOperator, text: str) -> None:
        records = await self.store.assigned_sessions(op.operator_id)
        for record in records:
            await self._requeue(op.operator_id, record.session_id, text)

    # -------------------------------------------------------------- operator
    async def login(self, username: str, password: str) -> tuple[str, OperatorRecord]:
        record = await self.store.operator_by_username(username)
        ok = await asyncio.to_thread(
            auth.verify_password, record.password_hash if record else auth.dummy_hash(), password
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
        known = frame.get("sessions") or {}
        if not isinstance(known, dict):
            raise BadFrame("sessions must map session ids to seqs")
        previous = op.conn
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
        await self.bus.subscribe(f"o:{operator_id}")
        # The store knows which chats are this operator's (on any node).
        records = await self.store.assigned_sessions(operator_id)
        lives = [await self._live_from_record(r) for r in records]
        await self._learn_visitor_presence(lives)
        queue = await self._queue_frame_body()
        # No await from here until welcome is queued: it must be the first frame,
        # and the operator becomes eligible for new chats only after it.
        op.conn = conn
        if previous is not None:
            previous.close(4008)
        op.status = status
        lives = [self._rehold(live) for live in lives]
        op.chats |= {live.session_id for live in lives}
        resume: list[tuple[LiveSession, int]] = []
        refused: list[str] = []
        for session_id, last_seq in known.items():
            live = self.sessions.get(SessionId(str(session_id)))
            if live is None or live.session_id not in op.chats or not isinstance(last_seq, int):
                refused.append(str(session_id)[:64])
            else:
                conn.start_replay(live.session_id)
                resume.append((live, last_seq))
        conn.send_frame(
            {
                "type": "welcome",
                "operator": {**op.record.public(), "status": status.value, "load": len(op.chats)},
                "chats": [
                    self._summary(self.sessions[s]) for s in sorted(op.chats) if s in self.sessions
                ],
                "queue": queue,
            }
        )
        for session_id in refused:
            conn.send_frame(UnknownSession(f"cannot resume {session_id}").to_frame())
        for live, last_seq in resume:
            await self._replay(conn, live, last_seq)
        with contextlib.suppress(ChatError):
            await self._presence(self.presence.set_status(operator_id, status))
        if status is OperatorStatus.OFFLINE:
            await self._requeue_operator_chats(
                op, f"{op.record.name} went offline. You are back in the queue."
            )
        await self.dispatch()
        if may_supervise(op):
            try:
                await self.supervision.add(conn)  # the board, then its patches
            except Exception:  # the console asks again with a "board" frame
                log.exception(
                    "board for %s failed", operator_id, extra={"operator_id": operator_id}
                )
        # Open chats this operator was consulted on: back into their read-only view.
        for session_id in await self.store.consulted_open(operator_id):
            if session_id not in op.chats:
                with contextlib.suppress(ChatError):
                    await self.supervision.bring_in(op, session_id, None)
        return op

    async def _learn_visitor_presence(self, lives: list[LiveSession]) -> None:
        """Whether visitors without a connection here are connected to another node."""
        remote = [live for live in lives if not live.conns]
        if not remote or not self.shared:
            return
        with contextlib.suppress(ChatError):
            connected = await self._presence(
                self.presence.visitors_connected(live.session_id for live in remote)
            )
            for live in remote:
                live.remote_visitor = live.session_id in connected

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
        if live.chat.operator_id != op.operator_id or live.session_id not in op.chats:
            if (
                live.chat.state is SessionState.CLOSED
                and live.chat.previous_operator == op.operator_id
            ):
                raise ChatClosed("this chat has ended")
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
            extra = (
                await self._message_attachments(live, frame) if frame.get("attachments") else None
            )
            if extra is not None:
                live = self._own_chat(op, frame["session_id"])  # still ours after the await?
                if self._resend(live, conn, Sender.OPERATOR, cmid):
                    return
            self._post(
                live,
                Sender.OPERATOR,
                frame["text"],
                sender_id=op.operator_id,
                author=op.record.name,
                client_msg_id=cmid,
                origin=conn,
                extra=extra,
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
            self._note(live, {"k": "t", "from": "operator", "active": frame["active"]})
        elif kind == "read":
            live = self._own_chat(op, frame["session_id"])
            if live.chat.mark_read(False, frame["seq"]):
                seq = live.chat.operator_read_seq
                self.store.submit_session_update(live.session_id, operator_read_seq=seq)
                self._send_visitors(
                    live,
                    Outgoing(
                        {
                            "type": "read",
                            "session_id": live.session_id,
                            "by": "operator",
                            "seq": seq,
                        }
                    ),
                )
                self._note(live, {"k": "r", "by": "operator", "seq": seq})
        elif kind == "status":
            try:
                status = OperatorStatus(frame["status"])
            except ValueError:
                raise BadFrame("status must be online, away or offline") from None
            op.status = status
            await self._presence(self.presence.set_status(op.operator_id, status))
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
        elif kind == "transfer":
            await self._operator_transfer(op, frame)
        elif kind == "consult":
            await self.supervision.consult(
                conn, op, SessionId(frame["session_id"]), frame.get("operator_id"), frame["text"]
            )
        elif kind in SUPERVISOR_FRAMES:
            await self.supervision.handle(conn, op, frame)
        elif kind == "notes":
            await self.supervision.send_notes(conn, op, SessionId(frame["session_id"]))
        elif kind == "ping":
            conn.send_frame({"type": "pong"})

    async def request_callback(
        self, session_id: SessionId, phone: str, preferred_times: str, note: str
    ) -> None:
        """Turn a chat that has not started into a callback request in the queue."""
        live = await self._load_live(session_id)
        if live is None:
            raise UnknownSession("no such chat")
        live = self._rehold(live)
        if not self.levels.plan(live.visitor.plan).phone:
            raise Forbidden("phone support is not part of your plan")
        if live.chat.state is not SessionState.NEW:
            raise InvalidState("this chat has already started: ask the operator to call you")
        live.chat.kind = "callback"
        live.phone, live.preferred_times = phone, preferred_times or None
        self.store.submit_session_update(
            live.session_id, kind="callback", phone=phone, preferred_times=preferred_times or None
        )
        text = f"Please call me back: {phone}"
        if preferred_times:
            text += f" ({preferred_times})"
        if note:
            text += f"\n{note}"
        live.preview = text[:120]
        self._append(
            live,
            Sender.VISITOR,
            text,
            sender_id=None,
            author=live.visitor.name or "Visitor",
            client_msg_id="callback-request",
            extra={"callback": {"phone": phone, "preferred_times": preferred_times or None}},
        )
        await self._start_waiting(live)
        self._evict_if_idle(live)

    async def _operator_transfer(self, op: LiveOperator, frame: dict[str, Any]) -> None:
        live = self._own_chat(op, frame["session_id"])
        target = frame.get("operator_id")
        level = frame.get("level")
        department = frame.get("department")
        if target is None and level is None and department is None:
            raise BadFrame("transfer: give operator_id, department or level")
        if level is not None and level not in (1, 2, 3):
            raise BadFrame("transfer: level must be 1, 2 or 3")
        target_name = None
        if target is not None:
            if target == op.operator_id:
                raise BadFrame("transfer: that is you")
            record = await self.store.operator(OperatorId(target))
            if record is None:
                raise BadFrame("transfer: no such operator")
            target_name = record.name
        if target_name is not None:
            text = f"{op.record.name} is handing your chat over to {target_name}."
        elif level is not None and level > live.chat.level:
            text = f"Your chat is being passed on to {_ordinal(level)}-level support."
        else:
            text = f"{op.record.name} is transferring your chat to a colleague."
        await self._transfer(
            live,
            op.operator_id,
            text,
            department=department,
            level=level,
            target=OperatorId(target) if target is not None else None,
        )

    async def _history(self, conn: Connection, op: LiveOperator, frame: dict[str, Any]) -> None:
        session_id = SessionId(frame["session_id"])
        record = await self.store.session(session_id)
        allowed = record is not None and (
            op.operator_id in (record.operator_id, record.previous_operator)
            or op.record.role in (Role.SUPERVISOR, Role.ADMIN)
        )
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
        self.supervision.discard(conn)
        if op.conn is not conn:
            return  # replaced by a newer connection
        op.conn = None
        # Not eligible for new chats while away from the socket.
        with contextlib.suppress(ChatError):
            await self._presence(self.presence.set_status(op.operator_id, OperatorStatus.OFFLINE))
        if op.chats or op.status is not OperatorStatus.OFFLINE:
            self._start_grace(op)
        for session_id in list(op.chats):
            live = self.sessions.get(session_id)
            if live is not None:
                self._evict_if_idle(live)

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
        log.info(
            "operator %s lost; re-queueing their chats",
            op.operator_id,
            extra={"operator_id": op.operator_id},
        )
        op.status = OperatorStatus.OFFLINE
        op.chats.clear()
        await self._requeue_operator_chats(
            op, f"{op.record.name} lost the connection. You are back in the queue."
        )
        await self.dispatch()

    # ---------------------------------------------------- shared presence
    async def _presence_loop(self) -> None:
        """Heartbeat our operators; re-queue chats of operators whose node died."""
        interval = max(0.2, self.settings.presence_ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._presence(self.presence.heartbeat())
                await self._sweep_dead_operators()
            except ChatError:
                continue
            except Exception:
                log.exception("presence loop failed")

    async def _sweep_dead_operators(self) -> None:
        alive_fn = getattr(self.presence, "alive", None)
        if alive_fn is None:
            return
        # Every few seconds on every node: ids only, not whole session records.
        by_operator = await self.store.assigned_by_operator()
        alive = await self._presence(alive_fn(by_operator))
        now = self.clock()
        for operator_id, sessions in by_operator.items():
            local = self.operators.get(operator_id)
            if operator_id in alive or (local is not None and local.conn is not None):
                self._dead_since.pop(operator_id, None)
                continue
            first = self._dead_since.setdefault(operator_id, now)
            if now - first < self.settings.operator_grace_seconds:
                continue
            log.warning(
                "operator %s's node is gone; re-queueing %d chats",
                operator_id,
                len(sessions),
                extra={"operator_id": operator_id},
            )
            lost = await self.store.operator(operator_id)
            name = lost.name if lost is not None else "Your operator"
            for session_id in sessions:
                await self._requeue(
                    operator_id,
                    session_id,
                    f"{name} lost the connection. You are back in the queue.",
                )
            self._dead_since.pop(operator_id, None)
        if by_operator:
            await self.dispatch()

    async def _reregister_presence(self) -> None:
        """After the shared backend came back: restore our operators and waiting chats."""
        try:
            for op in self.operators.values():
                if op.conn is not None:
                    await self._presence(
                        self.presence.register_operator(
                            op.operator_id,
                            capacity=op.record.capacity,
                            departments=op.record.departments,
                            levels=op.record.levels,
                        )
                    )
                    await self._presence(self.presence.set_status(op.operator_id, op.status))
                    # Redis may have lost everything (restart without persistence):
                    # the store knows how many chats the operator really has.
                    assigned = await self.store.assigned_sessions(op.operator_id)
                    await self._presence(self.presence.set_load(op.operator_id, len(assigned)))
            for record in await self.store.open_sessions():
                if record.state is SessionState.WAITING:
                    with contextlib.suppress(ValueError):
                        await self._presence(
                            self.presence.enqueue(self._entry_from_record(record, requeued=False))
                        )
        except ChatError:
            return
        await self.dispatch()

    # ----------------------------------------------------------------- queue
    async def _queue_frame_body(self, entries: list[QueueEntry] | None = None) -> dict[str, Any]:
        """The operators' queue list; from ``entries`` when the caller has a snapshot."""
        if entries is None:
            try:
                entries = await self._presence(self.presence.queue_snapshot())
            except Unavailable:
                entries = []
        now = self.clock()
        listed = []
        for position, entry in enumerate(entries[:50], start=1):
            listed.append(
                {
                    "session_id": entry.session_id,
                    "name": entry.name,
                    "priority": entry.priority.label,
                    "waiting_since": int(entry.enqueued_at * 1000),
                    "waiting_seconds": round(now - entry.enqueued_at, 1),
                    "position": position,
                    "requeued": entry.requeued,
                    "preview": entry.preview,
                    "kind": entry.kind,
                    "plan": entry.plan,
                    "department": entry.department,
                    "level": entry.level,
                    "sla_due": entry.sla_due,
                }
            )
        return {"total": len(entries), "entries": listed}

    async def _tick_loop(self) -> None:
        was_ok = True
        while True:
            await asyncio.sleep(self.settings.queue_update_interval)
            if self.shared and not self._presence_ok and was_ok:
                was_ok = False
            if self.shared and self._presence_ok and not was_ok:
                was_ok = True
                await self._reregister_presence()
            try:
                await self._refresh_offline()
                if self._positions:
                    # Waits for a preferred operator end by time, not by an event.
                    await self.dispatch()
            except Exception:
                log.exception("availability update failed")
            if not self._queue_dirty:
                continue
            self._queue_dirty = False
            try:
                await self._publish_queue()
            except ChatError:
                self._queue_dirty = True
            except Exception:
                log.exception("queue update failed")

    async def _publish_queue(self) -> None:
        entries = await self._presence(self.presence.queue_snapshot())
        self.supervision.observe_queue(entries)  # board history, queue gauges
        positions: dict[SessionId, int] = {}
        for position, entry in enumerate(entries, start=1):
            positions[entry.session_id] = position
            if self._positions.get(entry.session_id) != position:
                live = self.sessions.get(entry.session_id)
                if live is not None and live.conns:
                    self._send_visitors(live, Outgoing({"type": "queue", "position": position}))
        self._positions = positions
        body = await self._queue_frame_body(entries)
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
            "bus_published": getattr(self.bus, "published", 0),
            "bus_round_trips": getattr(self.bus, "round_trips", 0),
            "send_stalls": Connection.stalls,
        }


def _ordinal(level: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(level, f"{level}th")


def _record_row(record: MessageRecord) -> list[Any]:
    return [
        record.session_id,
        record.seq,
        record.ts,
        record.sender,
        record.sender_id,
        record.author,
        record.text,
        record.client_msg_id,
        record.event,
        record.extra,
    ]
