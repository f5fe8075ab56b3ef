"""The ``smtp`` fixture: a real SMTP listener recording what it is handed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatserver.mail.listener import SmtpListener
from tests.mail.samples import Received


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[SmtpListener, Received]]:
    received: Received = []

    async def handler(data: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        received.append((data, mail_from, rcpt_tos))

    listener = SmtpListener(handler, max_bytes=200_000)
    await listener.start()
    try:
        yield listener, received
    finally:
        await listener.stop()
