"""The built-in SMTP listener (chatserver.mail.listener) with real SMTP clients."""

from __future__ import annotations

import asyncio
import smtplib
from email import policy

import aiosmtplib
import pytest

from chatserver.mail.listener import SmtpListener
from chatserver.mail.mailer import Mailer
from chatserver.mail.model import MailError
from chatserver.mail.parse import parse_inbound
from tests.mail.samples import Received, make_mail, outbound, raw
from tests.waiting import eventually


async def test_handler_mail_error_is_550() -> None:
    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        raise MailError("no ticket for this sender\r\n(nope)")

    listener = SmtpListener(handler)
    await listener.start()
    try:
        mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
        with pytest.raises(MailError, match="550") as info:
            await mailer.send(outbound())
        assert "no ticket for this sender (nope)" in str(info.value)
        assert f"127.0.0.1:{listener.port}" in str(info.value)
    finally:
        await listener.stop()


async def test_handler_crash_is_451() -> None:
    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        raise RuntimeError("database down")

    listener = SmtpListener(handler)
    await listener.start()
    try:
        mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
        with pytest.raises(MailError, match="451") as info:
            await mailer.send(outbound())
        assert "database down" not in str(info.value)
    finally:
        await listener.stop()


async def test_raw_aiosmtplib_client(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    data = raw(
        """
        From: Kunde <kunde@example.org>
        To: support@chat.example
        Subject: [#100077] Frage
        Message-ID: <q1@example.org>

        Eine Frage.
        """
    )
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, start_tls=False)
    async with client:
        errors, _ = await client.sendmail(
            "kunde@example.org", ["support@chat.example", "tickets@chat.example"], data
        )
    assert errors == {}
    assert len(received) == 1
    got, mail_from, rcpt_tos = received[0]
    assert mail_from == "kunde@example.org"
    assert rcpt_tos == ["support@chat.example", "tickets@chat.example"]
    assert got == data
    mail = parse_inbound(got)
    assert (mail.ticket_number, mail.text) == (100077, "Eine Frage.")


async def test_stdlib_smtplib_bounce(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    data = raw(
        """
        From: MAILER-DAEMON@mx.example.org
        To: support@chat.example
        Subject: Undelivered Mail
        Auto-Submitted: auto-replied

        Your mail could not be delivered.
        """
    )

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.sendmail("<>", ["support@chat.example"], data)

    await asyncio.to_thread(send)
    assert len(received) == 1
    got, mail_from, rcpt_tos = received[0]
    assert mail_from == ""  # null reverse-path: never answer
    assert rcpt_tos == ["support@chat.example"]
    assert parse_inbound(got).auto_submitted is True


async def test_oversized_mail_is_refused_with_552(smtp: tuple[SmtpListener, Received]) -> None:
    listener, received = smtp
    big = make_mail("y" * 70 + ("\n" + "y" * 70) * 4000).as_bytes(policy=policy.SMTP)
    assert len(big) > 250_000

    def send_without_size_option() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.ehlo()
            client.mail("kunde@example.org")  # no SIZE= announcement: refused after DATA
            client.rcpt("support@chat.example")
            return client.data(big)

    code, message = await asyncio.to_thread(send_without_size_option)
    assert code == 552, message

    # aiosmtplib announces SIZE= and is refused before sending the data.
    mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
    with pytest.raises(MailError, match="552"):
        await mailer.send(outbound(text="z" * 300_000))
    assert received == []


async def test_stop_waits_for_mail_being_handed_over() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    stored: list[bytes] = []

    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        entered.set()
        await release.wait()
        stored.append(data)

    listener = SmtpListener(handler)
    await listener.start()
    mailer = Mailer("127.0.0.1", listener.port, "support@chat.example")
    sending = asyncio.create_task(mailer.send(outbound()))
    await asyncio.wait_for(entered.wait(), 10)
    port = listener.port
    stopping = asyncio.create_task(listener.stop(grace=30))

    async def refuses_connections() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return True
        writer.close()
        return False

    await eventually(refuses_connections, message="the listener stops accepting")
    assert not stopping.done()  # stopped accepting, still waiting for the mail in hand
    release.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(sending, 5)  # the sender got its 250
    assert len(stored) == 1


async def test_listener_lifecycle() -> None:
    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        return None

    listener = SmtpListener(handler)
    with pytest.raises(RuntimeError):
        _ = listener.port
    await listener.start()
    with pytest.raises(RuntimeError):
        await listener.start()
    port = listener.port
    assert port > 0
    # An idle client connection must not keep stop() waiting.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220 chatserver")
    await listener.stop()
    assert await reader.read() == b""
    writer.close()
    await listener.stop()  # idempotent
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
