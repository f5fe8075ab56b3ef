"""Presence and grace: operators who lose their connection, nodes that die, a restart.

An operator whose console drops keeps their chats for the grace period; after it, or
when their node stops heartbeating (shared presence), the chats are re-queued at the
front. After a restart or a lost presence backend, waiting chats are queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chatserver.chat.assignment import Assignment
from chatserver.chat.live import (
    LiveOperator,
    pack_note,
)
from chatserver.errors import (
    ChatError,
)
from chatserver.i18n.notices import Notice
from chatserver.types import (
    OperatorStatus,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class PresenceAndGrace(Assignment):
    """Presence and grace: operators who lose their connection, nodes that die, a restart."""

    async def recover(self) -> None:
        """After a (re)start: every waiting chat is queued, every assigned chat's
        operator gets the grace period to come back."""
        records = await self.store.open_sessions()
        for record in records:
            if record.state is SessionState.WAITING:
                with contextlib.suppress(ValueError):  # already queued (shared)
                    await self.presence.enqueue(
                        self.entry_from_record(
                            record, requeued=record.previous_operator is not None
                        )
                    )
            elif record.operator_id is not None and not self.shared:
                op = await self.live_operator(record.operator_id)
                if op is None:
                    continue
                op.chats.add(record.session_id)
                await self.presence.add_load(op.operator_id, 1)
                self.start_grace(op)
        if records:
            log.info("recovered %d open sessions", len(records))
            self.queue_dirty = True

    def start_grace(self, op: LiveOperator) -> None:
        if op.grace_timer is not None:
            op.grace_timer.cancel()
        loop = asyncio.get_running_loop()
        op.grace_timer = loop.call_later(
            self.settings.operator_grace_seconds, lambda: self.spawn(self.operator_lost(op))
        )

    def announce_operator(self, op: LiveOperator) -> None:
        """``op`` said hello on this node: tell the others (a ``hello`` note on
        ``o:<operator>``), so a node still running their grace timer stands down."""
        if self.shared:
            self.bus.publish(f"o:{op.operator_id}", pack_note({"k": "hello", "node": self.node_id}))

    def operator_elsewhere(self, op: LiveOperator) -> None:
        """``op`` said hello on another node: they keep their chats there.

        Must cancel this node's grace timer (no re-queue, no notice to the visitors)
        and, while they have no connection here, hand their chats over (forget them
        here), whether their socket here dropped before or after this note arrived.
        """
        op.elsewhere = True
        if op.grace_timer is not None:
            op.grace_timer.cancel()
            op.grace_timer = None
        if op.conn is not None:
            return  # a second console here stays as it is
        log.info(
            "operator %s is back on another node; their chats stay theirs",
            op.operator_id,
            extra={"operator_id": op.operator_id},
        )
        chats = list(op.chats)
        op.chats.clear()
        for session_id in chats:
            live = self.sessions.get(session_id)
            if live is not None:
                self.evict_if_idle(live)

    async def operator_lost(self, op: LiveOperator) -> None:
        op.grace_timer = None
        if op.conn is not None or op.elsewhere:
            return
        log.info(
            "operator %s lost; re-queueing their chats",
            op.operator_id,
            extra={"operator_id": op.operator_id},
        )
        op.status = OperatorStatus.OFFLINE
        op.chats.clear()
        await self.requeue_operator_chats(
            op, Notice("operator_lost_connection", {"name": op.record.name})
        )
        await self.dispatch()

    async def presence_loop(self) -> None:
        """Heartbeat our operators; re-queue chats of operators whose node died."""
        interval = max(0.2, self.settings.presence_ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.presence_call(self.presence.heartbeat())
                await self.sweep_dead_operators()
            except ChatError:
                continue
            except Exception:
                log.exception("presence loop failed")

    async def sweep_dead_operators(self) -> None:
        alive_fn = getattr(self.presence, "alive", None)
        if alive_fn is None:
            return
        # Every few seconds on every node: ids only, not whole session records.
        by_operator = await self.store.assigned_by_operator()
        alive = await self.presence_call(alive_fn(by_operator))
        now = self.clock()
        for operator_id, sessions in by_operator.items():
            local = self.operators.get(operator_id)
            if operator_id in alive or (local is not None and local.conn is not None):
                self.dead_since.pop(operator_id, None)
                continue
            first = self.dead_since.setdefault(operator_id, now)
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
                await self.requeue(
                    operator_id,
                    session_id,
                    Notice("operator_lost_connection", {"name": name}),
                )
            self.dead_since.pop(operator_id, None)
        if by_operator:
            await self.dispatch()

    async def reregister_presence(self) -> None:
        """After the shared backend came back: restore our operators and waiting chats."""
        try:
            for op in self.operators.values():
                if op.conn is not None:
                    await self.presence_call(
                        self.presence.register_operator(
                            op.operator_id,
                            capacity=op.record.capacity,
                            departments=op.record.departments,
                            levels=op.record.levels,
                        )
                    )
                    await self.presence_call(self.presence.set_status(op.operator_id, op.status))
                    # Redis may have lost everything (restart without persistence):
                    # the store knows how many chats the operator really has.
                    assigned = await self.store.assigned_sessions(op.operator_id)
                    await self.presence_call(self.presence.set_load(op.operator_id, len(assigned)))
            for record in await self.store.open_sessions():
                if record.state is SessionState.WAITING:
                    with contextlib.suppress(ValueError):
                        await self.presence_call(
                            self.presence.enqueue(self.entry_from_record(record, requeued=False))
                        )
        except ChatError:
            return
        await self.dispatch()
