"""SLA clocks: calendar arithmetic, Swiss holidays (ZH + LU), pauses, plan config."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.sla import (
    DEFAULT_CONFIG_PATH,
    WEEKDAYS,
    Calendar,
    Closure,
    Pause,
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
