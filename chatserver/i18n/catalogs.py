"""The server's gettext catalogs (Babel), one per language of :data:`LANGUAGES`.

The source of truth is ``locale/<lang>/LC_MESSAGES/chatserver.po`` beside this module
(shipped in the wheel). It is compiled in memory with Babel the first time a language
is asked for, so a checkout, an sdist and a wheel behave alike and a stale ``.mo``
can never be read. ``make catalogs`` extracts the messages from the source
(``babel.cfg``), updates every ``.po`` and compiles them to check them.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from chatserver.i18n.languages import LANGUAGES

__all__ = ["DOMAIN", "LOCALE_DIR", "N_", "catalog_path", "translation"]

DOMAIN = "chatserver"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def N_(message: str) -> str:
    """Mark ``message`` for extraction (``pybabel extract -k N_``); returns it as is."""
    return message


def catalog_path(lang: str) -> Path:
    """Where the ``.po`` catalog of ``lang`` lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translation(lang: str) -> gettext.NullTranslations:
    """The translations of ``lang`` (one of :data:`LANGUAGES`; ``KeyError`` otherwise).

    Fuzzy and empty entries are left out, so such a message falls back to its English
    msgid instead of showing nothing.
    """
    if lang not in LANGUAGES:
        raise KeyError(f"unsupported language {lang!r}")
    with catalog_path(lang).open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)
