"""SQLite store (aiosqlite, WAL) with group commit: :class:`SqliteStore`.

Two connections: a writer that commits every queued write in one transaction
per batch (a batch is whatever queued up while the previous commit ran, up to
``max_batch``), and a reader for queries. WAL lets readers run beside the
writer and lets several processes share one file (busy timeout 5 s). A single
node may journal its messages instead (:mod:`chatserver.store.journal`).

The modules of this package:

- :mod:`~chatserver.store.sqlite.schema`: migrations, :func:`connect_sync`
- :mod:`~chatserver.store.sqlite.rows`: SQL statements, records to rows and back
- :mod:`~chatserver.store.sqlite.commit`: the write path (group commit, checkpoints)
- :mod:`~chatserver.store.sqlite.journaled`: the message journal, and reads
- :mod:`~chatserver.store.sqlite.board`: the supervisor board's reads, chat notes
- :mod:`~chatserver.store.sqlite.store`: :class:`SqliteStore` itself
"""

from __future__ import annotations

from chatserver.store.base import DuplicateMessage, Transition
from chatserver.store.sqlite.journaled import APPEND_ERRORS
from chatserver.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, connect_sync, migrate
from chatserver.store.sqlite.store import SqliteStore

__all__ = [
    "APPEND_ERRORS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DuplicateMessage",
    "SqliteStore",
    "Transition",
    "connect_sync",
    "migrate",
]
