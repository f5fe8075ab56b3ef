"""Which blob store a node uses for attachment bytes (``CHATSERVER_ATTACHMENTS``)."""

from __future__ import annotations

from chatserver.attachments.blobs import BlobStore
from chatserver.attachments.files import FileStore
from chatserver.attachments.pg_blobs import PgBlobStore
from chatserver.config import ConfigError, Settings
from chatserver.store.database import Database


def attachments_in_database(settings: Settings, database: Database) -> bool:
    """True when the bytes go into the database: asked for, or by default on PostgreSQL.

    ``attachments = "database"`` with a SQLite store is a :class:`ConfigError`.
    """
    choice = settings.attachments or ("database" if database.kind == "postgresql" else "directory")
    if choice == "database" and database.kind != "postgresql":
        raise ConfigError(
            "attachments: 'database' needs a PostgreSQL store (CHATSERVER_DATABASE_URL);"
            " with SQLite the files live in a directory"
        )
    return choice == "database"


def blob_store(settings: Settings, database: Database) -> BlobStore:
    """The store for ``settings`` (not opened yet: call ``await store.open()``)."""
    if attachments_in_database(settings, database):
        assert database.conninfo is not None
        return PgBlobStore(database.conninfo, database.schema)
    return FileStore(settings.attachments_dir or settings.data_dir / "attachments")
