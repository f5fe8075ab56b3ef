"""Speaking the customer's language on the server side (docs/i18n.md).

- :mod:`.languages`: :data:`LANGUAGES`, the one list of supported languages, and
  choosing among them (``Accept-Language``/``Content-Language``).
- :mod:`.catalogs`: the gettext catalogs (Babel ``.po`` files under ``locale/``).
- :mod:`.notices`: the chat events the server writes as code + params, and
  :func:`render_notice`, which turns one into text for a reader.
- :mod:`.legacy`: the old English texts of stored system messages, recognised.
"""

from __future__ import annotations

from chatserver.i18n.catalogs import translation
from chatserver.i18n.languages import LANGUAGES, from_header, pick
from chatserver.i18n.notices import NOTICES, Notice, UnknownNotice, notice_text, render_notice

__all__ = [
    "LANGUAGES",
    "NOTICES",
    "Notice",
    "UnknownNotice",
    "from_header",
    "notice_text",
    "pick",
    "render_notice",
    "translation",
]
