"""The languages chatserver speaks: the one list every surface uses.

:data:`LANGUAGES` is the only place the codes are listed (the widget, the console, the
server's catalogs and the settings all read it). Adding a language: its code here and
one catalog per surface (see docs/i18n.md). Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "from_header", "pick"]

# In the order the widget offers them; the first is the default of
# ``Settings.default_language`` (CHATSERVER_DEFAULT_LANGUAGE).
LANGUAGES: tuple[str, ...] = ("de", "fr", "it", "en")


def pick(*candidates: str | None, default: str) -> str:
    """The first candidate that is one of :data:`LANGUAGES`, else ``default``."""
    for lang in candidates:
        if lang in LANGUAGES:
            return lang
    return default


def from_header(value: str | None) -> str | None:
    """The preferred supported language of a ``Content-Language`` or
    ``Accept-Language`` value (``de-CH, fr;q=0.8``), or ``None`` when it names none.

    Higher ``q`` wins, the earlier entry on a tie; region subtags are ignored.
    """
    if not value:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().replace("_", "-").split("-")[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, i, primary))
    return min(ranked)[2] if ranked else None
