"""Time tracking and billing: rounding, packages, minimum charge, months in Zurich, CSV, CLI."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.billing import (
    CSV_COLUMNS,
    DEFAULT_CONFIG_PATH,
    BillingConfig,
    Contract,
    Customer,
    TimeEntry,
    compute_report,
    format_text,
    load_billing_config,
    parse_billing_config,
    parse_month,
    report_csv,
    round_up_minutes,
)
from chatserver.store.sqlite import connect_sync
from tests.stored import connect_stored

CFG = BillingConfig()
HOURLY = Customer("H-1", "Stundenkunde AG", Contract("hourly"))
PACK = Customer("P-1", "Paketkunde GmbH", Contract("package", 60))  # 1 h included
NOV = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)

_ids = iter(range(1, 10**9))


def entry(
    customer: str | None,
    minutes: float = 0,
    *,
    seconds: int | None = None,
    at: datetime = NOV,
    ticket: int | None = None,
    session: str | None = None,
    note: str = "",
    operator: str = "o_anna",
) -> TimeEntry:
    secs = round(minutes * 60) if seconds is None else seconds
    return TimeEntry(at, operator, customer, ticket, session, secs, note, next(_ids))


def spaced(customer: str, minutes: list[float], start: datetime = NOV) -> list[TimeEntry]:
    """One entry per value, an hour apart (so their order is the list order)."""
    return [entry(customer, m, at=start + timedelta(hours=i)) for i, m in enumerate(minutes)]


def line(entries: list[TimeEntry], customer: Customer, config: BillingConfig = CFG) -> Any:
    report = compute_report(entries, [customer], "2026-11", config)
    assert len(report.customers) == 1
    return report.customers[0]


# -- rounding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "increment", "expected"),
    [
        (0, 15, 0),
        (1, 15, 15),
        (60, 15, 15),
        (60, 30, 30),
        (15 * 60, 15, 15),
        (15 * 60 + 1, 15, 30),
        (30 * 60, 30, 30),
        (31 * 60, 30, 60),
        (30 * 60, 15, 30),
        (31 * 60, 15, 45),
    ],
)
def test_round_up_minutes(seconds: int, increment: int, expected: int) -> None:
    assert round_up_minutes(seconds, increment) == expected


def test_round_up_minutes_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="negative"):
        round_up_minutes(-1, 15)
    with pytest.raises(ValueError, match="increment"):
        round_up_minutes(60, 0)


def test_one_minute_bills_15_on_a_package_and_30_by_the_hour() -> None:
    p = line([entry("P-1", 1)], PACK)
    assert (p.billed_minutes, p.included_minutes, p.charged_minutes) == (15, 15, 0)
    assert p.amount == Decimal("0.00")
    h = line([entry("H-1", 1)], HOURLY)
    assert (h.billed_minutes, h.charged_minutes) == (30, 30)
    assert h.subtotal == Decimal("97.50")


@pytest.mark.parametrize(
    ("customer", "minutes", "billed"),
    [(PACK, 15, 15), (PACK, 16, 30), (HOURLY, 30, 30), (HOURLY, 31, 60), (HOURLY, 60, 60)],
)
def test_exact_boundaries(customer: Customer, minutes: int, billed: int) -> None:
    assert line([entry(customer.id, minutes)], customer).billed_minutes == billed


def test_many_small_entries_are_rounded_each() -> None:
    c = line(spaced("H-1", [2] * 10), HOURLY)
    assert c.actual_seconds == 20 * 60
    assert c.billed_minutes == 300  # ten interventions of 30 minutes
    assert c.amount == Decimal("975.00")
    assert all(i.billed_minutes == 30 for i in c.items)


def test_round_per_ticket_adds_up_a_ticket_or_chat_first() -> None:
    cfg = BillingConfig(round_per="ticket")
    entries = [
        entry("H-1", 10, ticket=5, at=NOV),
        entry("H-1", 5, session="s_chat", at=NOV + timedelta(minutes=5)),
        entry("H-1", 10, ticket=5, at=NOV + timedelta(minutes=10)),
        entry("H-1", 25, ticket=5, at=NOV + timedelta(minutes=20)),
        entry("H-1", 5, at=NOV + timedelta(minutes=30)),
    ]
    c = line(entries, HOURLY, cfg)
    assert [(i.ticket, i.session_id, len(i.entries), i.billed_minutes) for i in c.items] == [
        (5, None, 3, 60),  # 45 min on ticket 5 -> 60
        (None, "s_chat", 1, 30),
        (None, None, 1, 30),
    ]
    assert c.billed_minutes == 120 and c.amount == Decimal("390.00")


def test_zero_seconds_costs_nothing() -> None:
    c = line([entry("H-1", seconds=0)], HOURLY)
    assert (c.billed_minutes, c.amount, c.minimum_adjustment) == (0, Decimal("0.00"), 0)


# -- minimum charge ----------------------------------------------------------------------------


def test_minimum_charge_raises_a_small_hourly_bill() -> None:
    c = line([entry("H-1", 20)], HOURLY)
    assert c.subtotal == Decimal("97.50")
    assert c.minimum_adjustment == Decimal("2.50")
    assert c.amount == Decimal("100.00")
    assert line([entry("H-1", 45)], HOURLY).amount == Decimal("195.00")


def test_minimum_charge_per_month_or_per_item() -> None:
    entries = spaced("H-1", [10, 10])
    assert line(entries, HOURLY).amount == Decimal("195.00")  # 2 x 30 min, above the minimum
    per_item = BillingConfig(minimum_charge_per="item")
    c = line(entries, HOURLY, per_item)
    assert [i.amount for i in c.items] == [Decimal("100.00"), Decimal("100.00")]
    assert c.minimum_adjustment == Decimal("5.00") and c.amount == Decimal("200.00")


def test_minimum_charge_on_package_overage_only_when_configured() -> None:
    entries = spaced("P-1", [60, 5])  # the package, then 15 min beyond
    c = line(entries, PACK)
    assert c.subtotal == Decimal("48.75") and c.amount == Decimal("48.75")
    both = BillingConfig(minimum_charge_applies_to=frozenset({"hourly", "package"}))
    c = line(entries, PACK, both)
    assert c.minimum_adjustment == Decimal("51.25") and c.amount == Decimal("100.00")
    # Within the package there is nothing to bill, so no minimum either.
    assert line(spaced("P-1", [5]), PACK, both).amount == Decimal("0.00")


# -- packages ----------------------------------------------------------------------------------


def test_package_entries_before_the_package_is_used_up_cost_nothing() -> None:
    c = line(spaced("P-1", [10, 20, 14]), PACK)  # 15 + 30 + 15 = 60 = the package
    assert (c.billed_minutes, c.included_minutes, c.overage_minutes) == (60, 60, 0)
    assert c.amount == Decimal("0.00")


def test_package_overage_is_charged_after_the_package() -> None:
    c = line(spaced("P-1", [30, 30, 10, 40]), PACK)
    assert [(i.included_minutes, i.overage_minutes) for i in c.items] == [
        (30, 0),
        (30, 0),
        (0, 15),
        (0, 45),
    ]
    assert c.overage_minutes == 60 and c.charged_minutes == 60
    assert [i.amount for i in c.items] == [0, 0, Decimal("48.75"), Decimal("146.25")]
    assert c.amount == Decimal("195.00")


def test_package_entry_crossing_the_limit_is_split() -> None:
    c = line(spaced("P-1", [45, 30]), PACK)
    assert [(i.included_minutes, i.overage_minutes) for i in c.items] == [(45, 0), (15, 15)]
    assert c.amount == Decimal("48.75")


def test_package_order_is_by_time_not_by_input_order() -> None:
    late = entry("P-1", 60, at=NOV + timedelta(days=1))
    early = entry("P-1", 15, at=NOV)
    c = line([late, early], PACK)
    assert [i.entries[0] for i in c.items] == [early, late]
    assert [i.overage_minutes for i in c.items] == [0, 15]


def test_empty_package_charges_everything() -> None:
    c = line([entry("P-0", 10)], Customer("P-0", "Leer", Contract("package", 0)))
    assert (c.billed_minutes, c.overage_minutes, c.amount) == (15, 15, Decimal("48.75"))


def test_configured_rates_and_increments() -> None:
    cfg = BillingConfig(
        hourly_rate=Decimal("120"), hourly_increment_minutes=10, minimum_charge=Decimal("0")
    )
    c = line([entry("H-1", 11)], HOURLY, cfg)
    assert (c.billed_minutes, c.amount) == (20, Decimal("40.00"))


# -- customers and unassigned time -------------------------------------------------------------


def test_customer_without_record_is_billed_hourly_and_unassigned_time_is_not_billed() -> None:
    entries = [entry("X-9", 40), entry(None, 50, note="Telefon ohne Kundennummer")]
    report = compute_report(entries, {}, "2026-11", CFG)
    (c,) = report.customers
    assert (c.customer_id, c.known, c.contract.kind, c.billed_minutes) == (
        "X-9",
        False,
        "hourly",
        60,
    )
    assert report.total == Decimal("195.00")
    assert [e.note for e in report.unassigned] == ["Telefon ohne Kundennummer"]
    assert report.unassigned_seconds == 50 * 60
    assert "Unassigned" in format_text(report) and "(no customer record)" in format_text(report)


def test_customers_only_with_time_in_the_month_in_id_order() -> None:
    entries = [
        entry("P-1", 5),
        entry("H-1", 5),
        entry("H-1", 5, at=datetime(2026, 12, 5, tzinfo=UTC)),
    ]
    report = compute_report(entries, [HOURLY, PACK, Customer("Z", "Idle")], "2026-11", CFG)
    assert [c.customer_id for c in report.customers] == ["H-1", "P-1"]
    assert report.customers[0].billed_minutes == 30


def test_contract_and_entry_validation() -> None:
    assert Contract.from_db(None, None) == Contract("hourly")
    assert Contract.from_db("", 0) == Contract("hourly")
    assert Contract.from_db("package", 960) == Contract("package", 960)
    with pytest.raises(ValueError, match="contract"):
        Contract.from_db("flatrate", 0)
    with pytest.raises(ValueError, match="negative"):
        Contract("package", -15)
    with pytest.raises(ValueError, match="hourly"):
        Contract("hourly", 60)
    with pytest.raises(ValueError, match="aware"):
        TimeEntry(datetime(2026, 11, 1), "o", "c", seconds=60)
    with pytest.raises(ValueError, match="negative"):
        TimeEntry(NOV, "o", "c", seconds=-60)


# -- months in Europe/Zurich -------------------------------------------------------------------


def months_of(at: datetime) -> list[str]:
    e = entry("H-1", 5, at=at)
    return [m for m in ("2026-10", "2026-11", "2026-12") if compute_report([e], [], m).customers]


def test_month_boundaries_are_zurich_local_time() -> None:
    # 2026-11-30 23:30 local (CET, UTC+1) = 22:30 UTC: still November.
    assert months_of(datetime(2026, 11, 30, 22, 30, tzinfo=UTC)) == ["2026-11"]
    # 2026-12-01 00:10 local = 2026-11-30 23:10 UTC: December, although UTC says November.
    assert months_of(datetime(2026, 11, 30, 23, 10, tzinfo=UTC)) == ["2026-12"]
    # The start is inclusive: 2026-11-01 00:00 local = 2026-10-31 23:00 UTC.
    assert months_of(datetime(2026, 10, 31, 23, 0, tzinfo=UTC)) == ["2026-11"]
    assert months_of(datetime(2026, 10, 31, 22, 59, 59, tzinfo=UTC)) == ["2026-10"]


def test_parse_month_gives_aware_local_bounds() -> None:
    start, end = parse_month("2026-11")
    assert start.isoformat() == "2026-11-01T00:00:00+01:00"
    assert end.isoformat() == "2026-12-01T00:00:00+01:00"
    start, end = parse_month("2026-12")
    assert end.isoformat() == "2027-01-01T00:00:00+01:00"


@pytest.mark.parametrize(
    ("month", "start_utc", "end_utc", "hours"),
    [
        # Summer time starts on the last Sunday of March: March is an hour short.
        (
            "2026-03",
            datetime(2026, 2, 28, 23, tzinfo=UTC),
            datetime(2026, 3, 31, 22, tzinfo=UTC),
            743,
        ),
        # ... and ends on the last Sunday of October: October is an hour long.
        (
            "2026-10",
            datetime(2026, 9, 30, 22, tzinfo=UTC),
            datetime(2026, 10, 31, 23, tzinfo=UTC),
            745,
        ),
    ],
)
def test_dst_months(month: str, start_utc: datetime, end_utc: datetime, hours: int) -> None:
    start, end = parse_month(month)
    assert (start.astimezone(UTC), end.astimezone(UTC)) == (start_utc, end_utc)
    assert (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=hours)
    inside = entry("H-1", 5, at=end_utc - timedelta(seconds=1))
    outside = entry("H-1", 5, at=end_utc)
    first = entry("H-1", 5, at=start_utc)
    report = compute_report([inside, outside, first], [HOURLY], month)
    assert [i.entries[0] for i in report.customers[0].items] == [first, inside]


def test_entry_in_the_repeated_october_hour_counts_once() -> None:
    # 2026-10-25 02:30 happens twice in Zurich; both instants are in October.
    a = entry("H-1", 5, at=datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    b = entry("H-1", 5, at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 CET
    c = compute_report([a, b], [HOURLY], "2026-10").customers[0]
    assert [f"{i.start:%H:%M%z}" for i in c.items] == ["02:30+0200", "02:30+0100"]


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "", " 2026-11", "2026-11-01", "x"]
)
def test_parse_month_refuses_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="month"):
        parse_month(bad)
    with pytest.raises(ValueError):
        compute_report([], [], bad)


# -- configuration -----------------------------------------------------------------------------


def test_shipped_config_is_the_seed_price_list() -> None:
    cfg = load_billing_config(None)
    assert cfg == BillingConfig() == parse_billing_config({})
    assert (cfg.currency, cfg.timezone, cfg.round_per) == ("CHF", "Europe/Zurich", "entry")
    assert (cfg.package_increment_minutes, cfg.hourly_increment_minutes) == (15, 30)
    assert cfg.hourly_rate == cfg.overage_rate == Decimal("195.00")
    assert cfg.minimum_charge == Decimal("100.00")
    assert DEFAULT_CONFIG_PATH.name == "billing_default.toml"


def test_config_file_overrides(tmp_path: Path) -> None:
    path = tmp_path / "billing.toml"
    path.write_text(
        'round_per = "ticket"\n[hourly]\nrate = 180\n[package]\noverage_rate = "210.50"\n'
        '[minimum_charge]\namount = 0\napplies_to = []\nper = "item"\n'
    )
    cfg = load_billing_config(path)
    assert cfg.round_per == "ticket" and cfg.hourly_rate == Decimal("180")
    assert cfg.overage_rate == Decimal("210.50") and cfg.minimum_charge == 0
    assert cfg.minimum_charge_applies_to == frozenset() and cfg.minimum_charge_per == "item"
    assert cfg.hourly_increment_minutes == 30  # untouched keys keep the seed's values


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"hourly": {"rate": -1}}, "hourly.rate"),
        ({"hourly": {"rate": "abc"}}, "hourly.rate"),
        ({"hourly": {"rate": "1.234"}}, "hourly.rate"),
        ({"hourly": {"rate": "NaN"}}, "hourly.rate"),
        ({"hourly": {"rate": True}}, "hourly.rate"),
        ({"hourly": {"increment_minutes": 0}}, "hourly.increment_minutes"),
        ({"hourly": {"increment_minutes": "30"}}, "hourly.increment_minutes"),
        ({"hourly": {"increment_minutes": 2000}}, "hourly.increment_minutes"),
        ({"hourly": {"minimum": 1}}, "hourly.minimum"),
        ({"hourly": 195}, "hourly"),
        ({"package": {"increment_minutes": False}}, "package.increment_minutes"),
        ({"package": {"overage_rate": [1]}}, "package.overage_rate"),
        ({"minimum_charge": {"amount": "-100"}}, "minimum_charge.amount"),
        ({"minimum_charge": {"applies_to": ["daily"]}}, "minimum_charge.applies_to"),
        ({"minimum_charge": {"applies_to": "hourly"}}, "minimum_charge.applies_to"),
        ({"minimum_charge": {"per": "year"}}, "minimum_charge.per"),
        ({"round_per": "month"}, "round_per"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"currency": ""}, "currency"),
        ({"currency": 756}, "currency"),
        ({"hourly_rate": 195}, "hourly_rate"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=rf"^{key}\b"):
        parse_billing_config(data)


def test_config_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[hourly\nrate = 1\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_billing_config(path)


# -- output ------------------------------------------------------------------------------------


def parse_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def test_csv_has_items_and_totals_that_add_up() -> None:
    entries = [
        *spaced("P-1", [45, 30, 10]),
        *spaced("H-1", [20, 50], start=NOV + timedelta(days=2)),
        entry(None, 7, note='=HYPERLINK("x")'),
    ]
    report = compute_report(
        entries, [HOURLY, PACK], "2026-11", CFG, operator_names={"o_anna": "anna"}
    )
    rows = parse_csv(report_csv(report))
    assert [r["type"] for r in rows] == ["item", "item", "total"] + ["item"] * 3 + [
        "total",
        "unassigned",
    ]
    for cid in ("H-1", "P-1"):
        items = [r for r in rows if r["customer_id"] == cid and r["type"] == "item"]
        (total,) = [r for r in rows if r["customer_id"] == cid and r["type"] == "total"]
        for col in ("billed_minutes", "included_minutes", "overage_minutes", "charged_minutes"):
            assert sum(int(r[col]) for r in items) == int(total[col])
        assert sum(Decimal(r["amount"]) for r in items) + Decimal(
            total["minimum_adjustment"]
        ) == Decimal(total["amount"])
    by_total = {r["customer_id"]: r for r in rows if r["type"] == "total"}
    assert by_total["P-1"]["amount"] == "97.50"  # 45 + 30 + 15 = 90 min, 30 beyond 60
    assert by_total["H-1"]["amount"] == "292.50"  # 30 + 60 minutes
    assert by_total["H-1"]["currency"] == "CHF" and by_total["P-1"]["package_minutes"] == "60"
    first_p = next(r for r in rows if r["customer_id"] == "P-1")
    assert first_p["time"] == "2026-11-10T10:00:00+01:00" and first_p["operators"] == "anna"
    assert rows[-1]["note"].startswith("'=")  # no formula injection into spreadsheets
    assert rows[-1]["actual_minutes"] == "7.00" and rows[-1]["amount"] == "0.00"


def test_text_report_mentions_what_was_billed() -> None:
    report = compute_report([entry("H-1", 20, ticket=42, note="VPN")], [HOURLY], "2026-11")
    text = format_text(report)
    assert "H-1  Stundenkunde AG" in text and "#42" in text and "VPN" in text
    assert "minimum charge 100.00: +2.50" in text and "amount due: CHF 100.00" in text
    assert "No time logged" in format_text(compute_report([], [], "2026-11"))


# -- properties --------------------------------------------------------------------------------


@given(st.integers(0, 10**7), st.integers(1, 24 * 60))
def test_rounding_properties(seconds: int, increment: int) -> None:
    rounded = round_up_minutes(seconds, increment)
    assert rounded % increment == 0
    assert rounded * 60 >= seconds
    assert rounded * 60 - seconds < increment * 60


seconds_lists = st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=12)
contracts = st.one_of(
    st.just(Contract("hourly")), st.integers(0, 40 * 60).map(lambda m: Contract("package", m))
)
configs = st.builds(
    BillingConfig,
    round_per=st.sampled_from(["entry", "ticket"]),
    hourly_rate=st.decimals("0", "500", places=2),
    overage_rate=st.decimals("0", "500", places=2),
    hourly_increment_minutes=st.integers(1, 120),
    package_increment_minutes=st.integers(1, 120),
    minimum_charge=st.decimals("0", "300", places=2),
    minimum_charge_applies_to=st.sampled_from(
        [frozenset(), frozenset({"hourly"}), frozenset({"hourly", "package"})]
    ),
    minimum_charge_per=st.sampled_from(["month", "item"]),
)


def as_entries(seconds: list[int]) -> list[TimeEntry]:
    return [
        entry("C", seconds=s, at=NOV + timedelta(hours=i), ticket=i % 3 or None)
        for i, s in enumerate(seconds)
    ]


@settings(max_examples=200, deadline=None)
@given(seconds_lists, contracts, configs)
def test_billed_time_covers_actual_time(
    seconds: list[int], contract: Contract, cfg: BillingConfig
) -> None:
    c = line(as_entries(seconds), Customer("C", "C", contract), cfg)
    inc = cfg.increment_for(contract)
    for i in c.items:
        assert i.billed_minutes * 60 >= i.actual_seconds
        assert i.billed_minutes * 60 - i.actual_seconds < inc * 60
        assert (
            i.included_minutes + i.overage_minutes == i.billed_minutes or contract.kind == "hourly"
        )
    assert c.actual_seconds == sum(seconds)
    assert c.billed_minutes * 60 >= c.actual_seconds
    assert c.included_minutes <= contract.package_minutes
    assert c.amount >= c.subtotal >= 0


@settings(max_examples=200, deadline=None)
@given(seconds_lists, contracts, configs, st.data())
def test_amount_is_monotonic_in_time(
    seconds: list[int], contract: Contract, cfg: BillingConfig, data: st.DataObject
) -> None:
    customer = Customer("C", "C", contract)
    before = line(as_entries(seconds), customer, cfg).amount
    grown = list(seconds)
    index = data.draw(st.integers(0, len(grown) - 1))
    grown[index] += data.draw(st.integers(0, 4 * 3600))
    assert line(as_entries(grown), customer, cfg).amount >= before
    more = [*seconds, data.draw(st.integers(0, 4 * 3600))]
    assert line(as_entries(more), customer, cfg).amount >= before


# -- command line ------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHATSERVER_LOG_LEVEL": "warning"},
    )


def ok(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_customers_time_and_billing_report(tmp_path: Path) -> None:
    d = ("--data-dir", str(tmp_path))
    ok("operator", "add", "anna", "--password", "geheim1", *d)
    out = ok(
        "customer", "add", "K-1001", "--name", "Muster AG", "--email", "it@muster.ch",
        "--plan", "vip", "--contract", "package", "--package-hours", "1", *d,
    )  # fmt: skip
    assert "added customer K-1001" in out and "package 1 h/month" in out
    ok("customer", "add", "K-1002", "--name", "Beispiel GmbH", *d)
    listed = [line.split("\t") for line in ok("customer", "list", *d).splitlines()]
    assert listed == [
        ["K-1001", "Muster AG", "it@muster.ch", "vip", "package", "1"],
        ["K-1002", "Beispiel GmbH", "-", "free", "hourly", "-"],
    ]
    log = ("time", "log", *d)
    ok(*log, "--customer", "K-1001", "--minutes", "45", "--operator", "anna",
       "--at", "2026-11-02T09:00", "--note", "Mandant migriert")  # fmt: skip
    ok(*log, "--customer", "K-1001", "--minutes", "30", "--at", "2026-11-30T23:30")
    ok(*log, "--customer", "K-1001", "--minutes", "5", "--at", "2026-12-01T00:10")  # December
    ok(*log, "--customer", "K-1002", "--minutes", "7.5", "--at", "2026-11-15T14:00+01:00")

    text = ok("report", "billing", "--month", "2026-11", *d)
    assert "K-1001  Muster AG" in text and "anna" in text and "Mandant migriert" in text
    assert "amount due: CHF 48.75" in text  # 45 + 30 = 75 min, 15 beyond the hour
    assert "amount due: CHF 100.00" in text  # 7.5 min -> 30 min = 97.50 -> minimum

    rows = parse_csv(ok("report", "billing", "--month", "2026-11", "--csv", "-", *d))
    totals = {r["customer_id"]: r for r in rows if r["type"] == "total"}
    assert totals["K-1001"]["billed_minutes"] == "75" and totals["K-1001"]["entries"] == "2"
    assert totals["K-1001"]["overage_minutes"] == "15"
    assert totals["K-1002"]["amount"] == "100.00"
    assert sum(Decimal(t["amount"]) for t in totals.values()) == Decimal("148.75")

    out_file = tmp_path / "nov.csv"
    assert "CHF 148.75" in ok("report", "billing", "--month", "2026-11", "--csv", str(out_file), *d)
    assert parse_csv(out_file.read_text(encoding="utf-8")) == rows
    dec = parse_csv(ok("report", "billing", "--month", "2026-12", "--csv", "-", *d))
    assert [(r["type"], r["billed_minutes"]) for r in dec] == [("item", "15"), ("total", "15")]

    cfg = tmp_path / "billing.toml"
    cfg.write_text('[package]\nincrement_minutes = 5\noverage_rate = "100"\n')
    rows = parse_csv(
        ok("report", "billing", "--month", "2026-11", "--csv", "-", "--config", str(cfg), *d)
    )
    totals = {r["customer_id"]: r for r in rows if r["type"] == "total"}
    assert totals["K-1001"]["amount"] == "25.00"  # 15 min beyond at CHF 100/h


def test_cli_time_log_on_a_ticket(tmp_path: Path) -> None:
    d = ("--data-dir", str(tmp_path))
    ok("customer", "add", "K-1", "--name", "Eins", *d)
    ok("customer", "add", "K-2", "--name", "Zwei", *d)
    conn = connect_sync(tmp_path / "chatserver.sqlite3")
    try:
        now = time.time()
        conn.execute(
            "INSERT INTO tickets (number, subject, state, priority, priority_rank, department,"
            " level, channel, customer_id, session_id, created_at, updated_at, events, head)"
            " VALUES (7, 'VPN', 'open', 'normal', 2, 'technical', 1, 'chat', 'K-1', 's_abc',"
            " ?, ?, 1, 'x')",
            (now, now),
        )
    finally:
        conn.close()
    ok("time", "log", "--customer", "K-1", "--minutes", "10", "--ticket", "7", *d)
    refused = run("time", "log", "--customer", "K-2", "--minutes", "10", "--ticket", "7", *d)
    assert refused.returncode == 2 and "belongs to customer 'K-1'" in refused.stderr
    refused = run("time", "log", "--customer", "K-1", "--minutes", "10", "--ticket", "8", *d)
    assert refused.returncode == 2 and "unknown ticket #8" in refused.stderr
    conn = connect_stored(tmp_path / "chatserver.sqlite3")
    try:
        rows = conn.execute("SELECT customer_id, ticket, session_id, seconds FROM time_entries")
        assert list(rows) == [("K-1", 7, "s_abc", 600)]
    finally:
        conn.close()


REFUSALS = [
    (("report", "billing", "--month", "2026-13"), "month must be 01-12"),
    (("report", "billing", "--month", "November"), "YYYY-MM"),
    (("report", "billing", "--month", "2026-11", "--config", "/nonexistent.toml"), "--config"),
    (("time", "log", "--customer", "K-1", "--minutes", "-5"), "above 0"),
    (("time", "log", "--customer", "K-1", "--minutes", "0"), "above 0"),
    (("time", "log", "--customer", "K-1", "--minutes", "abc"), "not a number"),
    (("time", "log", "--customer", "K-1", "--minutes", "nan"), "above 0"),
    (("time", "log", "--customer", "K-1", "--minutes", "5000"), "one entry"),
    (("time", "log", "--customer", "NOPE", "--minutes", "5"), "unknown customer 'NOPE'"),
    (
        ("time", "log", "--customer", "K-1", "--minutes", "5", "--operator", "ghost"),
        "unknown operator 'ghost'",
    ),
    (("time", "log", "--customer", "K-1", "--minutes", "5", "--at", "gestern"), "--at"),
    (("time", "log", "--customer", "K-1", "--minutes", "5", "--ticket", "0"), "--ticket"),
    (("customer", "add", "K 2", "--name", "X"), "customer id"),
    (("customer", "add", "K-2", "--name", " "), "--name"),
    (("customer", "add", "K-2", "--name", "X", "--email", "nope"), "e-mail"),
    (("customer", "add", "K-2", "--name", "X", "--contract", "package"), "--package-hours"),
    (
        ("customer", "add", "K-2", "--name", "X", "--contract", "package", "--package-hours", "-4"),
        "above 0",
    ),
    (
        ("customer", "add", "K-2", "--name", "X", "--contract", "package", "--package-hours", "x"),
        "not a number",
    ),
    (("customer", "add", "K-2", "--name", "X", "--package-hours", "4"), "--contract package"),
    (("customer", "add", "K-2", "--name", "X", "--plan", "gold"), "invalid choice"),
]


def assert_nothing_written(data_dir: Path) -> None:
    conn = connect_stored(data_dir / "chatserver.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM time_entries").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone() == (1,)
    finally:
        conn.close()


def test_cli_refuses_bad_input_in_a_real_process(tmp_path: Path) -> None:
    """The refusals named in the issue, through ``python -m chatserver``."""
    d = ("--data-dir", str(tmp_path))
    ok("customer", "add", "K-1", "--name", "Eins", *d)
    for args, message in [REFUSALS[i] for i in (0, 3, 8, 9)]:
        done = run(*args, *d)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert_nothing_written(tmp_path)


def test_cli_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every refusal (in-process ``main``, the same code path, to keep the suite fast)."""
    from chatserver.cli import main

    d = ("--data-dir", str(tmp_path))
    assert main(["customer", "add", "K-1", "--name", "Eins", *d]) == 0
    capsys.readouterr()
    for args, message in REFUSALS:
        try:
            code = main([*args, *d])
        except SystemExit as exc:  # argparse's own refusals (invalid choice)
            code = exc.code  # type: ignore[assignment]
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in err, (args, err)
    assert_nothing_written(tmp_path)


def test_cli_duplicate_customer(tmp_path: Path) -> None:
    ok("customer", "add", "K-1", "--name", "Eins", "--data-dir", str(tmp_path))
    again = run("customer", "add", "K-1", "--name", "Nochmal", "--data-dir", str(tmp_path))
    assert again.returncode == 1 and "exists" in again.stderr
