"""Checks of user-supplied fields: free text, one-line text, e-mail addresses, phones.

Each ``clean_*`` function returns the value as it is stored or raises
:class:`~chatserver.errors.BadFrame` naming the field. No I/O.
"""

from __future__ import annotations

import re
from typing import Any

from chatserver.errors import BadFrame

__all__ = [
    "MAX_REASON",
    "MAX_SUBJECT",
    "MAX_TEXT",
    "clean_email",
    "clean_line",
    "clean_phone",
    "clean_text",
    "strip_control",
]

MAX_SUBJECT = 200
MAX_TEXT = 20000
MAX_REASON = 500
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,252}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,30}$")


def strip_control(value: str) -> str:
    """``value`` without control characters other than tab, line feed and carriage return."""
    return _CONTROL.sub("", value)


def clean_text(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    """A user-supplied string: control characters removed, trimmed, length checked."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadFrame(f"{field} must be a string")
    text = strip_control(value).strip()
    if required and not text:
        raise BadFrame(f"{field} is empty")
    if len(text) > limit:
        raise BadFrame(f"{field} is longer than {limit} characters")
    return text


def clean_line(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    """Like :func:`clean_text` but one line (subjects, names): line breaks become spaces."""
    text = clean_text(value, field, limit * 2, required=required)
    text = " ".join(text.split())
    if len(text) > limit:
        raise BadFrame(f"{field} is longer than {limit} characters")
    return text


def clean_email(value: Any, *, required: bool = True) -> str | None:
    """The address trimmed and lower-cased; None only when not ``required`` and empty."""
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise BadFrame("email is not an e-mail address")
    return value.strip().lower()


def clean_phone(value: Any) -> str:
    """A phone number as typed (trimmed): digits, spaces, +, -, /, dots and parentheses."""
    if not isinstance(value, str) or not _PHONE.match(value.strip()):
        raise BadFrame("phone must be a phone number (digits, spaces, +, -, /, parentheses)")
    return value.strip()
