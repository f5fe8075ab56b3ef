"""One settings object for the whole server.

Precedence: explicit keyword arguments (the CLI) > ``CHATSERVER_*`` environment
variables > defaults. Values are validated by :meth:`Settings.validate`, which
the app calls at start-up; nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "CHATSERVER_"


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


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """All tunables. Field names map to ``CHATSERVER_<NAME>`` env variables."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    redis_url: str | None = None
    redis_prefix: str = "cs"
    presence_ttl: float = 10.0
    node_id: str | None = None
    # Frames and text limits.
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = 4000
    # permessage-deflate on the chat sockets (see docs/configuration.md).
    ws_compression: bool = False
    # Security.
    visitor_allowed_origins: tuple[str, ...] = ("*",)
    identity_secret: str | None = None
    operator_token_ttl: float = 12 * 3600
    secret_key: str | None = None
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
    # Misc.
    demo_operator: bool = True
    log_level: str = "info"
    log_json: bool = False
    rate_limit_per_10s: int = 100

    _kinds = {
        "port": int,
        "data_dir": Path,
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
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not a TCP port")
        if self.max_frame_bytes < 1024:
            raise ConfigError("max_frame_bytes: must be at least 1024")
        if self.max_message_chars < 1:
            raise ConfigError("max_message_chars: must be positive")
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
        if self.smtp_listen_port is not None and not 0 <= self.smtp_listen_port < 65536:
            raise ConfigError(f"smtp_listen_port: {self.smtp_listen_port} is not a TCP port")
        if "@" not in self.mail_from:
            raise ConfigError(f"mail_from: {self.mail_from!r} is not an e-mail address")
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

    def replace(self, **changes: Any) -> Settings:
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chatserver.sqlite3"
