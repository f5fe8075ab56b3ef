"""SLA clocks: calendar arithmetic, Swiss holidays (ZH + LU), pauses, plan config."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.service_levels.calendar import (
    DEFAULT_CONFIG_PATH,
    WEEKDAYS,
    Calendar,
    ClosedRule,
    Closure,
    Pause,
    Plan,
    counted_time,
    due_at,
    evaluate,
    load_sla_config,
    parse_sla_config,
)
from chatserver.types import Priority

ZRH = ZoneInfo("Europe/Zurich")
CONFIG = load_sla_config(None)
BIZ = CONFIG.calendars["business"]
ALWAYS = CONFIG.calendars["always"]
STANDARD = CONFIG.plans["standard"]
VIP = CONFIG.plans["vip"]
NINE_TO_SIX = {day: [(9 * 60, 18 * 60)] for day in WEEKDAYS[:5]}
ZH_ONLY = Calendar("zh", hours=NINE_TO_SIX, subdivisions=["ZH"])
LU_ONLY = Calendar("lu", hours=NINE_TO_SIX, subdivisions=["LU"])
# Every day 00:00-24:00 without holidays: must behave exactly like the 24/7 calendar.
ALL_DAY = Calendar("all-day", hours={d: [(0, 1440)] for d in WEEKDAYS}, country=None)
# Awkward hours: split days, a night shift touching midnight, boundaries inside the DST gap
# (Sunday 02:00-03:00 in spring) and overlap (Sunday 02:00-03:00 in autumn).
ODD = Calendar(
    "odd",
    hours={
        "mon": [(0, 150), (165, 195), (22 * 60, 1440)],
        "tue": [(0, 60), (8 * 60, 12 * 60), (13 * 60, 17 * 60 + 30)],
        "wed": [(12 * 60 + 1, 12 * 60 + 2)],
        "sat": [(23 * 60, 1440)],
        "sun": [(60, 150), (165, 240), (23 * 60, 1440)],
    },
    subdivisions=["LU"],
)
CALENDARS = [BIZ, ALWAYS, ZH_ONLY, ALL_DAY, ODD]

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
TINY = timedelta(microseconds=1)


def zrh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZRH)


def utc_span(a: datetime, b: datetime) -> timedelta:
    # Aware datetimes sharing a ZoneInfo subtract as wall clocks; go through UTC for real time.
    return b.astimezone(UTC) - a.astimezone(UTC)


# -- properties ----------------------------------------------------------------------------------

# Instants 2024-2027 (DST switches, leap day, all holidays) seen from various zones. Built from
# an integer offset because hypothesis' own aware-datetime strategy is slow.
_BASE = datetime(2024, 1, 1, tzinfo=UTC)
_SPAN_US = 4 * 365 * 24 * 3600 * 10**6
instants = st.builds(
    lambda us, tz: (_BASE + timedelta(microseconds=us)).astimezone(tz),
    st.one_of(
        st.integers(0, _SPAN_US),
        st.integers(0, _SPAN_US // 60_000_000).map(lambda m: m * 60_000_000),  # whole minutes
    ),
    st.sampled_from([ZRH, UTC, ZoneInfo("America/New_York")]),
)
durations = st.one_of(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200)),
    st.integers(0, 200 * 60).map(lambda m: timedelta(minutes=m)),
)
offsets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))
calendars = st.sampled_from(CALENDARS)
FAST = settings(max_examples=200, deadline=None)


@FAST
@given(calendars, instants, durations)
def test_add_then_elapsed_round_trips(cal: Calendar, start: datetime, d: timedelta) -> None:
    end = cal.add(start, d)
    assert cal.elapsed(start, end) == d
    assert end.tzinfo is cal.timezone


@FAST
@given(calendars, instants, durations, durations)
def test_add_is_monotonic_in_duration(
    cal: Calendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    d1, d2 = sorted((d1, d2))
    assert cal.add(start, d1) <= cal.add(start, d2)


@FAST
@given(calendars, instants, offsets, durations)
def test_add_is_monotonic_in_start(
    cal: Calendar, a: datetime, later: timedelta, d: timedelta
) -> None:
    assert cal.add(a, d) <= cal.add(a + later, d)


@FAST
@given(calendars, instants, durations)
def test_add_lands_inside_hours_or_on_a_closing_time(
    cal: Calendar, start: datetime, d: timedelta
) -> None:
    end = cal.add(start, d)
    assert end >= start
    if d:
        assert cal.is_open(end) or (cal.is_open(end - TINY) and not cal.is_open(end))
    else:
        assert end == cal.next_opening(start) and cal.is_open(end)


@FAST
@given(calendars, instants, offsets, offsets)
def test_elapsed_is_bounded_by_wall_time_and_additive(
    cal: Calendar, a: datetime, ab_wall: timedelta, bc_wall: timedelta
) -> None:
    b = (a + ab_wall).astimezone(ZRH)
    c = (b + bc_wall).astimezone(UTC)
    ab, bc = cal.elapsed(a, b), cal.elapsed(b, c)
    assert timedelta(0) <= ab <= utc_span(a, b)
    assert ab + bc == cal.elapsed(a, c)


@FAST
@given(calendars, instants)
def test_next_opening(cal: Calendar, at: datetime) -> None:
    opening = cal.next_opening(at)
    assert opening >= at
    assert cal.is_open(opening)
    assert cal.elapsed(at, opening) == timedelta(0)
    if cal.is_open(at):
        assert opening == at


@FAST
@given(instants, durations)
def test_always_open_is_plain_time_and_matches_an_all_day_calendar(
    start: datetime, d: timedelta
) -> None:
    assert utc_span(start, ALWAYS.add(start, d)) == d
    assert ALWAYS.add(start, d) == ALL_DAY.add(start, d)
    later = start + d
    assert ALWAYS.elapsed(start, later) == ALL_DAY.elapsed(start, later) == utc_span(start, later)


pause_lists = st.lists(
    st.tuples(
        st.timedeltas(min_value=timedelta(hours=-24), max_value=timedelta(hours=300)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=100)),
    ),
    max_size=4,
)


@FAST
@given(calendars, instants, durations, pause_lists)
def test_pauses_only_delay(
    cal: Calendar, start: datetime, d: timedelta, raw: list[tuple[timedelta, timedelta]]
) -> None:
    pauses: list[Pause] = [(start + off, start + off + length) for off, length in raw]
    plain = due_at(cal, start, d)
    paused = due_at(cal, start, d, pauses)
    assert plain is not None and paused is not None
    assert paused >= plain
    assert counted_time(cal, start, paused, pauses) == d
    assert counted_time(cal, start, paused, pauses) <= cal.elapsed(start, paused)


@FAST
@given(calendars, instants, durations, offsets)
def test_evaluate_agrees_with_due_and_counted_time(
    cal: Calendar, start: datetime, target: timedelta, later: timedelta
) -> None:
    now = start + later
    status = evaluate(cal, start, target, now)
    assert status.due == cal.add(start, target)
    assert status.remaining == target - cal.elapsed(start, now)
    assert (status.state == "breached") == (now > status.due)
    if status.state == "breached":
        assert status.breached_at == status.due and status.remaining <= timedelta(0)
    else:
        assert status.breached_at is None and status.remaining >= timedelta(0)


# -- opening hours, weekends, DST ----------------------------------------------------------------


def test_default_business_hours() -> None:
    assert BIZ.timezone == ZRH
    assert not BIZ.is_open(zrh(2025, 3, 10, 8, 59))
    assert BIZ.is_open(zrh(2025, 3, 10, 9, 0))
    assert BIZ.is_open(zrh(2025, 3, 10, 17, 59))
    assert not BIZ.is_open(zrh(2025, 3, 10, 18, 0))
    assert not BIZ.is_open(zrh(2025, 3, 8, 12, 0))  # Saturday
    assert not BIZ.is_open(zrh(2025, 3, 9, 12, 0))  # Sunday
    # Other zones are converted: 08:00 UTC in March is 09:00 in Zurich.
    assert BIZ.is_open(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))


def test_friday_1759_runs_one_minute_then_monday() -> None:
    start = zrh(2025, 3, 7, 17, 59)  # Friday
    assert BIZ.add(start, MINUTE) == zrh(2025, 3, 7, 18, 0)  # closing time, not Monday
    assert BIZ.add(start, 2 * MINUTE) == zrh(2025, 3, 10, 9, 1)
    # Standard plan: 24 h business time = 1 min Fri + 9 h Mon + 9 h Tue + 5 h 59 min Wed.
    assert due_at(BIZ, start, STANDARD.first_response) == zrh(2025, 3, 12, 14, 59)
    assert BIZ.elapsed(start, zrh(2025, 3, 10, 9, 0)) == MINUTE


def test_saturday_request_starts_at_monday_opening() -> None:
    start = zrh(2025, 3, 8, 10, 0)
    assert BIZ.next_opening(start) == zrh(2025, 3, 10, 9, 0)
    assert BIZ.add(start, timedelta(0)) == zrh(2025, 3, 10, 9, 0)
    assert due_at(BIZ, start, STANDARD.first_response) == zrh(2025, 3, 12, 15, 0)
    assert BIZ.elapsed(start, zrh(2025, 3, 10, 9, 0)) == timedelta(0)


def test_dst_spring_forward_week() -> None:
    # Clocks go 02:00 -> 03:00 on Sunday 30 March 2025; office hours stay 09:00-18:00 local.
    friday, monday = zrh(2025, 3, 28, 9), zrh(2025, 3, 31, 9)
    assert utc_span(friday, monday) == 71 * HOUR
    assert BIZ.elapsed(friday, monday) == 9 * HOUR
    due = BIZ.add(zrh(2025, 3, 28, 17), 2 * HOUR)
    assert due == zrh(2025, 3, 31, 10) and due.utcoffset() == 2 * HOUR
    assert BIZ.add(zrh(2025, 3, 27, 9), 24 * HOUR) == zrh(2025, 3, 31, 15)
    # 24/7: a day of 24 real hours ends an hour later on the wall clock.
    assert ALWAYS.add(zrh(2025, 3, 29, 12), 24 * HOUR) == zrh(2025, 3, 30, 13)
    # A calendar open all Sunday has a 23-hour Sunday.
    assert ALL_DAY.elapsed(zrh(2025, 3, 30), zrh(2025, 3, 31)) == 23 * HOUR


def test_dst_fall_back_week() -> None:
    # Clocks go 03:00 -> 02:00 on Sunday 26 October 2025.
    due = BIZ.add(zrh(2025, 10, 24, 17), 2 * HOUR)
    assert due == zrh(2025, 10, 27, 10) and due.utcoffset() == HOUR
    assert BIZ.elapsed(zrh(2025, 10, 24, 9), zrh(2025, 10, 27, 9)) == 9 * HOUR
    assert ALWAYS.add(zrh(2025, 10, 25, 12), 24 * HOUR) == zrh(2025, 10, 26, 11)
    assert ALL_DAY.elapsed(zrh(2025, 10, 26), zrh(2025, 10, 27)) == 25 * HOUR


# -- holidays ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected", "closed_day"),
    [
        # Christmas (Thu) and St. Stephen's Day (Fri), then the weekend.
        (zrh(2025, 12, 24, 17), zrh(2025, 12, 29, 10), date(2025, 12, 25)),
        (zrh(2025, 12, 24, 17), zrh(2025, 12, 29, 10), date(2025, 12, 26)),
        # New Year (Thu) and Berchtoldstag (Fri, a LU holiday).
        (zrh(2025, 12, 31, 17), zrh(2026, 1, 5, 10), date(2026, 1, 1)),
        (zrh(2025, 12, 31, 17), zrh(2026, 1, 5, 10), date(2026, 1, 2)),
        # Good Friday and Easter Monday.
        (zrh(2025, 4, 17, 17), zrh(2025, 4, 22, 10), date(2025, 4, 18)),
        (zrh(2025, 4, 17, 17), zrh(2025, 4, 22, 10), date(2025, 4, 21)),
        # Labour Day (1 May, a ZH holiday).
        (zrh(2025, 4, 30, 17), zrh(2025, 5, 2, 10), date(2025, 5, 1)),
        # Ascension (Thu).
        (zrh(2025, 5, 28, 17), zrh(2025, 5, 30, 10), date(2025, 5, 29)),
        # Whit Monday.
        (zrh(2025, 6, 6, 17), zrh(2025, 6, 10, 10), date(2025, 6, 9)),
        # Fronleichnam / Corpus Christi (Thu, a LU holiday).
        (zrh(2025, 6, 18, 17), zrh(2025, 6, 20, 10), date(2025, 6, 19)),
        # Swiss National Day (Fri 1 Aug).
        (zrh(2025, 7, 31, 17), zrh(2025, 8, 4, 10), date(2025, 8, 1)),
    ],
)
def test_no_clock_on_public_holidays(start: datetime, expected: datetime, closed_day: date) -> None:
    assert BIZ.is_holiday(closed_day)
    assert BIZ.closure_names(closed_day)
    assert not BIZ.is_open(zrh(closed_day.year, closed_day.month, closed_day.day, 12))
    assert BIZ.add(start, 2 * HOUR) == expected


def test_a_day_is_closed_if_any_configured_canton_has_a_holiday() -> None:
    fronleichnam, labour_day = date(2025, 6, 19), date(2025, 5, 1)
    assert LU_ONLY.is_holiday(fronleichnam) and not ZH_ONLY.is_holiday(fronleichnam)
    assert ZH_ONLY.is_holiday(labour_day) and not LU_ONLY.is_holiday(labour_day)
    assert ZH_ONLY.is_open(zrh(2025, 6, 19, 10)) and not LU_ONLY.is_open(zrh(2025, 6, 19, 10))
    assert BIZ.is_holiday(fronleichnam) and BIZ.is_holiday(labour_day)
    # Berchtoldstag is a LU holiday (recent library versions no longer list it for canton ZH).
    assert LU_ONLY.is_holiday(date(2026, 1, 2)) and BIZ.is_holiday(date(2026, 1, 2))
    assert "Berchtoldstag" in BIZ.closure_names(date(2026, 1, 2))


def test_sechselaeuten_closes_at_noon() -> None:
    monday = date(2026, 4, 20)  # third Monday of April 2026
    assert BIZ.closure_names(monday) == ("Sechseläuten",)
    assert not BIZ.is_holiday(monday)  # not a library public holiday: our own rule
    assert BIZ.is_open(zrh(2026, 4, 20, 11, 59))
    assert not BIZ.is_open(zrh(2026, 4, 20, 12, 0))
    assert BIZ.add(zrh(2026, 4, 20, 11), 2 * HOUR) == zrh(2026, 4, 21, 10)
    assert BIZ.add(zrh(2026, 4, 20, 11), HOUR) == zrh(2026, 4, 20, 12)  # closing boundary
    assert BIZ.elapsed(zrh(2026, 4, 20), zrh(2026, 4, 21)) == 3 * HOUR


def test_sechselaeuten_moves_a_week_when_it_would_be_easter_monday() -> None:
    # 2025: the third Monday (21 April) is Easter Monday; Sechseläuten was on 28 April.
    assert BIZ.is_holiday(date(2025, 4, 21))
    assert "Sechseläuten" not in BIZ.closure_names(date(2025, 4, 21))
    assert BIZ.closure_names(date(2025, 4, 28)) == ("Sechseläuten",)
    assert BIZ.elapsed(zrh(2025, 4, 28), zrh(2025, 4, 29)) == 3 * HOUR


def test_vip_runs_24_7_through_holidays() -> None:
    assert CONFIG.calendar_for(VIP) is ALWAYS
    christmas = zrh(2025, 12, 25, 10)
    assert ALWAYS.is_open(christmas) and not ALWAYS.is_holiday(date(2025, 12, 25))
    status = evaluate(ALWAYS, christmas, VIP.first_response, zrh(2025, 12, 25, 11))
    assert status.due == zrh(2025, 12, 25, 14)
    assert status.state == "ok" and status.remaining == 3 * HOUR
    saturday_night = zrh(2025, 12, 27, 23)
    assert due_at(ALWAYS, saturday_night, VIP.first_response) == zrh(2025, 12, 28, 3)


def test_extra_closed_days_whole_and_partial() -> None:
    cal = Calendar(
        "extra",
        hours=NINE_TO_SIX,
        subdivisions=["ZH"],
        extra_closed_days={
            date(2025, 3, 11): [],  # an empty entry closes nothing
            date(2025, 3, 12): [Closure("Betriebsausflug")],
            date(2025, 12, 24): [Closure("Heiligabend", start=12 * 60)],
        },
    )
    assert cal.is_open(zrh(2025, 3, 11, 12))
    assert not cal.is_open(zrh(2025, 3, 12, 12))
    assert cal.closure_names(date(2025, 3, 12)) == ("Betriebsausflug",)
    assert cal.is_open(zrh(2025, 12, 24, 11, 59)) and not cal.is_open(zrh(2025, 12, 24, 12))
    assert cal.add(zrh(2025, 12, 24, 11), 2 * HOUR) == zrh(2025, 12, 29, 10)


def test_extra_closed_days_from_toml(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").replace(
        "extra_closed_days = []",
        'extra_closed_days = [2025-03-11, { date = 2025-03-12, from = "12:00", until = "14:00" }]',
    )
    path = tmp_path / "sla.toml"
    path.write_text(text, encoding="utf-8")
    cal = load_sla_config(path).calendars["business"]
    assert not cal.is_open(zrh(2025, 3, 11, 10))
    assert cal.closure_names(date(2025, 3, 11)) == ("closed",)
    assert cal.elapsed(zrh(2025, 3, 12), zrh(2025, 3, 13)) == 7 * HOUR


# -- pauses and status ---------------------------------------------------------------------------


def test_feedback_needed_over_a_weekend() -> None:
    start = zrh(2025, 3, 7, 16)  # Friday
    pause: Pause = (zrh(2025, 3, 7, 17), zrh(2025, 3, 10, 11))  # waits for the customer
    target = STANDARD.first_response
    assert due_at(BIZ, start, target) == zrh(2025, 3, 12, 13)
    # 1 h Fri, paused until Mon 11:00, then 7 h Mon + 9 h Tue + 7 h Wed.
    assert due_at(BIZ, start, target, [pause]) == zrh(2025, 3, 12, 16)
    status = evaluate(BIZ, start, target, zrh(2025, 3, 11, 12), [pause])
    assert status.elapsed == 11 * HOUR
    assert status.remaining == 13 * HOUR
    assert status.state == "ok" and not status.paused


def test_open_pause_freezes_the_clock() -> None:
    start = zrh(2025, 3, 7, 16)
    pause: Pause = (zrh(2025, 3, 7, 17), None)
    assert due_at(BIZ, start, STANDARD.first_response, [pause]) is None
    # A pause starting after the due time does not matter.
    assert due_at(BIZ, start, HOUR, [pause]) == zrh(2025, 3, 7, 17)
    for now in (zrh(2025, 3, 10, 12), zrh(2025, 3, 20, 12)):
        status = evaluate(BIZ, start, STANDARD.first_response, now, [pause])
        assert status.paused and status.state == "ok"
        assert status.elapsed == HOUR and status.remaining == 23 * HOUR
    # Projected due date: as if the customer answered now (Mon 12:00): 6 + 9 + 8 h.
    status = evaluate(BIZ, start, STANDARD.first_response, zrh(2025, 3, 10, 12), [pause])
    assert status.due == zrh(2025, 3, 12, 17)


def test_overlapping_and_early_pauses_count_once() -> None:
    start = zrh(2025, 3, 10, 9)
    pauses: list[Pause] = [
        (zrh(2025, 3, 9, 9), zrh(2025, 3, 10, 10)),  # starts before the request
        (zrh(2025, 3, 10, 12), zrh(2025, 3, 10, 14)),
        (zrh(2025, 3, 10, 13), zrh(2025, 3, 10, 15)),
    ]
    assert counted_time(BIZ, start, zrh(2025, 3, 10, 18), pauses) == 5 * HOUR
    assert due_at(BIZ, start, 5 * HOUR, pauses) == zrh(2025, 3, 10, 18)


def test_warning_at_80_percent() -> None:
    start = zrh(2025, 6, 2, 10)
    target = VIP.first_response
    assert evaluate(ALWAYS, start, target, zrh(2025, 6, 2, 13, 11)).state == "ok"
    status = evaluate(ALWAYS, start, target, zrh(2025, 6, 2, 13, 12))
    assert status.state == "warning" and status.warns_at == zrh(2025, 6, 2, 13, 12)
    # Business time: 80 % of 24 h = 19 h 12 min = Mon 9 h + Tue 9 h + Wed 1 h 12 min.
    monday = zrh(2025, 3, 10, 9)
    status = evaluate(BIZ, monday, STANDARD.first_response, zrh(2025, 3, 12, 10, 12))
    assert status.state == "warning" and status.warns_at == zrh(2025, 3, 12, 10, 12)
    status = evaluate(BIZ, monday, STANDARD.first_response, zrh(2025, 3, 12, 10, 11))
    assert status.state == "ok"
    half = evaluate(BIZ, monday, STANDARD.first_response, zrh(2025, 3, 11, 12), warn_at=0.5)
    assert half.state == "warning"


def test_breach() -> None:
    start = zrh(2025, 6, 2, 10)
    at_due = evaluate(ALWAYS, start, VIP.first_response, zrh(2025, 6, 2, 14))
    assert at_due.state == "warning" and at_due.remaining == timedelta(0)
    late = evaluate(ALWAYS, start, VIP.first_response, zrh(2025, 6, 2, 14, 1))
    assert late.state == "breached"
    assert late.breached_at == zrh(2025, 6, 2, 14)
    assert late.remaining == -MINUTE
    # Business calendar: due Wed 18:00; overdue time only grows while open.
    wednesday = zrh(2025, 3, 12, 9)
    evening = evaluate(BIZ, wednesday, 9 * HOUR, zrh(2025, 3, 12, 20))
    assert evening.state == "breached" and evening.remaining == timedelta(0)
    assert evening.breached_at == zrh(2025, 3, 12, 18)
    next_day = evaluate(BIZ, wednesday, 9 * HOUR, zrh(2025, 3, 13, 10))
    assert next_day.state == "breached" and next_day.remaining == -HOUR


def test_met_and_late_answers() -> None:
    start = zrh(2025, 3, 7, 17, 59)
    target = STANDARD.first_response
    later = zrh(2025, 3, 20, 12)
    met = evaluate(BIZ, start, target, later, answered_at=zrh(2025, 3, 10, 10))
    assert met.state == "met" and met.breached_at is None
    assert met.elapsed == HOUR + MINUTE
    assert met.remaining == target - HOUR - MINUTE
    on_time = evaluate(BIZ, start, target, later, answered_at=zrh(2025, 3, 12, 14, 59))
    assert on_time.state == "met" and on_time.remaining == timedelta(0)
    late = evaluate(BIZ, start, target, later, answered_at=zrh(2025, 3, 12, 15, 59))
    assert late.state == "breached"
    assert late.breached_at == zrh(2025, 3, 12, 14, 59)
    assert late.remaining == -HOUR


def test_now_before_start_counts_as_start() -> None:
    start = zrh(2025, 3, 10, 10)
    status = evaluate(BIZ, start, HOUR, start - MINUTE)
    assert status.state == "ok" and status.remaining == HOUR


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 3, 10, 10)
    aware = zrh(2025, 3, 10, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        BIZ.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        BIZ.next_opening(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        BIZ.add(naive, HOUR)
    with pytest.raises(ValueError, match="timezone-aware"):
        BIZ.elapsed(aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(BIZ, aware, HOUR, [(naive, None)])
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(BIZ, aware, HOUR, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(BIZ, aware, HOUR, aware, answered_at=naive)


def test_bad_arguments() -> None:
    a = zrh(2025, 3, 10, 10)
    with pytest.raises(ValueError, match="before"):
        BIZ.elapsed(a, a - MINUTE)
    with pytest.raises(ValueError, match="negative"):
        BIZ.add(a, -MINUTE)
    with pytest.raises(ValueError, match="before it starts"):
        due_at(BIZ, a, HOUR, [(a, a - MINUTE)])
    with pytest.raises(ValueError, match="warn_at"):
        evaluate(BIZ, a, HOUR, a, warn_at=0)
    with pytest.raises(ValueError, match="answered_at"):
        evaluate(BIZ, a, HOUR, a, answered_at=a - MINUTE)


# -- configuration -------------------------------------------------------------------------------


def default_data() -> dict[str, Any]:
    with DEFAULT_CONFIG_PATH.open("rb") as fh:
        return tomllib.load(fh)


def test_default_plans() -> None:
    free, standard, vip = (CONFIG.plans[n] for n in ("free", "standard", "vip"))
    assert (free.first_response, standard.first_response, vip.first_response) == (
        48 * HOUR,
        24 * HOUR,
        4 * HOUR,
    )
    assert (free.resolution, standard.resolution, vip.resolution) == (
        90 * HOUR,
        45 * HOUR,
        24 * HOUR,
    )
    assert free.calendar == standard.calendar == "business" and vip.calendar == "always"
    assert not free.phone and standard.phone and vip.phone
    assert vip.personal_contact and not standard.personal_contact and not free.personal_contact
    assert vip.priority is Priority.VIP and standard.priority is free.priority is Priority.NORMAL
    assert {p.warn_at for p in CONFIG.plans.values()} == {0.8}
    assert CONFIG.plan_for(None) is free and CONFIG.plan_for("gold") is free
    assert CONFIG.plan_for("vip") is vip
    assert BIZ.subdivisions == ("ZH", "LU")


def test_load_from_path_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "sla.toml"
    path.write_text(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").replace('"4h"', '"30m"'))
    assert load_sla_config(path).plans["vip"].first_response == timedelta(minutes=30)
    path.write_text("plans = [", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_sla_config(path)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[key]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("plans.vip.first_response", "4 hours", "plans.vip.first_response"),
        ("plans.vip.first_response", "1d", "plans.vip.first_response"),
        ("plans.vip.resolution", 24, "plans.vip.resolution"),
        ("plans.free.resolution", _DELETE, "plans.free.resolution: missing"),
        ("plans.vip.calendar", "nope", "plans.vip.calendar"),
        ("plans.vip.priority", "gold", "plans.vip.priority"),
        ("plans.vip.warn_at", 1.5, "plans.vip.warn_at"),
        ("plans.vip.phone", "yes", "plans.vip.phone"),
        ("plans.vip.colour", "gold", "plans.vip.colour"),
        ("default_plan", "gold", "sla.default_plan"),
        ("plans", {}, "sla.plans"),
        ("calendars.business.hours.mon", ["9-18"], r"calendars.business.hours.mon\[0\]"),
        ("calendars.business.hours.mon", ["18:00-09:00"], r"calendars.business.hours.mon\[0\]"),
        ("calendars.business.hours.monday", ["09:00-18:00"], "calendars.business.hours.monday"),
        ("calendars.business.hours", {}, "calendars.business.hours"),
        ("calendars.business.timezone", "Mars/Olympus", "calendars.business.timezone"),
        ("calendars.business.subdivisions", ["XX"], "calendars.business.*subdivision"),
        ("calendars.business.subdivisions", "ZH", "calendars.business.subdivisions"),
        ("calendars.business.holiday_categories", ["bogus"], "calendars.business.*categor"),
        ("calendars.business.extra_closed_days", ["2025-12-24"], "extra_closed_days\\[0\\]"),
        (
            "calendars.business.extra_closed_rules",
            [{"name": "x", "month": 4, "weekday": "monday", "nth": 3}],
            r"extra_closed_rules\[0\].weekday",
        ),
        (
            "calendars.business.extra_closed_rules",
            [{"name": "x", "month": 13, "weekday": "mon", "nth": 3}],
            r"extra_closed_rules\[0\].month",
        ),
        ("calendars.always.hours", {}, "calendars.always.hours"),
    ],
)
def test_bad_config_names_the_key(key: str, value: Any, message: str) -> None:
    data = copy.deepcopy(default_data())
    _set(data, key, value)
    with pytest.raises(ValueError, match=message):
        parse_sla_config(data)


# -- exact boundaries: the opening minute is open, the closing minute is closed -----------------


@pytest.mark.parametrize(
    ("at", "opening"),
    [
        # An ordinary week (March 2025): Monday 10 to Friday 14.
        (zrh(2025, 3, 10, 9), zrh(2025, 3, 10, 9)),  # the opening minute itself
        (zrh(2025, 3, 10, 9) - TINY, zrh(2025, 3, 10, 9)),
        (zrh(2025, 3, 10, 0), zrh(2025, 3, 10, 9)),
        (zrh(2025, 3, 10, 18) - TINY, zrh(2025, 3, 10, 18) - TINY),  # still open
        (zrh(2025, 3, 10, 18), zrh(2025, 3, 11, 9)),  # closing minute: the next morning
        (zrh(2025, 3, 10, 23, 59), zrh(2025, 3, 11, 9)),
        (zrh(2025, 3, 14, 17, 59), zrh(2025, 3, 14, 17, 59)),
        (zrh(2025, 3, 14, 18), zrh(2025, 3, 17, 9)),  # Friday 18:00: Monday 09:00
        (zrh(2025, 3, 14, 18) + TINY, zrh(2025, 3, 17, 9)),
        (zrh(2025, 3, 15, 9), zrh(2025, 3, 17, 9)),  # Saturday opening minute: closed
        (zrh(2025, 3, 16, 23, 59), zrh(2025, 3, 17, 9)),
        # Christmas 2025: Wednesday 24th open (not a public holiday), Thu/Fri holidays.
        (zrh(2025, 12, 24, 17, 59), zrh(2025, 12, 24, 17, 59)),
        (zrh(2025, 12, 24, 18), zrh(2025, 12, 29, 9)),
        (zrh(2025, 12, 25, 9), zrh(2025, 12, 29, 9)),
        (zrh(2025, 12, 26, 17), zrh(2025, 12, 29, 9)),
        # New Year 2026 (Thu) and Berchtoldstag (Fri, LU): open again on Monday 5th.
        (zrh(2025, 12, 31, 18), zrh(2026, 1, 5, 9)),
        # Easter 2025: Good Friday to Easter Monday closed, open Tuesday.
        (zrh(2025, 4, 17, 18), zrh(2025, 4, 22, 9)),
        (zrh(2025, 4, 21, 12), zrh(2025, 4, 22, 9)),
        # Labour Day (Thu 1 May 2025, ZH): Wednesday evening to Friday morning.
        (zrh(2025, 4, 30, 18), zrh(2025, 5, 2, 9)),
        (zrh(2025, 5, 1, 9), zrh(2025, 5, 2, 9)),
        # Sechseläuten 2026 (Monday 20 April): open 09:00-12:00 only.
        (zrh(2026, 4, 20, 8), zrh(2026, 4, 20, 9)),
        (zrh(2026, 4, 20, 11, 59), zrh(2026, 4, 20, 11, 59)),
        (zrh(2026, 4, 20, 12) - TINY, zrh(2026, 4, 20, 12) - TINY),
        (zrh(2026, 4, 20, 12), zrh(2026, 4, 21, 9)),
        (zrh(2026, 4, 20, 17, 59), zrh(2026, 4, 21, 9)),
        # Sechseläuten 2025 moved to Monday 28 April (21 April was Easter Monday).
        (zrh(2025, 4, 28, 12), zrh(2025, 4, 29, 9)),
        (zrh(2025, 4, 25, 18), zrh(2025, 4, 28, 9)),
        # Across the spring DST switch (Sunday 30 March 2025): Monday 09:00 is UTC+2.
        (zrh(2025, 3, 28, 18), zrh(2025, 3, 31, 9)),
    ],
    ids=lambda value: f"{value:%a-%Y-%m-%d-%H:%M:%S.%f}",
)
def test_next_opening_at_exact_boundaries(at: datetime, opening: datetime) -> None:
    got = BIZ.next_opening(at)
    assert got == opening
    assert got.tzinfo is ZRH
    assert BIZ.is_open(got)
    assert BIZ.is_open(at) == (got == at)


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (zrh(2025, 3, 14, 9), True),
        (zrh(2025, 3, 14, 9) - TINY, False),
        (zrh(2025, 3, 14, 18) - TINY, True),
        (zrh(2025, 3, 14, 18), False),
        (zrh(2025, 12, 24, 9), True),  # the day before a holiday is an ordinary day
        (zrh(2025, 12, 25, 9), False),
        (zrh(2025, 12, 26, 17, 59), False),
        (zrh(2025, 12, 29, 9), True),  # the day after
        (zrh(2026, 4, 20, 9), True),  # Sechseläuten morning
        (zrh(2026, 4, 20, 11, 59), True),
        (zrh(2026, 4, 20, 12), False),  # the afternoon is closed from its first minute
        (zrh(2026, 4, 21, 12), True),  # Tuesday after it: an ordinary day
        (zrh(2025, 4, 28, 11, 59), True),
        (zrh(2025, 4, 28, 12), False),
    ],
    ids=lambda value: f"{value:%a-%Y-%m-%d-%H:%M:%S.%f}" if isinstance(value, datetime) else None,
)
def test_is_open_at_exact_boundaries(at: datetime, is_open: bool) -> None:
    assert BIZ.is_open(at) is is_open


def test_business_time_around_closing_and_opening_minutes() -> None:
    friday_18, monday_9 = zrh(2025, 3, 14, 18), zrh(2025, 3, 17, 9)
    assert BIZ.add(friday_18, timedelta(0)) == monday_9
    assert BIZ.add(friday_18, MINUTE) == monday_9 + MINUTE
    assert BIZ.add(friday_18 - MINUTE, MINUTE) == friday_18  # ends on the closing minute
    assert BIZ.elapsed(friday_18, monday_9) == timedelta(0)
    assert BIZ.elapsed(friday_18 - MINUTE, monday_9 + MINUTE) == 2 * MINUTE
    assert due_at(BIZ, friday_18, timedelta(0)) == monday_9
    assert counted_time(BIZ, friday_18, monday_9) == timedelta(0)
    # A full day's 9 hours from the opening minute end exactly at the closing minute.
    assert BIZ.add(zrh(2025, 3, 10, 9), 9 * HOUR) == zrh(2025, 3, 10, 18)
    assert BIZ.add(zrh(2025, 3, 10, 9), 9 * HOUR + TINY) == zrh(2025, 3, 11, 9) + TINY
    # Sechseläuten: three hours from its opening end at noon; one more runs into Tuesday.
    assert BIZ.add(zrh(2026, 4, 20, 9), 3 * HOUR) == zrh(2026, 4, 20, 12)
    assert BIZ.add(zrh(2026, 4, 20, 9), 4 * HOUR) == zrh(2026, 4, 21, 10)
    assert BIZ.elapsed(zrh(2026, 4, 20, 12), zrh(2026, 4, 21, 9)) == timedelta(0)
    # Before and after the Christmas holidays.
    assert BIZ.add(zrh(2025, 12, 24, 17), HOUR) == zrh(2025, 12, 24, 18)
    assert BIZ.add(zrh(2025, 12, 24, 17), HOUR + MINUTE) == zrh(2025, 12, 29, 9, 1)
    assert BIZ.elapsed(zrh(2025, 12, 24, 18), zrh(2025, 12, 29, 9)) == timedelta(0)


# -- a freshly parsed shipped config (no cache shared with other tests) -------------------------


def business() -> Calendar:
    """The shipped business calendar, parsed anew: its holidays and closures are worked out
    by this test, not taken from another test's cache."""
    return load_sla_config(None).calendars["business"]


def test_the_shipped_config_parses_to_these_plans_and_calendars() -> None:
    config = load_sla_config(None)
    assert config.default_plan == "free"
    assert {name: dataclasses.replace(plan, names={}) for name, plan in config.plans.items()} == {
        "free": Plan("free", 48 * HOUR, 90 * HOUR, "business", Priority.NORMAL, False, False, 0.8),
        "standard": Plan(
            "standard", 24 * HOUR, 45 * HOUR, "business", Priority.NORMAL, True, False, 0.8
        ),
        "vip": Plan("vip", 4 * HOUR, 24 * HOUR, "always", Priority.VIP, True, True, 0.8),
    }
    # Display names in every language (docs/i18n.md).
    for plan in config.plans.values():
        assert set(plan.names) == {"de", "fr", "it", "en"}, plan.name
    assert config.plans["vip"].label("fr") == "VIP"
    assert config.department_label("technical", "de") == "Technischer Support"
    assert config.department_label("billing", "fr") == "Comptabilité"
    assert config.department_label("billing", None) == "Billing"  # English, else the key
    assert config.department_label("sales", "it") == "sales"
    biz, always = config.calendars["business"], config.calendars["always"]
    assert (biz.name, biz.timezone, biz.always_open) == ("business", ZRH, False)
    assert (biz.country, biz.subdivisions, biz.holiday_categories, biz.language) == (
        "CH",
        ("ZH", "LU"),
        ("public",),
        "de",
    )
    assert biz.hours == (((540, 1080),),) * 5 + ((), ())
    assert biz.extra_closed_days == {}
    assert biz.extra_closed_rules == (ClosedRule(Closure("Sechseläuten", 720, 1440), 4, 0, 3, 7),)
    assert (always.name, always.timezone, always.always_open) == ("always", ZRH, True)
    assert repr(biz) == "Calendar('business')"


def test_holiday_names_are_german_and_merged_across_cantons() -> None:
    cal = business()
    assert cal.closure_names(date(2026, 12, 8)) == ("Mariä Empfängnis",)  # LU only
    assert cal.closure_names(date(2026, 8, 1)) == ("Nationalfeiertag",)
    # 2008: Ascension fell on Labour Day; ZH names both, LU only Ascension.
    assert cal.closure_names(date(2008, 5, 1)) == ("Auffahrt; Tag der Arbeit",)
    assert cal.closure_names(date(2026, 4, 20)) == ("Sechseläuten",)
    assert cal.closure_names(date(2026, 4, 21)) == ()
    plain = Calendar("plain", hours=NINE_TO_SIX, subdivisions=["ZH"])
    assert plain.closure_names(date(2026, 8, 1)) == ("Nationalfeiertag",)  # German by default
    english = Calendar("en", hours=NINE_TO_SIX, subdivisions=["ZH"], language="en_US")
    assert english.closure_names(date(2026, 8, 1)) == ("National Day",)
    national = Calendar("ch", hours=NINE_TO_SIX)  # no canton: national holidays only
    assert national.is_holiday(date(2026, 8, 1)) and not national.is_holiday(date(2026, 5, 1))
    assert ALWAYS.closure_names(date(2026, 8, 1)) == () and not ALWAYS.is_holiday(date(2026, 8, 1))


def test_fresh_boundaries_of_the_shipped_calendar() -> None:
    cal = business()
    assert cal.next_opening(zrh(2025, 3, 14, 18)) == zrh(2025, 3, 17, 9)
    assert cal.next_opening(zrh(2026, 4, 20, 12)) == zrh(2026, 4, 21, 9)
    assert cal.next_opening(zrh(2026, 4, 20, 11)) == zrh(2026, 4, 20, 11)
    assert cal.is_open(zrh(2026, 4, 20, 11, 59)) and not cal.is_open(zrh(2026, 4, 20, 12))
    # 2025: Sechseläuten moved from Easter Monday (21 April) to 28 April.
    assert cal.closure_names(date(2025, 4, 21)) == ("Ostermontag",)
    assert cal.closure_names(date(2025, 4, 28)) == ("Sechseläuten",)
    assert cal.elapsed(zrh(2025, 4, 28), zrh(2025, 4, 29)) == 3 * HOUR
    assert cal.add(zrh(2025, 12, 24, 17), HOUR + MINUTE) == zrh(2025, 12, 29, 9, 1)
    assert not cal.is_open(zrh(2026, 1, 2, 10))  # Berchtoldstag (LU)
    assert cal.is_open(zrh(2026, 1, 5, 9))


# -- yearly rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "weekday", "nth", "year", "expected"),
    [
        (4, 0, 3, 2026, date(2026, 4, 20)),  # Sechseläuten: third Monday of April
        (4, 0, 3, 2025, date(2025, 4, 21)),
        (1, 3, 1, 2026, date(2026, 1, 1)),  # the 1st is itself the weekday
        (1, 4, 1, 2026, date(2026, 1, 2)),
        (1, 2, 1, 2026, date(2026, 1, 7)),  # the weekday just passed on the 1st
        (9, 0, 2, 2026, date(2026, 9, 14)),
        (10, 6, 4, 2026, date(2026, 10, 25)),
        (5, 0, -1, 2026, date(2026, 5, 25)),  # last Monday of May
        (5, 6, -1, 2026, date(2026, 5, 31)),  # the last day is itself the weekday
        (2, 6, -1, 2026, date(2026, 2, 22)),
        (2, 6, -1, 2032, date(2032, 2, 29)),  # leap year
        (12, 4, -1, 2025, date(2025, 12, 26)),  # last Friday of December
        (12, 3, -1, 2026, date(2026, 12, 31)),
        (11, 3, 4, 2026, date(2026, 11, 26)),
    ],
)
def test_closed_rule_dates(month: int, weekday: int, nth: int, year: int, expected: date) -> None:
    rule = ClosedRule(Closure("x"), month, weekday, nth)
    assert rule.date_in(year) == expected


def test_a_rule_moved_by_a_holiday_may_cross_into_the_next_or_previous_year() -> None:
    cal = Calendar(
        "rules",
        hours=NINE_TO_SIX,
        subdivisions=["ZH"],
        extra_closed_rules=[
            # Last Friday of December; in 2025 that is St. Stephen's Day: a week later.
            ClosedRule(Closure("Jahresabschluss"), 12, 4, -1, 7),
            # First Thursday of January from 16:00; in 2026 that is New Year: a day earlier.
            ClosedRule(Closure("Neujahrsapéro", start=16 * 60), 1, 3, 1, -1),
            # Second Monday of March, never a holiday: no move.
            ClosedRule(Closure("Inventur"), 3, 0, 2, 7),
        ],
    )
    assert cal.closure_names(date(2025, 12, 26)) == ("Stephanstag",)
    assert cal.closure_names(date(2026, 1, 2)) == ("Jahresabschluss",)
    assert not cal.is_open(zrh(2026, 1, 2, 10))
    assert cal.closure_names(date(2025, 12, 31)) == ("Neujahrsapéro",)
    assert cal.is_open(zrh(2025, 12, 31, 15, 59)) and not cal.is_open(zrh(2025, 12, 31, 16))
    # 2026: the last Friday is Christmas; a week later is New Year 2027.
    assert cal.closure_names(date(2026, 12, 25)) == ("Weihnachten",)
    assert cal.closure_names(date(2027, 1, 1)) == ("Neujahrstag", "Jahresabschluss")
    assert cal.closure_names(date(2026, 3, 9)) == ("Inventur",)
    assert cal.closure_names(date(2026, 3, 16)) == ()
    assert cal.next_opening(zrh(2026, 3, 6, 18)) == zrh(2026, 3, 10, 9)


# -- hours: minutes, spans, midnight, DST ------------------------------------------------------


def test_split_days_with_minutes_and_a_partial_closure_in_the_afternoon() -> None:
    cal = Calendar(
        "split",
        hours={"tue": [(8 * 60 + 30, 12 * 60 + 15), (13 * 60, 17 * 60 + 30)]},
        country=None,
        extra_closed_days={date(2025, 3, 18): [Closure("Teamanlass", 14 * 60, 24 * 60)]},
    )
    tue = (2025, 3, 11)
    assert not cal.is_open(zrh(*tue, 8, 29)) and cal.is_open(zrh(*tue, 8, 30))
    assert cal.is_open(zrh(*tue, 12, 14)) and not cal.is_open(zrh(*tue, 12, 15))
    assert cal.next_opening(zrh(*tue, 12, 15)) == zrh(*tue, 13)
    assert cal.elapsed(zrh(*tue), zrh(*tue, 23)) == 3 * HOUR + 45 * MINUTE + 4 * HOUR + 30 * MINUTE
    # The closure from 14:00 leaves the morning whole and the afternoon one hour.
    closed = (2025, 3, 18)
    assert cal.is_open(zrh(*closed, 12)) and not cal.is_open(zrh(*closed, 12, 15))
    assert cal.is_open(zrh(*closed, 13, 59)) and not cal.is_open(zrh(*closed, 14))
    assert cal.elapsed(zrh(*closed), zrh(*closed, 23)) == 3 * HOUR + 45 * MINUTE + HOUR
    assert cal.next_opening(zrh(*closed, 14)) == zrh(2025, 3, 25, 8, 30)


def test_a_night_shift_across_midnight() -> None:
    cal = Calendar(
        "night", hours={"mon": [(22 * 60, 24 * 60)], "tue": [(0, 60)]}, country=None
    )
    mon, tue = (2025, 3, 10), (2025, 3, 11)
    assert cal.is_open(zrh(*mon, 23, 59)) and cal.is_open(zrh(*tue, 0, 0))
    assert not cal.is_open(zrh(*tue, 1))
    assert cal.next_opening(zrh(*mon, 23)) == zrh(*mon, 23)
    assert cal.next_opening(zrh(*tue, 0)) == zrh(*tue, 0)
    assert cal.add(zrh(*mon, 23, 30), HOUR) == zrh(*tue, 0, 30)
    assert cal.elapsed(zrh(*mon, 12), zrh(*tue, 12)) == 3 * HOUR
    assert cal.add(zrh(*tue, 1), MINUTE) == zrh(2025, 3, 17, 22, 1)


def test_a_span_lost_in_the_spring_dst_gap_does_not_open_the_desk() -> None:
    # On Sunday 30 March 2025 the clock jumps from 02:00 to 03:00: 02:00-03:00 does not exist.
    cal = Calendar("gap", hours={"sun": [(2 * 60, 3 * 60), (5 * 60, 6 * 60)]}, country=None)
    assert cal.next_opening(zrh(2025, 3, 30, 1)) == zrh(2025, 3, 30, 5)
    assert cal.elapsed(zrh(2025, 3, 30), zrh(2025, 3, 31)) == HOUR
    assert cal.next_opening(zrh(2025, 3, 23, 1)) == zrh(2025, 3, 23, 2)  # a week before


def test_hours_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError) as err:
        Calendar("c", hours={"monday": [(540, 1080)]})
    assert str(err.value) == (
        "calendars.c.hours.monday: not one of mon, tue, wed, thu, fri, sat, sun"
    )
    for bad in [(600, 600), (700, 600), (-1, 60), (1380, 1441)]:
        with pytest.raises(ValueError) as err:
            Calendar("c", hours={"tue": [bad]})
        assert str(err.value) == f"calendars.c.hours.tue: bad span {bad[0]}-{bad[1]} (minutes)"
    with pytest.raises(ValueError) as err:
        Calendar("c", hours={"wed": [(540, 720), (700, 1080)]})
    assert str(err.value) == "calendars.c.hours.wed: overlapping spans"
    with pytest.raises(ValueError) as err:
        Calendar("c", hours={})
    assert str(err.value) == "calendars.c.hours: no opening hours on any weekday"
    # The whole day, adjacent spans and three spans a day are fine.
    ok = Calendar(
        "ok",
        hours={"mon": [(0, 1440)], "tue": [(0, 60), (60, 120), (600, 660)]},
        country=None,
    )
    assert ok.hours[1] == ((0, 60), (60, 120), (600, 660))
    assert ok.elapsed(zrh(2025, 3, 10), zrh(2025, 3, 12)) == 24 * HOUR + 3 * HOUR
    # A 24/7 calendar never looks its holidays up, so its country is not checked.
    assert Calendar("always", always_open=True, country="XX").always_open


# -- the closed-days guard ------------------------------------------------------------------------


def test_a_calendar_closed_for_more_than_800_days_in_a_row_is_refused() -> None:
    every_day = {day: [(540, 1080)] for day in WEEKDAYS}
    first = date(2025, 1, 1)

    def closed_for(days: int) -> Calendar:
        closures = {first + timedelta(days=i): [Closure("Umbau")] for i in range(days)}
        return Calendar("umbau", hours=every_day, country=None, extra_closed_days=closures)

    before = zrh(2024, 12, 31, 18)  # the evening before the closure
    assert closed_for(800).next_opening(before) == datetime.combine(
        first + timedelta(days=800), datetime.min.time(), ZRH
    ) + 9 * HOUR
    with pytest.raises(ValueError) as err:
        closed_for(801).next_opening(before)
    assert str(err.value) == "calendars.umbau: closed for 800 days in a row"


# -- pauses at their boundaries --------------------------------------------------------------------


def test_pauses_in_any_order_overlapping_or_open_ended() -> None:
    cal = business()
    start = zrh(2025, 3, 10, 9)
    later = [
        (zrh(2025, 3, 10, 16), zrh(2025, 3, 10, 17)),
        (zrh(2025, 3, 10, 12), zrh(2025, 3, 10, 14)),
        (zrh(2025, 3, 10, 13), zrh(2025, 3, 10, 15)),
    ]
    # 9-12 and 15-16 and 17-18 count: 5 h.
    assert counted_time(cal, start, zrh(2025, 3, 10, 18), later) == 5 * HOUR
    assert due_at(cal, start, 5 * HOUR, later) == zrh(2025, 3, 10, 18)
    # A closed pause, then one still open that overlaps it: the clock stops at its start.
    open_ended: list[Pause] = [
        (zrh(2025, 3, 10, 10), zrh(2025, 3, 10, 12)),
        (zrh(2025, 3, 10, 11), None),
    ]
    assert due_at(cal, start, 2 * HOUR, open_ended) is None
    assert due_at(cal, start, HOUR, open_ended) == zrh(2025, 3, 10, 10)
    assert counted_time(cal, start, zrh(2025, 3, 11, 12), open_ended) == HOUR
    same_start: list[Pause] = [(zrh(2025, 3, 10, 10), None), (zrh(2025, 3, 10, 10), None)]
    assert counted_time(cal, start, zrh(2025, 3, 12), same_start) == HOUR
    # A pause of no time is allowed and changes nothing.
    instant: list[Pause] = [(zrh(2025, 3, 10, 10), zrh(2025, 3, 10, 10))]
    assert due_at(cal, start, 2 * HOUR, instant) == zrh(2025, 3, 10, 11)


def test_a_zero_target_is_due_when_the_clock_can_first_run() -> None:
    cal = business()
    monday_17 = zrh(2025, 3, 10, 17)
    # Paused from the start until closing time: nothing runs before Tuesday's opening.
    assert due_at(cal, monday_17, timedelta(0), [(monday_17, zrh(2025, 3, 10, 18))]) == zrh(
        2025, 3, 11, 9
    )
    # Paused from the start for half an hour.
    assert due_at(cal, monday_17, timedelta(0), [(monday_17, zrh(2025, 3, 10, 17, 30))]) == zrh(
        2025, 3, 10, 17, 30
    )
    due = due_at(cal, monday_17, HOUR)
    assert due == zrh(2025, 3, 10, 18) and due is not None and due.tzinfo is ZRH


def test_evaluate_at_the_edges() -> None:
    cal = business()
    start = zrh(2025, 3, 10, 9)
    # Answered at the very start: met.
    instant = evaluate(cal, start, HOUR, start, answered_at=start)
    assert instant.state == "met" and instant.paused is False and instant.elapsed == timedelta(0)
    # Answered while a pause is still open: the clock is no longer paused.
    answered = evaluate(
        cal, start, 4 * HOUR, zrh(2025, 3, 10, 12), [(zrh(2025, 3, 10, 10), None)],
        answered_at=zrh(2025, 3, 10, 11),
    )
    assert answered.state == "met" and answered.paused is False
    # A pause that ended exactly now, or starts exactly now, does not pause the clock now.
    now = zrh(2025, 3, 10, 12)
    ended = evaluate(cal, start, 4 * HOUR, now, [(zrh(2025, 3, 10, 10), now)])
    assert ended.paused is False and ended.elapsed == HOUR
    starting = evaluate(cal, start, 4 * HOUR, now, [(now, None)])
    assert starting.paused is False and starting.elapsed == 3 * HOUR
    running = evaluate(cal, start, 4 * HOUR, now, [(zrh(2025, 3, 10, 11), None)])
    assert running.paused is True and running.elapsed == 2 * HOUR
    # The warning time also waits for the pauses: 80 % of 4 h = 3 h 12 min, plus 1 h paused.
    paused_hour = [(zrh(2025, 3, 10, 10), zrh(2025, 3, 10, 11))]
    status = evaluate(cal, start, 4 * HOUR, now, paused_hour)
    assert status.warns_at == zrh(2025, 3, 10, 13, 12) and status.due == zrh(2025, 3, 10, 14)
    assert status.warns_at.tzinfo is ZRH and status.due.tzinfo is ZRH
    # warn_at may be 1 (warn only when due), not more.
    assert evaluate(cal, start, HOUR, start, warn_at=1).warns_at == zrh(2025, 3, 10, 10)
    with pytest.raises(ValueError) as err:
        evaluate(cal, start, HOUR, start, warn_at=1.5)
    assert str(err.value) == "warn_at must be in (0, 1], got 1.5"
    with pytest.raises(ValueError) as err:
        evaluate(cal, start, -MINUTE, start)
    assert str(err.value) == "target must not be negative, got -1 day, 23:59:00"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n, a: BIZ.is_open(n), "dt must be timezone-aware, got naive {n}"),
        (lambda n, a: BIZ.next_opening(n), "dt must be timezone-aware, got naive {n}"),
        (lambda n, a: BIZ.add(n, HOUR), "start must be timezone-aware, got naive {n}"),
        (lambda n, a: BIZ.elapsed(n, a), "a must be timezone-aware, got naive {n}"),
        (lambda n, a: BIZ.elapsed(a, n), "b must be timezone-aware, got naive {n}"),
        (lambda n, a: due_at(BIZ, n, HOUR), "start must be timezone-aware, got naive {n}"),
        (
            lambda n, a: due_at(BIZ, a, HOUR, [(a, None), (n, None)]),
            "pauses[1] start must be timezone-aware, got naive {n}",
        ),
        (
            lambda n, a: due_at(BIZ, a, HOUR, [(a, n)]),
            "pauses[0] end must be timezone-aware, got naive {n}",
        ),
        (lambda n, a: counted_time(BIZ, n, a), "start must be timezone-aware, got naive {n}"),
        (lambda n, a: counted_time(BIZ, a, n), "end must be timezone-aware, got naive {n}"),
        (lambda n, a: evaluate(BIZ, n, HOUR, a), "start must be timezone-aware, got naive {n}"),
        (lambda n, a: evaluate(BIZ, a, HOUR, n), "now must be timezone-aware, got naive {n}"),
        (
            lambda n, a: evaluate(BIZ, a, HOUR, a, answered_at=n),
            "answered_at must be timezone-aware, got naive {n}",
        ),
        (lambda n, a: BIZ.is_open(n.date()), "dt must be a datetime, got date"),
    ],
)
def test_argument_errors_name_the_argument(call: Any, message: str) -> None:
    naive, aware = datetime(2025, 3, 10, 10), zrh(2025, 3, 10, 10)
    with pytest.raises((ValueError, TypeError)) as err:
        call(naive, aware)
    assert str(err.value) == message.format(n=naive.isoformat())


def test_counted_time_refuses_an_end_before_the_start() -> None:
    a = zrh(2025, 3, 10, 10)
    with pytest.raises(ValueError) as err:
        counted_time(BIZ, a, a - MINUTE)
    assert str(err.value) == f"end ({(a - MINUTE).isoformat()}) is before start ({a.isoformat()})"


# -- configuration: what is read, and every error's exact words ---------------------------------


def parse_with(changes: dict[str, Any]) -> Any:
    data = copy.deepcopy(default_data())
    for key, value in changes.items():
        _set(data, key, value)
    return parse_sla_config(data)


def test_calendar_settings_and_their_defaults() -> None:
    minimal = {"hours": {"mon": ["08:30-12:00", "13:00-24:00"]}}
    cal = parse_with({"calendars.business": minimal}).calendars["business"]
    assert (cal.timezone, cal.country, cal.subdivisions) == (ZRH, "CH", ())
    assert (cal.holiday_categories, cal.language) == (("public",), "de")
    assert cal.hours[0] == ((510, 720), (780, 1440))
    assert (cal.extra_closed_days, cal.extra_closed_rules) == ({}, ())
    assert cal.closure_names(date(2026, 8, 1)) == ("Nationalfeiertag",)
    table = {
        "timezone": "America/New_York",
        "country": "US",
        "subdivisions": ["NY"],
        "holiday_categories": ["public"],
        "language": "en_US",
        "always_open": False,
        "hours": {"fri": ["09:00-17:00"]},
        "extra_closed_days": [
            date(2026, 1, 5),
            {"date": date(2026, 1, 6), "until": "12:00"},
            {"date": date(2026, 1, 7), "name": "Retreat", "from": "15:30", "until": "16:45"},
        ],
        "extra_closed_rules": [
            {"month": 3, "weekday": "fri", "nth": -1},
            {"name": "Picnic", "month": 6, "weekday": "fri", "nth": 2, "until": "13:00",
             "move_days_if_holiday": 7},
        ],
    }
    cal = parse_with({"calendars.business": table}).calendars["business"]
    assert (cal.timezone, cal.country, cal.subdivisions) == (
        ZoneInfo("America/New_York"), "US", ("NY",)
    )
    assert cal.language == "en_US" and not cal.always_open
    assert cal.extra_closed_days == {
        date(2026, 1, 5): (Closure("closed"),),
        date(2026, 1, 6): (Closure("closed", 0, 720),),
        date(2026, 1, 7): (Closure("Retreat", 930, 1005),),
    }
    assert cal.extra_closed_rules == (
        ClosedRule(Closure("rule 0"), 3, 4, -1, 0),
        ClosedRule(Closure("Picnic", 0, 780), 6, 4, 2, 7),
    )
    assert cal.closure_names(date(2026, 7, 3)) == ("Independence Day (observed)",)
    always = parse_with({"calendars.always": {"always_open": True}}).calendars["always"]
    assert (always.name, always.timezone, always.always_open) == ("always", ZRH, True)
    utc = parse_with({"calendars.always": {"always_open": True, "timezone": "UTC"}})
    assert utc.calendars["always"].timezone == ZoneInfo("UTC")


def test_plan_settings_and_their_defaults() -> None:
    plan = {
        "first_response": "1h30m15s",
        "resolution": "90m",
        "calendar": "always",
        "priority": "urgent",
        "phone": False,
        "personal_contact": True,
    }
    config = parse_with({"plans.vip": plan, "default_plan": "vip"})
    assert config.plans["vip"] == Plan(
        "vip",
        timedelta(hours=1, minutes=30, seconds=15),
        timedelta(minutes=90),
        "always",
        Priority.URGENT,
        False,
        True,
        0.8,
    )
    assert config.default_plan == "vip" and config.plan_for(None).name == "vip"
    assert parse_with({"plans.vip.warn_at": 1}).plans["vip"].warn_at == 1.0
    assert parse_with({"plans.vip.warn_at": 0.5}).plans["vip"].warn_at == 0.5


B = "calendars.business"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"colour": 1},
            "sla.colour: unknown key (allowed: calendars, default_plan, departments, plans)",
        ),
        # Names per language (docs/i18n.md).
        ({"plans.vip.names": "VIP"}, "plans.vip.names: expected a table of names by language"),
        (
            {"plans.vip.names.es": "VIP"},
            "plans.vip.names.es: not a language (one of de, fr, it, en)",
        ),
        ({"plans.vip.names.de": ""}, "plans.vip.names.de: expected a name of 1 to 60 characters"),
        ({"plans.vip.names.de": 1}, "plans.vip.names.de: expected a name of 1 to 60 characters"),
        ({"departments": 1}, "sla.departments: expected a table"),
        ({"departments.technical": 1}, "departments.technical: expected a table"),
        (
            {"departments.technical.colour": 1},
            "departments.technical.colour: unknown key (allowed: names)",
        ),
        (
            {"departments.billing.names.xx": "Billing"},
            "departments.billing.names.xx: not a language (one of de, fr, it, en)",
        ),
        ({"calendars": []}, "sla.calendars: expected dict, got []"),
        ({"plans": {}}, "sla.plans: at least one plan is needed"),
        ({"plans": 1}, "sla.plans: expected dict, got 1"),
        ({"default_plan": 1}, "sla.default_plan: expected str, got 1"),
        ({"default_plan": "gold"}, "sla.default_plan: no plan 'gold' (have: free, standard, vip)"),
        ({"plans.vip": 1}, "plans.vip: expected a table"),
        ({"plans.vip.first_response": 4}, "plans.vip.first_response: expected str, got 4"),
        (
            {"plans.vip.resolution": "1d"},
            "plans.vip.resolution: expected a duration like '48h', '90m' or '1h30m', got '1d'",
        ),
        (
            {"plans.vip.first_response": ""},
            "plans.vip.first_response: expected a duration like '48h', '90m' or '1h30m', got ''",
        ),
        (
            {"plans.vip.calendar": "nope"},
            "plans.vip.calendar: no calendar 'nope' (have: business, always)",
        ),
        ({"plans.vip.calendar": 1}, "plans.vip.calendar: expected str, got 1"),
        (
            {"plans.vip.priority": "gold"},
            "plans.vip.priority: expected one of urgent, vip, normal, got 'gold'",
        ),
        ({"plans.vip.priority": 1}, "plans.vip.priority: expected str, got 1"),
        ({"plans.vip.phone": "yes"}, "plans.vip.phone: expected bool, got 'yes'"),
        ({"plans.vip.personal_contact": 1}, "plans.vip.personal_contact: expected bool, got 1"),
        ({"plans.vip.warn_at": 0}, "plans.vip.warn_at: expected a number in (0, 1], got 0"),
        ({"plans.vip.warn_at": 1.01}, "plans.vip.warn_at: expected a number in (0, 1], got 1.01"),
        ({"plans.vip.warn_at": True}, "plans.vip.warn_at: expected a number in (0, 1], got True"),
        ({"plans.vip.warn_at": "0.5"}, "plans.vip.warn_at: expected a number in (0, 1], got '0.5'"),
        (
            {"plans.vip.colour": 1},
            "plans.vip.colour: unknown key (allowed: calendar, first_response, names,"
            " offer_ticket_after_minutes, personal_contact, phone, priority, resolution,"
            " warn_at)",
        ),
        (
            {"plans.vip.offer_ticket_after_minutes": -1},
            "plans.vip.offer_ticket_after_minutes: expected 0..1440, got -1",
        ),
        (
            {"plans.vip.offer_ticket_after_minutes": True},
            "plans.vip.offer_ticket_after_minutes: expected 0..1440, got True",
        ),
        ({B: 1}, f"{B}: expected a table"),
        (
            {f"{B}.colour": 1},
            f"{B}.colour: unknown key (allowed: always_open, country, extra_closed_days,"
            " extra_closed_rules, holiday_categories, hours, language, subdivisions, timezone)",
        ),
        ({f"{B}.always_open": "no"}, f"{B}.always_open: expected bool, got 'no'"),
        ({f"{B}.hours": []}, f"{B}.hours: expected dict, got []"),
        ({f"{B}.hours": _DELETE}, f"{B}.hours: missing"),
        (
            {f"{B}.hours.monday": []},
            f"{B}.hours.monday: unknown key (allowed: fri, mon, sat, sun, thu, tue, wed)",
        ),
        ({f"{B}.hours.mon": "09:00-18:00"}, f"{B}.hours.mon: expected a list like ['09:00-18:00']"),
        ({f"{B}.hours.mon": [9]}, f"{B}.hours.mon[0]: expected 'HH:MM-HH:MM', got 9"),
        (
            {f"{B}.hours.mon": ["09:00-12:00-13:00"]},
            f"{B}.hours.mon[0]: expected 'HH:MM-HH:MM', got '09:00-12:00-13:00'",
        ),
        (
            {f"{B}.hours.mon": ["09:00-12:00", "9-18"]},
            f"{B}.hours.mon[1]: expected a time 'HH:MM' (00:00-24:00), got '9'",
        ),
        (
            {f"{B}.hours.mon": ["09:00-24:30"]},
            f"{B}.hours.mon[0]: expected a time 'HH:MM' (00:00-24:00), got '24:30'",
        ),
        (
            {f"{B}.hours.mon": ["09:00-25:00"]},
            f"{B}.hours.mon[0]: expected a time 'HH:MM' (00:00-24:00), got '25:00'",
        ),
        (
            {f"{B}.hours.mon": ["12:00-12:00"]},
            f"{B}.hours.mon[0]: opening '12:00-12:00' must end after it starts",
        ),
        ({f"{B}.country": 1}, f"{B}.country: expected str, got 1"),
        ({f"{B}.subdivisions": "ZH"}, f"{B}.subdivisions: expected a list of strings, got 'ZH'"),
        ({f"{B}.subdivisions": [1]}, f"{B}.subdivisions: expected a list of strings, got [1]"),
        (
            {f"{B}.holiday_categories": []},
            f"{B}.holiday_categories: expected a list of strings, got []",
        ),
        (
            {f"{B}.holiday_categories": "public"},
            f"{B}.holiday_categories: expected a list of strings, got 'public'",
        ),
        (
            {f"{B}.holiday_categories": [1]},
            f"{B}.holiday_categories: expected a list of strings, got [1]",
        ),
        ({f"{B}.language": 1}, f"{B}.language: expected str, got 1"),
        ({f"{B}.timezone": 1}, f"{B}.timezone: expected str, got 1"),
        ({f"{B}.timezone": "Mars/Olympus"}, f"{B}.timezone: unknown zone 'Mars/Olympus'"),
        ({f"{B}.extra_closed_days": {}}, f"{B}.extra_closed_days: expected a list"),
        (
            {f"{B}.extra_closed_days": ["2025-12-24"]},
            f"{B}.extra_closed_days[0]: expected a date (2025-12-24) or a table with 'date'",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": date(2025, 12, 24), "to": "12:00"}]},
            f"{B}.extra_closed_days[0].to: unknown key (allowed: date, from, name, until)",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": "2025-12-24"}]},
            f"{B}.extra_closed_days[0].date: expected a date like 2025-12-24, got '2025-12-24'",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": datetime(2025, 12, 24, 12)}]},
            f"{B}.extra_closed_days[0].date: expected a date like 2025-12-24, got"
            " datetime.datetime(2025, 12, 24, 12, 0)",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": date(2025, 12, 24), "name": 1}]},
            f"{B}.extra_closed_days[0].name: expected str, got 1",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": date(2025, 12, 24), "from": 12}]},
            f"{B}.extra_closed_days[0].from: expected a time 'HH:MM' (00:00-24:00), got 12",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": date(2025, 12, 24), "until": "7"}]},
            f"{B}.extra_closed_days[0].until: expected a time 'HH:MM' (00:00-24:00), got '7'",
        ),
        (
            {f"{B}.extra_closed_days": [{"date": date(2025, 12, 24), "from": "12:00",
                                         "until": "12:00"}]},
            f"{B}.extra_closed_days[0]: 'from' must be before 'until'",
        ),
        ({f"{B}.extra_closed_rules": {}}, f"{B}.extra_closed_rules: expected a list of tables"),
        ({f"{B}.extra_closed_rules": [1]}, f"{B}.extra_closed_rules[0]: expected a table"),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": 3, "day": 1}]},
            f"{B}.extra_closed_rules[0].day: unknown key (allowed: from, month,"
            " move_days_if_holiday, name, nth, until, weekday)",
        ),
        (
            {f"{B}.extra_closed_rules": [{"weekday": "mon", "nth": 3}]},
            f"{B}.extra_closed_rules[0].month: missing",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 0, "weekday": "mon", "nth": 3}]},
            f"{B}.extra_closed_rules[0].month: expected 1-12, got 0",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 13, "weekday": "mon", "nth": 3}]},
            f"{B}.extra_closed_rules[0].month: expected 1-12, got 13",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": 0, "nth": 3}]},
            f"{B}.extra_closed_rules[0].weekday: expected str, got 0",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "monday", "nth": 3}]},
            f"{B}.extra_closed_rules[0].weekday: expected one of mon, tue, wed, thu, fri, sat,"
            " sun, got 'monday'",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": "3"}]},
            f"{B}.extra_closed_rules[0].nth: expected int, got '3'",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": 5}]},
            f"{B}.extra_closed_rules[0].nth: expected 1-4 or -1 (last), got 5",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": 0}]},
            f"{B}.extra_closed_rules[0].nth: expected 1-4 or -1 (last), got 0",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": -2}]},
            f"{B}.extra_closed_rules[0].nth: expected 1-4 or -1 (last), got -2",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": 1,
                                          "move_days_if_holiday": 1.5}]},
            f"{B}.extra_closed_rules[0].move_days_if_holiday: expected int, got 1.5",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": 1,
                                          "move_days_if_holiday": True}]},
            f"{B}.extra_closed_rules[0].move_days_if_holiday: expected int, got True",
        ),
        (
            {f"{B}.extra_closed_rules": [{"month": 4, "weekday": "mon", "nth": 1, "from": "x"}]},
            f"{B}.extra_closed_rules[0].from: expected a time 'HH:MM' (00:00-24:00), got 'x'",
        ),
        (
            {"calendars.always": {"always_open": True, "timezone": 1}},
            "calendars.always.timezone: expected str, got 1",
        ),
        (
            {"calendars.always": {"always_open": True, "hours": {}}},
            "calendars.always.hours: unknown key (allowed: always_open, timezone)",
        ),
    ],
)
def test_config_errors_in_exact_words(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_with(changes)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("hours", "minutes"),
    [(["00:00-00:01"], (0, 1)), (["23:59-24:00"], (1439, 1440)), (["07:05-19:55"], (425, 1195))],
)
def test_times_of_day_are_read_to_the_minute(hours: list[str], minutes: tuple[int, int]) -> None:
    cal = parse_with({f"{B}.hours": {"sat": hours}}).calendars["business"]
    assert cal.hours[5] == (minutes,)


def test_rules_for_january_and_december_and_a_config_without_departments() -> None:
    rules = [
        {"name": "Jahresstart", "month": 1, "weekday": "mon", "nth": 1},
        {"name": "Jahresende", "month": 12, "weekday": "fri", "nth": -1},
    ]
    config = parse_with({f"{B}.extra_closed_rules": rules, "departments": _DELETE})
    cal = config.calendars["business"]
    assert [r.month for r in cal.extra_closed_rules] == [1, 12]
    assert cal.closure_names(date(2026, 1, 5)) == ("Jahresstart",)
    assert cal.closure_names(date(2026, 12, 25)) == ("Weihnachten", "Jahresende")
    assert config.departments == {}
    assert config.department_label("technical", "de") == "technical"


def test_plan_names_by_language() -> None:
    names = {"de": "Gratis", "fr": "Gratuit", "en": "Free"}
    config = parse_with({"plans.free.names": names})
    free = config.plans["free"]
    assert (free.label("de"), free.label("fr"), free.label("it"), free.label(None)) == (
        "Gratis",
        "Gratuit",
        "Free",
        "Free",
    )
    bare = parse_with({"plans.free.names": _DELETE}).plans["free"]
    assert bare.label("de") == "free"


def test_a_time_zone_that_gives_no_offset_is_naive() -> None:
    class NoOffset(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta | None:
            return None

    odd = datetime(2025, 3, 10, 10, tzinfo=NoOffset())
    with pytest.raises(ValueError) as err:
        BIZ.is_open(odd)
    assert str(err.value) == f"dt must be timezone-aware, got naive {odd.isoformat()}"


def test_800_closed_days_are_allowed_when_the_clock_starts_inside_them() -> None:
    every_day = {day: [(540, 1080)] for day in WEEKDAYS}
    first = date(2025, 1, 1)
    closures = {first + timedelta(days=i): [Closure("Umbau")] for i in range(800)}
    cal = Calendar("umbau", hours=every_day, country=None, extra_closed_days=closures)
    reopening = zrh(2027, 3, 12, 9)  # 1 January 2025 + 800 days
    assert first + timedelta(days=800) == reopening.date()
    assert cal.next_opening(zrh(2025, 1, 2, 12)) == reopening


def test_a_pause_left_open_and_one_closed_from_the_same_instant() -> None:
    start, ten = zrh(2025, 3, 10, 9), zrh(2025, 3, 10, 10)
    pauses: list[Pause] = [(ten, None), (ten, zrh(2025, 3, 10, 11))]
    assert counted_time(business(), start, zrh(2025, 3, 12), pauses) == HOUR
    assert due_at(business(), start, 2 * HOUR, pauses) is None
