"""Which blob store a node uses: CHATSERVER_ATTACHMENTS and CHATSERVER_ATTACHMENTS_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatserver.attachments.choose import attachments_in_database, blob_store
from chatserver.attachments.files import FileStore
from chatserver.attachments.pg_blobs import PgBlobStore
from chatserver.config import ConfigError, Settings
from tests.pg import PG_URL


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.load({"CHATSERVER_DATA_DIR": str(tmp_path), **env})


def test_sqlite_keeps_files_in_the_data_dir_or_the_named_directory(tmp_path: Path) -> None:
    settings = load(tmp_path)
    store = blob_store(settings, settings.database)
    assert isinstance(store, FileStore) and store.root == tmp_path / "attachments"
    shared = load(tmp_path, CHATSERVER_ATTACHMENTS_DIR="/mnt/shared/att")
    store = blob_store(shared, shared.database)
    assert isinstance(store, FileStore) and store.root == Path("/mnt/shared/att")


def test_postgresql_keeps_them_in_the_database_unless_told_otherwise(tmp_path: Path) -> None:
    settings = load(tmp_path, CHATSERVER_DATABASE_URL=PG_URL, CHATSERVER_DATABASE_SCHEMA="s1")
    assert attachments_in_database(settings, settings.database)
    store = blob_store(settings, settings.database)
    assert isinstance(store, PgBlobStore) and store.schema == "s1"
    directory = load(
        tmp_path,
        CHATSERVER_DATABASE_URL=PG_URL,
        CHATSERVER_ATTACHMENTS="directory",
        CHATSERVER_ATTACHMENTS_DIR=str(tmp_path / "nfs"),
    )
    store = blob_store(directory, directory.database)
    assert isinstance(store, FileStore) and store.root == tmp_path / "nfs"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CHATSERVER_ATTACHMENTS": "s3"}, "is not database or directory"),
        ({"CHATSERVER_ATTACHMENTS": "Database"}, "is not database or directory"),
        ({"CHATSERVER_ATTACHMENTS": "database"}, "needs a PostgreSQL store"),
    ],
)
def test_unusable_choices_are_configuration_errors(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load(tmp_path, **env)
