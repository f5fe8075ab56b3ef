"""The hub: the I/O shell around the pure session and routing core, one per node.

It holds the client connections of this node and a cache of the sessions they take
part in; the store is the source of truth, presence (queue, operator capacity) is
shared through the presence backend, and the bus carries notes between nodes.

The hub is built in layers, one module per concern, each a class on the one below:

- :mod:`~chatserver.chat.state`: the cache, the backends, shared helpers
- :mod:`~chatserver.chat.delivery`: storing, acking and fanning out messages in order
- :mod:`~chatserver.chat.assignment`: queueing, assignment, transfer, closing
- :mod:`~chatserver.chat.grace`: operators' grace period, dead nodes, recovery
- :mod:`~chatserver.chat.queue`: queue broadcasts and the offline flag
- :mod:`~chatserver.chat.notes`: notes from other nodes
- :mod:`~chatserver.chat.visitor` and :mod:`~chatserver.chat.operator`: the frames
  each side sends, each frame type mapped to its handler in one table

Hot path for a chat message: validate, store (the journal, or the group-committing
store, which numbers it), ack the sender, fan the frame (encoded once) out to this
node's participants and publish it once on the bus for the others. No per-message
awaited round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from chatserver.bus.base import Bus
from chatserver.chat.accounts import ACCOUNTS_CHANNEL, Accounts
from chatserver.chat.live import (
    LiveOperator,
    LiveSession,
    Visitor,
)
from chatserver.chat.notes import BusNotes
from chatserver.chat.operator import OperatorFrames
from chatserver.chat.visitor import VisitorFrames
from chatserver.config import Settings
from chatserver.operators import auth
from chatserver.presence.base import Presence
from chatserver.store.base import Store
from chatserver.supervision.service import Supervision
from chatserver.transport.connection import Connection

log = logging.getLogger("chatserver.chat.hub")


class Hub(OperatorFrames, VisitorFrames, BusNotes):
    """Routes chats between visitors and operators; one per node."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        presence: Presence,
        bus: Bus,
        *,
        shared: bool = False,
    ) -> None:
        super().__init__(settings, store, presence, bus, shared=shared)
        # The supervisor board and supervisor actions (watch, whisper, take over).
        self.supervision = Supervision(self)
        # Operator accounts: admin actions, revocation, the account watch.
        self.accounts = Accounts(self)

    def on_note(self, channel: str, payload: bytes) -> None:
        if channel == ACCOUNTS_CHANNEL:
            self.accounts.on_note(payload)
        else:
            super().on_note(channel, payload)

    async def start(self) -> None:
        secret = self.settings.secret_key or await self.store.setdefault_meta(
            "secret_key", secrets.token_hex(32)
        )
        self.tokens = auth.OperatorTokens(secret.encode(), self.settings.operator_token_ttl)
        await self.bus.start(self.on_note, self.on_resync)
        await self.bus.subscribe("queue")
        await self.bus.subscribe(ACCOUNTS_CHANNEL)
        await self.recover()
        await self.refresh_offline()
        self.tasks.append(asyncio.create_task(self.tick_loop(), name="hub-ticker"))
        self.tasks.append(asyncio.create_task(self.supervision.run(), name="hub-board"))
        self.tasks.append(asyncio.create_task(self.accounts.watch(), name="hub-accounts"))
        if self.shared:
            self.tasks.append(asyncio.create_task(self.presence_loop(), name="hub-presence"))

    async def stop(self) -> None:
        """Tell every client to reconnect (1012) and stop the timers."""
        self.closing = True
        for task in self.tasks:
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


__all__ = ["Hub", "LiveOperator", "LiveSession", "Visitor"]
