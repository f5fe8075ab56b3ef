"""A ticket's SLA clocks: recomputed from its history, shown, and checked for breaches.

The rules (plans, business hours, pauses) are pure and live in
:mod:`chatserver.service_levels.clocks`; this module keeps the ticket rows' SLA columns
in step with them and records each breach once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from chatserver.service_levels.clocks import ServiceLevels
from chatserver.tickets.store import TicketRow, TicketStore

log = logging.getLogger("chatserver.tickets.clocks")

__all__ = ["TicketClocks"]


class TicketClocks:
    """First-response and resolution clocks of tickets; one per node."""

    def __init__(self, records: TicketStore, levels: ServiceLevels) -> None:
        self.records = records
        self.levels = levels
        # Called with the kind ("first_response", "resolution") of each recorded breach.
        self.on_breach: Callable[[str], None] | None = None

    def json(self, row: TicketRow, now: float | None = None) -> dict[str, Any]:
        """Both clocks as the console shows them (it counts down to each ``due``)."""
        now = time.time() if now is None else now
        paused = row.paused_since is not None
        return {
            "plan": self.levels.plan(row.plan).name,
            "paused": paused,
            "breached": row.sla_breached.split(),
            "first_response": self.levels.describe(
                row.sla_first_due, row.sla_first_warn, row.first_response_at, now, paused
            ),
            "resolution": self.levels.describe(
                row.sla_resolution_due, row.sla_resolution_warn, row.resolved_at, now, paused
            ),
        }

    async def refresh(self, row: TicketRow) -> TicketRow:
        """Recompute the ticket's clocks from its history; returns the updated row.

        Call it after every change to a ticket's history.
        """
        events = await self.records.events(row.number)
        clocks = self.levels.ticket_clocks(row.plan, row.created_at, row.channel, events)
        await self.records.set_sla(
            row.number,
            sla_first_due=clocks.first_due,
            sla_first_warn=clocks.first_warn,
            sla_resolution_due=clocks.resolution_due,
            sla_resolution_warn=clocks.resolution_warn,
            first_response_at=clocks.first_response_at,
            resolved_at=clocks.resolved_at,
            paused_since=clocks.paused_since,
        )
        fresh = await self.records.ticket(row.number)
        assert fresh is not None
        return fresh

    async def loop(self, interval: float = 15.0) -> None:
        """Record breached clocks of tickets and chats, forever."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_breaches()
            except Exception:
                log.exception("SLA check failed")

    async def check_breaches(self, now: float | None = None) -> list[tuple[str, str, float]]:
        """Record the clocks due before ``now`` and not yet recorded: (ref, kind, due) each."""
        found = await self.records.record_breaches(time.time() if now is None else now)
        for ref, kind, due in found:
            log.warning(
                "SLA %s breached for %s (due %s)",
                kind,
                ref,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(due)),
            )
            if self.on_breach is not None:
                self.on_breach(kind)
        return found
