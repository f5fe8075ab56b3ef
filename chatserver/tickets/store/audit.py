"""Auditing ticket storage: do the histories, the projections and the files agree?

:func:`problems` takes what a storage read (every ticket row, every event,
every ticket attachment) and a way to hash a stored file, and lists every
disagreement; it reads nothing itself, so every implementation of
:class:`~chatserver.tickets.store.base.TicketStorage` audits alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from chatserver.attachments.files import AttachmentRecord
from chatserver.tickets.model import TicketView, replay, verify_chain
from chatserver.tickets.store.base import TicketRow

# The columns of a ticket's row that its history decides, checked one by one (the SLA
# columns follow from the history and the plan's calendar and are recomputed anyway;
# ``updated_at`` is the time of the last write, which no event records).
DERIVED_COLUMNS: Final = (
    "number",
    "subject",
    "state",
    "priority",
    "priority_rank",
    "department",
    "level",
    "assignee",
    "channel",
    "requester_name",
    "requester_email",
    "customer_id",
    "session_id",
    "created_at",
)


def derived_columns(view: TicketView, events: list[dict[str, Any]]) -> dict[str, Any]:
    """What each of :data:`DERIVED_COLUMNS` must hold, given the replayed ``view``."""
    return {
        "number": view.number,
        "subject": view.subject,
        "state": view.state,
        "priority": view.priority,
        "priority_rank": view.priority.rank,
        "department": view.department,
        "level": view.level,
        "assignee": view.assignee,
        "channel": view.channel,
        "requester_name": view.requester_name,
        "requester_email": view.requester_email,
        "customer_id": view.customer_id,
        "session_id": view.session_id,
        "created_at": events[0]["ts"],
    }


def problems(
    tickets: Mapping[int, TicketRow],
    histories: Mapping[int, list[dict[str, Any]]],
    attachments: Iterable[AttachmentRecord],
    digest: Callable[[str], str | None],
    ranks: Mapping[int, int] | None = None,
) -> list[str]:
    """Every problem found: a broken or cut chain, a row column that differs from its
    replayed history (each named: ``ticket #N: column C differs from its history``),
    a missing or changed attachment file (``digest`` of its storage: ``None`` if
    missing). ``ranks``: the stored ``priority_rank`` of each ticket, if the storage
    keeps one."""
    found: list[str] = []
    # A row whose number was changed: its history is left without a row, the row
    # without a history; the chain's head still pairs them.
    renumbered = {
        histories[n][-1]["hash"]: n for n in histories if n not in tickets and histories[n]
    }
    for number in sorted(set(tickets) | set(histories)):
        events = histories.get(number, [])
        row = tickets.get(number)
        label = f"ticket #{number}"
        if row is None:
            if number in renumbered.values():
                continue  # reported with the row that carries its head
            found.append(f"{label}: history without a ticket")
            continue
        if not events and row.head in renumbered:
            found.append(
                f"ticket #{renumbered[row.head]}: column number differs from its history"
                f" (the row says #{number})"
            )
            continue
        for p in verify_chain(events):
            found.append(f"{label} event {p.n}: {p.problem}")
        if row.events != len(events) or (events and row.head != events[-1]["hash"]):
            found.append(f"{label}: history was cut short or extended behind its back")
        if not events:
            continue
        try:
            view = replay(number, events)
        except (KeyError, ValueError) as exc:
            found.append(f"{label}: history cannot be replayed ({exc})")
            continue
        stored = {c: getattr(row, c) for c in DERIVED_COLUMNS if c != "priority_rank"}
        if ranks is not None:
            stored["priority_rank"] = ranks.get(number)
        for column, want in derived_columns(view, events).items():
            if column in stored and stored[column] != want:
                found.append(f"{label}: column {column} differs from its history")
    for att in attachments:
        stored_digest = digest(att.storage)
        if stored_digest is None:
            found.append(f"attachment {att.attachment_id} ({att.owner}): file is missing")
        elif stored_digest != att.sha256:
            found.append(f"attachment {att.attachment_id} ({att.owner}): file was changed")
    return found
