"""The knowledge base store a node runs on, chosen by the settings: :func:`make_kb_store`.

Beside :func:`chatserver.store.backends.make_store`: the same ``settings.database``
(``--database-url``) decides. On SQLite the articles live in the store's file; on
PostgreSQL in its database, so every node sharing it sees one knowledge base.
"""

from __future__ import annotations

from chatserver.config import Settings
from chatserver.kb.store.base import KbStorage
from chatserver.kb.store.postgres import PostgresKbStore
from chatserver.kb.store.sqlite import SqliteKbStore


def make_kb_store(settings: Settings, *, cli: bool = False) -> KbStorage:
    """The knowledge base store of ``settings`` (call ``await store.open()``).
    ``cli``: a short-lived command's (PostgreSQL: a pool of one connection)."""
    database = settings.database
    if database.kind == "postgresql":
        return PostgresKbStore(database, pool_size=1 if cli else 4)
    assert database.path is not None
    return SqliteKbStore(database.path)
