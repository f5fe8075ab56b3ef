"""The hub's state and the helpers every layer of it shares.

:class:`HubState` holds one node's cache of live sessions and operators, the backends
(store, presence, bus) and the counters; its methods load and evict cached sessions,
wrap presence calls (a failure marks the node degraded), and build the frames that
describe a chat. No frame handling here: see the layers built on it
(:mod:`~chatserver.chat.delivery`, :mod:`~chatserver.chat.assignment`, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from chatserver.attachments.files import AttachmentRecord
from chatserver.bus.base import Bus
from chatserver.chat.live import (
    HISTORY_PAGE,
    PRESENCE_ERRORS,
    LiveOperator,
    LiveSession,
    Visitor,
    now_ms,
    pack_note,
)
from chatserver.chat.routing import QueueEntry
from chatserver.chat.sessions import ChatSession
from chatserver.config import Settings
from chatserver.errors import (
    ChatError,
    Unavailable,
)
from chatserver.metrics import Metrics
from chatserver.operators import auth
from chatserver.presence.base import Presence
from chatserver.protocol import Outgoing, ack
from chatserver.service_levels.calendar import load_sla_config
from chatserver.service_levels.clocks import ServiceLevels
from chatserver.store.base import SessionRecord, Store, client_key
from chatserver.transport.connection import Connection
from chatserver.types import (
    NodeId,
    OperatorId,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class SupervisionPort(Protocol):
    """What the chat layers ask of supervision (:mod:`chatserver.supervision.service`)."""

    async def run(self) -> None: ...
    def deliver_note(self, live: LiveSession, note: dict[str, Any]) -> None: ...
    async def bring_in(
        self, op: LiveOperator, session_id: SessionId, by: dict[str, Any] | None
    ) -> None: ...
    async def add(self, conn: Connection) -> None: ...
    def discard(self, conn: Connection) -> None: ...
    def observe_queue(self, entries: list[QueueEntry]) -> None: ...
    async def consult(
        self,
        conn: Connection,
        op: LiveOperator,
        session_id: SessionId,
        target: str | None,
        text: str,
    ) -> None: ...
    async def handle(self, conn: Connection, op: LiveOperator, frame: dict[str, Any]) -> None: ...
    async def send_notes(
        self, conn: Connection, op: LiveOperator, session_id: SessionId
    ) -> None: ...


class AttachmentIndex(Protocol):
    """What the chat layers ask of ticket storage: the files uploaded into a chat
    (:class:`~chatserver.tickets.store.base.AttachmentRecords` has the obligations)."""

    async def attachments_of(self, owner: str, ids: Sequence[str]) -> list[AttachmentRecord]:
        """The attachments among ``ids`` that belong to ``owner``, in the order of ``ids``."""
        ...


class HubState:
    """One node's chat state; the layers above add behaviour."""

    supervision: SupervisionPort

    def __init__(
        self,
        settings: Settings,
        store: Store,
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
        self.dispatching = False
        self.dispatch_again = False
        self.queue_dirty = False
        self.positions: dict[SessionId, int] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.closing = False
        self._background: set[asyncio.Future[Any]] = set()
        self.presence_ok = True
        self.dead_since: dict[OperatorId, float] = {}
        self.clock: Callable[[], float] = time.time
        self.levels = ServiceLevels(
            load_sla_config(settings.sla_config),
            datetime.timedelta(hours=settings.callback_target_hours),
        )
        # Tickets and attachments (set by the app); None: attachments are refused.
        self.records: AttachmentIndex | None = None
        # Told (no await, must not block) once a chat's ``closed`` message, or a later
        # system message of a closed chat, is stored: the app's audit sealer.
        self.on_chat_closed: Callable[[SessionId], None] | None = None
        # Nobody online to chat (or the queue is too long): visitors get the offline form.
        self.offline = False
        # Counters for health and metrics.
        self.messages_in = 0
        self.messages_out = 0
        # Prometheus series of this node (``/metrics``); e.g. where SLA breaches are
        # recorded: ``hub.metrics.sla_breaches_total.labels(kind=...).inc()``.
        self.metrics = Metrics()
        self.messages_out_metric = self.metrics.messages_out_total.unlabelled

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    @property
    def degraded(self) -> bool:
        return not (self.presence_ok and self.bus.healthy)

    async def load_live(self, session_id: SessionId) -> LiveSession | None:
        live = self.sessions.get(session_id)
        if live is not None:
            return live
        record = await self.store.session(session_id)
        return None if record is None else await self.live_from_record(record)

    async def live_from_record(self, record: SessionRecord) -> LiveSession:
        existing = self.sessions.get(record.session_id)
        if existing is not None:
            return existing
        client_ids = {
            client_key(sender, cmid): seq
            for (sender, cmid), seq in (await self.store.client_msg_ids(record.session_id)).items()
        }
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
                record.lang,
            ),
            enqueued_at=record.enqueued_at,
            client_ids=client_ids,
            sla_first_due=record.sla_first_due,
            sla_first_warn=record.sla_first_warn,
            phone=record.phone,
            preferred_times=record.preferred_times,
        )
        if record.operator_id is not None:
            op = await self.live_operator(record.operator_id)
            live.chat_operator_name = op.record.name if op is not None else None
        existing = self.sessions.get(record.session_id)
        if existing is not None:
            return existing
        self.hold(live)
        return live

    def hold(self, live: LiveSession) -> None:
        self.sessions[live.session_id] = live
        self.by_token[live.token_hash] = live.session_id
        self.spawn(self.bus.subscribe(f"s:{live.session_id}"))

    def rehold(self, live: LiveSession) -> LiveSession:
        """The cached session for ``live``'s id, caching ``live`` again if it was
        evicted while we awaited (it had no local participant yet)."""
        current = self.sessions.get(live.session_id)
        if current is None:
            self.hold(live)
            return live
        return current

    def local_operator(self, live: LiveSession) -> LiveOperator | None:
        op_id = live.chat.operator_id
        op = self.operators.get(op_id) if op_id is not None else None
        return op if op is not None and live.session_id in op.chats else None

    def evict_if_idle(self, live: LiveSession) -> None:
        """Forget a session no participant on this node needs."""
        if (
            live.conns
            or live.inflight
            or live.refilling
            or live.watchers
            or self.local_operator(live)
        ):
            return
        if live.chat.state in (SessionState.WAITING, SessionState.ASSIGNED) and not self.shared:
            # Alone, this node is the only one to tell when the chat changes.
            return
        if self.sessions.get(live.session_id) is live:
            del self.sessions[live.session_id]
            self.by_token.pop(live.token_hash, None)
            self.spawn(self.bus.unsubscribe(f"s:{live.session_id}"))

    async def live_operator(self, operator_id: OperatorId) -> LiveOperator | None:
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
            await self.presence_call(
                self.presence.register_operator(
                    operator_id,
                    capacity=record.capacity,
                    departments=record.departments,
                    levels=record.levels,
                )
            )
        return op

    def entry_from_record(self, record: SessionRecord, *, requeued: bool) -> QueueEntry:
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

    def queue_entry(
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

    async def presence_call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a presence call; a failure marks the node degraded and re-raises."""
        try:
            result = await coro
        except PRESENCE_ERRORS as exc:
            if self.presence_ok:
                log.warning("presence backend unreachable: %s", exc)
            self.presence_ok = False
            raise Unavailable(
                "We cannot connect you to an operator right now. Your messages are saved;"
                " please stay, we will connect you as soon as we can."
            ) from exc
        self.presence_ok = True
        return result

    def summary(self, live: LiveSession) -> dict[str, Any]:
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
            # The visitor's language (None: not given): the console's canned
            # responses default to it (docs/i18n.md).
            "lang": v.lang,
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
                "resolution": self.chat_resolution(live),
            },
        }

    def chat_resolution(self, live: LiveSession) -> dict[str, Any]:
        """The chat's resolution clock: the plan's resolution target from when it was
        queued, done when the chat is closed."""
        if live.enqueued_at is None:
            due = warn = None
        else:
            due, warn = self.levels.resolution_due(live.visitor.plan, live.enqueued_at)
        return self.levels.describe(due, warn, live.chat.closed_at, self.clock(), False)

    def operator_name(self, operator_id: OperatorId | None) -> str:
        op = self.operators.get(operator_id) if operator_id is not None else None
        return op.record.name if op is not None else "Operator"

    def chat_operator(self, live: LiveSession) -> dict[str, Any] | None:
        op_id = live.chat.operator_id
        if op_id is None or live.chat.state is not SessionState.ASSIGNED:
            return None
        return {"id": op_id, "name": live.chat_operator_name or self.operator_name(op_id)}

    def state_frame(self, live: LiveSession, position: int | None) -> Outgoing:
        return Outgoing(
            {
                "type": "state",
                "state": live.chat.state.value,
                "operator": self.chat_operator(live),
                "queue_position": position,
                "offline": self.offline,
            }
        )

    def send_visitors(
        self, live: LiveSession, out: Outgoing, *, skip: Connection | None = None
    ) -> None:
        for conn in live.conns:
            if conn is not skip:
                conn.send(out)

    def operator_conn(self, live: LiveSession) -> Connection | None:
        op = self.local_operator(live)
        return op.conn if op is not None else None

    def publish_note(self, live: LiveSession, note: dict[str, Any]) -> None:
        """Tell other nodes holding this session (typing, reads, visitor info)."""
        if self.shared:
            self.bus.publish(f"s:{live.session_id}", pack_note(note))

    def queue_changed(self) -> None:
        self.queue_dirty = True
        if self.shared:
            self.bus.publish("queue", b"q")

    def send_status(self, op: LiveOperator) -> None:
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

    def take_from_operator(
        self, op: LiveOperator, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        """The chat is no longer ``op``'s: tell their console (``frame``) and new load."""
        op.chats.discard(live.session_id)
        if op.conn is not None:
            op.conn.send_frame({**frame, "session_id": live.session_id})
            self.send_status(op)

    async def learn_visitor_presence(self, lives: list[LiveSession]) -> None:
        """Whether visitors without a connection here are connected to another node."""
        remote = [live for live in lives if not live.conns]
        if not remote or not self.shared:
            return
        with contextlib.suppress(ChatError):
            connected = await self.presence_call(
                self.presence.visitors_connected(live.session_id for live in remote)
            )
            for live in remote:
                live.remote_visitor = live.session_id in connected

    async def replay(self, conn: Connection, live: LiveSession, after_seq: int) -> int:
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

    @staticmethod
    def duplicate_ack(
        client_msg_id: str | None, seq: int, *, duplicate: bool, ts: int | None = None
    ) -> Outgoing:
        return ack(client_msg_id, seq, ts if ts is not None else now_ms(), duplicate)
