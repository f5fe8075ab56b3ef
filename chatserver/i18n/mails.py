"""The desk's e-mails to customers, in the customer's language (gettext catalogs).

Each function returns ``(subject, body)`` in ``lang`` (one of :data:`LANGUAGES`;
anything else renders in English). Every sentence is a msgid of the server's catalogs,
so a translator sees whole sentences with their ``{placeholders}``. Dates and times
are formatted for the language with Babel in the desk's time zone. The ``[#100042]``
in a subject is what inbound replies are matched by: every subject keeps it.
"""

from __future__ import annotations

import gettext
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time

from chatserver.i18n.catalogs import translation
from chatserver.i18n.languages import LANGUAGES

__all__ = [
    "confirmation",
    "feedback_needed",
    "format_when",
    "public_reply",
    "transcript",
    "transcript_line",
]


def _tr(lang: str) -> gettext.NullTranslations:
    return translation(lang if lang in LANGUAGES else "en")


def format_when(ts: float, lang: str, timezone: str) -> tuple[str, str]:
    """``(date, time)`` of the epoch seconds ``ts`` in ``timezone``, as ``lang`` writes
    them (``5. Dezember 2026``, ``14:30``)."""
    lang = lang if lang in LANGUAGES else "en"
    when = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(timezone))
    return format_date(when, "long", locale=lang), format_time(when, "short", locale=lang)


def _greeting(tr: gettext.NullTranslations, name: str | None) -> str:
    if name:
        return tr.gettext("Hello {name},").format(name=name)
    return tr.gettext("Hello,")


def _signature(tr: gettext.NullTranslations) -> str:
    return tr.gettext("Kind regards") + "\n" + tr.gettext("Your support team") + "\n"


def confirmation(
    lang: str,
    *,
    ref: str,
    subject: str,
    name: str | None,
    opened: float,
    timezone: str,
) -> tuple[str, str]:
    """The mail confirming ticket ``ref`` was opened at ``opened`` (epoch seconds)."""
    tr = _tr(lang)
    date, time = format_when(opened, lang, timezone)
    return (
        tr.gettext("[{ref}] We have received your request: {subject}").format(
            ref=ref, subject=subject
        ),
        f"{_greeting(tr, name)}\n\n"
        + tr.gettext(
            "thank you for your request. We opened ticket {ref} for it on {date} at {time}:"
        ).format(ref=ref, date=date, time=time)
        + f"\n    {subject}\n\n"
        + tr.gettext(
            "To add something, simply reply to this e-mail and keep the ticket number in"
            " the subject."
        )
        + "\n\n"
        + _signature(tr),
    )


def public_reply(lang: str, *, ref: str, subject: str, text: str) -> tuple[str, str]:
    """The mail carrying an operator's public reply ``text`` on ticket ``ref``."""
    tr = _tr(lang)
    return (
        tr.gettext("Re: [{ref}] {subject}").format(ref=ref, subject=subject),
        f"{text}\n\n-- \n"
        + tr.gettext("Ticket {ref}: reply to this e-mail to answer.").format(ref=ref)
        + "\n",
    )


def feedback_needed(
    lang: str, *, ref: str, subject: str, name: str | None, reason: str | None
) -> tuple[str, str]:
    """The mail asking for information on ticket ``ref`` (state Feedback needed)."""
    tr = _tr(lang)
    why = f"\n\n{reason}" if reason else ""
    return (
        tr.gettext("Feedback needed: [{ref}] {subject}").format(ref=ref, subject=subject),
        f"{_greeting(tr, name)}\n\n"
        + tr.gettext("we need some information from you to continue with ticket {ref}.").format(
            ref=ref
        )
        + why
        + "\n\n"
        + tr.gettext("Please reply to this e-mail.")
        + "\n\n"
        + _signature(tr),
    )


def transcript_line(
    lang: str,
    *,
    ts: float,
    timezone: str,
    author: str | None,
    text: str,
    attachments: Sequence[str] = (),
) -> str:
    """One message of a mailed transcript: ``[when] author: text`` with the time
    (epoch seconds ``ts``) in the desk's ``timezone`` as ``lang`` writes it; ``author``
    None is the system ("—"), ``attachments`` are file names."""
    lang = lang if lang in LANGUAGES else "en"
    when = format_datetime(
        datetime.fromtimestamp(ts, UTC), "short", tzinfo=ZoneInfo(timezone), locale=lang
    )
    line = f"[{when}] {author or '—'}: {text}"
    if attachments:
        line += " " + _tr(lang).gettext("[attachments: {names}]").format(
            names=", ".join(attachments)
        )
    return line


def transcript(lang: str, lines: Sequence[str]) -> tuple[str, str]:
    """The mail with a chat's transcript, one line per message."""
    tr = _tr(lang)
    return (
        tr.gettext("Your chat transcript"),
        tr.gettext("Here is the transcript of your chat:") + "\n\n" + "\n".join(lines) + "\n",
    )
