"""Sending mail over SMTP (aiosmtplib), one connection per mail.

:class:`Mailer` only sends; retrying later is the caller's business (the tickets
outbox, :mod:`chatserver.tickets.mail_out`, keeps failed mail and tries again).
"""

from __future__ import annotations

import aiosmtplib

from chatserver.mail.compose import address_of, build_message
from chatserver.mail.model import MailError, OutboundMail

__all__ = ["Mailer"]


class Mailer:
    """Sends :class:`OutboundMail` through one SMTP server (one connection per mail).

    ``starttls`` requires STARTTLS (no opportunistic upgrade otherwise); ``use_tls`` is
    implicit TLS (port 465). Certificates are verified.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_tls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("starttls and use_tls are mutually exclusive")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        try:
            self._envelope_from = address_of(sender, "From")
        except MailError as exc:
            raise ValueError(str(exc)) from exc
        self.host = host
        self.port = port
        self.sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._use_tls = use_tls
        self._timeout = timeout

    async def send(self, mail: OutboundMail) -> None:
        """Send ``mail``; MailError (naming host:port and the reason) on any failure."""
        msg = build_message(mail, self.sender)
        recipient = address_of(mail.to, "To")
        try:
            await aiosmtplib.send(
                msg,
                sender=self._envelope_from,
                recipients=[recipient],
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise MailError(f"SMTP {self.host}:{self.port} refused: {reason}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"{exc.code} {exc.message}"
            raise MailError(f"SMTP {self.host}:{self.port} refused: {reason}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError, UnicodeError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise MailError(f"SMTP {self.host}:{self.port} failed: {reason}") from exc
