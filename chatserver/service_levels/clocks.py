"""SLA clocks of chats and tickets, from the plan config and a ticket's history. No I/O.

Times are Unix timestamps (floats) at this boundary; :mod:`chatserver.service_levels.calendar`
does the calendar arithmetic. A ticket's clocks pause while it waits for the
customer (``feedback_needed``); the pauses are read off its state events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from chatserver.service_levels.calendar import Plan, SlaConfig, due_at

WAITING_FOR_CUSTOMER = "feedback_needed"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


@dataclasses.dataclass(frozen=True, slots=True)
class TicketClocks:
    """Where a ticket's two clocks stand (``None`` due: paused or not applicable)."""

    plan: str
    first_due: float | None
    first_warn: float | None
    resolution_due: float | None
    resolution_warn: float | None
    first_response_at: float | None
    resolved_at: float | None
    paused_since: float | None


def clock_state(
    due: float | None, warn: float | None, done_at: float | None, now: float, paused: bool
) -> str:
    """``met``, ``breached``, ``paused``, ``warning`` or ``ok`` for one clock."""
    if done_at is not None:
        return "met" if due is None or done_at <= due else "breached"
    if paused or due is None:
        return "paused"
    if now > due:
        return "breached"
    if warn is not None and now >= warn:
        return "warning"
    return "ok"


class ServiceLevels:
    """Computes due times for chats and tickets from an :class:`SlaConfig`."""

    def __init__(self, config: SlaConfig, callback_target: timedelta = timedelta(hours=4)):
        self.config = config
        self.callback_target = callback_target

    def plan(self, name: str | None) -> Plan:
        return self.config.plan_for(name)

    def _due(
        self, plan: Plan, start: float, target: timedelta, pauses: Any = ()
    ) -> tuple[float | None, float | None]:
        calendar = self.config.calendar_for(plan)
        due = due_at(calendar, _dt(start), target, pauses)
        warn = due_at(calendar, _dt(start), target * plan.warn_at, pauses)
        return _ts(due), _ts(warn)

    def chat_due(
        self, plan_name: str | None, start: float, *, callback: bool = False
    ) -> tuple[float | None, float | None]:
        """First-response due and warning time of a chat (or callback) queued at ``start``."""
        plan = self.plan(plan_name)
        target = (
            min(self.callback_target, plan.first_response) if callback else (plan.first_response)
        )
        return self._due(plan, start, target)

    def resolution_due(
        self, plan_name: str | None, start: float
    ) -> tuple[float | None, float | None]:
        """Resolution due and warning time of a chat queued at ``start``."""
        plan = self.plan(plan_name)
        return self._due(plan, start, plan.resolution)

    def ticket_clocks(
        self,
        plan_name: str | None,
        created_at: float,
        channel: str,
        events: Iterable[dict[str, Any]],
    ) -> TicketClocks:
        """Both clocks of a ticket, replayed from its events.

        The first response is the first public reply by an operator (a ticket
        escalated from a chat was answered in the chat: it counts from creation).
        The ticket is resolved while it is Closed. Feedback-needed time pauses both.
        """
        plan = self.plan(plan_name)
        first_response = created_at if channel == "chat" else None
        resolved_at: float | None = None
        pauses: list[tuple[datetime, datetime | None]] = []
        paused_since: float | None = None
        for event in events:
            kind, body, ts = event["kind"], event["body"], float(event["ts"])
            if (
                kind == "reply"
                and first_response is None
                and not event.get("internal")
                and event["actor"].get("type") == "operator"
            ):
                first_response = ts
            if kind != "state":
                continue
            if body.get("to") == WAITING_FOR_CUSTOMER and paused_since is None:
                paused_since = ts
            elif body.get("from") == WAITING_FOR_CUSTOMER and paused_since is not None:
                pauses.append((_dt(paused_since), _dt(ts)))
                paused_since = None
            if body.get("to") == "closed":
                resolved_at = ts
            elif body.get("from") == "closed":
                resolved_at = None
        all_pauses = [*pauses, (_dt(paused_since), None)] if paused_since is not None else pauses
        first_due, first_warn = self._due(plan, created_at, plan.first_response, all_pauses)
        res_due, res_warn = self._due(plan, created_at, plan.resolution, all_pauses)
        return TicketClocks(
            plan=plan.name,
            first_due=first_due,
            first_warn=first_warn,
            resolution_due=res_due,
            resolution_warn=res_warn,
            first_response_at=first_response,
            resolved_at=resolved_at,
            paused_since=paused_since,
        )

    @staticmethod
    def describe(
        due: float | None,
        warn: float | None,
        done_at: float | None,
        now: float,
        paused: bool,
    ) -> dict[str, Any]:
        """One clock as shown to operators (the console counts down to ``due``)."""
        return {
            "due": due,
            "warns_at": warn,
            "done_at": done_at,
            "state": clock_state(due, warn, done_at, now, paused),
        }
