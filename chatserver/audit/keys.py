"""The audit key: read from the environment or a file, never from the database.

``CHATSERVER_AUDIT_KEY`` gives the key itself, ``CHATSERVER_AUDIT_KEY_FILE`` a file
holding it (surrounding whitespace ignored; at least 16 characters). Without either,
chain heads are recorded unsigned and ``chatserver audit verify`` says so.
"""

from __future__ import annotations

from pathlib import Path

from chatserver.config import ConfigError, Settings

MIN_KEY_CHARS = 16


def load_key(settings: Settings) -> bytes | None:
    """The audit key of ``settings``, or ``None`` when none is configured.

    Raises :class:`ConfigError` naming the setting when the key file cannot be read
    or the key is too short (a missing key file is an error, not "no key": a
    misconfigured server must not quietly stop signing).
    """
    if settings.audit_key is not None:
        raw = settings.audit_key.strip()
        where = "audit_key"
    elif settings.audit_key_file is not None:
        path = Path(settings.audit_key_file)
        where = f"audit_key_file ({path})"
        try:
            raw = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read the audit key ({exc})") from None
    else:
        return None
    if len(raw) < MIN_KEY_CHARS:
        raise ConfigError(f"{where}: the audit key must be at least {MIN_KEY_CHARS} characters")
    return raw.encode()
