"""The store a node runs on, chosen by the settings: :func:`make_store`.

``settings.database`` (``--database-url``) names SQLite (the default, a file
under the data directory) or PostgreSQL; this module builds the matching
:class:`~chatserver.store.base.Store`, not yet opened.
"""

from __future__ import annotations

from chatserver.config import Settings
from chatserver.store.base import Store
from chatserver.store.postgres.store import PostgresStore
from chatserver.store.sqlite import SqliteStore


def make_store(settings: Settings, *, cli: bool = False) -> Store:
    """The store of ``settings`` (call ``await store.open()``). ``cli``: a short-lived
    command's store (SQLite: the plain defaults, no journal, as before)."""
    database = settings.database
    if database.kind == "postgresql":
        return PostgresStore(
            database, max_batch=settings.store_max_batch, pool_size=2 if cli else 4
        )
    assert database.path is not None
    if cli:
        return SqliteStore(database.path)
    return SqliteStore(
        database.path,
        synchronous=settings.store_synchronous,
        max_batch=settings.store_max_batch,
        inline=(
            settings.store_inline_commit
            if settings.store_inline_commit is not None
            # Nodes sharing the file (Redis) may wait for each other's write
            # lock: that wait belongs on the writer thread, not the event loop.
            else settings.store_synchronous.upper() in ("OFF", "NORMAL") and not settings.redis_url
        ),
        window=settings.store_commit_window,
        journal=settings.journal_enabled,
        journal_interval=settings.store_journal_interval,
    )
