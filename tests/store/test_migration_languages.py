"""Schema migration 8: languages, and notices for system messages stored before them.

A store at schema 7 holding the old English system texts is opened by this release:
each known text gets its notice (code and params), an unknown text stays text-only
(and keeps rendering as it is), visitor and operator messages are left alone.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from chatserver.i18n import notice_text
from chatserver.store.sqlite import MIGRATIONS, SqliteStore
from chatserver.types import SessionId

OLD_TEXTS = [
    ("assigned", "Anna Muster joined the chat.", "operator_joined", {"name": "Anna Muster"}),
    ("requeued", "Anna went offline. You are back in the queue.", "operator_went_offline",
     {"name": "Anna"}),
    ("requeued", "Your operator lost the connection. You are back in the queue.",
     "operator_lost_connection", {"name": "Your operator"}),
    ("requeued", "You asked for another operator; you are back at the front of the queue.",
     "another_operator_requested", {}),
    ("requeued", "Anna is handing your chat over to Bruno Keller.", "handover_to_operator",
     {"from": "Anna", "to": "Bruno Keller"}),
    ("requeued", "Your chat is being passed on to 3rd-level support.", "transfer_to_level",
     {"level": 3}),
    ("requeued", "Anna is transferring your chat to a colleague.", "transfer_to_colleague",
     {"from": "Anna"}),
    ("closed", "The visitor ended the chat.", "chat_closed_by_visitor", {}),
    ("closed", "The operator ended the chat.", "chat_closed_by_operator", {}),
    ("closed", "The chat was closed.", "chat_closed", {}),
    ("closed", "The visitor left before an operator was free.", "visitor_left_unanswered", {}),
    ("reassigned", "Sue took over the chat.", "chat_taken_over", {"name": "Sue"}),
    ("reassigned", "Bruno is now looking after your chat.", "chat_reassigned", {"name": "Bruno"}),
    ("escalated", "Your request is now ticket #100007. We will continue by e-mail and you can"
     " follow it here.", "ticket_created", {"ticket": "#100007"}),
]  # fmt: skip


def store_at_schema_7(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:7]:
        for statement in step.split(";") if isinstance(step, str) else step:
            assert isinstance(statement, str)
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 7")
    conn.execute(
        "INSERT INTO sessions (id, token_hash, state, created_at) VALUES ('s1', 'h', 'closed', 1)"
    )
    rows = [
        (seq, "system", text, event, None)
        for seq, (event, text, _, _) in enumerate(OLD_TEXTS, start=1)
    ]
    n = len(rows)
    rows += [
        (n + 1, "system", "Please call me back: +41 44 123 45 67", "callback", None),
        (n + 2, "visitor", "Anna Muster joined the chat.", None, None),  # typed by a visitor
        (n + 3, "system", "The chat was closed.", "closed", json.dumps({"ticket": "#1"})),
    ]
    conn.executemany(
        "INSERT INTO messages (session_id, seq, ts, sender, text, event, extra)"
        " VALUES ('s1', ?, 5, ?, ?, ?, ?)",
        rows,
    )
    conn.close()


async def test_migration_8_gives_old_system_texts_their_notices(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    store_at_schema_7(path)
    store = SqliteStore(path)
    await store.open()
    try:
        messages = await store.messages_after(SessionId("s1"), 0, 100)
        session = await store.session(SessionId("s1"))
    finally:
        await store.close()
    assert session is not None and session.lang is None  # the new column, empty
    by_seq = {m.seq: m for m in messages}
    for seq, (_, text, code, params) in enumerate(OLD_TEXTS, start=1):
        m = by_seq[seq]
        assert m.text == text  # the English text stays
        assert m.extra == {"notice": {"code": code, "params": params}}, seq
        assert notice_text(m.text, m.extra, "en") == text
        assert notice_text(m.text, m.extra, "de") != text
    n = len(OLD_TEXTS)
    callback, typed, with_extra = by_seq[n + 1], by_seq[n + 2], by_seq[n + 3]
    assert callback.extra is None  # not a known text: text-only, rendered as it is
    assert notice_text(callback.text, callback.extra, "fr") == callback.text
    assert typed.extra is None  # a visitor's words are never a notice
    assert with_extra.extra == {
        "ticket": "#1",
        "notice": {"code": "chat_closed", "params": {}},
    }
    conn = sqlite3.connect(path)
    try:
        for table in ("sessions", "tickets", "customers", "canned_responses"):
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            assert "lang" in columns, table
    finally:
        conn.close()
