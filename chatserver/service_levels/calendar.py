"""Service levels: plans, support calendars and SLA clocks. Pure; no I/O but reading the TOML.

An SLA clock counts *business time*: only while the plan's calendar is open and the ticket is not
paused (waiting for the customer). A request that arrives while closed starts its clock at the
next opening. Targets in the config are business-time durations, so "24h" on a Mon-Fri 09-18
calendar spans almost three working days, while on the 24/7 calendar it is 24 real hours.

All public functions take timezone-aware datetimes (any zone; naive ones raise ``ValueError``)
and return datetimes in the calendar's zone. Business hours are wall-clock hours in that zone, so
DST switches move them with the clock; durations are real elapsed time.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from chatserver.service_levels.names import label as name_in
from chatserver.service_levels.names import parse_names
from chatserver.types import Priority

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Calendar",
    "ClosedRule",
    "Closure",
    "Pause",
    "Plan",
    "SlaConfig",
    "SlaState",
    "SlaStatus",
    "counted_time",
    "due_at",
    "evaluate",
    "load_sla_config",
    "parse_sla_config",
]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("sla_default.toml")

Pause = tuple[datetime, datetime | None]
"""A span in which the clock is stopped (ticket waits for the customer); end None = still open."""

SlaState = Literal["ok", "warning", "breached", "met"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_MIN = 24 * 60
_MAX_CLOSED_DAYS = 800  # a calendar closed this long in a row is treated as broken
_FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)

Span = tuple[int, int]  # minutes after local midnight, [start, end); end may be 1440


def _aware_utc(dt: datetime, what: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def _subtract_span(spans: tuple[Span, ...], cut: Span) -> tuple[Span, ...]:
    out: list[Span] = []
    for s, e in spans:
        if cut[1] <= s or cut[0] >= e:
            out.append((s, e))
            continue
        if s < cut[0]:
            out.append((s, cut[0]))
        if cut[1] < e:
            out.append((cut[1], e))
    return tuple(out)


@dataclasses.dataclass(frozen=True, slots=True)
class Closure:
    """A named closure of one day, from ``start`` to ``end`` (minutes after midnight, end ≤ 1440).

    The default (0, 1440) closes the whole day.
    """

    name: str
    start: int = 0
    end: int = _DAY_MIN


@dataclasses.dataclass(frozen=True, slots=True)
class ClosedRule:
    """A yearly closure on the ``nth`` weekday of ``month`` (nth -1 = last), e.g. Sechseläuten.

    If that date is a library public holiday and ``move_days_if_holiday`` is set, the closure
    moves by that many days (Sechseläuten: a week later when the third Monday is Easter Monday).
    """

    closure: Closure
    month: int
    weekday: int  # 0 = Monday
    nth: int  # 1-4, or -1 for the last
    move_days_if_holiday: int = 0

    def date_in(self, year: int) -> date:
        """The date this rule gives in ``year``, before any holiday move."""
        if self.nth > 0:
            first = date(year, self.month, 1)
            offset = (self.weekday - first.weekday()) % 7
            day = first + timedelta(days=offset + 7 * (self.nth - 1))
        else:
            nxt = date(year + self.month // 12, self.month % 12 + 1, 1)
            last = nxt - timedelta(days=1)
            day = last - timedelta(days=(last.weekday() - self.weekday) % 7)
        return day


class Calendar:
    """A team's support hours: weekly wall-clock hours, public holidays and extra closures.

    A day is closed if it is a public holiday in ANY of ``subdivisions`` (cantons) of ``country``
    (or a national one when no subdivision is given), per the ``holidays`` library. Open spans are
    half-open: at the closing minute the calendar is already closed. ``always_open`` calendars
    (24/7) ignore hours and holidays. Build calendars through :func:`parse_sla_config` unless you
    need one by hand. Treat instances as read-only; they only cache, so sharing one is safe.
    """

    def __init__(
        self,
        name: str,
        *,
        timezone: str = "Europe/Zurich",
        hours: Mapping[str, Iterable[Span]] | None = None,
        country: str | None = "CH",
        subdivisions: Iterable[str] = (),
        holiday_categories: Iterable[str] = ("public",),
        language: str | None = "de",
        extra_closed_days: Mapping[date, Iterable[Closure]] | None = None,
        extra_closed_rules: Iterable[ClosedRule] = (),
        always_open: bool = False,
    ) -> None:
        self.name = name
        try:
            self.timezone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"calendars.{name}.timezone: unknown zone {timezone!r}") from exc
        self.always_open = always_open
        week: list[tuple[Span, ...]] = []
        for day in hours or {}:
            if day not in WEEKDAYS:
                raise ValueError(f"calendars.{name}.hours.{day}: not one of {', '.join(WEEKDAYS)}")
        for day in WEEKDAYS:
            spans = sorted((hours or {}).get(day, ()))
            for i, (s, e) in enumerate(spans):
                if not 0 <= s < e <= _DAY_MIN:
                    raise ValueError(f"calendars.{name}.hours.{day}: bad span {s}-{e} (minutes)")
                if i and spans[i - 1][1] > s:
                    raise ValueError(f"calendars.{name}.hours.{day}: overlapping spans")
            week.append(tuple(spans))
        self.hours: tuple[tuple[Span, ...], ...] = tuple(week)
        if not always_open and not any(self.hours):
            raise ValueError(f"calendars.{name}.hours: no opening hours on any weekday")
        self.country = country
        self.subdivisions = tuple(subdivisions)
        self.holiday_categories = tuple(holiday_categories)
        self.language = language
        self.extra_closed_days = {d: tuple(c) for d, c in (extra_closed_days or {}).items()}
        self.extra_closed_rules = tuple(extra_closed_rules)
        self._extra_years: dict[int, dict[date, tuple[Closure, ...]]] = {}
        self._public: dict[int, dict[date, str]] = {}
        self._days: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        if country is not None and not always_open:
            self._public_holidays(2000)  # fail now on a bad country/subdivision/category

    def __repr__(self) -> str:
        return f"Calendar({self.name!r})"

    # -- holidays -----------------------------------------------------------------------------

    def _public_holidays(self, year: int) -> dict[date, str]:
        found = self._public.get(year)
        if found is not None:
            return found
        merged: dict[date, set[str]] = {}
        if self.country is not None:
            for sub in self.subdivisions or (None,):
                try:
                    days = holidays.country_holidays(
                        self.country,
                        subdiv=sub,
                        years=year,
                        language=self.language,
                        categories=self.holiday_categories,
                    )
                except (NotImplementedError, ValueError) as exc:
                    where = f"calendars.{self.name}.country/subdivisions/holiday_categories"
                    raise ValueError(f"{where}: {exc}") from exc
                for d, label in days.items():
                    merged.setdefault(d, set()).update(label.split("; "))
        found = {d: "; ".join(sorted(names)) for d, names in merged.items()}
        self._public[year] = found
        return found

    def _extra(self, year: int) -> dict[date, tuple[Closure, ...]]:
        """Extra closures (configured days and yearly rules) of one year, by date (cached)."""
        found = self._extra_years.get(year)
        if found is not None:
            return found
        out: dict[date, list[Closure]] = {}
        for d, cls in self.extra_closed_days.items():
            if d.year == year:
                out.setdefault(d, []).extend(cls)
        for rule in self.extra_closed_rules:
            for y in (year - 1, year, year + 1):  # a moved date may cross a year boundary
                d = rule.date_in(y)
                if rule.move_days_if_holiday and d in self._public_holidays(y):
                    d += timedelta(days=rule.move_days_if_holiday)
                if d.year == year:
                    out.setdefault(d, []).append(rule.closure)
        found = {d: tuple(v) for d, v in out.items()}
        self._extra_years[year] = found
        return found

    def closure_names(self, day: date) -> tuple[str, ...]:
        """Names of public holidays and extra closures that close all or part of ``day``."""
        if self.always_open:
            return ()
        public = self._public_holidays(day.year).get(day)
        extra = tuple(c.name for c in self._extra(day.year).get(day, ()))
        return ((public,) if public else ()) + extra

    def is_holiday(self, day: date) -> bool:
        """True if ``day`` is a library public holiday in any configured subdivision."""
        return not self.always_open and day in self._public_holidays(day.year)

    # -- open spans ---------------------------------------------------------------------------

    def _day_spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Open spans of one local day as UTC instants (cached)."""
        found = self._days.get(day)
        if found is not None:
            return found
        spans = self.hours[day.weekday()]
        if spans and day in self._public_holidays(day.year):
            spans = ()
        for c in self._extra(day.year).get(day, ()) if spans else ():
            spans = _subtract_span(spans, (c.start, c.end))
        utc = ((self._instant(day, s), self._instant(day, e)) for s, e in spans)
        # A boundary inside a DST gap can map out of order; such a span is dropped.
        out = tuple((s, e) for s, e in utc if s < e)
        self._days[day] = out
        return out

    def _instant(self, day: date, minute: int) -> datetime:
        # A wall time inside a DST gap resolves with the offset before the switch (fold=0),
        # which on the new clock is an hour later.
        if minute >= _DAY_MIN:
            day, minute = day + timedelta(days=1), minute - _DAY_MIN
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.timezone)
        return local.astimezone(UTC)

    def _open_spans(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Ordered, non-overlapping open spans in UTC after ``since``, the first clipped to it.

        Adjacent spans (a day open until 24:00 and the next from 00:00) are not merged.
        """
        if self.always_open:
            yield since, _FAR_FUTURE
            return
        day = since.astimezone(self.timezone).date() - timedelta(days=1)
        floor = since
        closed_days = 0
        while True:
            spans = self._day_spans(day)
            day += timedelta(days=1)
            closed_days = 0 if spans else closed_days + 1
            if closed_days > _MAX_CLOSED_DAYS:
                raise ValueError(
                    f"calendars.{self.name}: closed for {_MAX_CLOSED_DAYS} days in a row"
                )
            for s, e in spans:
                if e > floor:
                    yield max(s, floor), e
                    floor = e

    # -- public arithmetic ---------------------------------------------------------------------

    def is_open(self, dt: datetime) -> bool:
        """True if support is open at ``dt`` (opening minute included, closing minute not)."""
        at = _aware_utc(dt, "dt")
        if self.always_open:
            return True
        local_day = at.astimezone(self.timezone).date()
        for day in (local_day - timedelta(days=1), local_day):
            if any(s <= at < e for s, e in self._day_spans(day)):
                return True
        return False

    def next_opening(self, dt: datetime) -> datetime:
        """``dt`` itself if open, else the start of the next open span (in the calendar's zone)."""
        at = _aware_utc(dt, "dt")
        return next(self._open_spans(at))[0].astimezone(self.timezone)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of business time has passed since ``start``.

        The clock starts at ``next_opening(start)``; a zero duration returns that opening. A result
        that falls exactly on a closing time is returned as that closing time (e.g. Friday 18:00),
        not as the next opening.
        """
        result = _add_over(self._open_spans(_aware_utc(start, "start")), duration)
        assert result is not None  # open spans never run out
        return result.astimezone(self.timezone)

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Business time between ``a`` and ``b`` (``ValueError`` if b is before a)."""
        ua, ub = _aware_utc(a, "a"), _aware_utc(b, "b")
        if ub < ua:
            raise ValueError(f"b ({b.isoformat()}) is before a ({a.isoformat()})")
        return _elapsed_over(self._open_spans(ua), ub)


def _add_over(spans: Iterator[tuple[datetime, datetime]], duration: timedelta) -> datetime | None:
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    left = duration
    for s, e in spans:
        if left <= e - s:
            return s + left
        left -= e - s
    return None


def _elapsed_over(spans: Iterator[tuple[datetime, datetime]], end: datetime) -> timedelta:
    total = timedelta(0)
    for s, e in spans:
        if s >= end:
            break
        total += min(e, end) - s
    return total


def _merge_pauses(pauses: Iterable[Pause]) -> list[tuple[datetime, datetime | None]]:
    spans: list[tuple[datetime, datetime | None]] = []
    for i, (ps, pe) in enumerate(pauses):
        s = _aware_utc(ps, f"pauses[{i}] start")
        e = None if pe is None else _aware_utc(pe, f"pauses[{i}] end")
        if e is not None and e < s:
            raise ValueError(f"pauses[{i}] ends ({pe}) before it starts ({ps})")
        spans.append((s, e))
    spans.sort(key=lambda p: p[0])
    merged: list[tuple[datetime, datetime | None]] = []
    for s, e in spans:
        if merged:
            ms, me = merged[-1]
            if me is None or s <= me:
                merged[-1] = (ms, None if me is None or e is None else max(me, e))
                continue
        merged.append((s, e))
    return merged


def _without_pauses(
    spans: Iterator[tuple[datetime, datetime]], pauses: list[tuple[datetime, datetime | None]]
) -> Iterator[tuple[datetime, datetime]]:
    """Open spans minus pause spans; ends at the start of an open-ended pause."""
    i = 0
    for s, e in spans:
        while s < e:
            while i < len(pauses) and (pe := pauses[i][1]) is not None and pe <= s:
                i += 1
            if i == len(pauses) or pauses[i][0] >= e:
                yield s, e
                break
            ps, pe = pauses[i]
            if ps > s:
                yield s, ps
            if pe is None:
                return
            s = pe


def due_at(
    calendar: Calendar, start: datetime, target: timedelta, pauses: Iterable[Pause] = ()
) -> datetime | None:
    """When ``target`` business time has run since ``start``, not counting paused time.

    Returns None if an open-ended pause (end None) stops the clock before the target is reached:
    nothing is due while the ticket waits for the customer.
    """
    since = _aware_utc(start, "start")
    spans = _without_pauses(calendar._open_spans(since), _merge_pauses(pauses))
    result = _add_over(spans, target)
    return None if result is None else result.astimezone(calendar.timezone)


def counted_time(
    calendar: Calendar, start: datetime, end: datetime, pauses: Iterable[Pause] = ()
) -> timedelta:
    """Business time between ``start`` and ``end`` that counts towards a target (pauses excluded).

    ``end`` before ``start`` raises ``ValueError``.
    """
    us, ue = _aware_utc(start, "start"), _aware_utc(end, "end")
    if ue < us:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    spans = _without_pauses(calendar._open_spans(us), _merge_pauses(pauses))
    return _elapsed_over(spans, ue)


@dataclasses.dataclass(frozen=True, slots=True)
class SlaStatus:
    """Where one SLA clock stands.

    ``remaining`` is target minus counted business time, frozen once answered. It is ≤ 0 when
    breached: exactly 0 while the calendar stays closed right after ``due`` (say Friday 18:00 until
    Monday 09:00), then negative as business time passes. ``due`` and ``warns_at`` assume pauses
    still open at ``now`` end at ``now``; ``paused`` tells that the clock is stopped right now.
    """

    state: SlaState
    due: datetime
    remaining: timedelta
    elapsed: timedelta
    warns_at: datetime
    breached_at: datetime | None
    paused: bool


def evaluate(
    calendar: Calendar,
    start: datetime,
    target: timedelta,
    now: datetime,
    pauses: Iterable[Pause] = (),
    answered_at: datetime | None = None,
    warn_at: float = 0.8,
) -> SlaStatus:
    """Evaluate an SLA clock at ``now``.

    ``answered_at`` (the first human answer, or resolution) stops the clock: "met" if at or before
    ``due``, else "breached". Unanswered: "breached" once ``now`` is past ``due``, "warning" once
    ``warn_at`` of the target has been used, else "ok". Pauses are clipped to ``[start, now]``;
    a ``now`` before ``start`` (clock skew) counts as ``start``. ``answered_at`` before ``start``
    raises ``ValueError``.
    """
    if not 0 < warn_at <= 1:
        raise ValueError(f"warn_at must be in (0, 1], got {warn_at}")
    if target < timedelta(0):
        raise ValueError(f"target must not be negative, got {target}")
    ustart = _aware_utc(start, "start")
    unow = max(_aware_utc(now, "now"), ustart)
    uanswer = None if answered_at is None else _aware_utc(answered_at, "answered_at")
    if uanswer is not None and uanswer < ustart:
        raise ValueError(f"answered_at ({answered_at}) is before start ({start})")
    clipped: list[Pause] = []
    paused = False
    for ps, pe in _merge_pauses(pauses):
        if ps >= unow:
            continue
        if pe is None or pe > unow:
            paused = True
        clipped.append((max(ps, ustart), unow if pe is None else min(max(pe, ustart), unow)))
    due = due_at(calendar, ustart, target, clipped)
    warns = due_at(calendar, ustart, target * warn_at, clipped)
    assert due is not None and warns is not None  # all pauses are closed
    stop = unow if uanswer is None else uanswer
    used = counted_time(calendar, ustart, stop, clipped)
    remaining = target - used
    state: SlaState
    if uanswer is not None:
        state = "met" if uanswer <= due else "breached"
        paused = False
    elif unow > due:
        state = "breached"
    elif used >= target * warn_at:
        state = "warning"
    else:
        state = "ok"
    return SlaStatus(
        state=state,
        due=due,
        remaining=remaining,
        elapsed=used,
        warns_at=warns,
        breached_at=due if state == "breached" else None,
        paused=paused,
    )


# -- configuration ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """One service plan. Targets are business time on the plan's calendar."""

    name: str
    first_response: timedelta
    resolution: timedelta
    calendar: str
    priority: Priority
    phone: bool
    personal_contact: bool
    warn_at: float = 0.8
    # A waiting visitor is offered a ticket (or callback) after this wait; 0: never.
    offer_ticket_after_minutes: float = 10.0
    # Display names by language ([plans.<name>.names]; service_levels/names.py).
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def label(self, lang: str | None) -> str:
        """The plan's name for a reader of ``lang`` (English, else its key)."""
        return name_in(self.names, lang, self.name)


@dataclasses.dataclass(frozen=True, slots=True)
class SlaConfig:
    """Plans and calendars by name; every plan's calendar exists."""

    plans: Mapping[str, Plan]
    calendars: Mapping[str, Calendar]
    default_plan: str
    # Display names of departments by language ([departments.<name>.names]).
    departments: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)

    def department_label(self, department: str, lang: str | None) -> str:
        """A department's name for a reader of ``lang`` (English, else its key)."""
        return name_in(self.departments.get(department, {}), lang, department)

    def plan_for(self, name: str | None) -> Plan:
        """The named plan, or the default plan for None or an unknown name."""
        if name is not None and name in self.plans:
            return self.plans[name]
        return self.plans[self.default_plan]

    def calendar_for(self, plan: Plan) -> Calendar:
        """The calendar the plan's clocks run on."""
        return self.calendars[plan.calendar]


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_HHMM = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")


def _check_keys(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _get(table: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise ValueError(f"{where}.{key}: missing")
    value = table[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ValueError(f"{where}.{key}: expected {names}, got {value!r}")
    return value


def _duration(raw: Any, where: str) -> timedelta:
    m = _DURATION.fullmatch(raw) if isinstance(raw, str) else None
    if m is None or not raw:
        raise ValueError(f"{where}: expected a duration like '48h', '90m' or '1h30m', got {raw!r}")
    h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(hours=h, minutes=mi, seconds=s)


def _minute(raw: Any, where: str) -> int:
    m = _HHMM.fullmatch(raw) if isinstance(raw, str) else None
    if m is None or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"{where}: expected a time 'HH:MM' (00:00-24:00), got {raw!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _closure(table: Mapping[str, Any], where: str, default_name: str) -> Closure:
    name = table.get("name", default_name)
    if not isinstance(name, str):
        raise ValueError(f"{where}.name: expected str, got {name!r}")
    start = _minute(table["from"], f"{where}.from") if "from" in table else 0
    end = _minute(table["until"], f"{where}.until") if "until" in table else _DAY_MIN
    if start >= end:
        raise ValueError(f"{where}: 'from' must be before 'until'")
    return Closure(name, start, end)


def _parse_calendar(name: str, table: Any) -> Calendar:
    where = f"calendars.{name}"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table")
    if table.get("always_open", False) is True:
        _check_keys(table, where, {"always_open", "timezone"})
        tz = table.get("timezone", "Europe/Zurich")
        if not isinstance(tz, str):
            raise ValueError(f"{where}.timezone: expected str, got {tz!r}")
        return Calendar(name, timezone=tz, always_open=True)
    _check_keys(
        table,
        where,
        {
            "always_open", "timezone", "hours", "country", "subdivisions", "holiday_categories",
            "language", "extra_closed_days", "extra_closed_rules",
        },
    )  # fmt: skip
    if "always_open" in table:
        _get(table, "always_open", where, bool)
    hours_raw = _get(table, "hours", where, dict)
    _check_keys(hours_raw, f"{where}.hours", set(WEEKDAYS))
    hours: dict[str, list[Span]] = {}
    for day, spans in hours_raw.items():
        if not isinstance(spans, list):
            raise ValueError(f"{where}.hours.{day}: expected a list like ['09:00-18:00']")
        hours[day] = []
        for i, span in enumerate(spans):
            key = f"{where}.hours.{day}[{i}]"
            if not isinstance(span, str) or span.count("-") != 1:
                raise ValueError(f"{key}: expected 'HH:MM-HH:MM', got {span!r}")
            a, b = (_minute(p.strip(), key) for p in span.split("-"))
            if a >= b:
                raise ValueError(f"{key}: opening {span!r} must end after it starts")
            hours[day].append((a, b))
    country = table.get("country", "CH")
    if not isinstance(country, str):
        raise ValueError(f"{where}.country: expected str, got {country!r}")
    subs = table.get("subdivisions", [])
    if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
        raise ValueError(f"{where}.subdivisions: expected a list of strings, got {subs!r}")
    cats = table.get("holiday_categories", ["public"])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats) or not cats:
        raise ValueError(f"{where}.holiday_categories: expected a list of strings, got {cats!r}")
    language = table.get("language", "de")
    if not isinstance(language, str):
        raise ValueError(f"{where}.language: expected str, got {language!r}")
    tz = table.get("timezone", "Europe/Zurich")
    if not isinstance(tz, str):
        raise ValueError(f"{where}.timezone: expected str, got {tz!r}")

    extra_days: dict[date, list[Closure]] = {}
    raw_days = table.get("extra_closed_days", [])
    if not isinstance(raw_days, list):
        raise ValueError(f"{where}.extra_closed_days: expected a list")
    for i, item in enumerate(raw_days):
        key = f"{where}.extra_closed_days[{i}]"
        if isinstance(item, date) and not isinstance(item, datetime):
            extra_days.setdefault(item, []).append(Closure("closed"))
            continue
        if not isinstance(item, dict):
            raise ValueError(f"{key}: expected a date (2025-12-24) or a table with 'date'")
        _check_keys(item, key, {"date", "name", "from", "until"})
        day = item.get("date")
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValueError(f"{key}.date: expected a date like 2025-12-24, got {day!r}")
        extra_days.setdefault(day, []).append(_closure(item, key, "closed"))

    rules: list[ClosedRule] = []
    raw_rules = table.get("extra_closed_rules", [])
    if not isinstance(raw_rules, list):
        raise ValueError(f"{where}.extra_closed_rules: expected a list of tables")
    for i, item in enumerate(raw_rules):
        key = f"{where}.extra_closed_rules[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{key}: expected a table")
        _check_keys(
            item, key, {"name", "month", "weekday", "nth", "from", "until", "move_days_if_holiday"}
        )
        month = _get(item, "month", key, int)
        if not 1 <= month <= 12:
            raise ValueError(f"{key}.month: expected 1-12, got {month}")
        wd = _get(item, "weekday", key, str)
        if wd not in WEEKDAYS:
            raise ValueError(f"{key}.weekday: expected one of {', '.join(WEEKDAYS)}, got {wd!r}")
        nth = _get(item, "nth", key, int)
        if nth not in {1, 2, 3, 4, -1}:
            raise ValueError(f"{key}.nth: expected 1-4 or -1 (last), got {nth}")
        move = item.get("move_days_if_holiday", 0)
        if not isinstance(move, int) or isinstance(move, bool):
            raise ValueError(f"{key}.move_days_if_holiday: expected int, got {move!r}")
        rules.append(
            ClosedRule(_closure(item, key, f"rule {i}"), month, WEEKDAYS.index(wd), nth, move)
        )
    return Calendar(
        name,
        timezone=tz,
        hours=hours,
        country=country,
        subdivisions=subs,
        holiday_categories=cats,
        language=language,
        extra_closed_days=extra_days,
        extra_closed_rules=rules,
    )


def _parse_plan(name: str, table: Any, calendars: Mapping[str, Calendar]) -> Plan:
    where = f"plans.{name}"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table")
    _check_keys(
        table,
        where,
        {
            "first_response", "resolution", "calendar", "priority", "phone",
            "personal_contact", "warn_at", "names", "offer_ticket_after_minutes",
        },
    )  # fmt: skip
    first = _duration(_get(table, "first_response", where, str), f"{where}.first_response")
    resolution = _duration(_get(table, "resolution", where, str), f"{where}.resolution")
    cal = _get(table, "calendar", where, str)
    if cal not in calendars:
        raise ValueError(f"{where}.calendar: no calendar {cal!r} (have: {', '.join(calendars)})")
    label = _get(table, "priority", where, str)
    labels = {p.label: p for p in Priority}
    if label not in labels:
        raise ValueError(f"{where}.priority: expected one of {', '.join(labels)}, got {label!r}")
    warn_at = table.get("warn_at", 0.8)
    if isinstance(warn_at, bool) or not isinstance(warn_at, int | float) or not 0 < warn_at <= 1:
        raise ValueError(f"{where}.warn_at: expected a number in (0, 1], got {warn_at!r}")
    offer = table.get("offer_ticket_after_minutes", 10)
    if isinstance(offer, bool) or not isinstance(offer, int | float) or not 0 <= offer <= 1440:
        raise ValueError(f"{where}.offer_ticket_after_minutes: expected 0..1440, got {offer!r}")
    return Plan(
        name=name,
        first_response=first,
        resolution=resolution,
        calendar=cal,
        priority=labels[label],
        phone=_get(table, "phone", where, bool),
        personal_contact=_get(table, "personal_contact", where, bool),
        warn_at=float(warn_at),
        offer_ticket_after_minutes=float(offer),
        names=parse_names(table.get("names"), f"{where}.names"),
    )


def parse_sla_config(data: Mapping[str, Any]) -> SlaConfig:
    """Build an :class:`SlaConfig` from parsed TOML; ``ValueError`` names the offending key."""
    _check_keys(data, "sla", {"default_plan", "calendars", "plans", "departments"})
    raw_cals = _get(data, "calendars", "sla", dict)
    raw_plans = _get(data, "plans", "sla", dict)
    if not raw_plans:
        raise ValueError("sla.plans: at least one plan is needed")
    calendars = {name: _parse_calendar(name, t) for name, t in raw_cals.items()}
    plans = {name: _parse_plan(name, t, calendars) for name, t in raw_plans.items()}
    default = _get(data, "default_plan", "sla", str)
    if default not in plans:
        raise ValueError(f"sla.default_plan: no plan {default!r} (have: {', '.join(plans)})")
    departments: dict[str, Mapping[str, str]] = {}
    for dept, table in _get_optional_table(data, "departments").items():
        where = f"departments.{dept}"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: expected a table")
        _check_keys(table, where, {"names"})
        departments[dept] = parse_names(table.get("names"), f"{where}.names")
    return SlaConfig(
        plans=plans, calendars=calendars, default_plan=default, departments=departments
    )


def _get_optional_table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"sla.{key}: expected a table")
    return value


def load_sla_config(path: Path | None = None) -> SlaConfig:
    """Read SLA config from a TOML file; None loads the shipped ``sla_default.toml``."""
    source = DEFAULT_CONFIG_PATH if path is None else path
    with open(source, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{source}: not valid TOML: {exc}") from exc
    return parse_sla_config(data)
