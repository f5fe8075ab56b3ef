"""Making mail text safe to show and to send: header values, file names, bodies. No I/O.

Shared by :mod:`~chatserver.mail.parse` (what arrives) and
:mod:`~chatserver.mail.compose` (what leaves). Every function accepts any string,
including raw 8-bit bytes the stdlib parser kept as surrogate escapes, and never raises.
"""

from __future__ import annotations

import email.policy
import re
import unicodedata

__all__ = [
    "LINE_BREAKS",
    "MAX_FILENAME_CHARS",
    "POLICY",
    "clean_body",
    "fix_surrogates",
    "one_line",
    "safe_filename",
]

POLICY = email.policy.default
"""The policy every message is parsed and built with."""
MAX_FILENAME_CHARS = 200
LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
"""Every character some mail software or str.splitlines() treats as a line break."""

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")  # can spoof displayed text
_BODY_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def fix_surrogates(value: str) -> str:
    """Decode raw 8-bit header bytes (surrogate-escaped by the parser): UTF-8, else cp1252."""
    if not _ESCAPED_BYTE.search(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return "".join("\ufffd" if unicodedata.category(ch) == "Cs" else ch for ch in value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def one_line(value: str) -> str:
    """Control and bidi-override characters dropped, whitespace runs collapsed to one space."""
    value = _BIDI_CONTROLS.sub("", value)
    value = "".join(
        " " if ch in LINE_BREAKS or ch == "\t" else ch
        for ch in fix_surrogates(value)
        if ch in LINE_BREAKS or ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    return " ".join(value.split())


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """A bare file name: no directories, no control/bidi characters, at most 200 chars."""
    if not name:
        return fallback
    name = fix_surrogates(name)
    name = "".join(
        ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split()).strip(" .")
    if not name:
        return fallback
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip(" .")
    return name or fallback


def clean_body(text: str) -> str:
    """Newlines normalized to \\n; control characters (except tab/newline) dropped."""
    text = fix_surrogates(text).replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_JUNK.sub("", text)
