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

from chatserver.service_levels.billing import (
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


# -- cents: each item's amount is rounded to the cent, half-up ---------------------------------


@pytest.mark.parametrize(
    ("rate", "minutes", "amount"),
    [
        ("100.10", 15, "25.03"),  # 25.025: half a cent rounds up (half-even would give 25.02)
        ("100.50", 15, "25.13"),  # 25.125
        ("100.30", 15, "25.08"),  # 25.075 (half-down would give 25.07)
        ("100.10", 45, "75.08"),  # 75.075
        ("0.02", 15, "0.01"),  # 0.005: half a cent is a cent
        ("100.01", 15, "25.00"),  # 25.0025: below half a cent rounds down
        ("100.03", 15, "25.01"),  # 25.0075: above half a cent rounds up
        ("195.00", 15, "48.75"),
    ],
)
def test_item_amounts_round_half_a_cent_up(rate: str, minutes: int, amount: str) -> None:
    hourly = BillingConfig(
        hourly_rate=Decimal(rate), hourly_increment_minutes=15, minimum_charge=Decimal("0")
    )
    h = line([entry("H-1", minutes)], HOURLY, hourly)
    assert (h.charged_minutes, h.subtotal, h.amount) == (minutes, Decimal(amount), Decimal(amount))
    assert h.items[0].amount == Decimal(amount)
    # The same on a package's overage rate.
    package = BillingConfig(overage_rate=Decimal(rate), minimum_charge=Decimal("0"))
    empty = Customer("P-0", "Leer", Contract("package", 0))
    p = line([entry("P-0", minutes)], empty, package)
    assert (p.overage_minutes, p.amount) == (minutes, Decimal(amount))


def test_a_customers_subtotal_is_the_sum_of_rounded_items() -> None:
    cfg = BillingConfig(
        hourly_rate=Decimal("100.10"), hourly_increment_minutes=15, minimum_charge=Decimal("0")
    )
    entries = spaced("H-1", [15, 15, 15])
    c = line(entries, HOURLY, cfg)
    # 3 x 25.025 = 75.075, but each item is billed 25.03 and the CSV must add up: 75.09.
    assert [i.amount for i in c.items] == [Decimal("25.03")] * 3
    assert c.subtotal == c.amount == Decimal("75.09")
    rows = parse_csv(report_csv(compute_report(entries, [HOURLY], "2026-11", cfg)))
    assert [r["amount"] for r in rows] == ["25.03", "25.03", "25.03", "75.09"]


# -- the report as the accountant reads it ------------------------------------------------------

GOLDEN_NAMES = {"o_anna": "Anna Muster", "o_ben": "Ben"}


def golden_entries() -> list[TimeEntry]:
    """A month with every kind of line: hourly (ticket and chat), a package crossing its end,
    a customer without a record, operators with and without a name, time without a customer."""

    def at(days: int = 0, hours: int = 0) -> datetime:
        return NOV + timedelta(days=days, hours=hours)

    note = "Telefon: Rückruf wegen Drucker im dritten Stock"
    return [
        TimeEntry(at(), "o_anna", "H-1", 100042, None, 20 * 60, "VPN einrichten", 1),
        TimeEntry(at(2, 5), "o_ben", "H-1", None, "s_0123456789abcdef", 50 * 60, note, 2),
        TimeEntry(at(0, 1), "o_anna", "P-1", None, None, 45 * 60, "", 3),
        TimeEntry(at(0, 2), "o_anna", "P-1", None, None, 30 * 60, "-Abgleich", 4),
        TimeEntry(at(0, 3), "o_dora", "P-1", 100050, None, 10 * 60, "Nachtrag", 5),
        TimeEntry(at(1), "o_anna", "X-9", None, None, 5 * 60, "", 6),
        TimeEntry(at(3), "o_carl", None, None, None, 7 * 60, "=SUM(A1)", 7),
        TimeEntry(at(4), "o_anna", None, None, None, 90, "", 8),
    ]


GOLDEN_TEXT = (
    "Billing report 2026-11 (2026-11-01 - 2026-11-30, Europe/Zurich), amounts in CHF\n"
    "Rounding per entry: packages 15 min, hourly 30 min. Hourly rate 195.00/h, beyond "
    "package 195.00/h, minimum charge 100.00 (hourly, per month).\n"
    "\n"
    "H-1  Stundenkunde AG  -  hourly rate\n"
    "  date              ref               operator      note                       "
    "actual  billed   incl.  charged     amount\n"
    "  2026-11-10 10:00  #100042           Anna Muster   VPN einrichten               "
    "20.0      30       0       30      97.50\n"
    "  2026-11-12 15:00  chat s_01234567   Ben           Telefon: Rückruf wegen …     "
    "50.0      60       0       60     195.00\n"
    "  total                                                                          "
    "70.0      90       0       90     292.50\n"
    "  1.5 h at 195.00/h = 292.50\n"
    "  amount due: CHF 292.50\n"
    "\n"
    "P-1  Paketkunde GmbH  -  package 1 h/month\n"
    "  date              ref               operator      note                       "
    "actual  billed   incl.  charged     amount\n"
    "  2026-11-10 11:00  -                 Anna Muster                                "
    "45.0      45      45        0       0.00\n"
    "  2026-11-10 12:00  -                 Anna Muster   -Abgleich                    "
    "30.0      30      15       15      48.75\n"
    "  2026-11-10 13:00  #100050           o_dora        Nachtrag                     "
    "10.0      15       0       15      48.75\n"
    "  total                                                                          "
    "85.0      90      60       30      97.50\n"
    "  package 1 h: used 1.5 h, 0.5 h beyond at 195.00/h = 97.50\n"
    "  amount due: CHF 97.50\n"
    "\n"
    "X-9  (no customer record)  -  hourly rate\n"
    "  date              ref               operator      note                       "
    "actual  billed   incl.  charged     amount\n"
    "  2026-11-11 10:00  -                 Anna Muster                                 "
    "5.0      30       0       30      97.50\n"
    "  total                                                                           "
    "5.0      30       0       30      97.50\n"
    "  0.5 h at 195.00/h = 97.50\n"
    "  minimum charge 100.00: +2.50\n"
    "  amount due: CHF 100.00\n"
    "\n"
    "Unassigned (no customer; not billed)\n"
    "  2026-11-13 10:00  -                 o_carl        =SUM(A1)                      7.0\n"
    "  2026-11-14 10:00  -                 Anna Muster                                 1.5\n"
    "  2 entries, 8.50 min\n"
    "\n"
    "Total 2026-11: CHF 490.00 for 3 customer(s)\n"
)

GOLDEN_CSV = (
    "type,month,customer_id,customer_name,contract,package_minutes,time,ticket,"
    "session_id,operators,note,entries,actual_minutes,billed_minutes,included_minutes,"
    "overage_minutes,charged_minutes,rate,minimum_adjustment,amount,currency\n"
    "item,2026-11,H-1,Stundenkunde AG,hourly,0,2026-11-10T10:00:00+01:00,100042,,Anna "
    "Muster,VPN einrichten,1,20.00,30,0,0,30,195.00,0.00,97.50,CHF\n"
    "item,2026-11,H-1,Stundenkunde AG,hourly,0,2026-11-12T15:00:00+01:00,,"
    "s_0123456789abcdef,Ben,Telefon: Rückruf wegen Drucker im dritten Stock,1,50.00,60,0,"
    "0,60,195.00,0.00,195.00,CHF\n"
    "total,2026-11,H-1,Stundenkunde AG,hourly,0,,,,,,2,70.00,90,0,0,90,195.00,0.00,"
    "292.50,CHF\n"
    "item,2026-11,P-1,Paketkunde GmbH,package,60,2026-11-10T11:00:00+01:00,,,Anna Muster,"
    ",1,45.00,45,45,0,0,195.00,0.00,0.00,CHF\n"
    "item,2026-11,P-1,Paketkunde GmbH,package,60,2026-11-10T12:00:00+01:00,,,Anna Muster,"
    "'-Abgleich,1,30.00,30,15,15,15,195.00,0.00,48.75,CHF\n"
    "item,2026-11,P-1,Paketkunde GmbH,package,60,2026-11-10T13:00:00+01:00,100050,,"
    "o_dora,Nachtrag,1,10.00,15,0,15,15,195.00,0.00,48.75,CHF\n"
    "total,2026-11,P-1,Paketkunde GmbH,package,60,,,,,,3,85.00,90,60,30,30,195.00,0.00,"
    "97.50,CHF\n"
    "item,2026-11,X-9,,hourly,0,2026-11-11T10:00:00+01:00,,,Anna Muster,,1,5.00,30,0,0,"
    "30,195.00,0.00,97.50,CHF\n"
    "total,2026-11,X-9,,hourly,0,,,,,,1,5.00,30,0,0,30,195.00,2.50,100.00,CHF\n"
    "unassigned,2026-11,,,,0,2026-11-13T10:00:00+01:00,,,o_carl,'=SUM(A1),1,7.00,0,0,0,0,"
    ",0.00,0.00,CHF\n"
    "unassigned,2026-11,,,,0,2026-11-14T10:00:00+01:00,,,Anna Muster,,1,1.50,0,0,0,0,,"
    "0.00,0.00,CHF\n"
)


def test_text_report_of_a_month() -> None:
    report = compute_report(
        golden_entries(), {"H-1": HOURLY, "P-1": PACK}, "2026-11", operator_names=GOLDEN_NAMES
    )
    assert format_text(report) == GOLDEN_TEXT
    assert report.total == Decimal("490.00")


def test_csv_report_of_a_month() -> None:
    report = compute_report(
        golden_entries(), [HOURLY, PACK], "2026-11", operator_names=GOLDEN_NAMES
    )
    assert report_csv(report).replace("\r\n", "\n") == GOLDEN_CSV


def test_text_report_of_a_single_unassigned_entry_and_of_an_empty_month() -> None:
    report = compute_report([entry(None, 3, note="Anruf")], [], "2026-11")
    assert format_text(report).endswith(
        "Unassigned (no customer; not billed)\n"
        "  2026-11-10 10:00  -                 o_anna        Anruf                   "
        "      3.0\n"
        "  1 entry, 3.00 min\n"
    )
    assert "Total" not in format_text(report)
    assert format_text(compute_report([], [], "2026-12")) == (
        "Billing report 2026-12 (2026-12-01 - 2026-12-31, Europe/Zurich), amounts in CHF\n"
        "Rounding per entry: packages 15 min, hourly 30 min. Hourly rate 195.00/h, beyond"
        " package 195.00/h, minimum charge 100.00 (hourly, per month).\n"
        "\n"
        "No time logged in this month.\n"
    )
    no_minimum = BillingConfig(minimum_charge_applies_to=frozenset(), round_per="ticket")
    assert "minimum charge 100.00 (none, per month)." in format_text(
        compute_report([], [], "2026-11", no_minimum)
    )
    assert "Rounding per ticket:" in format_text(compute_report([], [], "2026-11", no_minimum))


# -- billed items: per entry, or per ticket or chat ------------------------------------------


def test_per_entry_rounding_keeps_entries_of_one_ticket_apart() -> None:
    entries = [entry("H-1", 10, ticket=7), entry("H-1", 10, ticket=7, at=NOV + timedelta(hours=1))]
    c = line(entries, HOURLY)
    assert [i.billed_minutes for i in c.items] == [30, 30]
    assert [i.ticket for i in c.items] == [7, 7]


def test_per_ticket_rounding_groups_by_ticket_then_chat_and_keeps_the_rest_apart() -> None:
    cfg = BillingConfig(round_per="ticket", minimum_charge=Decimal("0"))
    at = [NOV + timedelta(minutes=10 * i) for i in range(8)]
    entries = [
        entry("H-1", 10, ticket=1, session="s_a", note="Anruf", at=at[0]),
        entry("H-1", 10, ticket=2, note="Mail", at=at[1], operator="o_ben"),
        entry("H-1", 10, ticket=1, note=" Rückruf ", at=at[2], operator="o_ben"),
        entry("H-1", 10, session="s_b", at=at[3]),
        entry("H-1", 10, session="s_c", at=at[4]),
        entry("H-1", 10, session="s_b", note="Anruf", at=at[5]),
        entry("H-1", 10, note="lose 1", at=at[6]),
        entry("H-1", 10, note="lose 2", at=at[7]),
    ]
    c = line(entries, HOURLY, cfg)
    got = [(i.ticket, i.session_id, len(i.entries), i.billed_minutes, i.note) for i in c.items]
    assert got == [
        (1, None, 2, 30, "Anruf; Rückruf"),  # one entry came from a chat, the other not
        (2, None, 1, 30, "Mail"),
        (None, "s_b", 2, 30, "Anruf"),
        (None, "s_c", 1, 30, ""),
        (None, None, 1, 30, "lose 1"),
        (None, None, 1, 30, "lose 2"),
    ]
    assert c.items[0].operators == ("o_anna", "o_ben")
    assert c.amount == Decimal("585.00")  # 6 x 30 minutes


# -- minimum charge --------------------------------------------------------------------------


def test_minimum_charge_raises_even_a_few_cents_but_not_nothing() -> None:
    cheap = BillingConfig(hourly_rate=Decimal("1.00"))
    c = line([entry("H-1", 10)], HOURLY, cheap)  # 30 min at 1.00/h = 0.50
    assert (c.subtotal, c.minimum_adjustment, c.amount) == (
        Decimal("0.50"),
        Decimal("99.50"),
        Decimal("100.00"),
    )
    per_item = BillingConfig(hourly_rate=Decimal("1.00"), minimum_charge_per="item")
    c = line([entry("H-1", 10), entry("H-1", 0, at=NOV + timedelta(hours=1))], HOURLY, per_item)
    assert [(i.subtotal, i.minimum_adjustment, i.amount) for i in c.items] == [
        (Decimal("0.50"), Decimal("99.50"), Decimal("100.00")),
        (Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),  # nothing logged, nothing due
    ]
    assert (c.minimum_adjustment, c.amount) == (Decimal("99.50"), Decimal("100.00"))


def test_a_bill_of_exactly_the_minimum_needs_no_adjustment() -> None:
    cfg = BillingConfig(hourly_rate=Decimal("200.00"))
    c = line([entry("H-1", 30)], HOURLY, cfg)
    assert (c.subtotal, c.minimum_adjustment) == (Decimal("100.00"), Decimal("0.00"))


# -- report details --------------------------------------------------------------------------


def test_lines_state_their_increment_and_rate() -> None:
    report = compute_report([entry("H-1", 5), entry("P-1", 5)], [HOURLY, PACK], "2026-11")
    assert [(c.increment_minutes, c.rate) for c in report.customers] == [
        (30, Decimal("195.00")),
        (15, Decimal("195.00")),
    ]
    assert report.customers[1].package_minutes == 60
    assert report.customers[0].items[0].overage_minutes == 0


def test_entries_at_the_same_time_are_in_id_order_unsaved_first() -> None:
    saved = TimeEntry(NOV, "o_anna", "H-1", seconds=60, id=1)
    later_id = TimeEntry(NOV, "o_anna", "H-1", seconds=120, id=2)
    unsaved = TimeEntry(NOV, "o_anna", "H-1", seconds=180)
    c = line([later_id, saved, unsaved], HOURLY)
    assert [i.entries[0] for i in c.items] == [unsaved, saved, later_id]


def test_operator_names_in_the_report() -> None:
    report = compute_report([], [], "2026-11", operator_names={"o_anna": "Anna"})
    assert report.operator_name("o_anna") == "Anna"
    assert report.operator_name("o_zed") == "o_zed"


def test_months_follow_the_configured_time_zone() -> None:
    late = entry("H-1", 5, at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    utc = BillingConfig(timezone="UTC")
    assert [c.customer_id for c in compute_report([late], [], "2026-11", utc).customers] == ["H-1"]
    assert compute_report([late], [], "2026-11").customers == ()  # December in Zurich
    report = compute_report([late], [], "2026-11", utc)
    assert report.start.isoformat() == "2026-11-01T00:00:00+00:00"
    assert report.customers[0].items[0].start.isoformat() == "2026-11-30T23:30:00+00:00"


# -- validation: every error says what is wrong ------------------------------------------------


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "month must be 01-12, got '2026-13'"),
        ("2026-00", "month must be 01-12, got '2026-00'"),
        ("0000-05", "year out of range in '0000-05'"),
        ("9999-01", "year out of range in '9999-01'"),
        ("26-11", "month must look like 2026-11 (YYYY-MM), got '26-11'"),
        (202611, "month must look like 2026-11 (YYYY-MM), got 202611"),
    ],
)
def test_parse_month_messages(month: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_month(month)
    assert str(err.value) == message


def test_parse_month_limits() -> None:
    assert parse_month("2026-01")[0].isoformat() == "2026-01-01T00:00:00+01:00"
    assert parse_month("0001-01")[0].year == 1
    assert parse_month("9998-12")[1].isoformat() == "9999-01-01T00:00:00+01:00"
    with pytest.raises(ValueError) as err:
        parse_month("2026-11", "Mars/Olympus")
    assert str(err.value) == "unknown time zone 'Mars/Olympus'"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Contract("flatrate"), "contract must be 'package' or 'hourly', got 'flatrate'"),
        (lambda: Contract("package", 1.5), "package_minutes must be an int, got 1.5"),
        (lambda: Contract("package", True), "package_minutes must be an int, got True"),
        (lambda: Contract("package", -15), "package_minutes must not be negative, got -15"),
        (lambda: Contract("hourly", 60), "an hourly contract has no package minutes"),
        (
            lambda: TimeEntry(NOV, "o", "c", seconds=1.5, id=7),
            "time entry 7: seconds must be an int, got 1.5",
        ),
        (
            lambda: TimeEntry(NOV, "o", "c", seconds=True, id=7),
            "time entry 7: seconds must be an int, got True",
        ),
        (
            lambda: TimeEntry(NOV, "o", "c", seconds=-1, id=8),
            "time entry 8: seconds must not be negative",
        ),
        (
            lambda: TimeEntry(datetime(2026, 11, 1), "o", "c", id=9),
            "time entry 9: ts must be a timezone-aware datetime",
        ),
    ],
)
def test_contract_and_entry_messages(make: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_contracts_from_the_customers_table_and_their_description() -> None:
    assert Contract.from_db("package", None) == Contract("package", 0)
    assert Contract.from_db("hourly", None) == Contract("hourly")
    assert Contract.from_db("hourly", 0).describe() == "hourly rate"
    assert Contract("package", 960).describe() == "package 16 h/month"
    assert Contract("package", 600).describe() == "package 10 h/month"
    assert Contract("package", 90).describe() == "package 1.5 h/month"
    assert Contract("package", 15).describe() == "package 0.25 h/month"
    assert Contract("package", 0).describe() == "package 0 h/month"


def test_config_limits_pass() -> None:
    assert BillingConfig(currency="X").currency == "X"
    assert BillingConfig(currency="ABCDEFGH").currency == "ABCDEFGH"
    assert BillingConfig(hourly_increment_minutes=1440).hourly_increment_minutes == 1440
    assert BillingConfig(package_increment_minutes=1).package_increment_minutes == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: BillingConfig(currency="ABCDEFGHI"),
            "currency: expected 1-8 characters, got 'ABCDEFGHI'",
        ),
        (lambda: BillingConfig(currency="  "), "currency: expected 1-8 characters, got '  '"),
        (
            lambda: BillingConfig(hourly_rate=Decimal("-1")),
            "hourly.rate: must not be negative, got -1",
        ),
        (
            lambda: BillingConfig(overage_rate=Decimal("1.001")),
            "package.overage_rate: at most two decimal places (cents), got 1.001",
        ),
        (
            lambda: BillingConfig(minimum_charge=Decimal("Infinity")),
            "minimum_charge.amount: expected an amount like \"195.00\", got Decimal('Infinity')",
        ),
        (
            lambda: BillingConfig(hourly_increment_minutes=1.5),
            "hourly.increment_minutes: expected int, got 1.5",
        ),
        (
            lambda: BillingConfig(package_increment_minutes=0),
            "package.increment_minutes: expected 1-1440 minutes, got 0",
        ),
        (
            lambda: BillingConfig(package_increment_minutes=1441),
            "package.increment_minutes: expected 1-1440 minutes, got 1441",
        ),
    ],
)
def test_config_messages(make: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"hourly_rate": 195},
            "hourly_rate: unknown key (allowed: currency, hourly, minimum_charge, package,"
            " round_per, timezone)",
        ),
        (
            {"hourly": {"minimum": 1}},
            "hourly.minimum: unknown key (allowed: increment_minutes, rate)",
        ),
        (
            {"package": {"rate": 1}},
            "package.rate: unknown key (allowed: increment_minutes, overage_rate)",
        ),
        (
            {"minimum_charge": {"month": 1}},
            "minimum_charge.month: unknown key (allowed: amount, applies_to, per)",
        ),
        ({"hourly": 195}, "hourly: expected a table [hourly], got 195"),
        ({"currency": 756}, "currency: expected str, got 756"),
        ({"timezone": 1}, "timezone: expected str, got 1"),
        ({"round_per": True}, "round_per: expected str, got True"),
        ({"minimum_charge": {"per": 2}}, "minimum_charge.per: expected str, got 2"),
        (
            {"hourly": {"increment_minutes": "30"}},
            "hourly.increment_minutes: expected int, got '30'",
        ),
        (
            {"minimum_charge": {"applies_to": "hourly"}},
            "minimum_charge.applies_to: expected a list like [\"hourly\"], got 'hourly'",
        ),
        (
            {"minimum_charge": {"applies_to": ["hourly", 1]}},
            "minimum_charge.applies_to: expected a list like [\"hourly\"], got ['hourly', 1]",
        ),
        (
            {"package": {"overage_rate": "x"}},
            "package.overage_rate: expected an amount like \"195.00\", got 'x'",
        ),
    ],
)
def test_config_file_messages(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_billing_config(data)
    assert str(err.value) == message


def test_unassigned_time_on_a_ticket_or_chat_names_it() -> None:
    entries = [
        entry(None, 4, ticket=100077, note="Rückfrage ohne Kundennummer!", at=NOV),
        entry(None, 6, session="s_fedcba9876543210", at=NOV + timedelta(hours=1)),
    ]
    report = compute_report(entries, [], "2026-11", operator_names={"o_anna": "Annemarie Mül"})
    rows = parse_csv(report_csv(report))
    assert [(r["ticket"], r["session_id"], r["operators"]) for r in rows] == [
        ("100077", "", "Annemarie Mül"),
        ("", "s_fedcba9876543210", "Annemarie Mül"),
    ]
    text = format_text(report)
    assert "No time logged" not in text
    # Names and notes one character too long for their columns are clipped.
    assert "  2026-11-10 10:00  #100077           Annemarie M…  Rückfrage ohne Kundennu…" in text
    assert "  2026-11-10 11:00  chat s_fedcba98   Annemarie M…  " in text


def test_text_columns_fit_or_clip_exactly() -> None:
    note = "Exakt vierundzwanzig Zei"  # 24 characters: fits
    assert len(note) == 24
    names = {"o_anna": "Anna Muster1", "o_ben": "Bea Musterfr"}  # 12 characters each
    cfg = BillingConfig(round_per="ticket")
    entries = [
        entry("H-1", 10, ticket=5, note=note),
        entry("H-1", 10, ticket=5, operator="o_ben", at=NOV + timedelta(minutes=10)),
    ]
    report = compute_report(entries, [HOURLY], "2026-11", cfg, operator_names=names)
    text = format_text(report)
    # Two operators on one item: joined, then clipped to the column.
    assert "  #5                Anna Muster…  Exakt vierundzwanzig Zei" in text
    rows = parse_csv(report_csv(report))
    assert rows[0]["operators"] == "Anna Muster1;Bea Musterfr"
    assert "No time logged" not in text
    single = compute_report([entry("H-1", 10, note=note)], [HOURLY], "2026-11", cfg,
                            operator_names=names)
    assert "  Anna Muster1  Exakt vierundzwanzig Zei " in format_text(single)


def test_text_header_lists_the_contracts_with_a_minimum_charge() -> None:
    both = BillingConfig(minimum_charge_applies_to=frozenset({"package", "hourly"}),
                         minimum_charge_per="item")
    assert "minimum charge 100.00 (hourly, package, per item)." in format_text(
        compute_report([], [], "2026-11", both)
    )


def test_text_lists_the_operators_of_an_item() -> None:
    cfg = BillingConfig(round_per="ticket")
    entries = [
        entry("H-1", 10, ticket=5),
        entry("H-1", 10, ticket=5, operator="o_ben", at=NOV + timedelta(minutes=10)),
    ]
    report = compute_report(entries, [HOURLY], "2026-11", cfg, operator_names={"o_anna": "Al",
                                                                               "o_ben": "Bo"})
    assert "  #5                Al, Bo        " in format_text(report)
