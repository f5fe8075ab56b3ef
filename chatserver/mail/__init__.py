"""The e-mail channel of support tickets, one module per direction and step.

Inbound: :mod:`~chatserver.mail.listener` (the SMTP server in the asyncio loop) hands
raw mail to a callback; :mod:`~chatserver.mail.parse` turns it into an
:class:`~chatserver.mail.model.InboundMail`, helped by
:mod:`~chatserver.mail.quoted_reply` (cut the quoted history) and
:mod:`~chatserver.mail.html_text` (HTML-only mail as text).

Outbound: :mod:`~chatserver.mail.compose` builds the plain-text message,
:mod:`~chatserver.mail.mailer` sends it over SMTP.

:mod:`~chatserver.mail.model` holds the data and :class:`~chatserver.mail.model.MailError`;
:mod:`~chatserver.mail.sanitize` the text cleaning both directions share. Only the
listener and the mailer do I/O. What a mail *means* for a ticket (reply, new ticket,
held for review) is decided in :mod:`chatserver.tickets.mail_in`.
"""
