"""chatserver.metrics: every series renders with the values recorded, per instance."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from chatserver import __version__
from chatserver.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def test_render_returns_text_exposition():
    body, content_type = Metrics().render()
    assert isinstance(body, bytes)
    assert content_type.startswith("text/plain")
    text = body.decode()
    for series in (
        "chatserver_connections",
        "chatserver_messages_in_total",
        "chatserver_messages_out_total",
        "chatserver_queue_length",
        "chatserver_queue_longest_wait_seconds",
        "chatserver_assignment_latency_seconds",
        "chatserver_store_batch_size",
        "chatserver_store_commit_seconds",
        "chatserver_bus_lag_seconds",
        "chatserver_sla_breaches_total",
        "chatserver_tickets_created_total",
        "chatserver_mail_sent_total",
        "chatserver_build_info",
    ):
        assert f"# HELP {series} " in text or f"# HELP {series.removesuffix('_info')} " in text
        assert f"\n{series}" in text, series


def test_labelled_series_start_at_zero():
    m = Metrics()
    for role in ("visitor", "operator"):
        assert value(m, "chatserver_connections", role=role) == 0
        assert value(m, "chatserver_messages_in_total", role=role) == 0
    for kind in ("first_response", "resolution"):
        assert value(m, "chatserver_sla_breaches_total", kind=kind) == 0
    for channel in ("chat", "form", "email"):
        assert value(m, "chatserver_tickets_created_total", channel=channel) == 0
    for result in ("ok", "error"):
        assert value(m, "chatserver_mail_sent_total", result=result) == 0


def test_recorded_values_render():
    m = Metrics()
    m.connections.labels(role="visitor").inc(3)
    m.connections.labels(role="visitor").dec()
    m.connections.labels(role="operator").inc()
    m.messages_in_total.labels(role="visitor").inc(5)
    m.messages_in_total.labels(role="operator").inc(2)
    m.messages_out_total.inc(7)
    m.queue_length.set(4)
    m.queue_longest_wait_seconds.set(12.5)
    m.assignment_latency_seconds.observe(0.3)
    m.assignment_latency_seconds.observe(45)
    m.store_batch_size.observe(3)
    m.store_batch_size.observe(1024)
    m.store_commit_seconds.observe(0.002)
    m.bus_lag_seconds.observe(0.0007)
    m.sla_breaches_total.labels(kind="first_response").inc()
    m.tickets_created_total.labels(channel="email").inc(2)
    m.mail_sent_total.labels(result="ok").inc(3)
    m.mail_sent_total.labels(result="error").inc()

    text = m.render()[0].decode()
    assert 'chatserver_connections{role="visitor"} 2.0' in text
    assert "chatserver_messages_out_total 7.0" in text
    assert "chatserver_queue_length 4.0" in text

    assert value(m, "chatserver_connections", role="visitor") == 2
    assert value(m, "chatserver_connections", role="operator") == 1
    assert value(m, "chatserver_messages_in_total", role="visitor") == 5
    assert value(m, "chatserver_messages_in_total", role="operator") == 2
    assert value(m, "chatserver_messages_out_total") == 7
    assert value(m, "chatserver_queue_length") == 4
    assert value(m, "chatserver_queue_longest_wait_seconds") == 12.5
    assert value(m, "chatserver_assignment_latency_seconds_count") == 2
    assert value(m, "chatserver_assignment_latency_seconds_sum") == 45.3
    assert value(m, "chatserver_assignment_latency_seconds_bucket", le="0.5") == 1
    assert value(m, "chatserver_assignment_latency_seconds_bucket", le="60.0") == 2
    assert value(m, "chatserver_store_batch_size_bucket", le="2.0") == 0
    assert value(m, "chatserver_store_batch_size_bucket", le="4.0") == 1
    assert value(m, "chatserver_store_batch_size_bucket", le="1024.0") == 2
    assert value(m, "chatserver_store_commit_seconds_count") == 1
    assert value(m, "chatserver_store_commit_seconds_bucket", le="0.0025") == 1
    assert value(m, "chatserver_bus_lag_seconds_bucket", le="0.001") == 1
    assert value(m, "chatserver_sla_breaches_total", kind="first_response") == 1
    assert value(m, "chatserver_sla_breaches_total", kind="resolution") == 0
    assert value(m, "chatserver_tickets_created_total", channel="email") == 2
    assert value(m, "chatserver_tickets_created_total", channel="chat") == 0
    assert value(m, "chatserver_mail_sent_total", result="ok") == 3
    assert value(m, "chatserver_mail_sent_total", result="error") == 1
    assert value(m, "chatserver_build_info", version=__version__) == 1


def test_batch_size_buckets_are_powers_of_two():
    les = {
        labels[0][1]
        for (name, labels) in samples(Metrics())
        if name == "chatserver_store_batch_size_bucket"
    }
    assert les == {f"{float(2**i)}" for i in range(11)} | {"+Inf"}


def test_build_info_version_is_settable():
    assert value(Metrics(version="9.9.9"), "chatserver_build_info", version="9.9.9") == 1


def test_instances_are_independent_and_not_global():
    a, b = Metrics(), Metrics()
    a.messages_out_total.inc(10)
    a.connections.labels(role="operator").inc()
    b.messages_out_total.inc()
    assert value(a, "chatserver_messages_out_total") == 10
    assert value(b, "chatserver_messages_out_total") == 1
    assert value(b, "chatserver_connections", role="operator") == 0
    assert a.registry is not b.registry
    assert a.registry is not REGISTRY
    # Nothing was registered in prometheus_client's process-wide registry.
    assert REGISTRY.get_sample_value("chatserver_messages_out_total") is None
