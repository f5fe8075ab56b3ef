"""Read what a server has stored, journal included.

With the message journal (the single-node default) an acknowledged message is
in SQLite or, for a fraction of a second, only in a journal segment. Tests that
inspect the database file use :func:`connect_stored`: a connection on it whose
``messages`` is a temporary table holding both (it shadows the real table for
unqualified names), so their queries see every stored message.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatserver.store.journal import COLUMNS, journal_dir, read_segment


def connect_stored(db_path: Path) -> sqlite3.Connection:
    """A connection on ``db_path`` whose ``messages`` include the journal's."""
    journal = journal_dir(db_path)
    rows = []
    # The journal first: a segment copied and deleted meanwhile is in SQLite then.
    for segment in sorted(journal.glob("*.seg")) if journal.is_dir() else []:
        try:
            rows.extend(read_segment(segment)[0])
        except FileNotFoundError:
            continue
    conn = sqlite3.connect(db_path)
    cols = ", ".join(COLUMNS)
    conn.execute(f"CREATE TEMP TABLE messages AS SELECT {cols} FROM main.messages")
    conn.execute("CREATE UNIQUE INDEX temp.stored_seq ON messages(session_id, seq)")
    conn.executemany(
        f"INSERT OR IGNORE INTO temp.messages ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})",
        rows,
    )
    return conn
