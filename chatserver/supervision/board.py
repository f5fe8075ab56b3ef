"""The supervisor board: pure aggregation of the desk's state. No I/O.

The hub gathers raw inputs once per tick — operator slots from presence, the
waiting queue, open chats and per-chat timings from the store, SLA clocks of
open tickets and chats — and :func:`build_board` turns them into one snapshot
(a JSON-ready dict). A supervisor gets the first snapshot whole; after that
:func:`diff` sends only what changed: top-level sections that differ, operator
rows that differ (by id), history points that are new or moved.
:func:`apply_patch` is the inverse (the console does the same in JavaScript).

Snapshot sections::

    ts          ms; when it was computed (not compared by diff)
    window      {"tz", "hour_start", "day_start"} in ms
    staff       {"online", "away", "offline", "load", "capacity"}
    operators   [{"id", "name", "role", "status", "load", "capacity",
                  "departments", "chats": [{"session_id", "visitor", "since"}]}]
    queue       {"total", "oldest_since", "by_department": [...], "by_level": [...],
                 "by_priority": {"urgent", "vip", "normal"}}
    counts      {"hour": {"started", "answered", "missed", "escalated"}, "day": {...}}
    times       {"hour": {"wait": {"n", "avg", "p90"}, "first_response": {...}}, "day": ...}
    sla         {"at_risk", "breached", "chats_at_risk", "chats_breached", "breaches_today"}
    csat        null, or {"n", "avg"} of the day's ratings
    kb          {"views_hour", "views_today", "shown_hour", "shown_today",
                 "deflected_hour", "deflected_today"}: knowledge base articles
                 viewed, suggestions shown in the widget, chats deflected ("yes,
                 that answered my question"); zeros without a knowledge base
    history     [{"t", "queue", "wait"}]: one point per minute, newest last

Timestamps are ms since the epoch; durations are seconds. The board carries
*when* the queue's oldest chat started waiting, not for how long: the wait grows
every second and the console computes it, so an unchanged queue sends nothing.

Definitions (all counts are over chats that *started* in the window, i.e. whose
first visitor message put them in the queue then — a cohort, so ``answered +
missed <= started``):

- answered: an operator got the chat (it was assigned at least once);
- missed: closed without ever being assigned (the visitor left, or was closed
  as abandoned, while waiting);
- escalated: the chat became a ticket;
- wait: enqueued → assigned (the latest assignment, for a re-queued chat);
- first response: enqueued → the first operator message;
- p90: nearest rank, the smallest value at least 90 % of the values are at or below.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

STATUS_ORDER = {"online": 0, "away": 1, "offline": 2}
PRIORITIES = ("urgent", "vip", "normal")
# Sections diff compares by value, replaced whole when they differ.
SECTIONS = ("window", "staff", "queue", "counts", "times", "sla", "csat", "kb")
# The figures of the ``kb`` section (chatserver.kb.store.base.Counts).
KB_FIGURES = (
    "views_hour", "views_today", "shown_hour", "shown_today", "deflected_hour", "deflected_today",
)  # fmt: skip
HISTORY_MINUTES = 6 * 60


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorView:
    """One operator: presence (status, load) joined with the account (name, role)."""

    operator_id: str
    name: str
    role: str
    status: str
    load: int
    capacity: int
    departments: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class QueuedChat:
    session_id: str
    enqueued_at: float
    department: str | None = None
    level: int = 1
    priority: str = "normal"


@dataclasses.dataclass(frozen=True, slots=True)
class OpenChat:
    """A waiting or assigned chat, as the store has it."""

    session_id: str
    state: str
    operator_id: str | None = None
    assigned_at: float | None = None
    visitor: str | None = None
    enqueued_at: float | None = None
    first_response_at: float | None = None
    sla_first_due: float | None = None
    sla_first_warn: float | None = None

    def sla_clock(self) -> SlaClock | None:
        """The chat's first-response clock, if its plan sets one."""
        if self.sla_first_due is None or self.enqueued_at is None:
            return None
        return SlaClock(
            self.session_id,
            self.enqueued_at,
            self.sla_first_due,
            met_at=self.first_response_at,
            chat=True,
            warn=self.sla_first_warn,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ChatStat:
    """Timings of one chat that entered the queue (``enqueued_at``)."""

    enqueued_at: float
    state: str
    ever_assigned: bool
    assigned_at: float | None = None
    first_response_at: float | None = None
    escalated: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class SlaClock:
    """One SLA target of an open ticket (``ref`` "#100042") or chat (``s_…``).

    ``met_at`` is when the target was met (None: still pending); ``recorded``
    means a breach was already recorded for it; ``paused`` clocks (waiting for
    the customer) neither warn nor breach. ``warn`` is when the target turns
    "at risk" (computed on the plan's business hours when it was set); without
    it, at ``warn_at`` of the wall-clock time between ``start`` and ``due``.
    """

    ref: str
    start: float
    due: float | None
    met_at: float | None = None
    recorded: bool = False
    chat: bool = False
    warn: float | None = None
    paused: bool = False

    def breached(self, now: float) -> bool:
        if self.recorded:
            return True
        if self.due is None or (self.paused and self.met_at is None):
            return False
        done = self.met_at if self.met_at is not None else now
        return done > self.due

    def at_risk(self, now: float, warn_at: float) -> bool:
        """Pending, not paused, not breached, and past its warning time."""
        if self.met_at is not None or self.paused or self.due is None or self.breached(now):
            return False
        warn = self.warn
        if warn is None:
            warn = self.start + warn_at * max(0.0, self.due - self.start)
        return now >= warn


# The columns of ``open_ticket_clocks`` rows, as both stores select them.
TICKET_CLOCK_COLUMNS = (
    "number, created_at, sla_first_due, sla_first_warn, first_response_at,"
    " sla_resolution_due, sla_resolution_warn, resolved_at, sla_breached, paused_since"
)


def ticket_clocks_of(rows: Iterable[Sequence[Any]]) -> list[SlaClock]:
    """The SLA clocks of open tickets' rows (columns :data:`TICKET_CLOCK_COLUMNS`)."""
    clocks = []
    for number, created, f_due, f_warn, f_at, r_due, r_warn, r_at, breached, paused in rows:
        # The kinds recorded as breached: "first_response resolution".
        kinds = set(str(breached or "").replace(",", " ").split())
        unknown = bool(kinds - {"first_response", "resolution"})
        for kind, due, warn, met in (
            ("first_response", f_due, f_warn, f_at),
            ("resolution", r_due, r_warn, r_at),
        ):
            recorded = kind in kinds or unknown
            if due is None and not recorded:
                continue
            clocks.append(
                SlaClock(
                    f"#{number}",
                    created,
                    due,
                    met_at=met,
                    recorded=recorded,
                    warn=warn,
                    paused=paused is not None,
                )
            )
    return clocks


def window_starts(now: float, tz: tzinfo) -> tuple[float, float]:
    """Start of the current hour and of the current day in ``tz`` (epoch seconds).

    Local wall-clock boundaries: a day is 23 or 25 hours long across a DST switch.
    """
    local = datetime.fromtimestamp(now, tz)
    hour = local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    return hour.timestamp(), day.timestamp()


def p90(values: Sequence[float]) -> float | None:
    """Nearest-rank 90th percentile of ``values`` (any order); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _ms(ts: float | None) -> int | None:
    return None if ts is None else int(ts * 1000)


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "avg": None, "p90": None}
    top = p90(values)
    assert top is not None
    return {"n": len(values), "avg": round(sum(values) / len(values), 1), "p90": round(top, 1)}


class History:
    """One point per minute over the last ``minutes``: the peak queue length and
    longest wait seen in that minute. Kept in memory by the hub (each node its own)."""

    def __init__(self, minutes: int = HISTORY_MINUTES) -> None:
        self.minutes = minutes
        # [minute start (s), queue length, longest wait (s)]
        self._points: collections.deque[list[int]] = collections.deque()

    def record(self, now: float, queue_length: int, longest_wait: float) -> None:
        minute = int(now // 60) * 60
        wait = int(longest_wait)
        points = self._points
        if points and points[-1][0] == minute:
            last = points[-1]
            last[1] = max(last[1], queue_length)
            last[2] = max(last[2], wait)
        elif not points or points[-1][0] < minute:
            points.append([minute, queue_length, wait])
        # else: the clock went back; keep the newer points as they are
        horizon = minute - self.minutes * 60
        while points and points[0][0] <= horizon:
            points.popleft()

    def has(self, now: float) -> bool:
        """Whether the minute of ``now`` has a point yet."""
        return bool(self._points) and self._points[-1][0] == int(now // 60) * 60

    def points(self) -> list[dict[str, int]]:
        return [{"t": t * 1000, "queue": q, "wait": w} for t, q, w in self._points]


def _queue_section(queue: Sequence[QueuedChat]) -> dict[str, Any]:
    by_dept: dict[str | None, list[float]] = {}
    by_level: dict[int, list[float]] = {}
    by_priority = dict.fromkeys(PRIORITIES, 0)
    oldest: float | None = None
    for q in queue:
        by_dept.setdefault(q.department, []).append(q.enqueued_at)
        by_level.setdefault(q.level, []).append(q.enqueued_at)
        by_priority[q.priority] = by_priority.get(q.priority, 0) + 1
        if oldest is None or q.enqueued_at < oldest:
            oldest = q.enqueued_at
    return {
        "total": len(queue),
        "oldest_since": _ms(oldest),
        "by_department": [
            {"department": dept, "total": len(ts), "oldest_since": _ms(min(ts))}
            for dept, ts in sorted(by_dept.items(), key=lambda kv: kv[0] or "")
        ],
        "by_level": [
            {"level": level, "total": len(ts), "oldest_since": _ms(min(ts))}
            for level, ts in sorted(by_level.items())
        ],
        "by_priority": by_priority,
    }


def _operators_section(
    operators: Iterable[OperatorView], open_chats: Iterable[OpenChat]
) -> list[dict[str, Any]]:
    chats: dict[str, list[OpenChat]] = {}
    for chat in open_chats:
        if chat.state == "assigned" and chat.operator_id is not None:
            chats.setdefault(chat.operator_id, []).append(chat)
    rows: list[dict[str, Any]] = []
    for op in operators:
        mine = sorted(
            chats.get(op.operator_id, ()), key=lambda c: (c.assigned_at or 0, c.session_id)
        )
        rows.append(
            {
                "id": op.operator_id,
                "name": op.name,
                "role": op.role,
                "status": op.status,
                "load": op.load,
                "capacity": op.capacity,
                "departments": sorted(op.departments),
                "chats": [
                    {"session_id": c.session_id, "visitor": c.visitor, "since": _ms(c.assigned_at)}
                    for c in mine
                ],
            }
        )
    rows.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 3), r["name"].lower(), r["id"]))
    return rows


def _window_stats(chats: Sequence[ChatStat], start: float) -> tuple[dict[str, int], dict[str, Any]]:
    started = answered = missed = escalated = 0
    waits: list[float] = []
    firsts: list[float] = []
    for c in chats:
        if c.enqueued_at < start:
            continue
        started += 1
        if c.ever_assigned:
            answered += 1
        elif c.state == "closed":
            missed += 1
        if c.escalated:
            escalated += 1
        if c.assigned_at is not None:
            waits.append(max(0.0, c.assigned_at - c.enqueued_at))
        if c.first_response_at is not None:
            firsts.append(max(0.0, c.first_response_at - c.enqueued_at))
    counts = {"started": started, "answered": answered, "missed": missed, "escalated": escalated}
    return counts, {"wait": _summary(waits), "first_response": _summary(firsts)}


def _sla_section(
    clocks: Sequence[SlaClock], breaches_today: Mapping[str, int], now: float, warn_at: float
) -> dict[str, Any]:
    breached: set[str] = set()
    at_risk: set[str] = set()
    chat_refs: set[str] = set()
    for clock in clocks:
        if clock.chat:
            chat_refs.add(clock.ref)
        if clock.breached(now):
            breached.add(clock.ref)
        elif clock.at_risk(now, warn_at):
            at_risk.add(clock.ref)
    at_risk -= breached
    return {
        "at_risk": len(at_risk - chat_refs),
        "breached": len(breached - chat_refs),
        "chats_at_risk": len(at_risk & chat_refs),
        "chats_breached": len(breached & chat_refs),
        "breaches_today": dict(sorted(breaches_today.items())),
    }


def build_board(
    *,
    now: float,
    tz: tzinfo,
    operators: Sequence[OperatorView],
    queue: Sequence[QueuedChat],
    open_chats: Sequence[OpenChat] = (),
    chats: Sequence[ChatStat] = (),
    sla: Sequence[SlaClock] = (),
    breaches_today: Mapping[str, int] | None = None,
    history: History | None = None,
    csat: Sequence[int] | None = None,
    warn_at: float = 0.8,
    kb: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The board at ``now``.

    ``queue`` comes from presence (every node's waiting chats), ``open_chats``
    from the store (whose chats each operator has, chat SLA clocks), ``chats``
    must cover at least every chat enqueued since the start of today in ``tz``
    (older ones are ignored), ``sla`` holds the clocks of open tickets.
    """
    hour_start, day_start = window_starts(now, tz)
    staff = {"online": 0, "away": 0, "offline": 0, "load": 0, "capacity": 0}
    for op in operators:
        staff[op.status] = staff.get(op.status, 0) + 1
        if op.status != "offline":
            staff["load"] += op.load
            staff["capacity"] += op.capacity
    hour_counts, hour_times = _window_stats(chats, hour_start)
    day_counts, day_times = _window_stats(chats, day_start)
    return {
        "ts": _ms(now),
        "window": {
            "tz": str(tz),
            "hour_start": _ms(hour_start),
            "day_start": _ms(day_start),
        },
        "staff": staff,
        "operators": _operators_section(operators, open_chats),
        "queue": _queue_section(queue),
        "counts": {"hour": hour_counts, "day": day_counts},
        "times": {"hour": hour_times, "day": day_times},
        "sla": _sla_section(
            [*sla, *(c for c in (chat.sla_clock() for chat in open_chats) if c is not None)],
            breaches_today or {},
            now,
            warn_at,
        ),
        "csat": ({"n": len(csat), "avg": round(sum(csat) / len(csat), 2)} if csat else None),
        "history": history.points() if history is not None else [],
        "kb": {key: int((kb or {}).get(key, 0)) for key in KB_FIGURES},
    }


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The smallest patch that turns ``old`` into ``new``; None when nothing changed.

    ``{"ts", "set"?: {section: value}, "operators"?: {"upsert": [row], "remove": [id]},
    "history"?: {"points": [point], "since": t}}``: sections that differ are
    replaced whole; operator rows are upserted or removed by id; history points
    are put by ``t`` (replacing a point with the same ``t``) and points older than
    ``since`` dropped.
    """
    patch: dict[str, Any] = {}
    changed = {key: new[key] for key in SECTIONS if old.get(key) != new.get(key)}
    if changed:
        patch["set"] = changed
    old_rows = {row["id"]: row for row in old.get("operators", ())}
    new_ids: set[str] = set()
    upsert = []
    for row in new.get("operators", ()):
        new_ids.add(row["id"])
        if old_rows.get(row["id"]) != row:
            upsert.append(row)
    remove = [op_id for op_id in old_rows if op_id not in new_ids]
    if upsert or remove:
        patch["operators"] = {"upsert": upsert, "remove": remove}
    old_points = {p["t"]: p for p in old.get("history", ())}
    new_history = new.get("history", ())
    points = [p for p in new_history if old_points.get(p["t"]) != p]
    since = new_history[0]["t"] if new_history else None
    old_since = old["history"][0]["t"] if old.get("history") else None
    if points or since != old_since:
        patch["history"] = {"points": points, "since": since}
    if not patch:
        return None
    patch["ts"] = new.get("ts")
    return patch


def apply_patch(board: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``board`` with ``patch`` (from :func:`diff`) applied; ``board`` is not changed."""
    out = dict(board)
    out.update(patch.get("set", {}))
    if "ts" in patch:
        out["ts"] = patch["ts"]
    ops = patch.get("operators")
    if ops is not None:
        rows = {row["id"]: row for row in board.get("operators", ())}
        for op_id in ops["remove"]:
            rows.pop(op_id, None)
        for row in ops["upsert"]:
            rows[row["id"]] = row
        out["operators"] = sorted(
            rows.values(),
            key=lambda r: (STATUS_ORDER.get(r["status"], 3), r["name"].lower(), r["id"]),
        )
    hist = patch.get("history")
    if hist is not None:
        points = {p["t"]: p for p in board.get("history", ())}
        for p in hist["points"]:
            points[p["t"]] = p
        since = hist["since"]
        out["history"] = [points[t] for t in sorted(points) if since is not None and t >= since]
    return out
