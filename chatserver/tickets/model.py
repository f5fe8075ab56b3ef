"""Tickets: states, allowed transitions, numbers and the revision-safe hash chain. No I/O.

A ticket's history is a list of events. Each event carries the hash of the one
before it (``prev_hash``) and its own hash over its content and ``prev_hash``:
changing, removing or reordering any stored event breaks the chain, which
:func:`verify_chain` detects.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, Final

from chatserver.errors import BadFrame, InvalidState

GENESIS: Final = "0" * 64
FIRST_NUMBER: Final = 100001


class TicketState(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    FEEDBACK_NEEDED = "feedback_needed"  # waiting for the customer: SLA clock paused
    INFORMATION = "information"  # an automatic notice, nothing to do
    ANSWERED = "answered"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return {
            "open": "Open",
            "in_progress": "In progress",
            "feedback_needed": "Feedback needed",
            "information": "Information",
            "answered": "Answered",
            "closed": "Closed",
        }[self.value]


S = TicketState
# Which state may follow which when an operator changes it by hand.
TRANSITIONS: Final[dict[TicketState, frozenset[TicketState]]] = {
    S.OPEN: frozenset({S.IN_PROGRESS, S.FEEDBACK_NEEDED, S.ANSWERED, S.INFORMATION, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.OPEN, S.FEEDBACK_NEEDED, S.ANSWERED, S.CLOSED}),
    S.FEEDBACK_NEEDED: frozenset({S.IN_PROGRESS, S.ANSWERED, S.CLOSED}),
    S.INFORMATION: frozenset({S.OPEN, S.CLOSED}),
    S.ANSWERED: frozenset({S.IN_PROGRESS, S.FEEDBACK_NEEDED, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),  # reopen only; the history stays
}


def check_transition(current: TicketState, target: TicketState) -> None:
    """Raise :class:`InvalidState` unless an operator may move ``current`` to ``target``."""
    if target is current:
        raise InvalidState(f"the ticket is already {target.label}")
    if target not in TRANSITIONS[current]:
        raise InvalidState(f"a ticket cannot go from {current.label} to {target.label}")


def state_after_customer_reply(current: TicketState) -> TicketState:
    """A reply from the customer wakes a ticket up (closed ones reopen)."""
    if current in (S.FEEDBACK_NEEDED, S.ANSWERED, S.CLOSED, S.INFORMATION):
        return S.OPEN
    return current


def state_after_operator_reply(current: TicketState) -> TicketState:
    """A public reply from support marks an open ticket answered."""
    if current in (S.OPEN, S.IN_PROGRESS):
        return S.ANSWERED
    return current


class TicketPriority(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Sort key: critical first."""
        return list(TicketPriority).index(self)


DEPARTMENTS: Final = ("technical", "billing")
LEVELS: Final = (1, 2, 3)
CHANNELS: Final = ("chat", "form", "email")


def parse_state(value: Any) -> TicketState:
    try:
        return TicketState(value)
    except ValueError:
        raise BadFrame(f"state must be one of {', '.join(s.value for s in TicketState)}") from None


def parse_priority(value: Any) -> TicketPriority:
    try:
        return TicketPriority(value)
    except ValueError:
        raise BadFrame("priority must be critical, high, normal or low") from None


def parse_department(value: Any) -> str:
    if value not in DEPARTMENTS:
        raise BadFrame(f"department must be one of {', '.join(DEPARTMENTS)}")
    return str(value)


def parse_level(value: Any) -> int:
    if isinstance(value, bool) or value not in LEVELS:
        raise BadFrame("level must be 1, 2 or 3")
    return int(value)


# ------------------------------------------------------------------ numbers
_REF = re.compile(r"^#?(\d{6,12})$")


def ref(number: int) -> str:
    return f"#{number}"


def parse_number(value: str) -> int | None:
    """``"#100042"`` or ``"100042"`` → 100042; anything else → ``None``."""
    m = _REF.match(value.strip())
    if not m:
        return None
    number = int(m.group(1))
    return number if number >= FIRST_NUMBER else None


# --------------------------------------------------------------- hash chain
def canonical(event: dict[str, Any]) -> bytes:
    """The bytes an event's hash covers: every field but ``hash``, sorted, compact JSON."""
    content = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    """The hash of ``event`` (which must hold ``prev_hash``)."""
    return hashlib.sha256(canonical(event)).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class ChainProblem:
    n: int
    problem: str


def verify_chain(events: Iterable[dict[str, Any]]) -> list[ChainProblem]:
    """Check that ``events`` (one ticket's, in order) form an unbroken chain."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    expect_n = 1
    for event in events:
        n = int(event.get("n", -1))
        if n != expect_n:
            problems.append(ChainProblem(n, f"event {expect_n} is missing (found {n})"))
            expect_n = n
        if event.get("prev_hash") != prev:
            problems.append(ChainProblem(n, "does not link to the event before it"))
        if event_hash(event) != event.get("hash"):
            problems.append(ChainProblem(n, "content does not match its hash"))
        prev = str(event.get("hash"))
        expect_n += 1
    return problems


@dataclasses.dataclass(slots=True)
class TicketView:
    """The current state of a ticket, as replayed from its events."""

    number: int
    subject: str = ""
    state: TicketState = TicketState.OPEN
    priority: TicketPriority = TicketPriority.NORMAL
    department: str = "technical"
    level: int = 1
    assignee: str | None = None
    channel: str = "chat"
    requester_name: str | None = None
    requester_email: str | None = None
    customer_id: str | None = None
    session_id: str | None = None


def apply_event(view: Any, event: dict[str, Any]) -> None:
    """Apply one change event to ``view`` (a :class:`TicketView` or a row alike)."""
    kind, body = event["kind"], event["body"]
    if kind == "state":
        view.state = TicketState(body["to"])
    elif kind == "priority":
        view.priority = TicketPriority(body["to"])
    elif kind == "department":
        view.department = body["to"]
    elif kind == "level":
        view.level = body["to"]
    elif kind == "assignee":
        view.assignee = body["to"]


def replay(number: int, events: Iterable[dict[str, Any]]) -> TicketView:
    """Fold a ticket's events into its current state (what the inbox shows)."""
    view = TicketView(number)
    for event in events:
        if event["kind"] == "created":
            body = event["body"]
            view.subject = body["subject"]
            view.state = TicketState(body["state"])
            view.priority = TicketPriority(body["priority"])
            view.department = body["department"]
            view.level = body["level"]
            view.assignee = body.get("assignee")
            view.channel = body["channel"]
            view.requester_name = body.get("requester_name")
            view.requester_email = body.get("requester_email")
            view.customer_id = body.get("customer_id")
            view.session_id = body.get("session_id")
        else:
            apply_event(view, event)
    return view
