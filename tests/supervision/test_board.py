"""Pure supervisor board: aggregations, windows, percentiles, history and patches."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.supervision.board import (
    ChatStat,
    History,
    OpenChat,
    OperatorView,
    QueuedChat,
    SlaClock,
    apply_patch,
    build_board,
    diff,
    p90,
    window_starts,
)

ZURICH = ZoneInfo("Europe/Zurich")


def ts(text: str, tz: ZoneInfo = ZURICH) -> float:
    """Epoch seconds of a local wall-clock time in ``tz``."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def board(now: float, **kw):
    kw.setdefault("operators", [])
    kw.setdefault("queue", [])
    return build_board(now=now, tz=ZURICH, **kw)


def op(oid: str, name: str | None = None, status="online", load=0, capacity=3, role="operator"):
    return OperatorView(oid, name or oid, role, status, load, capacity, ())


# ------------------------------------------------------------------ percentile
def test_p90_is_nearest_rank():
    assert p90([]) is None
    assert p90([7.0]) == 7.0
    assert p90([float(i) for i in range(1, 11)]) == 9.0  # ceil(0.9 * 10) = 9th
    assert p90([float(i) for i in range(1, 101)]) == 90.0
    assert p90([float(i) for i in range(1, 12)]) == 10.0  # ceil(9.9) = 10th of 11
    assert p90([5.0, 1.0, 3.0, 2.0, 4.0]) == 5.0  # order does not matter; ceil(4.5) = 5th


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_p90_has_90_percent_at_or_below(values):
    top = p90(values)
    at_or_below = sum(1 for v in values if v <= top)
    assert at_or_below >= 0.9 * len(values)
    # and it is the smallest such value
    assert all(sum(1 for v in values if v <= w) < 0.9 * len(values) for w in values if w < top)


def test_average_and_p90_of_wait_and_first_response():
    now = ts("2026-05-12 15:30")
    chats = [
        ChatStat(
            now - 600 + i,
            "closed",
            True,
            assigned_at=now - 600 + i + wait,
            first_response_at=now - 600 + i + wait + 5,
        )
        for i, wait in enumerate([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    ]
    times = board(now, chats=chats)["times"]["hour"]
    assert times["wait"] == {"n": 10, "avg": 55.0, "p90": 90.0}
    assert times["first_response"] == {"n": 10, "avg": 60.0, "p90": 95.0}


# ---------------------------------------------------------------- windows
def test_hour_and_day_start_in_zurich():
    now = ts("2026-01-15 10:45:12")
    hour, day = window_starts(now, ZURICH)
    assert hour == ts("2026-01-15 10:00")
    assert day == ts("2026-01-15 00:00")
    assert datetime.fromtimestamp(day, UTC).hour == 23  # CET = UTC+1: the day starts at 23:00Z


def test_day_start_on_the_days_of_dst_switches():
    spring = ts("2026-03-29 12:00")  # 02:00 -> 03:00: a 23-hour day
    assert window_starts(spring, ZURICH)[1] == ts("2026-03-29 00:00")
    assert spring - ts("2026-03-29 00:00") == 11 * 3600
    autumn = ts("2026-10-25 12:00")  # 03:00 -> 02:00: a 25-hour day
    assert window_starts(autumn, ZURICH)[1] == ts("2026-10-25 00:00")
    assert autumn - ts("2026-10-25 00:00") == 13 * 3600
    # In the repeated hour, the hour starts at the 02:00 that is current.
    second_two_thirty = ts("2026-10-25 00:30", UTC)  # 02:30 CET (after the switch)
    hour, _ = window_starts(second_two_thirty, ZURICH)
    assert hour == ts("2026-10-25 00:00", UTC)
    first_two_thirty = ts("2026-10-24 23:30", UTC)  # 02:30 CEST (before the switch)
    assert window_starts(first_two_thirty, ZURICH)[0] == ts("2026-10-24 23:00", UTC)


def test_counts_follow_the_local_hour_and_day():
    now = ts("2026-05-12 15:30")
    chats = [
        ChatStat(ts("2026-05-11 23:59:59"), "closed", True),  # yesterday: not counted
        ChatStat(ts("2026-05-12 00:00"), "closed", True, escalated=True),  # today
        ChatStat(ts("2026-05-12 14:59:59"), "closed", False),  # today, missed
        ChatStat(ts("2026-05-12 15:00"), "assigned", True),  # this hour
        ChatStat(ts("2026-05-12 15:10"), "waiting", False),  # this hour, still waiting
        ChatStat(ts("2026-05-12 15:20"), "closed", False),  # this hour, missed
        ChatStat(ts("2026-05-12 15:25"), "waiting", True),  # requeued: was answered once
    ]
    counts = board(now, chats=chats)["counts"]
    assert counts["hour"] == {"started": 4, "answered": 2, "missed": 1, "escalated": 0}
    assert counts["day"] == {"started": 6, "answered": 3, "missed": 2, "escalated": 1}
    window = board(now)["window"]
    assert window == {
        "tz": "Europe/Zurich",
        "hour_start": int(ts("2026-05-12 15:00") * 1000),
        "day_start": int(ts("2026-05-12 00:00") * 1000),
    }


# ---------------------------------------------------------- queue and staff
def test_queue_totals_longest_wait_and_breakdowns():
    now = 10_000.0
    queue = [
        QueuedChat("a", 9_000.0, "billing", 1, "normal"),
        QueuedChat("b", 9_500.0, "billing", 2, "vip"),
        QueuedChat("c", 8_000.0, None, 1, "urgent"),
        QueuedChat("d", 9_900.0, "technical", 1, "normal"),
    ]
    q = board(now, queue=queue)["queue"]
    assert q["total"] == 4
    assert q["oldest_since"] == 8_000_000
    assert q["by_department"] == [
        {"department": None, "total": 1, "oldest_since": 8_000_000},
        {"department": "billing", "total": 2, "oldest_since": 9_000_000},
        {"department": "technical", "total": 1, "oldest_since": 9_900_000},
    ]
    assert q["by_level"] == [
        {"level": 1, "total": 3, "oldest_since": 8_000_000},
        {"level": 2, "total": 1, "oldest_since": 9_500_000},
    ]
    assert q["by_priority"] == {"urgent": 1, "vip": 1, "normal": 2}
    empty = board(now)["queue"]
    assert empty["total"] == 0 and empty["oldest_since"] is None and empty["by_department"] == []


def test_operators_rows_with_their_chats_and_staff_summary():
    now = 5_000.0
    operators = [
        op("o3", "Zora", status="offline", load=0, capacity=4),
        op("o1", "anna", load=2, capacity=3),
        op("o2", "Bert", status="away", load=1, capacity=5),
    ]
    open_chats = [
        OpenChat("s2", "assigned", "o1", 4_500.0, "Vera"),
        OpenChat("s1", "assigned", "o1", 4_000.0, None),
        OpenChat("s3", "assigned", "o2", 4_800.0, "Kim"),
        OpenChat("s4", "waiting", None, None, "Lea"),
    ]
    b = board(now, operators=operators, open_chats=open_chats)
    assert [r["id"] for r in b["operators"]] == ["o1", "o2", "o3"]  # online, away, offline
    anna = b["operators"][0]
    assert anna == {
        "id": "o1",
        "name": "anna",
        "role": "operator",
        "status": "online",
        "load": 2,
        "capacity": 3,
        "departments": [],
        "chats": [
            {"session_id": "s1", "visitor": None, "since": 4_000_000},
            {"session_id": "s2", "visitor": "Vera", "since": 4_500_000},
        ],
    }
    assert b["staff"] == {"online": 1, "away": 1, "offline": 1, "load": 3, "capacity": 8}


# ----------------------------------------------------------------------- SLA
def test_sla_at_risk_and_breached():
    now = 1_000.0
    clocks = [
        SlaClock("#1", 0.0, 2_000.0),  # 50 % used: fine
        SlaClock("#2", 0.0, 1_100.0),  # 91 % used: at risk (default warn at 80 %)
        SlaClock("#3", 0.0, 900.0),  # due passed, pending: breached
        SlaClock("#4", 0.0, 900.0, met_at=950.0),  # met late: breached
        SlaClock("#5", 0.0, 900.0, met_at=800.0),  # met in time: fine
        SlaClock("#6", 0.0, 5_000.0, recorded=True),  # breach recorded
        SlaClock("#7", 0.0, 2_000.0, warn=990.0),  # past its computed warning time
        SlaClock("#8", 0.0, 900.0, paused=True),  # waiting for the customer
        SlaClock("#9", 0.0, 1_100.0),  # two clocks of one ticket: counted once,
        SlaClock("#9", 0.0, 900.0),  # as breached
    ]
    open_chats = [
        OpenChat("s1", "waiting", enqueued_at=0.0, sla_first_due=500.0),  # breached
        OpenChat("s2", "assigned", "o1", 10.0, enqueued_at=0.0, sla_first_due=1_050.0),
        OpenChat(
            "s3",
            "assigned",
            "o1",
            10.0,
            enqueued_at=0.0,
            first_response_at=20.0,
            sla_first_due=1_050.0,
        ),  # answered: met
        OpenChat("s4", "waiting", enqueued_at=0.0),  # no SLA
    ]
    sla = board(now, sla=clocks, open_chats=open_chats, breaches_today={"resolution": 2})["sla"]
    assert sla == {
        "at_risk": 2,  # #2, #7
        "breached": 4,  # #3, #4, #6, #9
        "chats_at_risk": 1,  # s2
        "chats_breached": 1,  # s1
        "breaches_today": {"resolution": 2},
    }


# ------------------------------------------------------------------- history
def test_history_keeps_one_peak_point_per_minute_for_six_hours():
    h = History()
    base = 1_800_000_000 // 60 * 60.0
    h.record(base + 1, 3, 10.0)
    h.record(base + 30, 5, 4.0)  # same minute: peaks kept
    h.record(base + 59, 1, 12.9)
    h.record(base + 61, 0, 0.0)
    assert h.points() == [
        {"t": int(base * 1000), "queue": 5, "wait": 12},
        {"t": int((base + 60) * 1000), "queue": 0, "wait": 0},
    ]
    assert h.has(base + 90) and not h.has(base + 120)
    h.record(base + 10, 99, 99.0)  # the clock went back: ignored
    assert len(h.points()) == 2
    for minute in range(2, 400):
        h.record(base + minute * 60, minute, 0.0)
    points = h.points()
    assert len(points) == 360
    assert points[-1]["t"] - points[0]["t"] == 359 * 60_000


# --------------------------------------------------------------------- diff
def sample_board(now: float = 3_600_000.0, **changes):
    operators = changes.pop("operators", [op(f"o{i}", f"Op {i}", load=i % 3) for i in range(5)])
    history = History()
    history.record(now - 120, 2, 30.0)
    history.record(now, 1, 10.0)
    return board(
        now,
        operators=operators,
        queue=changes.pop("queue", [QueuedChat("s9", 3_599_970.0)]),
        history=changes.pop("history", history),
        **changes,
    )


def test_no_patch_when_nothing_changed_but_the_time():
    a = sample_board(now=3_600_000.0)
    b = sample_board(now=3_600_002.0)  # same minute, same hour
    assert diff(a, b) is None
    assert diff(a, a) is None


def test_patch_carries_only_the_changed_operator_row():
    operators = [op(f"o{i}", f"Op {i}") for i in range(300)]
    a = sample_board(operators=operators)
    changed = list(operators)
    changed[123] = op("o123", "Op 123", load=2)
    b = sample_board(operators=changed)
    patch = diff(a, b)
    assert patch is not None
    assert set(patch) == {"ts", "set", "operators"}
    (row,) = [r for r in b["operators"] if r["id"] == "o123"]
    assert patch["operators"] == {"upsert": [row], "remove": []}
    assert set(patch["set"]) == {"staff"}  # the load total
    assert apply_patch(a, patch) == b
    assert len(json.dumps(patch)) < len(json.dumps(b)) / 20


def test_patch_removes_and_adds_operators_and_replaces_changed_sections():
    a = sample_board()
    ops = [op(f"o{i}", f"Op {i}", load=i % 3) for i in range(1, 5)] + [op("o9", "New")]
    b = sample_board(operators=ops, queue=[])
    patch = diff(a, b)
    assert patch["operators"]["remove"] == ["o0"]
    assert [r["id"] for r in patch["operators"]["upsert"]] == ["o9"]
    assert set(patch["set"]) == {"queue"}  # o0 out, o9 in: the same staff totals
    assert "history" not in patch
    assert apply_patch(a, patch) == b


def test_history_patch_sends_only_new_or_changed_points():
    history = History()
    for minute in range(360):
        history.record(minute * 60.0, minute, 0.0)
    a = board(359 * 60.0 + 5, history=history)
    history.record(359 * 60.0 + 30, 400, 7.0)  # the current minute's peak rises
    b = board(359 * 60.0 + 31, history=history)
    patch = diff(a, b)
    assert patch["history"] == {"points": [b["history"][-1]], "since": 0}
    history.record(360 * 60.0, 1, 0.0)  # a new minute: the oldest drops out
    c = board(360 * 60.0 + 1, history=history)
    patch = diff(b, c)
    assert patch["history"] == {"points": [c["history"][-1]], "since": 60_000}
    assert apply_patch(b, patch) == c


operator_rows = st.lists(
    st.builds(
        op,
        st.sampled_from([f"o{i}" for i in range(8)]),
        st.sampled_from(["Anna", "bert", "Cleo", "dan"]),
        st.sampled_from(["online", "away", "offline"]),
        st.integers(0, 3),
        st.integers(1, 3),
    ),
    max_size=8,
    unique_by=lambda o: o.operator_id,
)
queues = st.lists(
    st.builds(
        QueuedChat,
        st.sampled_from([f"s{i}" for i in range(6)]),
        st.floats(0, 1_000),
        st.sampled_from([None, "billing"]),
        st.integers(1, 3),
    ),
    max_size=6,
    unique_by=lambda q: q.session_id,
)


@settings(max_examples=200)
@given(operator_rows, queues, operator_rows, queues)
def test_apply_patch_of_diff_gives_the_new_board(ops_a, queue_a, ops_b, queue_b):
    a = board(2_000.0, operators=ops_a, queue=queue_a)
    b = board(2_001.0, operators=ops_b, queue=queue_b)
    patch = diff(a, b)
    if patch is None:
        assert {k: v for k, v in a.items() if k != "ts"} == {
            k: v for k, v in b.items() if k != "ts"
        }
    else:
        assert apply_patch(a, patch) == b
        json.dumps(patch)  # JSON-ready


def test_board_is_json_ready():
    b = sample_board(
        open_chats=[OpenChat("s1", "assigned", "o1", 1.0, "Ünïcode <b>")],
        chats=[ChatStat(3_599_990.0, "assigned", True, 3_599_995.0)],
        sla=[SlaClock("#1", 0.0, 1.0)],
        csat=[5, 4],
    )
    assert json.loads(json.dumps(b)) == b
    assert b["csat"] == {"n": 2, "avg": 4.5}
