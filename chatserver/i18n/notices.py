"""Notices: the chat events the server writes, as a code with parameters.

A system message stores ``extra={"notice": {"code": ..., "params": {...}}}`` beside its
English ``text`` (i18n contract, docs/i18n.md); every reader renders the notice in its
own language: the widget and the console through their catalogs (key
``notice.<code>``), the server through :func:`render_notice` (ticket transcripts,
e-mails). :data:`NOTICES` is the list of codes; each English text is the msgid of the
server's gettext catalogs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from chatserver.i18n.catalogs import N_, translation
from chatserver.i18n.languages import LANGUAGES

__all__ = ["NOTICES", "Notice", "UnknownNotice", "notice_text", "render_notice"]

# code -> (English text with {placeholders}, the params it needs). Codes are stable:
# stored messages and client catalogs name them.
NOTICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "operator_joined": (N_("{name} joined the chat."), ("name",)),
    "operator_went_offline": (
        N_("{name} went offline. You are back in the queue."),
        ("name",),
    ),
    "operator_lost_connection": (
        N_("{name} lost the connection. You are back in the queue."),
        ("name",),
    ),
    "another_operator_requested": (
        N_("You asked for another operator; you are back at the front of the queue."),
        (),
    ),
    "handover_to_operator": (N_("{from} is handing your chat over to {to}."), ("from", "to")),
    "transfer_to_level": (N_("Your chat is being passed on to {level}-level support."), ("level",)),
    "transfer_to_colleague": (N_("{from} is transferring your chat to a colleague."), ("from",)),
    "chat_closed_by_visitor": (N_("The visitor ended the chat."), ()),
    "chat_closed_by_operator": (N_("The operator ended the chat."), ()),
    "chat_closed": (N_("The chat was closed."), ()),
    "visitor_left_unanswered": (N_("The visitor left before an operator was free."), ()),
    "chat_taken_over": (N_("{name} took over the chat."), ("name",)),
    "chat_reassigned": (N_("{name} is now looking after your chat."), ("name",)),
    "ticket_created": (
        N_(
            "Your request is now ticket {ticket}. We will continue by e-mail and you can"
            " follow it here."
        ),
        ("ticket",),
    ),
}

# Support levels as the {level} of "transfer_to_level" shows them (an ordinal).
LEVEL_ORDINALS: dict[int, str] = {1: N_("1st"), 2: N_("2nd"), 3: N_("3rd")}


class UnknownNotice(LookupError):
    """A notice code that is not in :data:`NOTICES`, or a param it needs is missing."""


@dataclasses.dataclass(frozen=True, slots=True)
class Notice:
    """A notice to store: ``code`` of :data:`NOTICES` and the params it needs.

    Constructing one checks both (``UnknownNotice``), so a typo fails where it is made.
    """

    code: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _entry(self.code, self.params)

    def extra(self) -> dict[str, Any]:
        """What the stored message's ``extra`` holds for it."""
        return {"notice": {"code": self.code, "params": dict(self.params)}}

    def english(self) -> str:
        """The English rendering (the message's ``text``)."""
        return render_notice(self.code, self.params, "en")


def _entry(code: str, params: Mapping[str, Any]) -> str:
    try:
        template, needs = NOTICES[code]
    except KeyError:
        raise UnknownNotice(f"unknown notice code {code!r}") from None
    missing = [p for p in needs if p not in params]
    if missing:
        raise UnknownNotice(f"notice {code!r} needs {', '.join(missing)}")
    return template


def render_notice(code: str, params: Mapping[str, Any], lang: str) -> str:
    """The notice ``code`` with ``params`` as text in ``lang``.

    ``lang`` outside :data:`LANGUAGES` renders English. Raises :class:`UnknownNotice`
    for an unknown code or a missing param (callers holding a stored message use
    :func:`notice_text`, which falls back to its text).
    """
    template = _entry(code, params)
    tr = translation(lang if lang in LANGUAGES else "en")
    values = {key: str(params[key]) for key in NOTICES[code][1]}
    if "level" in values:
        level = params["level"]
        ordinal = LEVEL_ORDINALS.get(level) if isinstance(level, int) else None
        values["level"] = tr.gettext(ordinal) if ordinal is not None else str(level)
    return tr.gettext(template).format(**values)


def notice_text(text: str, extra: Mapping[str, Any] | None, lang: str) -> str:
    """A stored message as ``lang``'s reader sees it: its notice rendered, or ``text``
    when it has none or one this server does not know."""
    notice = (extra or {}).get("notice")
    if not isinstance(notice, Mapping):
        return text
    code, params = notice.get("code"), notice.get("params")
    if not isinstance(code, str) or not isinstance(params, Mapping):
        return text
    try:
        return render_notice(code, params, lang)
    except UnknownNotice:
        return text
