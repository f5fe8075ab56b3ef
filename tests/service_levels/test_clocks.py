"""SLA clocks of chats and tickets (chatserver.service_levels.clocks): pure, no I/O.

Due times are checked against the shipped plans: "standard" (24 h first response, 45 h
resolution, business hours Mon-Fri 09:00-18:00 Zurich), "vip" (4 h / 24 h, 24/7) and the
default "free" (48 h / 90 h, business hours); warnings at 80 % of the target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chatserver.service_levels.calendar import load_sla_config
from chatserver.service_levels.clocks import ServiceLevels, TicketClocks, clock_state

ZRH = ZoneInfo("Europe/Zurich")
LEVELS = ServiceLevels(load_sla_config(None))
HOUR = 3600.0


def zrh(month: int, day: int, hour: int, minute: int = 0) -> float:
    """A Unix time in November/December 2026, from Zurich wall-clock time (UTC+1)."""
    return datetime(2026, month, day, hour, minute, tzinfo=ZRH).timestamp()


MONDAY_10 = zrh(11, 23, 10)  # Monday 23 November 2026, 10:00: no holiday that week


def operator_reply(ts: float, *, internal: bool = False) -> dict[str, Any]:
    return {
        "kind": "reply",
        "ts": ts,
        "body": {"text": "Grüezi"},
        "actor": {"type": "operator", "id": "o_anna", "name": "Anna"},
        "internal": internal,
    }


def customer_reply(ts: float) -> dict[str, Any]:
    return {
        "kind": "reply",
        "ts": ts,
        "body": {"text": "Danke"},
        "actor": {"type": "visitor", "id": "s_1", "name": "Kunde"},
        "internal": False,
    }


def state(ts: float, before: str, after: str) -> dict[str, Any]:
    return {
        "kind": "state",
        "ts": ts,
        "body": {"from": before, "to": after},
        "actor": {"type": "operator", "id": "o_anna", "name": "Anna"},
        "internal": False,
    }


CREATED = {
    "kind": "created",
    "ts": MONDAY_10,
    "body": {"subject": "Drucker"},
    "actor": {"type": "visitor", "id": "s_1", "name": "Kunde"},
    "internal": False,
}


# -- one clock's state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "warn", "done_at", "now", "paused", "expected"),
    [
        (100.0, 80.0, None, 50.0, False, "ok"),
        (100.0, 80.0, None, 79.9, False, "ok"),
        (100.0, 80.0, None, 80.0, False, "warning"),  # the warning minute itself warns
        (100.0, 80.0, None, 100.0, False, "warning"),  # due, not yet late
        (100.0, 80.0, None, 100.1, False, "breached"),
        (100.0, None, None, 99.0, False, "ok"),  # no warning time: ok until late
        (100.0, None, None, 101.0, False, "breached"),
        (100.0, 80.0, 100.0, 500.0, False, "met"),  # answered exactly when due
        (100.0, 80.0, 100.1, 500.0, False, "breached"),
        (100.0, 80.0, 20.0, 90.0, True, "met"),  # done wins over paused
        (None, None, 5000.0, 9000.0, False, "met"),  # answered while the clock had no due
        (None, None, None, 500.0, False, "paused"),  # no due time: the clock is stopped
        (100.0, 80.0, None, 500.0, True, "paused"),  # paused wins over late
    ],
)
def test_clock_state_boundaries(
    due: float | None,
    warn: float | None,
    done_at: float | None,
    now: float,
    paused: bool,
    expected: str,
) -> None:
    assert clock_state(due, warn, done_at, now, paused) == expected


def test_describe_is_what_the_console_shows() -> None:
    assert ServiceLevels.describe(100.0, 80.0, None, 90.0, False) == {
        "due": 100.0,
        "warns_at": 80.0,
        "done_at": None,
        "state": "warning",
    }
    assert ServiceLevels.describe(100.0, 80.0, None, 90.0, True)["state"] == "paused"
    assert LEVELS.describe(None, None, 7.0, 90.0, True) == {
        "due": None,
        "warns_at": None,
        "done_at": 7.0,
        "state": "met",
    }


# -- chats ---------------------------------------------------------------------------------------


def test_chat_due_in_business_hours_with_a_warning_at_80_percent() -> None:
    # 24 h from Monday 10:00: Mon 8 h + Tue 9 h + Wed 7 h -> Wednesday 16:00.
    # 80 % = 19 h 12 min: Mon 8 h + Tue 9 h + Wed 2 h 12 min -> Wednesday 11:12.
    assert LEVELS.chat_due("standard", MONDAY_10) == (zrh(11, 25, 16), zrh(11, 25, 11, 12))
    # Free (also the plan of visitors without one, or with an unknown plan): 48 h.
    free = (zrh(11, 30, 13), zrh(11, 27, 12, 24))
    assert LEVELS.chat_due("free", MONDAY_10) == free
    assert LEVELS.chat_due(None, MONDAY_10) == free
    assert LEVELS.chat_due("no-such-plan", MONDAY_10) == free


def test_chat_due_on_the_24_7_plan_is_plain_time() -> None:
    saturday_night = zrh(11, 28, 23)
    due, warn = LEVELS.chat_due("vip", saturday_night)
    assert (due, warn) == (saturday_night + 4 * HOUR, saturday_night + 3.2 * HOUR)


def test_callback_target_is_the_shorter_of_the_callback_target_and_the_plan() -> None:
    # Default callback target: 4 h, shorter than the standard plan's 24 h.
    assert LEVELS.callback_target == timedelta(hours=4)
    assert LEVELS.chat_due("standard", MONDAY_10, callback=True) == (
        zrh(11, 23, 14),
        zrh(11, 23, 13, 12),
    )
    # A callback target longer than the plan's first response: the plan's wins.
    slow = ServiceLevels(load_sla_config(None), callback_target=timedelta(hours=100))
    assert slow.chat_due("standard", MONDAY_10, callback=True) == LEVELS.chat_due(
        "standard", MONDAY_10
    )
    two_hours = ServiceLevels(load_sla_config(None), callback_target=timedelta(hours=2))
    due, warn = two_hours.chat_due("vip", MONDAY_10, callback=True)
    assert (due, warn) == (MONDAY_10 + 2 * HOUR, MONDAY_10 + 1.6 * HOUR)


def test_resolution_due() -> None:
    # 45 h from Monday 10:00: 8 + 9 + 9 + 9 + 9 = 44 h by Friday 18:00, then Monday 10:00.
    # 80 % = 36 h: 35 h by Thursday 18:00, then Friday 10:00.
    assert LEVELS.resolution_due("standard", MONDAY_10) == (zrh(11, 30, 10), zrh(11, 27, 10))
    assert LEVELS.resolution_due("vip", MONDAY_10) == (
        MONDAY_10 + 24 * HOUR,
        MONDAY_10 + 0.8 * 24 * HOUR,
    )


def test_plan_lookup_falls_back_to_the_default_plan() -> None:
    assert LEVELS.plan("vip").name == "vip"
    assert LEVELS.plan(None).name == "free"
    assert LEVELS.plan("gold").name == "free"


# -- tickets -------------------------------------------------------------------------------------


def test_a_new_ticket_has_both_clocks_running() -> None:
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", [CREATED])
    assert clocks == TicketClocks(
        plan="standard",
        first_due=zrh(11, 25, 16),
        first_warn=zrh(11, 25, 11, 12),
        resolution_due=zrh(11, 30, 10),
        resolution_warn=zrh(11, 27, 10),
        first_response_at=None,
        resolved_at=None,
        paused_since=None,
    )


def test_only_a_public_operator_reply_is_the_first_response() -> None:
    events = [
        CREATED,
        customer_reply(MONDAY_10 + 0.5 * HOUR),
        operator_reply(MONDAY_10 + HOUR, internal=True),  # a note among operators
        operator_reply(MONDAY_10 + 2 * HOUR),
        operator_reply(MONDAY_10 + 3 * HOUR),
    ]
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "email", events)
    assert clocks.first_response_at == MONDAY_10 + 2 * HOUR
    unanswered = LEVELS.ticket_clocks("standard", MONDAY_10, "email", events[:3])
    assert unanswered.first_response_at is None
    # A reply event without the "internal" key is public.
    public = {k: v for k, v in operator_reply(MONDAY_10 + HOUR).items() if k != "internal"}
    answered = LEVELS.ticket_clocks("standard", MONDAY_10, "form", [CREATED, public])
    assert answered.first_response_at == MONDAY_10 + HOUR


def test_a_ticket_escalated_from_a_chat_was_answered_in_the_chat() -> None:
    clocks = LEVELS.ticket_clocks(None, MONDAY_10, "chat", [CREATED])
    assert clocks.plan == "free"
    assert clocks.first_response_at == MONDAY_10
    later = LEVELS.ticket_clocks(None, MONDAY_10, "chat", [CREATED, operator_reply(zrh(11, 24, 9))])
    assert later.first_response_at == MONDAY_10


def test_feedback_needed_pauses_both_clocks() -> None:
    # Waiting for the customer from Monday 12:00 to Tuesday 12:00: 9 business hours.
    history = [
        CREATED,
        state(zrh(11, 23, 12), "open", "feedback_needed"),
        state(zrh(11, 24, 12), "feedback_needed", "in_progress"),
    ]
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history)
    assert (clocks.first_due, clocks.first_warn) == (zrh(11, 26, 16), zrh(11, 26, 11, 12))
    assert (clocks.resolution_due, clocks.resolution_warn) == (zrh(12, 1, 10), zrh(11, 30, 10))
    assert clocks.paused_since is None
    # While it still waits, nothing is due.
    waiting = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history[:2])
    assert waiting.paused_since == zrh(11, 23, 12)
    assert (waiting.first_due, waiting.first_warn) == (None, None)
    assert (waiting.resolution_due, waiting.resolution_warn) == (None, None)


def test_two_pauses_add_up_and_other_state_changes_do_not_pause() -> None:
    history = [
        CREATED,
        state(zrh(11, 23, 11), "open", "in_progress"),
        state(zrh(11, 23, 12), "in_progress", "feedback_needed"),
        state(zrh(11, 23, 15), "feedback_needed", "answered"),  # 3 h paused
        state(zrh(11, 23, 16), "answered", "feedback_needed"),
        state(zrh(11, 24, 10), "feedback_needed", "open"),  # 2 + 1 = 3 h paused
    ]
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history)
    # Six business hours later than without pauses: Wednesday 16:00 -> Thursday 13:00.
    assert clocks.first_due == zrh(11, 26, 13)
    assert clocks.paused_since is None
    only_progress = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history[:2])
    assert only_progress.paused_since is None
    assert only_progress.first_due == zrh(11, 25, 16)


def test_leaving_feedback_needed_without_having_entered_it_pauses_nothing() -> None:
    # A ticket created as "feedback needed" (no state event entering it) that then moves on.
    history = [CREATED, state(zrh(11, 24, 12), "feedback_needed", "open")]
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history)
    assert clocks.first_due == zrh(11, 25, 16)
    assert clocks.paused_since is None


def test_closed_resolves_and_reopening_undoes_it() -> None:
    closed = [CREATED, state(zrh(11, 23, 15), "open", "closed")]
    assert LEVELS.ticket_clocks("standard", MONDAY_10, "form", closed).resolved_at == zrh(
        11, 23, 15
    )
    reopened = [*closed, state(zrh(11, 23, 16), "closed", "open")]
    assert LEVELS.ticket_clocks("standard", MONDAY_10, "form", reopened).resolved_at is None
    closed_again = [*reopened, state(zrh(11, 24, 9), "open", "closed")]
    assert LEVELS.ticket_clocks("standard", MONDAY_10, "form", closed_again).resolved_at == zrh(
        11, 24, 9
    )
    # Closing straight from "feedback needed" ends the pause and resolves the ticket.
    from_feedback = [
        CREATED,
        state(zrh(11, 23, 12), "open", "feedback_needed"),
        state(zrh(11, 23, 15), "feedback_needed", "closed"),
    ]
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", from_feedback)
    assert clocks.resolved_at == zrh(11, 23, 15) and clocks.paused_since is None
    assert clocks.first_due == zrh(11, 26, 10)  # 3 business hours later than unpaused


def test_timestamps_may_arrive_as_strings_or_ints() -> None:
    history = [
        {**CREATED, "ts": int(MONDAY_10)},
        {**operator_reply(0), "ts": str(MONDAY_10 + HOUR)},
    ]
    clocks = LEVELS.ticket_clocks("standard", MONDAY_10, "form", history)
    assert clocks.first_response_at == MONDAY_10 + HOUR
