"""Names of plans and departments per language, as the SLA TOML gives them. Pure.

A plan's names are the table ``[plans.<plan>.names]``, a department's
``[departments.<department>.names]``: one key per language of
:data:`~chatserver.i18n.languages.LANGUAGES`, each a short display name::

    [plans.vip.names]
    de = "VIP"
    fr = "VIP"

A language without a name shows the English one, else the key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatserver.i18n.languages import LANGUAGES

__all__ = ["MAX_NAME", "label", "parse_names"]

MAX_NAME = 60


def parse_names(table: Any, where: str) -> dict[str, str]:
    """The ``names`` table at ``where``: ``{lang: name}``; ``ValueError`` names the
    offending key (an unknown language, an empty or over-long name)."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table of names by language")
    names: dict[str, str] = {}
    for lang, name in table.items():
        if lang not in LANGUAGES:
            raise ValueError(f"{where}.{lang}: not a language (one of {', '.join(LANGUAGES)})")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
            raise ValueError(f"{where}.{lang}: expected a name of 1 to {MAX_NAME} characters")
        names[lang] = name.strip()
    return names


def label(names: Mapping[str, str], lang: str | None, key: str) -> str:
    """The name in ``lang``, else the English one, else ``key``."""
    return names.get(lang or "") or names.get("en") or key
