"""``/metrics`` of a real server after real traffic: the named series, with real values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatserver import __version__
from chatserver.mail.listener import SmtpListener
from tests.waiting import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: Any) -> tuple[Samples, httpx.Response]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, response


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class MailSink:
    """A real SMTP server keeping what it receives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.listener = SmtpListener(self._take)

    async def _take(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        self.received.append(raw)


@pytest.fixture
async def mail_sink() -> AsyncIterator[MailSink]:
    sink = MailSink()
    await sink.listener.start()
    yield sink
    await sink.listener.stop()


async def test_metrics_show_real_values_after_traffic(make_server, clients, mail_sink):
    server = make_server(
        env={
            "CHATSERVER_SMTP_HOST": "127.0.0.1",
            "CHATSERVER_SMTP_PORT": str(mail_sink.listener.port),
        }
    )
    server.start()
    server.add_operator("anna", name="Anna", capacity=1)
    op = await server.operator("anna")
    v1 = await server.visitor(name="Vera", email="vera@example.ch")
    clients += [op, v1]
    await v1.send("first")
    await op.next_chat()
    await v1.send("second")
    await op.send_to(v1.session_id, "answer")
    await v1.wait_for("message", lambda f: f["from"] == "operator")
    # A second visitor waits: Anna is at capacity.
    v2 = await server.visitor(name="Wanda")
    clients.append(v2)
    await v2.send("anyone?")
    await v2.wait_for("state", lambda f: f["state"] == "waiting")

    # The queue gauges are set by the ticker; Wanda's wait growing past a second is
    # the thing under test, so we poll the scrape until it shows it.
    async def queue_gauges_show_wanda() -> bool:
        samples, _ = await scrape(server)
        return (
            samples.get(("chatserver_queue_length", ()), 0) == 1
            and samples.get(("chatserver_queue_longest_wait_seconds", ()), 0) >= 1.0
        )

    await eventually(queue_gauges_show_wanda, message="queue gauges: one waiting for >= 1 s")
    # A ticket (escalation), confirmed by mail.
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        token = (
            await http.post("/api/login", json={"username": "anna", "password": "pw-secret"})
        ).json()["token"]
        r = await http.post(
            f"/api/sessions/{v1.session_id}/escalate",
            json={"subject": "Printer"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
    await eventually(lambda: mail_sink.received, timeout=10, message="a confirmation mail")

    # The sink has the mail before the server's SMTP exchange ends and counts it.
    async def scrape_once_mail_counted() -> tuple[Samples, httpx.Response] | None:
        samples, response = await scrape(server)
        sent = samples.get(("chatserver_mail_sent_total", (("result", "ok"),)), 0)
        return (samples, response) if sent >= 1 else None

    got = await eventually(scrape_once_mail_counted, message="the sent mail counted")
    assert got is not None
    samples, response = got
    assert response.headers["content-type"].startswith("text/plain")
    assert value(samples, "chatserver_connections", role="visitor") == 2
    assert value(samples, "chatserver_connections", role="operator") == 1
    assert value(samples, "chatserver_messages_in_total", role="visitor") == 3
    assert value(samples, "chatserver_messages_in_total", role="operator") == 1
    assert value(samples, "chatserver_messages_out_total") >= 5
    assert value(samples, "chatserver_queue_length") == 1
    assert value(samples, "chatserver_queue_longest_wait_seconds") >= 1.0
    assert value(samples, "chatserver_assignment_latency_seconds_count") == 1
    assert value(samples, "chatserver_assignment_latency_seconds_sum") >= 0
    assert value(samples, "chatserver_store_batch_size_count") > 0
    assert value(samples, "chatserver_store_batch_size_sum") >= value(
        samples, "chatserver_store_batch_size_count"
    )
    assert value(samples, "chatserver_store_commit_seconds_count") == value(
        samples, "chatserver_store_batch_size_count"
    )
    assert value(samples, "chatserver_tickets_created_total", channel="chat") == 1
    assert value(samples, "chatserver_mail_sent_total", result="ok") >= 1
    assert value(samples, "chatserver_sla_breaches_total", kind="first_response") == 0
    assert value(samples, "chatserver_bus_lag_seconds_count") == 0  # one node: no bus
    # One node: messages go through the journal, and the escalation's transcript
    # read copied it (every message so far: 4 chat lines and the system ones).
    assert value(samples, "chatserver_journal_copies_total") >= 1
    assert value(samples, "chatserver_journal_copied_messages_total") >= 4
    assert value(samples, "chatserver_journal_pending_messages") >= 0
    assert value(samples, "chatserver_journal_copy_failures_total") == 0
    assert ("chatserver_build_info", (("version", __version__),)) in samples

    # Connections are counted down when they close.
    await v2.close()

    async def one_visitor_connected() -> bool:
        samples, _ = await scrape(server)
        return value(samples, "chatserver_connections", role="visitor") == 1

    await eventually(one_visitor_connected, message="the visitor gauge counted down to 1")
