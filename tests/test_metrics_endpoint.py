"""``/metrics`` of a real server after real traffic: the named series, with real values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatserver import __version__
from chatserver.mail import SmtpListener

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
    await asyncio.sleep(1.2)  # the queue gauges are set by the ticker
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
    for _ in range(100):
        if mail_sink.received:
            break
        await asyncio.sleep(0.1)
    assert mail_sink.received, "no confirmation mail"

    samples, response = await scrape(server)
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
    for _ in range(50):
        samples, _ = await scrape(server)
        if value(samples, "chatserver_connections", role="visitor") == 1:
            break
        await asyncio.sleep(0.05)
    assert value(samples, "chatserver_connections", role="visitor") == 1
