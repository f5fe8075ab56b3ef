"""One settings object for the whole server.

Precedence: explicit keyword arguments (the CLI) > ``CHATSERVER_*`` environment
variables > defaults. Values are validated by :meth:`Settings.validate`, which
the app calls at start-up; nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import email.errors
import email.policy
import email.utils
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatserver.i18n.languages import LANGUAGES as LANGUAGES  # re-exported
from chatserver.store.database import Database, parse_database_url

ENV_PREFIX = "CHATSERVER_"

# The languages chatserver speaks (i18n contract), in the order the widget
# offers them; the first is the default of ``default_language``. Listed once, in
# chatserver/i18n/languages.py (see docs/i18n.md for adding one).


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key."""


def _cast(key: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        if kind == "list":
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if kind == "optional":
            return raw or None
        if kind == "optional_int":
            return int(raw) if raw else None
        return raw
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{key.upper()}: cannot read {raw!r} ({exc})") from None


_DOMAIN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _setting(name: str) -> str:
    return f"{name} ({ENV_PREFIX}{name.upper()})"


def mail_address(name: str, value: str) -> tuple[str | None, str]:
    """``(display name or None, addr-spec)`` of the one address in setting ``name``,
    read with the standard library's header parser (``Name <a@b>`` or ``a@b``).

    Raises :class:`ConfigError` naming the setting when ``value`` is not exactly one
    address with a local part and a domain usable in a ``Message-ID``.
    """
    problem = f"{_setting(name)}: {value!r} is not one e-mail address"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{problem} (control characters or line breaks)")
    try:
        header = email.policy.default.header_factory("From", value)
        addresses = tuple(getattr(header, "addresses", ()))
    except (email.errors.HeaderParseError, ValueError, IndexError) as exc:
        raise ConfigError(f"{problem} ({exc})") from None
    if len(addresses) != 1 or tuple(getattr(header, "defects", None) or ()):
        raise ConfigError(
            f'{problem} (like support@example.com or "Support <support@example.com>")'
        )
    address = addresses[0]
    domain = str(address.domain)
    if not address.username or not domain:
        raise ConfigError(f"{problem} (it needs a local part and a domain)")
    if not _DOMAIN.fullmatch(domain):
        raise ConfigError(f"{problem} (the domain {domain!r} cannot name a Message-ID)")
    spec = str(address.addr_spec)
    # Cross-check with email.utils: both parsers must read the same address.
    if email.utils.parseaddr(value)[1].lower() != spec.lower():
        raise ConfigError(f"{problem} (ambiguous: read as {spec!r})")
    return (str(address.display_name) or None), spec


def _check_mail_settings(s: Settings) -> None:
    """Every mail setting, each error naming its setting (a server must not start
    with a value that fails only once the first mail comes in)."""
    mail_address("mail_from", s.mail_from)
    for name in ("smtp_host", "smtp_listen_host"):
        host = getattr(s, name)
        if host is not None and (not host.strip() or any(ch.isspace() for ch in host)):
            raise ConfigError(f"{_setting(name)}: {host!r} is not a host name or address")
    if not 0 < s.smtp_port < 65536:
        raise ConfigError(f"{_setting('smtp_port')}: {s.smtp_port} is not a TCP port")
    if s.smtp_starttls and s.smtp_tls:
        raise ConfigError(f"{_setting('smtp_tls')}: give smtp_tls or smtp_starttls, not both")
    if (s.smtp_username is None) != (s.smtp_password is None):
        raise ConfigError(
            f"{_setting('smtp_username')}: give smtp_username and smtp_password together"
        )
    if not s.mail_retry_seconds > 0:
        raise ConfigError(f"{_setting('mail_retry_seconds')}: must be positive")
    if s.max_mail_bytes < 1024:
        raise ConfigError(f"{_setting('max_mail_bytes')}: must be at least 1024")


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """All tunables. Field names map to ``CHATSERVER_<NAME>`` env variables."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    # Where the data lives (chatserver.store.database): empty, the SQLite file under
    # data_dir; sqlite:///path, another file; postgresql://user@host/db, PostgreSQL
    # (in database_schema if given: its search_path, created by the migration).
    database_url: str = ""
    database_schema: str = ""
    redis_url: str | None = None
    redis_prefix: str = "cs"
    presence_ttl: float = 10.0
    node_id: str | None = None
    # Frames and text limits.
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = 4000
    # permessage-deflate on the chat sockets (see docs/configuration.md).
    ws_compression: bool = False
    # The WebSocket layer: "chat" (chatserver.transport.wire, falling back to
    # uvicorn's stock protocol with a warning where it cannot run) or "stock".
    ws_protocol: str = "chat"
    # The event loop (uvicorn's ``loop``): "asyncio", "uvloop" (pip install uvloop) or
    # "auto" (uvloop where installed). asyncio's by default: uvloop measured no gain
    # (docs/benchmarks.md, "Under saturation").
    event_loop: str = "asyncio"
    # Security.
    visitor_allowed_origins: tuple[str, ...] = ("*",)
    identity_secret: str | None = None
    operator_token_ttl: float = 12 * 3600
    secret_key: str | None = None
    # The audit key (docs/operations.md, "What is protected and what is not"): signs
    # the heads of the ticket and chat hash chains; kept outside the database.
    # audit_key gives it directly, audit_key_file names a file holding it.
    audit_key: str | None = dataclasses.field(default=None, repr=False)
    audit_key_file: str | None = None
    # Login throttling (docs/configuration.md): after login_throttle_free failed
    # logins for one account (login_throttle_address_free from one client address),
    # each further failure locks it for login_throttle_base_seconds, doubling up to
    # login_throttle_max_seconds; failures are forgotten login_throttle_window_seconds
    # after the last one (and an account's at its next successful login).
    login_throttle_free: int = 5
    login_throttle_address_free: int = 20
    login_throttle_base_seconds: float = 1.0
    login_throttle_max_seconds: float = 900.0
    login_throttle_window_seconds: float = 3600.0
    # How often each node compares its connected operators with the accounts in the
    # store (changes made by the CLI, or notes the bus lost): revoked sockets close.
    account_check_interval: float = 0.5
    # Routing.
    operator_grace_seconds: float = 30.0
    default_capacity: int = 5
    queue_update_interval: float = 1.0
    visitor_abandon_seconds: float = 600.0
    # Supervisor board: seconds between coalesced updates; the zone of its hour and day.
    board_interval: float = 1.0
    board_timezone: str = "Europe/Zurich"
    # Queue aging: head start (s) of each priority class over the next one.
    queue_aging_seconds: float = 600.0
    # Recurring contact person: how long a returning customer waits for their
    # previous operator (or a transfer for its target) before anyone may answer.
    recurring_contact_grace: float = 60.0
    # Plans, calendars and targets (TOML); None: the shipped default.
    sla_config: Path | None = None
    # First-response target of callback requests (business hours of the plan).
    callback_target_hours: float = 4.0
    # Offer the offline form (a ticket) when this many chats wait.
    offline_queue_length: int = 20
    # Store.
    store_synchronous: str = "NORMAL"
    store_max_batch: int = 512
    # None: inline when no fsync per commit (synchronous OFF or NORMAL) and no
    # other node shares the file (no Redis).
    store_inline_commit: bool | None = None
    store_commit_window: float = 0.0
    # Messages go to an append-only journal (a copy into a shared memory map
    # each) that is copied into SQLite every store_journal_interval seconds.
    # None: on for a single node (no Redis) with synchronous OFF or NORMAL.
    store_journal: bool | None = None
    store_journal_interval: float = 1.0
    # Attachments.
    max_upload_bytes: int = 10 * 1024 * 1024
    # Where their bytes live (docs/scaling.md): "database" (PostgreSQL only) or
    # "directory"; empty: the database when the store is PostgreSQL, else the directory.
    attachments: str = ""
    # That directory (one all nodes mount, on many hosts); None: data_dir/attachments.
    attachments_dir: Path | None = None
    # E-mail. Without smtp_host no mail is sent (tickets work without it).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "support@localhost"
    mail_retry_seconds: float = 60.0
    # Inbound mail: the built-in SMTP listener (off unless a port is given).
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int | None = None
    max_mail_bytes: int = 25 * 1024 * 1024
    # The widget's language when neither the page (data-lang) nor the browser
    # names one of LANGUAGES; its catalog is inlined into /widget.js.
    default_language: str = LANGUAGES[0]
    # Misc.
    demo_operator: bool = True
    log_level: str = "info"
    log_json: bool = False
    rate_limit_per_10s: int = 100
    # Quotas of visitors (docs/configuration.md, "Quotas and rate limits"): counts per
    # quota_window_seconds (fixed windows), per chat session, per client address and
    # per e-mail address; beyond them HTTP 429 with Retry-After. Counted in Redis when
    # nodes share it.
    quota_window_seconds: float = 3600.0
    quota_offline_per_session: int = 3
    quota_offline_per_address: int = 10
    quota_mails_per_email: int = 3
    quota_callbacks_per_session: int = 3
    quota_callbacks_per_address: int = 10
    quota_uploads_per_session: int = 20
    quota_upload_bytes_per_session: int = 50 * 1024 * 1024
    quota_uploads_per_address: int = 60
    quota_upload_bytes_per_address: int = 200 * 1024 * 1024
    quota_replies_per_session: int = 30
    # The knowledge base's visitors (web/kb.py): searches and "did this help?" answers
    # per client address in windows of their own (search-as-you-type is bursty).
    quota_kb_window_seconds: float = 60.0
    quota_kb_searches_per_address: int = 120
    quota_kb_feedback_per_address: int = 20
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: addresses or networks, "*" for any); empty: none. None:
    # uvicorn's default (FORWARDED_ALLOW_IPS, else 127.0.0.1 and ::1).
    trusted_proxies: tuple[str, ...] | None = None

    _kinds = {
        "port": int,
        "data_dir": Path,
        "database_url": str,
        "database_schema": str,
        "redis_url": "optional",
        "presence_ttl": float,
        "node_id": "optional",
        "max_frame_bytes": int,
        "max_message_chars": int,
        "ws_compression": bool,
        "visitor_allowed_origins": "list",
        "identity_secret": "optional",
        "operator_token_ttl": float,
        "secret_key": "optional",
        "audit_key": "optional",
        "audit_key_file": "optional",
        "login_throttle_free": int,
        "login_throttle_address_free": int,
        "login_throttle_base_seconds": float,
        "login_throttle_max_seconds": float,
        "login_throttle_window_seconds": float,
        "account_check_interval": float,
        "operator_grace_seconds": float,
        "default_capacity": int,
        "queue_update_interval": float,
        "visitor_abandon_seconds": float,
        "board_interval": float,
        "offline_queue_length": int,
        "queue_aging_seconds": float,
        "recurring_contact_grace": float,
        "sla_config": Path,
        "callback_target_hours": float,
        "store_max_batch": int,
        "store_inline_commit": bool,
        "store_commit_window": float,
        "store_journal": bool,
        "store_journal_interval": float,
        "max_upload_bytes": int,
        "attachments_dir": Path,
        "smtp_host": "optional",
        "smtp_port": int,
        "smtp_username": "optional",
        "smtp_password": "optional",
        "smtp_starttls": bool,
        "smtp_tls": bool,
        "mail_retry_seconds": float,
        "smtp_listen_port": "optional_int",
        "max_mail_bytes": int,
        "demo_operator": bool,
        "log_json": bool,
        "rate_limit_per_10s": int,
        "quota_window_seconds": float,
        "quota_offline_per_session": int,
        "quota_offline_per_address": int,
        "quota_mails_per_email": int,
        "quota_callbacks_per_session": int,
        "quota_callbacks_per_address": int,
        "quota_uploads_per_session": int,
        "quota_upload_bytes_per_session": int,
        "quota_uploads_per_address": int,
        "quota_upload_bytes_per_address": int,
        "quota_replies_per_session": int,
        "quota_kb_window_seconds": float,
        "quota_kb_searches_per_address": int,
        "quota_kb_feedback_per_address": int,
        "trusted_proxies": "list",
    }

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default ``os.environ``) and overrides.

        Overrides whose value is ``None`` are ignored so CLI flags that were not
        given fall through to the environment.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name.startswith("_"):
                continue
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _cast(field.name, raw, cls._kinds.get(field.name, str))
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in {f.name for f in dataclasses.fields(cls)}:
                raise ConfigError(f"unknown setting {key!r}")
            values[key] = value
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def journal_enabled(self) -> bool:
        """Whether messages go through the journal (see ``store_journal``)."""
        if self.store_journal is not None:
            return self.store_journal
        return not self.redis_url and self.store_synchronous.upper() in {"OFF", "NORMAL"}

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first unusable value."""
        if self.audit_key is not None and self.audit_key_file is not None:
            raise ConfigError("audit_key: give audit_key or audit_key_file, not both")
        if self.audit_key is not None and len(self.audit_key.strip()) < 16:
            raise ConfigError("audit_key: must be at least 16 characters")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not a TCP port")
        if self.max_frame_bytes < 1024:
            raise ConfigError("max_frame_bytes: must be at least 1024")
        if self.max_message_chars < 1:
            raise ConfigError("max_message_chars: must be positive")
        if self.ws_protocol not in {"chat", "stock"}:
            raise ConfigError(f"ws_protocol: {self.ws_protocol!r} is not chat or stock")
        if self.event_loop not in {"auto", "uvloop", "asyncio"}:
            raise ConfigError(f"event_loop: {self.event_loop!r} is not auto, uvloop or asyncio")
        if not 0 <= self.store_commit_window <= 1:
            raise ConfigError("store_commit_window: seconds between 0 and 1")
        if not 0.01 <= self.store_journal_interval <= 60:
            raise ConfigError("store_journal_interval: seconds between 0.01 and 60")
        if self.store_journal and self.redis_url:
            raise ConfigError(
                "store_journal: only for a single node; nodes sharing Redis number"
                " messages in the database"
            )
        if self.store_journal and self.store_synchronous.upper() not in {"OFF", "NORMAL"}:
            raise ConfigError(
                "store_journal: the journal does not fsync; use it with"
                " store_synchronous OFF or NORMAL"
            )
        try:
            database = self.database
        except ValueError as exc:
            raise ConfigError(f"database_url: {exc}") from None
        if self.store_journal and database.kind != "sqlite":
            raise ConfigError("store_journal: only with the SQLite store")
        if self.database_schema and database.kind != "postgresql":
            raise ConfigError("database_schema: only with a PostgreSQL database_url")
        if self.login_throttle_free < 1 or self.login_throttle_address_free < 1:
            raise ConfigError("login_throttle_free, login_throttle_address_free: at least 1")
        if not 0 < self.login_throttle_base_seconds <= self.login_throttle_max_seconds:
            raise ConfigError(
                "login_throttle_base_seconds: above 0 and at most login_throttle_max_seconds"
            )
        if self.login_throttle_window_seconds < self.login_throttle_max_seconds:
            raise ConfigError("login_throttle_window_seconds: at least login_throttle_max_seconds")
        if not 0.05 <= self.account_check_interval <= 60:
            raise ConfigError("account_check_interval: seconds between 0.05 and 60")
        if self.presence_ttl <= 0:
            raise ConfigError("presence_ttl: must be positive")
        if self.operator_grace_seconds < 0:
            raise ConfigError("operator_grace_seconds: must not be negative")
        if self.default_capacity < 1:
            raise ConfigError("default_capacity: must be at least 1")
        if self.store_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError("store_synchronous: one of OFF, NORMAL, FULL, EXTRA")
        if self.max_upload_bytes < 1024:
            raise ConfigError("max_upload_bytes: must be at least 1024")
        if self.attachments not in {"", "database", "directory"}:
            raise ConfigError(f"attachments: {self.attachments!r} is not database or directory")
        if self.attachments == "database" and self.database.kind != "postgresql":
            raise ConfigError("attachments: 'database' needs a PostgreSQL store (database_url)")
        if self.smtp_listen_port is not None and not 0 <= self.smtp_listen_port < 65536:
            raise ConfigError(f"smtp_listen_port: {self.smtp_listen_port} is not a TCP port")
        _check_mail_settings(self)
        if self.default_language not in LANGUAGES:
            raise ConfigError(
                f"default_language: {self.default_language!r} is not one of {', '.join(LANGUAGES)}"
            )
        if not 1 <= self.quota_window_seconds <= 86400:
            raise ConfigError("quota_window_seconds: seconds between 1 and 86400")
        if not 1 <= self.quota_kb_window_seconds <= 86400:
            raise ConfigError("quota_kb_window_seconds: seconds between 1 and 86400")
        for field in dataclasses.fields(self):
            if field.name.startswith("quota_") and field.name != "quota_window_seconds":
                if getattr(self, field.name) < 1:
                    raise ConfigError(f"{field.name}: must be at least 1")
        if self.offline_queue_length < 1:
            raise ConfigError("offline_queue_length: must be at least 1")
        if not 0.05 <= self.board_interval <= 60:
            raise ConfigError("board_interval: seconds between 0.05 and 60")
        try:
            ZoneInfo(self.board_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"board_timezone: unknown time zone {self.board_timezone!r}"
            ) from None
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(f"redis_url: {self.redis_url!r} is not a redis:// URL")

    @property
    def mail_domain(self) -> str:
        """The domain of ``mail_from``'s address part (a display name is fine): what
        the desk's ``Message-ID``s end in."""
        return mail_address("mail_from", self.mail_from)[1].rpartition("@")[2]

    def replace(self, **changes: Any) -> Settings:
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chatserver.sqlite3"

    @property
    def database(self) -> Database:
        """Where the data lives (``database_url``, ``database_schema``); ``ValueError``
        for a URL that is neither SQLite nor PostgreSQL."""
        return parse_database_url(
            self.database_url, data_dir=self.data_dir, schema=self.database_schema or None
        )
