"""Moving a desk: copy a SQLite store into an empty PostgreSQL one
(``chatserver migrate-store --from sqlite:///… --to postgresql://…``).

Both databases are first migrated to the latest schema. The target must hold no rows
in any table (:class:`CopyError` otherwise, nothing written). Every table the two
have in common is copied with ``COPY … FROM STDIN`` in batches, parents before the
tables whose foreign keys point at them, all in one transaction: a failure leaves the
target as empty as it was. Then every ``BIGSERIAL`` and the ticket numbers continue
after the highest id copied.

Attachment bytes go into the target's blob store (the database by default, see
:mod:`chatserver.attachments.choose`) before the rows, streamed file by file; rows
that name a file (a ``storage`` column) are rewritten to the new names. A file that is
missing at the source keeps its old name and is reported: ``chatserver audit verify``
on the copy then finds it missing, as it would at the source. Run it with the nodes
stopped: rows written during the copy may be missed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chatserver.attachments.blobs import BlobStore
from chatserver.attachments.files import FileStore
from chatserver.errors import NotFound
from chatserver.store.database import Database, migrate
from chatserver.store.postgres.schema import reset_sequences

BATCH = 1000
# Tables that belong to the schema's bookkeeping, not to the desk (operators_changed:
# the copy of the operators moves the target's own counter).
_SKIP = {"schema_version", "attachment_blobs", "attachment_chunks", "operators_changed"}


class CopyError(Exception):
    """The copy cannot be made; the message says why. ``refused``: the arguments are
    fine but the target is not empty (nothing was written)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclasses.dataclass(slots=True)
class CopyResult:
    rows: dict[str, int]
    files: int
    missing_files: list[str]


def copy_store(
    source: Database,
    target: Database,
    *,
    source_files: Path,
    blobs: BlobStore,
    say: Callable[[str], None] = print,
) -> CopyResult:
    """Copy the desk at ``source`` (SQLite; its files under ``source_files``) into
    ``target`` (PostgreSQL, empty) and the files into ``blobs`` (not opened yet)."""
    if source.kind != "sqlite" or source.path is None:
        raise CopyError("--from must be a SQLite database (sqlite:///path/chatserver.sqlite3)")
    if target.kind != "postgresql" or target.conninfo is None:
        raise CopyError("--to must be a PostgreSQL database (postgresql://user@host/db)")
    if not source.path.is_file():
        raise CopyError(f"no SQLite database at {source.path}")
    migrate(source)
    migrate(target)
    src = sqlite3.connect(source.path, timeout=30)
    dst = psycopg.connect(target.conninfo, autocommit=True, **target.pg_kwargs())
    try:
        tables = _common_tables(src, dst)
        _require_empty(dst, tables)
        storages = _storage_names(src, tables)
        renamed, missing = asyncio.run(_copy_files(storages, source_files, blobs))
        try:
            rows = _copy_rows(src, dst, tables, renamed, say)
        except BaseException:
            asyncio.run(_forget(blobs, list(renamed.values())))
            raise
    finally:
        src.close()
        dst.close()
    return CopyResult(rows, len(renamed), missing)


def _columns_sqlite(src: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in src.execute(f'PRAGMA table_info("{table}")')]


def _common_tables(src: sqlite3.Connection, dst: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Table -> the columns both have, in the order the target's foreign keys need."""
    lite = {
        str(r[0])
        for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    pg_cols: dict[str, list[str]] = {}
    for table, column in dst.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        pg_cols.setdefault(table, []).append(column)
    common = sorted((lite & set(pg_cols)) - _SKIP)
    parents: dict[str, set[str]] = {t: set() for t in common}
    for child, parent in dst.execute(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()"
    ):
        if child in parents and parent in parents and parent != child:
            parents[child].add(parent)
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, ps in parents.items() if not ps - set(ordered))
        if not ready:
            raise CopyError(f"foreign keys form a cycle among {sorted(parents)}")
        for table in ready:
            ordered.append(table)
            del parents[table]
    out = {}
    for table in ordered:
        # A column named rowid in PostgreSQL is SQLite's implicit one (kb_fts: the
        # FTS5 table's rowid is the article's id); SQLite selects it by that name.
        mine = set(_columns_sqlite(src, table)) | {"rowid"}
        out[table] = [c for c in pg_cols[table] if c in mine]
    return out


def _require_empty(dst: psycopg.Connection[Any], tables: dict[str, list[str]]) -> None:
    busy = []
    for table in tables:
        found = dst.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
        ).fetchone()
        if found and found[0]:
            busy.append(table)
    if busy:
        raise CopyError(
            "the target database is not empty (rows in "
            + ", ".join(busy[:5])
            + (", …" if len(busy) > 5 else "")
            + "); migrate-store copies into an empty database only",
            refused=True,
        )


def _storage_names(src: sqlite3.Connection, tables: dict[str, list[str]]) -> list[str]:
    names: list[str] = []
    for table, columns in tables.items():
        if "storage" in columns:
            names += [str(r[0]) for r in src.execute(f'SELECT storage FROM "{table}"')]
    return sorted(set(names))


async def _copy_files(
    storages: list[str], root: Path, blobs: BlobStore
) -> tuple[dict[str, str], list[str]]:
    """Each stored file into ``blobs``: (old name -> new name, names missing)."""
    files = FileStore(root)
    renamed: dict[str, str] = {}
    missing: list[str] = []
    await blobs.open()
    try:
        for name in storages:
            try:
                chunks = await files.stream(name)
            except NotFound:
                missing.append(name)
                continue
            blob = await blobs.save(chunks, limit=1 << 40)
            renamed[name] = blob.storage
    except BaseException:
        await _forget(blobs, list(renamed.values()), opened=True)
        raise
    finally:
        await blobs.close()
    return renamed, missing


async def _forget(blobs: BlobStore, names: list[str], *, opened: bool = False) -> None:
    if not names:
        return
    if not opened:
        await blobs.open()
    try:
        for name in names:
            await blobs.delete(name)
    finally:
        if not opened:
            await blobs.close()


def _copy_rows(
    src: sqlite3.Connection,
    dst: psycopg.Connection[Any],
    tables: dict[str, list[str]],
    renamed: dict[str, str],
    say: Callable[[str], None],
) -> dict[str, int]:
    counts: dict[str, int] = {}
    with dst.transaction():
        for table, columns in tables.items():
            at = columns.index("storage") if "storage" in columns else -1
            listed = ", ".join(f'"{c}"' for c in columns)
            cursor = src.execute(f'SELECT {listed} FROM "{table}"')
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            n = 0
            try:
                with dst.cursor() as cur, cur.copy(copy_sql) as copy:
                    while batch := cursor.fetchmany(BATCH):
                        for row in batch:
                            if at >= 0:
                                row = (*row[:at], renamed.get(row[at], row[at]), *row[at + 1 :])
                            copy.write_row(row)
                        n += len(batch)
            except psycopg.Error as exc:
                detail = str(exc).strip().splitlines()[0][:300]
                raise CopyError(
                    f"copying {table} failed, nothing was kept in the target: {detail}"
                ) from None
            (copied,) = dst.execute(
                sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table))
            ).fetchone() or (0,)
            if copied != n:
                raise CopyError(f"{table}: {n} rows read but {copied} in the target")
            counts[table] = n
            say(f"{table}: {n} rows")
        _continue_sequences(dst)
    return counts


def _continue_sequences(dst: psycopg.Connection[Any]) -> None:
    """Every serial column's sequence past its highest value; the ticket numbers too."""
    for table, column in dst.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%%'"
    ).fetchall():
        dst.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({t}, {c}),"
                " GREATEST(COALESCE((SELECT MAX({ci}) FROM {ti}), 0), 1),"
                " (SELECT MAX({ci}) FROM {ti}) IS NOT NULL)"
            ).format(
                t=sql.Literal(table),
                c=sql.Literal(column),
                ci=sql.Identifier(column),
                ti=sql.Identifier(table),
            )
        )
    reset_sequences(dst)
