"""Receiving mail: a small SMTP server (aiosmtpd) in the running asyncio loop.

:class:`SmtpListener` hands every accepted mail, unparsed, to an
:data:`InboundHandler`; the handler's outcome decides the SMTP reply (250, 550 or 451).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from chatserver.mail.model import DEFAULT_MAX_BYTES, MailError

log = logging.getLogger("chatserver.mail.listener")

__all__ = ["InboundHandler", "SmtpListener"]

InboundHandler = Callable[[bytes, str, list[str]], Awaitable[None]]
"""Receives (raw mail bytes, envelope MAIL FROM ("" for bounces), RCPT TO addresses).

Raise MailError to reject the mail permanently (SMTP 550 with its message); any other
exception answers 451 so the sending server retries later, so a handler must take a
mail atomically and answer a mail it already took without raising (250 again).
"""


def _smtp_reply_text(text: str) -> str:
    text = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return " ".join(text.split())[:400] or "rejected"


class _DataHandler:
    """aiosmtpd handler object: forwards each DATA to the InboundHandler."""

    def __init__(self, callback: InboundHandler) -> None:
        self._callback = callback
        self.in_flight: set[asyncio.Future[None]] = set()  # one per mail being handed over

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Advertise PIPELINING (RFC 2920): aiosmtpd reads commands one line at a time
        from a buffered stream, so a client may send several before the replies."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = (
                content.encode("utf-8", "surrogateescape")
                if isinstance(content, str)
                else (content or b"")
            )
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        done = asyncio.get_running_loop().create_future()
        self.in_flight.add(done)
        try:
            await self._callback(raw, mail_from, list(envelope.rcpt_tos))
        except MailError as exc:
            return f"550 {_smtp_reply_text(str(exc))}"
        except Exception:
            log.exception("inbound mail handler failed (peer %s)", session.peer)
            return "451 Requested action aborted: local error in processing"
        finally:
            self.in_flight.discard(done)
            done.set_result(None)
        return "250 OK"


class SmtpListener:
    """A built-in SMTP server (aiosmtpd) running in the current asyncio loop (NOT aiosmtpd's
    threaded Controller): uses loop.create_server with aiosmtpd.smtp.SMTP as protocol factory.

    Accepts any recipient and no AUTH/TLS: bind it to a trusted interface or put it
    behind a real MTA. Mails over ``max_bytes`` are refused with 552.
    """

    def __init__(
        self,
        handler: InboundHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        hostname: str = "chatserver",
    ) -> None:
        self._handler = _DataHandler(handler)
        self._host = host
        self._requested_port = port
        self._max_bytes = max_bytes
        self._hostname = hostname
        self._server: asyncio.Server | None = None
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _make_protocol(self) -> SMTP:
        protocol = SMTP(
            self._handler,
            data_size_limit=self._max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._hostname,
            timeout=120,
            loop=asyncio.get_running_loop(),
        )
        self._protocols.add(protocol)
        return protocol

    async def start(self) -> None:
        """Bind and start accepting connections (raises OSError if the port is taken)."""
        if self._server is not None:
            raise RuntimeError("SmtpListener already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_protocol, host=self._host, port=self._requested_port
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, wait up to ``grace`` s for mails being handed over, close all."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        in_flight = set(self._handler.in_flight)
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace)
        protocols = list(self._protocols)
        tasks = [p._handler_coroutine for p in protocols if p._handler_coroutine is not None]
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await server.wait_closed()

    @property
    def port(self) -> int:
        """The bound port (useful with port=0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("SmtpListener is not running")
        return int(self._server.sockets[0].getsockname()[1])
