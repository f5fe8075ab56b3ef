"""Recognising the English texts system messages had before notices (schema 8).

Schema migration 8 gives every stored system message whose text matches one of
:data:`PATTERNS` its notice, so old chats render in the reader's language too. A
text that matches none stays text-only and keeps rendering as it is. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PATTERNS", "notice_of_text"]

_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3}

# (code, the old text as a full-match regex); named groups are the params
# ("from_" stands for "from").
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (code, re.compile(rx, re.DOTALL))
    for code, rx in (
        ("operator_joined", r"(?P<name>.+) joined the chat\."),
        ("operator_went_offline", r"(?P<name>.+) went offline\. You are back in the queue\."),
        (
            "operator_lost_connection",
            r"(?P<name>.+) lost the connection\. You are back in the queue\.",
        ),
        (
            "another_operator_requested",
            r"You asked for another operator; you are back at the front of the queue\.",
        ),
        ("handover_to_operator", r"(?P<from_>.+?) is handing your chat over to (?P<to>.+)\."),
        ("transfer_to_level", r"Your chat is being passed on to (?P<level>\w+)-level support\."),
        ("transfer_to_colleague", r"(?P<from_>.+) is transferring your chat to a colleague\."),
        ("chat_closed_by_visitor", r"The visitor ended the chat\."),
        ("chat_closed_by_operator", r"The operator ended the chat\."),
        ("chat_closed", r"The chat was closed\."),
        ("visitor_left_unanswered", r"The visitor left before an operator was free\."),
        ("chat_taken_over", r"(?P<name>.+) took over the chat\."),
        ("chat_reassigned", r"(?P<name>.+) is now looking after your chat\."),
        (
            "ticket_created",
            r"Your request is now ticket (?P<ticket>#\d+)\. We will continue by e-mail"
            r" and you can follow it here\.",
        ),
    )
)


def notice_of_text(text: str) -> dict[str, Any] | None:
    """The notice (``{"code", "params"}``) an old system message text stands for, or
    ``None`` when the text is none of the known ones."""
    for code, pattern in PATTERNS:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        params: dict[str, Any] = {k.rstrip("_"): v for k, v in m.groupdict().items()}
        if code == "transfer_to_level":
            level = _ORDINALS.get(params["level"])
            if level is None:
                return None
            params["level"] = level
        return {"code": code, "params": params}
    return None
