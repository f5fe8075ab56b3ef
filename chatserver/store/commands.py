"""``chatserver backup --to FILE`` and ``chatserver migrate-store --from … --to …``.

``backup`` takes an online snapshot of a SQLite desk while nodes run
(:mod:`chatserver.store.backup`); a PostgreSQL desk is backed up with ``pg_dump``
(docs/operations.md), and the command says so. ``migrate-store`` copies a SQLite
desk into an empty PostgreSQL database (:mod:`chatserver.store.copy`). Exit status:
0 done, 1 refused (a target that exists or is not empty), 2 a bad argument.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chatserver.config import Settings
from chatserver.store.backup import BackupError, backup_sqlite
from chatserver.store.database import parse_database_url


def _refuse(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def cmd_backup(args: argparse.Namespace) -> int:
    overrides = {"data_dir": args.data_dir} if args.data_dir is not None else {}
    if args.database_url is not None:
        overrides["database_url"] = args.database_url
    settings = Settings.load(**overrides)
    database = settings.database
    if database.kind != "sqlite" or database.path is None:
        return _refuse(
            "the store is PostgreSQL: back it up with pg_dump -Fc (docs/operations.md, 'Backups')",
            2,
        )
    files = settings.attachments_dir or settings.data_dir / "attachments"
    try:
        done = backup_sqlite(database.path, Path(args.to), files)
    except BackupError as exc:
        return _refuse(str(exc), 1)
    print(f"database: {done.database} ({done.pages} pages, integrity ok)")
    if done.attachments is not None:
        print(f"attachments: {done.files} files in {done.attachments}")
    return 0


def cmd_migrate_store(args: argparse.Namespace) -> int:
    from chatserver.attachments.choose import blob_store
    from chatserver.store.copy import CopyError, copy_store

    try:
        source = parse_database_url(args.source)
        target = parse_database_url(args.target, schema=args.to_schema)
    except ValueError as exc:
        return _refuse(str(exc), 2)
    settings = Settings.load(
        database_url=args.target,
        database_schema=args.to_schema or "",
        **({"data_dir": args.data_dir} if args.data_dir is not None else {}),
    )
    assert source.path is not None or source.kind != "sqlite"
    files = args.source_attachments or (
        source.path.parent / "attachments" if source.path is not None else Path("attachments")
    )
    try:
        done = copy_store(
            source, target, source_files=Path(files), blobs=blob_store(settings, target)
        )
    except CopyError as exc:
        return _refuse(str(exc), 1 if exc.refused else 2)
    total = sum(done.rows.values())
    print(
        f"copied {total} rows in {len(done.rows)} tables and {done.files} attachment files"
        f" from {source.describe()} to {target.describe()}"
    )
    for name in done.missing_files:
        print(f"warning: attachment file {name} is missing at the source", file=sys.stderr)
    return 0


def add_store_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``backup`` and ``migrate-store`` on the top-level subparsers."""
    backup = sub.add_parser(
        "backup", help="online snapshot of a SQLite store (and its attachment files)"
    )
    backup.add_argument(
        "--to", required=True, metavar="FILE", help="the new backup file (must not exist)"
    )
    backup.add_argument("--data-dir", type=Path)
    backup.add_argument("--database-url", help="sqlite:///path (default: the data dir's)")
    backup.set_defaults(func=cmd_backup)

    move = sub.add_parser(
        "migrate-store", help="copy a SQLite desk into an empty PostgreSQL database"
    )
    move.add_argument("--from", dest="source", required=True, help="sqlite:///path/to/file")
    move.add_argument("--to", dest="target", required=True, help="postgresql://user@host/db")
    move.add_argument("--to-schema", help="schema in the target (default: its search_path)")
    move.add_argument(
        "--source-attachments",
        type=Path,
        help="the source's attachment folder (default: 'attachments' beside the file)",
    )
    move.add_argument("--data-dir", type=Path, help="for the target's attachment directory")
    move.set_defaults(func=cmd_migrate_store)
