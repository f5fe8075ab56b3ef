"""Assignment and transfer: queueing chats, handing them to operators, taking them back.

Every state change is a compare-and-set transition in the store followed by a system
message (:mod:`chatserver.chat.delivery`); the queue itself lives in the presence
backend, whose ``assign_next`` picks the operator (:mod:`chatserver.chat.routing`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from chatserver.chat.delivery import Delivery
from chatserver.chat.live import (
    OPEN_STATES,
    LiveOperator,
    LiveSession,
    pack_note,
)
from chatserver.errors import (
    ChatError,
    Forbidden,
    InvalidState,
    Unavailable,
    UnknownSession,
)
from chatserver.i18n.notices import Notice
from chatserver.protocol import Outgoing
from chatserver.types import (
    OperatorId,
    Sender,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class Assignment(Delivery):
    """Assignment and transfer: queueing chats, handing them to operators, taking them back."""

    async def start_waiting(self, live: LiveSession) -> None:
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
            position = await self.presence_call(
                self.presence.enqueue(self.queue_entry(live, requeued=False, preferred=preferred))
            )
        except Unavailable as exc:
            self.send_visitors(live, self.state_frame(live, None))
            self.send_visitors(live, Outgoing(exc.to_frame()))
            return
        self.send_visitors(live, self.state_frame(live, position))
        self.queue_changed()
        await self.dispatch()

    async def close_chat(
        self, live: LiveSession, *, by: Sender, reason: Notice | None = None
    ) -> None:
        """Close the chat; its system message is ``reason``, else who closed it."""
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
                await self.presence_call(self.presence.dequeue(live.session_id))
            self.queue_changed()
        notice = reason or Notice(
            {
                Sender.VISITOR: "chat_closed_by_visitor",
                Sender.OPERATOR: "chat_closed_by_operator",
            }.get(by, "chat_closed")
        )
        closed = self.system_message(
            live, "closed", notice, operator_id=done.operator_id, author=by.value
        )
        self.tell_closed(live.session_id, closed)
        if done.state is SessionState.ASSIGNED and done.operator_id is not None:
            with contextlib.suppress(ChatError):
                await self.presence_call(self.presence.add_load(done.operator_id, -1))
            await self.dispatch()

    async def dispatch(self) -> None:
        """Assign waiting chats to free operators. Re-entrant calls coalesce."""
        if self.dispatching:
            self.dispatch_again = True
            return
        self.dispatching = True
        try:
            while True:
                self.dispatch_again = False
                try:
                    assignments = await self.presence_call(self.presence.assign_next())
                except Unavailable:
                    return
                for assignment in assignments:
                    await self.carry_out(assignment.session_id, assignment.operator_id)
                if not self.dispatch_again:
                    break
        finally:
            self.dispatching = False

    async def carry_out(self, session_id: SessionId, operator_id: OperatorId) -> None:
        op = await self.live_operator(operator_id)
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
                await self.presence_call(self.presence.add_load(operator_id, -1))
            return
        self.queue_changed()
        live = await self.load_live(session_id)
        if live is None:
            return
        if live.enqueued_at is not None:
            self.metrics.assignment_latency_seconds.observe(max(0.0, now - live.enqueued_at))
        self.positions.pop(session_id, None)
        self.system_message(
            live,
            "assigned",
            Notice("operator_joined", {"name": op.record.name}),
            operator_id=operator_id,
            author=op.record.name,
        )
        if op.conn is not None:
            await self.operator_got_chat(op, session_id)
        elif self.shared:
            self.bus.publish(f"o:{operator_id}", pack_note({"k": "assigned", "sid": session_id}))
        else:
            op.chats.add(session_id)  # kept for the operator's return (grace)
        self.evict_if_idle(live)

    async def requeue(self, operator_id: OperatorId, session_id: SessionId, notice: Notice) -> None:
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
        live = await self.load_live(session_id)
        if live is None:
            return
        # The notice first, stored before the chat is in the queue: a node that takes
        # it from there numbers its "assigned" after this "requeued", and every node
        # applies the two in that order.
        with contextlib.suppress(Exception):
            await self.system_message(live, "requeued", notice, operator_id=operator_id)
        with contextlib.suppress(ChatError):
            await self.presence_call(self.presence.add_load(operator_id, -1))
            await self.presence_call(self.presence.enqueue(self.queue_entry(live, requeued=True)))
        self.queue_changed()
        self.evict_if_idle(live)

    async def transfer(
        self,
        live: LiveSession,
        from_operator: OperatorId,
        notice: Notice,
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
        live = self.rehold(live)
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
        # The notice first, stored before the chat is in the queue: every node applies
        # the change in seq order, before any "assigned" that follows the enqueue below.
        with contextlib.suppress(Exception):
            await self.system_message(
                live, "requeued", notice, operator_id=from_operator, extra=extra
            )
        with contextlib.suppress(ChatError):
            await self.presence_call(self.presence.add_load(from_operator, -1))
            await self.presence_call(
                self.presence.enqueue(self.queue_entry(live, requeued=True, preferred=target))
            )
        self.queue_changed()
        await self.dispatch()

    async def requeue_operator_chats(self, op: LiveOperator, notice: Notice) -> None:
        records = await self.store.assigned_sessions(op.operator_id)
        for record in records:
            await self.requeue(op.operator_id, record.session_id, notice)

    async def request_callback(
        self, session_id: SessionId, phone: str, preferred_times: str, note: str
    ) -> None:
        """Turn a chat that has not started into a callback request in the queue."""
        live = await self.load_live(session_id)
        if live is None:
            raise UnknownSession("no such chat")
        live = self.rehold(live)
        if not self.levels.plan(live.visitor.plan).phone:
            raise Forbidden("phone support is not part of your plan")
        if live.chat.state not in (SessionState.NEW, SessionState.WAITING):
            raise InvalidState("this chat has already started: ask the operator to call you")
        waiting = live.chat.state is SessionState.WAITING  # offered by "no_operator"
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
        self.append(
            live,
            Sender.VISITOR,
            text,
            sender_id=None,
            author=live.visitor.name or "Visitor",
            client_msg_id="callback-request",
            extra={"callback": {"phone": phone, "preferred_times": preferred_times or None}},
        )
        if not waiting:
            await self.start_waiting(live)
        else:
            await self.queued_as_callback(live)
        self.queue_changed()
        self.evict_if_idle(live)

    async def queued_as_callback(self, live: LiveSession) -> None:
        """The waiting chat's queue entry, where it stands, shown as the callback it now is."""
        try:
            entries = await self.presence_call(self.presence.queue_snapshot())
            entry = next((e for e in entries if e.session_id == live.session_id), None)
            # Not queued any more (just assigned): the operator sees the request in the chat.
            if entry is None or not await self.presence_call(
                self.presence.dequeue(live.session_id)
            ):
                return
            changed = dataclasses.replace(entry, kind="callback", preview=live.preview)
            await self.presence_call(self.presence.enqueue(changed))
        except Unavailable:
            log.warning("callback %s: the queue list shows it as a chat", live.session_id)

    async def waiting_chat_to_ticket(self, session_id: SessionId, ref: str) -> None:
        """The waiting visitor left their question as ticket ``ref``: say so in the
        chat (an ``escalated`` message with ``ticket``) and close it (out of the queue)."""
        notice = Notice("ticket_created", {"ticket": ref})
        await self.post_system(session_id, "escalated", notice, extra={"ticket": ref})
        live = await self.load_live(session_id)
        if live is not None:
            await self.close_chat(self.rehold(live), by=Sender.VISITOR)
