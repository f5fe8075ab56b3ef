"""Prometheus metrics for one app: every series in a registry of its own.

A :class:`Metrics` never touches ``prometheus_client``'s global ``REGISTRY``, so
several apps (tests start many in one process) keep separate counts, and
creating a second instance never fails with "Duplicated timeseries".

Attributes are named after the series without the ``chatserver_`` prefix::

    metrics.connections.labels(role="visitor").inc()
    metrics.messages_in_total.labels(role="operator").inc()
    metrics.store_batch_size.observe(len(batch))
    body, content_type = metrics.render()

Labelled series are created at zero for every known label value, so dashboards
see them (and ``rate()`` has a starting point) before the first event.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from chatserver import __version__

PREFIX = "chatserver_"

ROLES = ("visitor", "operator")
SLA_KINDS = ("first_response", "resolution")
TICKET_CHANNELS = ("chat", "form", "email")
MAIL_RESULTS = ("ok", "error")

# 1, 2, 4, … 1024 writes per group commit (the default CHATSERVER_STORE_MAX_BATCH is 512).
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(11))
# An fsync'd SQLite commit takes about a millisecond on an SSD; seconds mean trouble.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Redis pub/sub between nodes on one host or LAN: sub-millisecond to a few ms.
BUS_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
# Waiting for an operator: instant when one is free, minutes when the desk is busy.
ASSIGNMENT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class _Count:
    """A counter child for the per-message hot path: a plain int, no lock.

    Only the event loop's thread may touch it (prometheus-client's own
    counters take a lock per increment; these are read at scrape time)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class FastCounter(Collector):
    """A counter (optionally with one label) with the ``Counter`` calling style."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _Count] = {}
        # The count itself: the hot path adds to its value directly.
        self.unlabelled = _Count()
        registry.register(self)

    def labels(self, **labels: str) -> _Count:
        key = tuple(labels[n] for n in self.labelnames)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = _Count()
        return child

    def inc(self, amount: float = 1) -> None:
        self.unlabelled.value += amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if self.labelnames:
            for key, child in self._children.items():
                family.add_metric(list(key), child.value)
        else:
            family.add_metric([], self.unlabelled.value)
        yield family


class FastHistogram(Collector):
    """A histogram with the ``Histogram.observe`` calling style and no lock."""

    def __init__(
        self,
        name: str,
        documentation: str,
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = [float(b) for b in buckets]
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        registry.register(self)

    def observe(self, amount: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def collect(self) -> Iterator[Metric]:
        cumulative, total = [], 0
        for bound, count in zip([*self._bounds, float("inf")], self._counts, strict=True):
            total += count
            label = "+Inf" if bound == float("inf") else repr(bound)
            cumulative.append((label, float(total)))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, self._sum)
        yield family


class JournalStats(Protocol):
    """What :class:`_JournalCollector` reads (``SqliteStore`` has it)."""

    @property
    def journal_pending(self) -> int: ...

    journal_copies: int
    journal_rows: int
    journal_copy_failures: int


class _JournalCollector(Collector):
    def __init__(self, store: JournalStats) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        s = self.store
        yield GaugeMetricFamily(
            PREFIX + "journal_pending_messages",
            "Acked messages in the journal not copied into the database yet.",
            value=s.journal_pending,
        )
        yield CounterMetricFamily(
            PREFIX + "journal_copies",
            "Copies of the message journal into the database.",
            value=s.journal_copies,
        )
        yield CounterMetricFamily(
            PREFIX + "journal_copied_messages",
            "Messages copied from the journal into the database.",
            value=s.journal_rows,
        )
        yield CounterMetricFamily(
            PREFIX + "journal_copy_failures",
            "Copies of the journal that failed (their messages are kept and tried again).",
            value=s.journal_copy_failures,
        )


class Metrics:
    """All series of one chatserver app, in its own :class:`CollectorRegistry`."""

    def __init__(self, *, version: str = __version__) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry

        self.connections = Gauge(
            PREFIX + "connections", "Open WebSocket connections.", ["role"], registry=reg
        )
        # Touched per message (or per commit): lock-free, event loop only.
        self.messages_in_total = FastCounter(
            PREFIX + "messages_in_total",
            "Chat messages received from clients.",
            ["role"],
            registry=reg,
        )
        self.messages_out_total = FastCounter(
            PREFIX + "messages_out_total",
            "Frames of type message delivered to clients.",
            registry=reg,
        )
        self.queue_length = Gauge(
            PREFIX + "queue_length", "Chats waiting for an operator.", registry=reg
        )
        self.queue_longest_wait_seconds = Gauge(
            PREFIX + "queue_longest_wait_seconds",
            "How long the longest-waiting chat in the queue has waited.",
            registry=reg,
        )
        self.assignment_latency_seconds = Histogram(
            PREFIX + "assignment_latency_seconds",
            "Time from a chat entering the queue to its assignment to an operator.",
            buckets=ASSIGNMENT_BUCKETS,
            registry=reg,
        )
        self.store_batch_size = FastHistogram(
            PREFIX + "store_batch_size",
            "Writes committed in one group-commit transaction.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=reg,
        )
        self.store_commit_seconds = FastHistogram(
            PREFIX + "store_commit_seconds",
            "Duration of one group-commit transaction.",
            buckets=COMMIT_BUCKETS,
            registry=reg,
        )
        self.bus_lag_seconds = FastHistogram(
            PREFIX + "bus_lag_seconds",
            "Time from publishing a bus note on one node to receiving it on another.",
            buckets=BUS_LAG_BUCKETS,
            registry=reg,
        )
        self.sla_breaches_total = Counter(
            PREFIX + "sla_breaches_total",
            "Chats or tickets that missed an SLA target.",
            ["kind"],
            registry=reg,
        )
        self.tickets_created_total = Counter(
            PREFIX + "tickets_created_total",
            "Tickets created, by the channel they came from.",
            ["channel"],
            registry=reg,
        )
        self.mail_sent_total = Counter(
            PREFIX + "mail_sent_total", "Outgoing e-mails, by result.", ["result"], registry=reg
        )
        # Info appends "_info": the series is chatserver_build_info{version="…"} 1.
        self.build_info = Info(PREFIX + "build", "chatserver build.", registry=reg)
        self.build_info.info({"version": version})

        for role in ROLES:
            self.connections.labels(role=role)
            self.messages_in_total.labels(role=role)
        for kind in SLA_KINDS:
            self.sla_breaches_total.labels(kind=kind)
        for channel in TICKET_CHANNELS:
            self.tickets_created_total.labels(channel=channel)
        for result in MAIL_RESULTS:
            self.mail_sent_total.labels(result=result)

    def watch_journal(self, store: JournalStats) -> None:
        """Expose ``store``'s message journal, read at scrape time."""
        self.registry.register(_JournalCollector(store))

    def observe_batch(self, size: int, seconds: float) -> None:
        """One group commit of ``size`` writes that took ``seconds`` (store hook)."""
        self.store_batch_size.observe(size)
        self.store_commit_seconds.observe(seconds)

    def ticket_created(self, channel: str) -> None:
        self.tickets_created_total.labels(channel=channel).inc()

    def mail_result(self, result: str) -> None:
        self.mail_sent_total.labels(result=result).inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this registry and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
