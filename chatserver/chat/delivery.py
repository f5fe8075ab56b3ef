"""Delivery: storing a chat's messages and getting them to its participants in order.

A client's message is stored (the journal, or the group-committing store), acked to its
sender, published once on the bus for other nodes and fanned out here strictly in seq
order: a message ahead of a gap is held and the gap refilled from the store. System
messages (state changes) go the same way, and every node applies the change when its
message reaches it (:meth:`Delivery.apply_event`), so all nodes agree.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatserver.chat.live import (
    HISTORY_PAGE,
    LiveOperator,
    LiveSession,
    now_ms,
    pack_note,
    record_row,
)
from chatserver.chat.state import HubState
from chatserver.errors import (
    BadFrame,
    NotFound,
    Unavailable,
    UnknownSession,
)
from chatserver.i18n.notices import Notice
from chatserver.protocol import Outgoing, ack
from chatserver.store.base import MessageRecord, client_key
from chatserver.store.sqlite import APPEND_ERRORS, DuplicateMessage
from chatserver.transport.connection import Connection
from chatserver.types import (
    OperatorId,
    Sender,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class Delivery(HubState):
    """Delivery: storing a chat's messages and getting them to its participants in order."""

    def append(
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
        key = client_key(who, client_msg_id) if client_msg_id is not None else None

        def committed(fut: asyncio.Future[int]) -> None:
            if key is not None:
                live.inflight.pop(key, None)
            exc = fut.exception()
            if exc is None:
                self.stored(live, record, key, origin)
            else:
                self.not_stored(live, record, key, origin, exc)

        future = self.store.submit_message(record, committed)
        if key is not None and not future.done():  # a journal settles at once
            live.inflight[key] = future
        return future

    def post(
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
            self.append(
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
        key = client_key(who, client_msg_id)
        try:
            store.append_message(record)
        except APPEND_ERRORS as exc:
            self.not_stored(live, record, key, origin, exc)
        else:
            self.stored(live, record, key, origin)

    def stored(
        self,
        live: LiveSession,
        record: MessageRecord,
        key: str | None,
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
            self.bus.publish(f"s:{live.session_id}", pack_note({"k": "m", "r": record_row(record)}))
        self.deliver(live, record, origin)
        self.evict_if_idle(live)

    def not_stored(
        self,
        live: LiveSession,
        record: MessageRecord,
        key: str | None,
        origin: Connection | None,
        exc: BaseException,
    ) -> None:
        if isinstance(exc, DuplicateMessage):
            # Stored before (by another connection or node): ack, deliver nothing.
            if key is not None:
                live.client_ids[key] = exc.seq
            if origin is not None:
                origin.send(self.duplicate_ack(record.client_msg_id, exc.seq, duplicate=True))
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
        self.evict_if_idle(live)

    def deliver(
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
                self.spawn(self.refill(live))
            return
        self.fan_out(live, record, origin)
        while live.held:
            nxt = live.held.pop(live.chat.last_seq + 1, None)
            if nxt is None:
                break
            self.fan_out(live, *nxt)

    async def refill(self, live: LiveSession) -> None:
        try:
            while True:
                rows = await self.store.messages_after(
                    live.session_id, live.chat.last_seq, HISTORY_PAGE
                )
                for row in rows:
                    if row.seq == live.chat.last_seq + 1:
                        held = live.held.pop(row.seq, None)
                        self.fan_out(live, row, held[1] if held else None)
                if len(rows) < HISTORY_PAGE:
                    break
            while live.held:
                nxt = live.held.pop(live.chat.last_seq + 1, None)
                if nxt is None:
                    break
                self.fan_out(live, *nxt)
            live.held = {s: h for s, h in live.held.items() if s > live.chat.last_seq}
        finally:
            live.refilling = False
        if live.held:  # still a gap: try again shortly
            await asyncio.sleep(0.05)
            if not live.refilling and live.held:
                live.refilling = True
                self.spawn(self.refill(live))
        self.evict_if_idle(live)

    def fan_out(self, live: LiveSession, record: MessageRecord, origin: Connection | None) -> None:
        live.chat.note_seq(record.seq)
        if record.event is not None:
            self.apply_event(live, record)
        out = Outgoing(record.to_frame())
        sid, seq = record.session_id, record.seq
        sent = 0
        for conn in live.conns:
            if conn is not origin:
                conn.deliver(sid, seq, out)
                sent += 1
        op_conn = self.operator_conn(live)
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
            self.messages_out_metric.value += sent  # messages_out_total.inc(sent), inlined

    def apply_event(self, live: LiveSession, record: MessageRecord) -> None:
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
            self.send_visitors(live, self.state_frame(live, None))
        elif event == "reassigned" and operator_id is not None:
            # A supervisor moved the chat to another operator (supervisor.py).
            old = self.local_operator(live)
            if chat.is_open:
                if chat.operator_id is not None and chat.operator_id != operator_id:
                    chat.previous_operator = chat.operator_id
                chat.state = SessionState.ASSIGNED
                chat.operator_id = operator_id
                chat.assigned_at = chat.assigned_at or record.ts / 1000
            live.chat_operator_name = record.author
            if old is not None and old.operator_id != operator_id:
                self.take_from_operator(old, live, {"type": "chat_removed", "reason": "reassigned"})
            new = self.operators.get(operator_id)
            if new is not None and new.conn is not None and live.session_id not in new.chats:
                self.spawn(self.operator_got_chat(new, live.session_id))
            self.send_visitors(live, self.state_frame(live, None))
        elif event == "requeued":
            if (
                operator_id is not None
                and chat.state is SessionState.ASSIGNED
                and chat.operator_id != operator_id
            ):
                # Late: the chat is already another operator's (this node learnt that
                # from the store first, see operator_got_chat).
                return
            op = self.local_operator(live)
            transfer = (record.extra or {}).get("transfer")
            if transfer:
                chat.department = transfer.get("department")
                chat.level = int(transfer.get("level") or 1)
            if chat.state is SessionState.ASSIGNED:
                chat.requeue()
            if op is not None:
                self.take_from_operator(op, live, {"type": "chat_removed", "reason": "requeued"})
            self.send_visitors(live, self.state_frame(live, None))
            self.positions.pop(live.session_id, None)
            self.queue_dirty = True
        elif event == "closed":
            op = self.local_operator(live)
            if chat.is_open:
                chat.close(record.ts / 1000)
            if live.abandon_timer is not None:
                live.abandon_timer.cancel()
                live.abandon_timer = None
            if op is not None:
                self.take_from_operator(
                    op, live, {"type": "chat_closed", "by": record.author or "system"}
                )
            self.send_visitors(live, self.state_frame(live, None))

    def resend(
        self, live: LiveSession, conn: Connection, sender: Sender, client_msg_id: str
    ) -> bool:
        """Answer a resend of a known ``client_msg_id``; ``False`` if it is new."""
        key = client_key(sender._value_, client_msg_id)
        seq = live.client_ids.get(key)
        if seq is not None:
            conn.send(self.duplicate_ack(client_msg_id, seq, duplicate=True))
            return True
        pending = live.inflight.get(key)
        if pending is not None:

            def done(fut: asyncio.Future[int]) -> None:
                exc = fut.exception()
                if exc is None:
                    conn.send(self.duplicate_ack(client_msg_id, fut.result(), duplicate=True))
                elif isinstance(exc, DuplicateMessage):
                    conn.send(self.duplicate_ack(client_msg_id, exc.seq, duplicate=True))

            pending.add_done_callback(done)
            return True
        return False

    def system_message(
        self,
        live: LiveSession,
        event: str,
        notice: Notice,
        *,
        operator_id: OperatorId | None,
        author: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> asyncio.Future[int]:
        """Store and deliver a system message: its ``extra`` carries ``notice`` (code and
        params, rendered by each reader in its language), its ``text`` the English
        rendering (docs/i18n.md)."""
        return self.append(
            live,
            Sender.SYSTEM,
            notice.english(),
            sender_id=operator_id,
            author=author,
            event=event,
            extra={**notice.extra(), **(extra or {})},
        )

    async def post_system(
        self,
        session_id: SessionId,
        event: str,
        notice: Notice,
        *,
        operator_id: OperatorId | None = None,
        author: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Store a system message in a chat (on any node) and deliver it; returns its seq."""
        live = await self.load_live(session_id)
        if live is None:
            raise UnknownSession(f"no chat {session_id[:64]}")
        live = self.rehold(live)
        stored = self.system_message(
            live, event, notice, operator_id=operator_id, author=author, extra=extra
        )
        if live.chat.state is SessionState.CLOSED:
            self.tell_closed(live.session_id, stored)  # e.g. the escalation notice
        seq = await stored
        self.evict_if_idle(live)
        return seq

    def tell_closed(self, session_id: SessionId, stored: asyncio.Future[int]) -> None:
        """Call :attr:`on_chat_closed` once ``stored`` (a closed chat's system message)
        is stored; nothing when it failed. No await: sealing happens elsewhere."""
        hook = self.on_chat_closed
        if hook is None:
            return

        def done(future: asyncio.Future[int]) -> None:
            if not future.cancelled() and future.exception() is None:
                hook(session_id)

        stored.add_done_callback(done)

    async def message_attachments(
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

    async def operator_got_chat(self, op: LiveOperator, session_id: SessionId) -> None:
        """A chat was assigned to ``op``, whose console is connected here."""
        if session_id in op.chats:
            return
        live = await self.load_live(session_id)
        if live is None:
            return
        await self.learn_visitor_presence([live])
        conn = op.conn
        if conn is None or session_id in op.chats:
            return
        live = self.rehold(live)
        if live.chat.state is SessionState.WAITING:  # our cache lags the store
            live.chat.assign(op.operator_id, self.clock())
        elif live.chat.is_open and live.chat.operator_id != op.operator_id:
            # Our cache lags further: another node re-queued the chat and this one
            # took it from the queue before that node's "requeued" came. The store
            # says whose it is (the late "requeued" names the previous operator and
            # is then ignored, see apply_event).
            record = await self.store.session(session_id)
            if op.conn is not conn or session_id in op.chats:
                return
            if (
                record is not None
                and record.state is SessionState.ASSIGNED
                and record.operator_id == op.operator_id
                and live.chat.is_open
            ):
                chat = live.chat
                if chat.operator_id is not None and chat.operator_id != op.operator_id:
                    chat.previous_operator = chat.operator_id
                chat.state = SessionState.ASSIGNED
                chat.operator_id = op.operator_id
                chat.assigned_at = record.assigned_at
        if live.chat.operator_id != op.operator_id or not live.chat.is_open:
            return
        # No await from here to start_replay: from the moment the chat counts as
        # the operator's, its live messages are held until the history is sent.
        op.chats.add(session_id)
        conn.start_replay(session_id)
        conn.send_frame({"type": "chat_assigned", "chat": self.summary(live)})
        self.send_status(op)
        await self.replay(conn, live, 0)

    def notify_visitor_presence(self, live: LiveSession, *, publish: bool = True) -> None:
        v = live.visitor
        connected = bool(live.conns) or (live.remote_visitor and not publish)
        if publish:
            self.publish_note(
                live,
                {
                    "k": "v",
                    "connected": bool(live.conns),
                    "name": v.name,
                    "email": v.email,
                    "page_url": v.page_url,
                    "user_agent": v.user_agent,
                    "lang": v.lang,
                },
            )
        op_conn = self.operator_conn(live)
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
                "lang": v.lang,
            }
        )
