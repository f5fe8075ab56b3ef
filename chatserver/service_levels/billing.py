"""Time tracking and billing: monthly reports per customer. Pure; no I/O but reading the TOML.

Operators log time (``time_entries``) on tickets and chats. Once a month each customer is
billed according to their contract (seeds/004: Infoniqa's price list):

* **hourly** (also every customer without contract data): every billed item is rounded up to
  ``hourly.increment_minutes`` (30) and charged at ``hourly.rate`` (CHF 195/h).
* **package** (Service-Abo with ``package_minutes`` included per month): items are rounded up
  to ``package.increment_minutes`` (15) and count against the package in chronological order;
  what lies beyond it is charged at ``package.overage_rate`` (CHF 195/h). An item that crosses
  the end of the package is split: its first part is included, the rest is charged.
* A bill above zero but below ``minimum_charge.amount`` (CHF 100) is raised to it, for the
  contracts in ``minimum_charge.applies_to``, per customer-month or per item.

A billed *item* is one time entry (``round_per = "entry"``, the default) or all entries of one
ticket - or of one chat without a ticket - within the month (``round_per = "ticket"``).
Entries without a customer are listed as *unassigned* and not billed.

Money is :class:`~decimal.Decimal`. Each item's amount is its charged minutes times the rate,
rounded to the cent half-up (CHF 195/h is exactly 3.25 per minute); a customer's subtotal is
the sum of its items, so an exported CSV always adds up.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_CONFIG_PATH",
    "BillingConfig",
    "BillingReport",
    "Contract",
    "Customer",
    "CustomerLine",
    "LineItem",
    "TimeEntry",
    "compute_report",
    "format_text",
    "load_billing_config",
    "parse_billing_config",
    "parse_month",
    "report_csv",
    "round_up_minutes",
]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("billing_default.toml")

ContractKind = Literal["package", "hourly"]
RoundPer = Literal["entry", "ticket"]
MinimumPer = Literal["month", "item"]

_CENT = Decimal("0.01")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_MAX_INCREMENT = 24 * 60


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _charge(minutes: int, rate_per_hour: Decimal) -> Decimal:
    return _money(Decimal(minutes) * rate_per_hour / 60)


def round_up_minutes(seconds: int, increment_minutes: int) -> int:
    """``seconds`` rounded up to whole increments, in minutes: (60 s, 15) -> 15, (0, 15) -> 0."""
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    if increment_minutes < 1:
        raise ValueError(f"increment must be at least 1 minute, got {increment_minutes}")
    step = increment_minutes * 60
    return -(-seconds // step) * increment_minutes


def parse_month(month: str, timezone: str = "Europe/Zurich") -> tuple[datetime, datetime]:
    """``"2026-11"`` -> (1 Nov 00:00, 1 Dec 00:00) as aware datetimes in ``timezone``.

    The end is exclusive. Anything but ``YYYY-MM`` with a month 01-12 raises ``ValueError``.
    """
    m = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if m is None:
        raise ValueError(f"month must look like 2026-11 (YYYY-MM), got {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    if not 1 <= mon <= 12:
        raise ValueError(f"month must be 01-12, got {month!r}")
    if not 1 <= year <= 9998:
        raise ValueError(f"year out of range in {month!r}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone)
    return start, end


# -- data ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Contract:
    """How a customer is billed: ``hourly``, or a ``package`` with minutes included per month."""

    kind: ContractKind = "hourly"
    package_minutes: int = 0

    def __post_init__(self) -> None:
        if self.kind not in get_args(ContractKind):
            raise ValueError(f"contract must be 'package' or 'hourly', got {self.kind!r}")
        if isinstance(self.package_minutes, bool) or not isinstance(self.package_minutes, int):
            raise ValueError(f"package_minutes must be an int, got {self.package_minutes!r}")
        if self.package_minutes < 0:
            raise ValueError(f"package_minutes must not be negative, got {self.package_minutes}")
        if self.kind == "hourly" and self.package_minutes:
            raise ValueError("an hourly contract has no package minutes")

    @classmethod
    def from_db(cls, contract: str | None, package_minutes: int | None) -> Contract:
        """From the ``customers`` columns; no contract (NULL or '') means hourly."""
        if not contract:
            return cls()
        if contract == "package":
            return cls("package", int(package_minutes or 0))
        if contract == "hourly":
            return cls()
        raise ValueError(f"contract must be 'package' or 'hourly', got {contract!r}")

    def describe(self) -> str:
        if self.kind == "hourly":
            return "hourly rate"
        return f"package {_hours(self.package_minutes)} h/month"


@dataclasses.dataclass(frozen=True, slots=True)
class Customer:
    """A row of ``customers``."""

    id: str
    name: str
    contract: Contract = Contract()
    email: str | None = None
    plan: str = "free"


@dataclasses.dataclass(frozen=True, slots=True)
class TimeEntry:
    """A row of ``time_entries``: ``seconds`` an operator spent at ``ts`` (aware)."""

    ts: datetime
    operator_id: str
    customer_id: str | None
    ticket: int | None = None
    session_id: str | None = None
    seconds: int = 0
    note: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.ts, datetime) or self.ts.utcoffset() is None:
            raise ValueError(f"time entry {self.id}: ts must be a timezone-aware datetime")
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int):
            raise ValueError(f"time entry {self.id}: seconds must be an int, got {self.seconds!r}")
        if self.seconds < 0:
            raise ValueError(f"time entry {self.id}: seconds must not be negative")


@dataclasses.dataclass(frozen=True, slots=True)
class LineItem:
    """One billed item: an entry, or a ticket/chat when rounding per ticket.

    ``billed_minutes`` is the actual time rounded up; for a package it splits into
    ``included_minutes`` and ``overage_minutes``. ``charged_minutes`` are the minutes that cost
    money (hourly: all billed minutes; package: the overage) at ``rate`` per hour.
    ``minimum_adjustment`` is non-zero only with ``minimum_charge.per = "item"``.
    """

    start: datetime
    ticket: int | None
    session_id: str | None
    operators: tuple[str, ...]
    note: str
    entries: tuple[TimeEntry, ...]
    actual_seconds: int
    billed_minutes: int
    included_minutes: int
    overage_minutes: int
    charged_minutes: int
    rate: Decimal
    subtotal: Decimal
    minimum_adjustment: Decimal
    amount: Decimal

    @property
    def actual_minutes(self) -> Decimal:
        return _minutes(self.actual_seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerLine:
    """A customer's month. ``known`` is False for entries naming a customer with no record
    (billed at the hourly rate). ``amount = subtotal + minimum_adjustment``."""

    customer_id: str
    name: str
    known: bool
    contract: Contract
    increment_minutes: int
    items: tuple[LineItem, ...]
    actual_seconds: int
    billed_minutes: int
    included_minutes: int
    overage_minutes: int
    charged_minutes: int
    rate: Decimal
    subtotal: Decimal
    minimum_adjustment: Decimal
    amount: Decimal

    @property
    def actual_minutes(self) -> Decimal:
        return _minutes(self.actual_seconds)

    @property
    def package_minutes(self) -> int:
        return self.contract.package_minutes


@dataclasses.dataclass(frozen=True, slots=True)
class BillingReport:
    """Everything billed for ``month`` (``start`` inclusive to ``end`` exclusive, local)."""

    month: str
    start: datetime
    end: datetime
    currency: str
    config: BillingConfig
    customers: tuple[CustomerLine, ...]
    unassigned: tuple[TimeEntry, ...]
    operator_names: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def operator_name(self, operator_id: str) -> str:
        """The name shown for an operator id (the id itself if unknown)."""
        return self.operator_names.get(operator_id, operator_id)

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.customers), Decimal("0.00"))

    @property
    def unassigned_seconds(self) -> int:
        return sum(e.seconds for e in self.unassigned)


def _minutes(seconds: int) -> Decimal:
    return _money(Decimal(seconds) / 60)


def _hours(minutes: int) -> str:
    value = Decimal(minutes) / 60
    return f"{value:.2f}".rstrip("0").rstrip(".")


# -- configuration -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BillingConfig:
    """Billing rules; the defaults are the seed's (see ``billing_default.toml``).

    Constructing one validates it; ``ValueError`` names the TOML key at fault.
    """

    currency: str = "CHF"
    timezone: str = "Europe/Zurich"
    round_per: RoundPer = "entry"
    hourly_rate: Decimal = Decimal("195.00")
    hourly_increment_minutes: int = 30
    package_increment_minutes: int = 15
    overage_rate: Decimal = Decimal("195.00")
    minimum_charge: Decimal = Decimal("100.00")
    minimum_charge_applies_to: frozenset[ContractKind] = frozenset({"hourly"})
    minimum_charge_per: MinimumPer = "month"

    def __post_init__(self) -> None:
        if not isinstance(self.currency, str) or not 1 <= len(self.currency.strip()) <= 8:
            raise ValueError(f"currency: expected 1-8 characters, got {self.currency!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from exc
        if self.round_per not in get_args(RoundPer):
            raise ValueError(f"round_per: expected 'entry' or 'ticket', got {self.round_per!r}")
        for key, money in (
            ("hourly.rate", self.hourly_rate),
            ("package.overage_rate", self.overage_rate),
            ("minimum_charge.amount", self.minimum_charge),
        ):
            _check_money(money, key)
        for key, inc in (
            ("hourly.increment_minutes", self.hourly_increment_minutes),
            ("package.increment_minutes", self.package_increment_minutes),
        ):
            if isinstance(inc, bool) or not isinstance(inc, int):
                raise ValueError(f"{key}: expected int, got {inc!r}")
            if not 1 <= inc <= _MAX_INCREMENT:
                raise ValueError(f"{key}: expected 1-{_MAX_INCREMENT} minutes, got {inc}")
        unknown = set(self.minimum_charge_applies_to) - set(get_args(ContractKind))
        if unknown:
            raise ValueError(
                f"minimum_charge.applies_to: expected 'hourly' and/or 'package', got "
                f"{sorted(unknown)}"
            )
        if self.minimum_charge_per not in get_args(MinimumPer):
            raise ValueError(
                f"minimum_charge.per: expected 'month' or 'item', got {self.minimum_charge_per!r}"
            )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def increment_for(self, contract: Contract) -> int:
        if contract.kind == "package":
            return self.package_increment_minutes
        return self.hourly_increment_minutes

    def rate_for(self, contract: Contract) -> Decimal:
        return self.overage_rate if contract.kind == "package" else self.hourly_rate


def _check_money(value: Decimal, key: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f'{key}: expected an amount like "195.00", got {value!r}')
    if value < 0:
        raise ValueError(f"{key}: must not be negative, got {value}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"{key}: at most two decimal places (cents), got {value}")


def _check_keys(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise ValueError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a table [{key}], got {value!r}")
    return value


def _opt(table: Mapping[str, Any], key: str, where: str, kind: type, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}{key}: expected {kind.__name__}, got {value!r}")
    return value


def _opt_money(table: Mapping[str, Any], key: str, where: str, default: Decimal) -> Decimal:
    if key not in table:
        return default
    raw = table[key]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f'{where}{key}: expected an amount like "195.00", got {raw!r}')
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f'{where}{key}: expected an amount like "195.00", got {raw!r}') from None
    _check_money(value, f"{where}{key}")
    return value


def parse_billing_config(data: Mapping[str, Any]) -> BillingConfig:
    """Build a :class:`BillingConfig` from parsed TOML; missing keys take the seed's values.

    ``ValueError`` names the offending key (``hourly.rate: must not be negative, got -1``).
    """
    d = BillingConfig()
    _check_keys(
        data, "", {"currency", "timezone", "round_per", "hourly", "package", "minimum_charge"}
    )
    hourly = _table(data, "hourly")
    _check_keys(hourly, "hourly", {"rate", "increment_minutes"})
    package = _table(data, "package")
    _check_keys(package, "package", {"increment_minutes", "overage_rate"})
    minimum = _table(data, "minimum_charge")
    _check_keys(minimum, "minimum_charge", {"amount", "applies_to", "per"})
    applies = minimum.get("applies_to", sorted(d.minimum_charge_applies_to))
    if not isinstance(applies, list) or not all(isinstance(a, str) for a in applies):
        raise ValueError(
            f'minimum_charge.applies_to: expected a list like ["hourly"], got {applies!r}'
        )
    return BillingConfig(
        currency=_opt(data, "currency", "", str, d.currency),
        timezone=_opt(data, "timezone", "", str, d.timezone),
        round_per=_opt(data, "round_per", "", str, d.round_per),
        hourly_rate=_opt_money(hourly, "rate", "hourly.", d.hourly_rate),
        hourly_increment_minutes=_opt(
            hourly, "increment_minutes", "hourly.", int, d.hourly_increment_minutes
        ),
        package_increment_minutes=_opt(
            package, "increment_minutes", "package.", int, d.package_increment_minutes
        ),
        overage_rate=_opt_money(package, "overage_rate", "package.", d.overage_rate),
        minimum_charge=_opt_money(minimum, "amount", "minimum_charge.", d.minimum_charge),
        minimum_charge_applies_to=frozenset(applies),  # values checked by BillingConfig
        minimum_charge_per=_opt(minimum, "per", "minimum_charge.", str, d.minimum_charge_per),
    )


def load_billing_config(path: Path | None = None) -> BillingConfig:
    """Read billing rules from a TOML file; None loads the shipped ``billing_default.toml``."""
    source = DEFAULT_CONFIG_PATH if path is None else path
    with open(source, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{source}: not valid TOML: {exc}") from exc
    return parse_billing_config(data)


# -- computing -----------------------------------------------------------------------------


def _group(entries: list[TimeEntry], round_per: RoundPer) -> list[list[TimeEntry]]:
    """Entries (sorted by time) into billed items, each item sorted, items by first entry."""
    if round_per == "entry":
        return [[e] for e in entries]
    groups: dict[tuple[str, object], list[TimeEntry]] = {}
    for i, e in enumerate(entries):
        key: tuple[str, object]
        if e.ticket is not None:
            key = ("ticket", e.ticket)
        elif e.session_id:
            key = ("chat", e.session_id)
        else:
            key = ("entry", i)
        groups.setdefault(key, []).append(e)
    return list(groups.values())  # dicts keep insertion order: by first entry


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _customer_line(
    customer_id: str,
    customer: Customer | None,
    entries: list[TimeEntry],
    config: BillingConfig,
    operator_names: Mapping[str, str],
) -> CustomerLine:
    contract = customer.contract if customer is not None else Contract()
    increment = config.increment_for(contract)
    rate = config.rate_for(contract)
    minimum_applies = contract.kind in config.minimum_charge_applies_to
    per_item_minimum = minimum_applies and config.minimum_charge_per == "item"
    left = contract.package_minutes if contract.kind == "package" else 0
    items: list[LineItem] = []
    for group in _group(entries, config.round_per):
        seconds = sum(e.seconds for e in group)
        billed = round_up_minutes(seconds, increment)
        if contract.kind == "package":
            included = min(billed, left)
            left -= included
            overage = billed - included
            charged = overage
        else:
            included, overage, charged = 0, 0, billed
        subtotal = _charge(charged, rate)
        adjust = Decimal("0.00")
        if per_item_minimum and Decimal(0) < subtotal < config.minimum_charge:
            adjust = config.minimum_charge - subtotal
        first = group[0]
        items.append(
            LineItem(
                start=first.ts.astimezone(config.zone),
                ticket=first.ticket if all(e.ticket == first.ticket for e in group) else None,
                session_id=(
                    first.session_id
                    if all(e.session_id == first.session_id for e in group)
                    else None
                ),
                operators=_distinct(
                    operator_names.get(e.operator_id, e.operator_id) for e in group
                ),
                note="; ".join(_distinct(e.note.strip() for e in group)),
                entries=tuple(group),
                actual_seconds=seconds,
                billed_minutes=billed,
                included_minutes=included,
                overage_minutes=overage,
                charged_minutes=charged,
                rate=rate,
                subtotal=subtotal,
                minimum_adjustment=adjust,
                amount=subtotal + adjust,
            )
        )
    charged_total = sum(i.charged_minutes for i in items)
    subtotal = sum((i.subtotal for i in items), Decimal("0.00"))
    if per_item_minimum:
        adjust = sum((i.minimum_adjustment for i in items), Decimal("0.00"))
    elif minimum_applies and Decimal(0) < subtotal < config.minimum_charge:
        adjust = config.minimum_charge - subtotal
    else:
        adjust = Decimal("0.00")
    return CustomerLine(
        customer_id=customer_id,
        name=customer.name if customer is not None else "",
        known=customer is not None,
        contract=contract,
        increment_minutes=increment,
        items=tuple(items),
        actual_seconds=sum(i.actual_seconds for i in items),
        billed_minutes=sum(i.billed_minutes for i in items),
        included_minutes=sum(i.included_minutes for i in items),
        overage_minutes=sum(i.overage_minutes for i in items),
        charged_minutes=charged_total,
        rate=rate,
        subtotal=subtotal,
        minimum_adjustment=adjust,
        amount=subtotal + adjust,
    )


def compute_report(
    entries: Iterable[TimeEntry],
    customers: Iterable[Customer] | Mapping[str, Customer],
    month: str,
    config: BillingConfig | None = None,
    *,
    operator_names: Mapping[str, str] | None = None,
) -> BillingReport:
    """Bill every customer with time in ``month`` ("YYYY-MM", local to ``config.timezone``).

    Entries outside the month are ignored. Customers appear in id order, only if they have
    entries in the month; an entry whose customer has no record is billed at the hourly rate
    (``CustomerLine.known`` False). Entries without ``customer_id`` go to ``unassigned``.
    ``operator_names`` maps operator ids to the names shown (default: the ids).
    """
    cfg = BillingConfig() if config is None else config
    start, end = parse_month(month, cfg.timezone)
    by_id = dict(customers) if isinstance(customers, Mapping) else {c.id: c for c in customers}
    in_month = sorted(
        (e for e in entries if start <= e.ts < end),
        key=lambda e: (e.ts, -1 if e.id is None else e.id),
    )
    per_customer: dict[str, list[TimeEntry]] = {}
    unassigned: list[TimeEntry] = []
    for e in in_month:
        if e.customer_id:
            per_customer.setdefault(e.customer_id, []).append(e)
        else:
            unassigned.append(e)
    names = operator_names or {}
    lines = tuple(
        _customer_line(cid, by_id.get(cid), per_customer[cid], cfg, names)
        for cid in sorted(per_customer)
    )
    return BillingReport(
        month=month,
        start=start,
        end=end,
        currency=cfg.currency,
        config=cfg,
        customers=lines,
        unassigned=tuple(unassigned),
        operator_names=dict(names),
    )


# -- output --------------------------------------------------------------------------------

CSV_COLUMNS = (
    "type",  # "item" (one billed item), "total" (a customer's month), "unassigned" (not billed)
    "month",  # YYYY-MM
    "customer_id",
    "customer_name",
    "contract",  # "hourly" or "package"
    "package_minutes",  # included per month (package), else 0
    "time",  # local time of the (first) entry, ISO 8601 with offset; empty on totals
    "ticket",  # ticket number, if any
    "session_id",  # chat session id, if any
    "operators",  # names, ";"-separated
    "note",
    "entries",  # number of time entries
    "actual_minutes",  # logged time, 2 decimals
    "billed_minutes",  # rounded up to the increment
    "included_minutes",  # package minutes used
    "overage_minutes",  # beyond the package
    "charged_minutes",  # minutes that cost money (hourly: billed; package: overage)
    "rate",  # per hour
    "minimum_adjustment",  # added to reach the minimum charge
    "amount",  # rate x charged_minutes / 60 (+ minimum_adjustment)
    "currency",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Free text as a CSV cell that spreadsheets will not run as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_csv(report: BillingReport) -> str:
    """The report as CSV (header :data:`CSV_COLUMNS`): per customer one ``item`` row per billed
    item, then its ``total`` row; then one ``unassigned`` row per entry without a customer."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    zone = report.config.zone
    for c in report.customers:
        base = [
            report.month,
            c.customer_id,
            _cell(c.name),
            c.contract.kind,
            c.package_minutes,
        ]
        for i in c.items:
            writer.writerow(
                [
                    "item",
                    *base,
                    i.start.isoformat(timespec="seconds"),
                    "" if i.ticket is None else i.ticket,
                    i.session_id or "",
                    _cell(";".join(i.operators)),
                    _cell(i.note),
                    len(i.entries),
                    i.actual_minutes,
                    i.billed_minutes,
                    i.included_minutes,
                    i.overage_minutes,
                    i.charged_minutes,
                    i.rate,
                    i.minimum_adjustment,
                    i.amount,
                    report.currency,
                ]
            )
        writer.writerow(
            [
                "total",
                *base,
                "",
                "",
                "",
                "",
                "",
                sum(len(i.entries) for i in c.items),
                c.actual_minutes,
                c.billed_minutes,
                c.included_minutes,
                c.overage_minutes,
                c.charged_minutes,
                c.rate,
                c.minimum_adjustment,
                c.amount,
                report.currency,
            ]
        )
    for e in report.unassigned:
        writer.writerow(
            [
                "unassigned",
                report.month,
                "",
                "",
                "",
                0,
                e.ts.astimezone(zone).isoformat(timespec="seconds"),
                "" if e.ticket is None else e.ticket,
                e.session_id or "",
                _cell(report.operator_name(e.operator_id)),
                _cell(e.note),
                1,
                _minutes(e.seconds),
                0,
                0,
                0,
                0,
                "",
                "0.00",
                "0.00",
                report.currency,
            ]
        )
    return out.getvalue()


def _ref(ticket: int | None, session_id: str | None) -> str:
    if ticket is not None:
        return f"#{ticket}"
    if session_id:
        return f"chat {session_id[:10]}"
    return "-"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_text(report: BillingReport) -> str:
    """The report as a plain-text table for the terminal."""
    cfg = report.config
    cur = report.currency
    last_day = (report.end - timedelta(days=1)).date()
    out = [
        f"Billing report {report.month} ({report.start.date()} - {last_day}, {cfg.timezone}),"
        f" amounts in {cur}",
        f"Rounding per {cfg.round_per}: packages {cfg.package_increment_minutes} min,"
        f" hourly {cfg.hourly_increment_minutes} min. Hourly rate {cfg.hourly_rate}/h,"
        f" beyond package {cfg.overage_rate}/h, minimum charge {cfg.minimum_charge}"
        f" ({', '.join(sorted(cfg.minimum_charge_applies_to)) or 'none'}, per"
        f" {cfg.minimum_charge_per}).",
    ]
    if not report.customers and not report.unassigned:
        out += ["", "No time logged in this month."]
    header = (
        f"  {'date':16}  {'ref':16}  {'operator':12}  {'note':24}"
        f"  {'actual':>7}  {'billed':>6}  {'incl.':>6}  {'charged':>7}  {'amount':>9}"
    )
    for c in report.customers:
        title = (
            f"{c.customer_id}  {c.name}" if c.known else f"{c.customer_id}  (no customer record)"
        )
        out += ["", f"{title}  -  {c.contract.describe()}", header]
        for i in c.items:
            out.append(
                f"  {i.start:%Y-%m-%d %H:%M}  {_clip(_ref(i.ticket, i.session_id), 16):16}"
                f"  {_clip(', '.join(i.operators), 12):12}  {_clip(i.note, 24):24}"
                f"  {i.actual_minutes:>7.1f}  {i.billed_minutes:>6}  {i.included_minutes:>6}"
                f"  {i.charged_minutes:>7}  {i.amount:>9.2f}"
            )
        out.append(
            f"  {'total':16}  {'':16}  {'':12}  {'':24}  {c.actual_minutes:>7.1f}"
            f"  {c.billed_minutes:>6}  {c.included_minutes:>6}  {c.charged_minutes:>7}"
            f"  {c.subtotal:>9.2f}"
        )
        if c.contract.kind == "package":
            out.append(
                f"  package {_hours(c.package_minutes)} h: used {_hours(c.billed_minutes)} h,"
                f" {_hours(c.overage_minutes)} h beyond at {c.rate}/h = {c.subtotal:.2f}"
            )
        else:
            out.append(f"  {_hours(c.charged_minutes)} h at {c.rate}/h = {c.subtotal:.2f}")
        if c.minimum_adjustment:
            out.append(f"  minimum charge {cfg.minimum_charge}: +{c.minimum_adjustment:.2f}")
        out.append(f"  amount due: {cur} {c.amount:.2f}")
    if report.unassigned:
        out += ["", "Unassigned (no customer; not billed)"]
        for e in report.unassigned:
            who = _clip(report.operator_name(e.operator_id), 12)
            out.append(
                f"  {e.ts.astimezone(cfg.zone):%Y-%m-%d %H:%M}"
                f"  {_clip(_ref(e.ticket, e.session_id), 16):16}  {who:12}"
                f"  {_clip(e.note, 24):24}  {_minutes(e.seconds):>7.1f}"
            )
        n = len(report.unassigned)
        out.append(
            f"  {n} {'entry' if n == 1 else 'entries'}, {_minutes(report.unassigned_seconds)} min"
        )
    if report.customers:
        out += [
            "",
            f"Total {report.month}: {cur} {report.total:.2f} for {len(report.customers)}"
            f" customer(s)",
        ]
    return "\n".join(out) + "\n"
