"""Online backup of a SQLite desk (``chatserver backup --to FILE``).

The database is copied with SQLite's backup API in one step: one read transaction, so
the copy is the database as of one commit, however much the nodes write meanwhile (in
WAL mode a reader blocks no writer). The copy is written beside the target, checked
with ``PRAGMA integrity_check``, fsynced and only then renamed into place: a target
that exists is a complete backup. The attachment files are copied *after* the
database, into ``<FILE>.attachments/``, so every file the snapshot names is there
(files are written once under random names; copying them live is safe).

PostgreSQL desks are backed up with ``pg_dump`` (docs/operations.md).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
from pathlib import Path


class BackupError(Exception):
    """The backup cannot be made; the message says why (nothing was left behind)."""


@dataclasses.dataclass(frozen=True, slots=True)
class BackupResult:
    database: Path
    pages: int
    attachments: Path | None
    files: int


def backup_sqlite(source: Path, target: Path, attachments: Path | None) -> BackupResult:
    """Copy the SQLite database ``source`` to ``target``, then the files under
    ``attachments`` (if given and present) to ``<target>.attachments/``.

    ``target`` and its attachment folder must not exist yet (:class:`BackupError`).
    """
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    files_target = target.with_name(target.name + ".attachments")
    for path in (target, files_target):
        if path.exists():
            raise BackupError(f"{path} exists already; back up to a new file")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent}")
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    try:
        pages = _copy_database(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    count = 0
    copied: Path | None = None
    if attachments is not None and attachments.is_dir():
        copied = files_target
        count = _copy_files(attachments, files_target)
    return BackupResult(target, pages, copied, count)


def _copy_database(source: Path, part: Path) -> int:
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(part)
        try:
            src.backup(dst, pages=-1)  # all pages in one step: one consistent snapshot
            (ok,) = dst.execute("PRAGMA integrity_check").fetchone()
            if ok != "ok":
                raise BackupError(f"the copy fails its integrity check: {ok}")
            (pages,) = dst.execute("PRAGMA page_count").fetchone()
            # The copy is a plain file on its own: no WAL beside it to forget.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    return int(pages)


def _copy_files(root: Path, target: Path) -> int:
    """Copy every complete file (not ``*.part``) under ``root``; returns how many."""
    count = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix == ".part":
            continue
        dest = target / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        count += 1
    target.mkdir(parents=True, exist_ok=True)
    return count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
