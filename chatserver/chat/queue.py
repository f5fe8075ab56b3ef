"""Queue broadcasts: the waiting list operators see and the position each visitor sees.

A ticker (``queue_update_interval``) coalesces queue changes into one snapshot, sent to
every operator console here and, where a position changed, to the waiting visitor; it
also recomputes whether visitors get the offline form.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatserver.chat.grace import PresenceAndGrace
from chatserver.chat.routing import QueueEntry
from chatserver.errors import (
    ChatError,
    Unavailable,
)
from chatserver.protocol import Outgoing
from chatserver.types import (
    OperatorStatus,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class QueueUpdates(PresenceAndGrace):
    """Queue broadcasts: the waiting list operators see and the position each visitor sees."""

    async def refresh_offline(self) -> bool:
        """Recompute :attr:`offline`; tell waiting-to-start visitors here when it flips."""
        # Every second on every node: an online operator here settles it; else one
        # cheap presence call (not the whole operator list).
        online = any(
            op.status is OperatorStatus.ONLINE and op.conn is not None
            for op in self.operators.values()
        )
        if not online:
            try:
                online = await self.presence_call(self.presence.any_online())
            except ChatError:
                return self.offline
        offline = not online or len(self.positions) >= self.settings.offline_queue_length
        if offline != self.offline:
            self.offline = offline
            for live in self.sessions.values():
                if live.conns and live.chat.state is SessionState.NEW:
                    self.send_visitors(live, self.state_frame(live, None))
        return offline

    async def offer_way_out(self) -> None:
        """Offer a ticket (and a callback, if the plan has phone support) to each waiting
        visitor here who is stuck: nobody eligible is online for their department and
        level (``none_online``), only the operator they asked to avoid (``nobody_else``),
        or they waited their plan's ``offer_ticket_after_minutes`` (``waited``).

        Each reason is offered once per chat; an eligible operator coming back online
        re-arms the offer. The chat stays in the queue either way.
        """
        waiting = [
            live
            for live in self.sessions.values()
            if live.conns and live.chat.state is SessionState.WAITING
        ]
        if not waiting:
            return
        try:
            slots = [
                s
                for s in await self.presence_call(self.presence.operators())
                if s.status is OperatorStatus.ONLINE
            ]
        except ChatError:
            return
        now = self.clock()
        for live in waiting:
            chat = live.chat
            serving = [s.operator_id for s in slots if s.serves(chat.department, chat.level)]
            plan = self.levels.plan(live.visitor.plan)
            reason: str | None = None
            if not serving:
                reason = "none_online"
            elif all(o == chat.avoid_operator for o in serving):
                reason = "nobody_else"
            elif (
                plan.offer_ticket_after_minutes
                and live.enqueued_at is not None
                and now - live.enqueued_at >= plan.offer_ticket_after_minutes * 60
            ):
                reason = "waited"
            if reason is None:
                if live.offered in ("none_online", "nobody_else"):
                    live.offered = None  # someone came back: offer again if needed
                continue
            if reason == live.offered:
                continue
            live.offered = reason
            frame = {
                "type": "no_operator",
                "reason": reason,
                "ticket": True,
                "callback": plan.phone,
            }
            self.send_visitors(live, Outgoing(frame))

    async def queue_frame_body(self, entries: list[QueueEntry] | None = None) -> dict[str, Any]:
        """The operators' queue list; from ``entries`` when the caller has a snapshot."""
        if entries is None:
            try:
                entries = await self.presence_call(self.presence.queue_snapshot())
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

    async def tick_loop(self) -> None:
        was_ok = True
        while True:
            await asyncio.sleep(self.settings.queue_update_interval)
            if self.shared and not self.presence_ok and was_ok:
                was_ok = False
            if self.shared and self.presence_ok and not was_ok:
                was_ok = True
                await self.reregister_presence()
            try:
                await self.refresh_offline()
                await self.offer_way_out()
                if self.positions:
                    # Waits for a preferred operator end by time, not by an event.
                    await self.dispatch()
            except Exception:
                log.exception("availability update failed")
            if not self.queue_dirty:
                continue
            self.queue_dirty = False
            try:
                await self.publish_queue()
            except ChatError:
                self.queue_dirty = True
            except Exception:
                log.exception("queue update failed")

    async def publish_queue(self) -> None:
        entries = await self.presence_call(self.presence.queue_snapshot())
        self.supervision.observe_queue(entries)  # board history, queue gauges
        positions: dict[SessionId, int] = {}
        for position, entry in enumerate(entries, start=1):
            positions[entry.session_id] = position
            if self.positions.get(entry.session_id) != position:
                live = self.sessions.get(entry.session_id)
                if live is not None and live.conns:
                    self.send_visitors(live, Outgoing({"type": "queue", "position": position}))
        self.positions = positions
        body = await self.queue_frame_body(entries)
        out = Outgoing({"type": "queue", **body})
        for op in self.operators.values():
            if op.conn is not None:
                op.conn.send(out)
