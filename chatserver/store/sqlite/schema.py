"""The SQLite schema: its migrations, and plain connections that apply them.

``PRAGMA user_version`` holds the schema version; :func:`migrate` brings a file
to :data:`SCHEMA_VERSION` one step per transaction (``BEGIN IMMEDIATE``), so
several processes opening one file at once migrate it once. A file newer than
this code is refused.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from chatserver.i18n.legacy import notice_of_text

log = logging.getLogger("chatserver.store")


def fill_notices(conn: sqlite3.Connection) -> None:
    """Give each stored system message without a notice the one its text stands for
    (:func:`chatserver.i18n.legacy.notice_of_text`); other messages stay as they are."""
    rows = conn.execute(
        "SELECT session_id, seq, text, extra FROM messages WHERE sender = 'system'"
    ).fetchall()
    for session_id, seq, text, extra in rows:
        data = json.loads(extra) if extra else {}
        if not isinstance(data, dict) or "notice" in data:
            continue
        notice = notice_of_text(text)
        if notice is None:
            continue
        data["notice"] = notice
        conn.execute(
            "UPDATE messages SET extra = ? WHERE session_id = ? AND seq = ?",
            (json.dumps(data, separators=(",", ":")), session_id, seq),
        )


# A step: SQL statements, or a function run on the connection inside the step's
# transaction (a data migration).
Step = str | Callable[[sqlite3.Connection], None]

# Each entry migrates from version i to i + 1. Never edit a landed entry.
MIGRATIONS: list[str | list[Step]] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        departments TEXT NOT NULL DEFAULT '',
        capacity INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        visitor_name TEXT,
        visitor_email TEXT,
        page_url TEXT,
        user_agent TEXT,
        customer_id TEXT,
        plan TEXT,
        priority INTEGER NOT NULL DEFAULT 2,
        department TEXT,
        operator_id TEXT,
        previous_operator TEXT,
        assigned_at REAL,
        enqueued_at REAL,
        closed_at REAL,
        visitor_read_seq INTEGER NOT NULL DEFAULT 0,
        operator_read_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_open ON sessions(state) WHERE state IN ('waiting', 'assigned');
    CREATE TABLE messages (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        sender TEXT NOT NULL,
        sender_id TEXT,
        author TEXT,
        text TEXT NOT NULL,
        client_msg_id TEXT,
        event TEXT,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX messages_client_msg_id
        ON messages(session_id, sender, client_msg_id) WHERE client_msg_id IS NOT NULL;
    """,
    # 2: attachments, tickets with their append-only hash-chained history, mail.
    [
        "ALTER TABLE messages ADD COLUMN extra TEXT",
        """CREATE TABLE attachments (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            storage TEXT NOT NULL,
            uploaded_by TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX attachments_owner ON attachments(owner)",
        """CREATE TABLE tickets (
            number INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            state TEXT NOT NULL,
            priority TEXT NOT NULL,
            priority_rank INTEGER NOT NULL,
            department TEXT NOT NULL,
            level INTEGER NOT NULL,
            assignee TEXT,
            channel TEXT NOT NULL,
            requester_name TEXT,
            requester_email TEXT,
            customer_id TEXT,
            session_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            events INTEGER NOT NULL,
            head TEXT NOT NULL
        )""",
        "CREATE INDEX tickets_inbox ON tickets(state, priority_rank, created_at)",
        "CREATE INDEX tickets_customer ON tickets(customer_id)",
        "CREATE INDEX tickets_session ON tickets(session_id)",
        # A chat becomes a ticket at most once (forms may send several).
        "CREATE UNIQUE INDEX tickets_chat ON tickets(session_id) WHERE channel = 'chat'",
        "CREATE INDEX tickets_email ON tickets(requester_email)",
        """CREATE TABLE ticket_events (
            ticket INTEGER NOT NULL,
            n INTEGER NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            internal INTEGER NOT NULL,
            body TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (ticket, n)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER ticket_events_append_only_u BEFORE UPDATE ON ticket_events
            BEGIN SELECT RAISE(ABORT, 'ticket history is append-only'); END""",
        """CREATE TRIGGER ticket_events_append_only_d BEFORE DELETE ON ticket_events
            BEGIN SELECT RAISE(ABORT, 'ticket history is append-only'); END""",
        """CREATE TRIGGER attachments_append_only_u BEFORE UPDATE ON attachments
            BEGIN SELECT RAISE(ABORT, 'attachments are append-only'); END""",
        """CREATE TRIGGER attachments_append_only_d BEFORE DELETE ON attachments
            BEGIN SELECT RAISE(ABORT, 'attachments are append-only'); END""",
        "CREATE TABLE mail_ids (message_id TEXT PRIMARY KEY, ticket INTEGER NOT NULL)",
        """CREATE TABLE mail_outbox (
            id INTEGER PRIMARY KEY,
            ticket INTEGER,
            to_addr TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            message_id TEXT NOT NULL,
            refs TEXT NOT NULL,
            attachments TEXT NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL,
            sent_at REAL,
            last_error TEXT
        )""",
        "CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt) WHERE sent_at IS NULL",
        """CREATE TABLE mail_review (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            sender TEXT NOT NULL,
            subject TEXT NOT NULL,
            message_id TEXT,
            ticket INTEGER,
            reason TEXT NOT NULL,
            storage TEXT NOT NULL
        )""",
    ],
    # 3: service levels, internal chat threads, time tracking, customers, canned
    # responses, callback requests.
    [
        "ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'",
        "ALTER TABLE sessions ADD COLUMN phone TEXT",
        "ALTER TABLE sessions ADD COLUMN preferred_times TEXT",
        "ALTER TABLE sessions ADD COLUMN level INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE sessions ADD COLUMN first_response_at REAL",
        "ALTER TABLE sessions ADD COLUMN sla_first_due REAL",
        "ALTER TABLE tickets ADD COLUMN plan TEXT",
        "ALTER TABLE tickets ADD COLUMN sla_first_due REAL",
        "ALTER TABLE tickets ADD COLUMN sla_resolution_due REAL",
        "ALTER TABLE tickets ADD COLUMN first_response_at REAL",
        "ALTER TABLE tickets ADD COLUMN resolved_at REAL",
        "ALTER TABLE tickets ADD COLUMN paused_since REAL",
        "ALTER TABLE tickets ADD COLUMN paused_seconds REAL NOT NULL DEFAULT 0",
        "ALTER TABLE tickets ADD COLUMN sla_breached TEXT NOT NULL DEFAULT ''",
        # Operators-only threads on a chat: supervisor whispers, 3rd-level consults.
        """CREATE TABLE chat_notes (
            session_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            author_id TEXT NOT NULL,
            author_name TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (session_id, n)
        ) WITHOUT ROWID""",
        """CREATE TABLE time_entries (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            operator_id TEXT NOT NULL,
            customer_id TEXT,
            ticket INTEGER,
            session_id TEXT,
            seconds INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX time_entries_customer ON time_entries(customer_id, ts)",
        """CREATE TRIGGER time_entries_append_only_u BEFORE UPDATE ON time_entries
            BEGIN SELECT RAISE(ABORT, 'time entries are append-only'); END""",
        """CREATE TRIGGER time_entries_append_only_d BEFORE DELETE ON time_entries
            BEGIN SELECT RAISE(ABORT, 'time entries are append-only'); END""",
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT,
            plan TEXT NOT NULL DEFAULT 'free',
            contract TEXT NOT NULL DEFAULT 'hourly',
            package_minutes INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE canned_responses (
            id INTEGER PRIMARY KEY,
            department TEXT,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE TABLE sla_breaches (ref TEXT NOT NULL, kind TEXT NOT NULL, due REAL NOT NULL,"
        " recorded_at REAL NOT NULL, PRIMARY KEY (ref, kind))",
    ],
    # 4: support levels of operators; SLA warning times.
    [
        "ALTER TABLE operators ADD COLUMN levels TEXT NOT NULL DEFAULT '1'",
        "ALTER TABLE tickets ADD COLUMN sla_first_warn REAL",
        "ALTER TABLE tickets ADD COLUMN sla_resolution_warn REAL",
        "ALTER TABLE sessions ADD COLUMN sla_first_warn REAL",
    ],
    # 5: consults on a chat's operators-only thread name the colleague asked.
    [
        "ALTER TABLE chat_notes ADD COLUMN to_id TEXT",
        "ALTER TABLE chat_notes ADD COLUMN to_name TEXT",
        "CREATE INDEX chat_notes_to ON chat_notes(to_id, session_id) WHERE to_id IS NOT NULL",
    ],
    # 6: customer satisfaction ratings of chats.
    [
        "ALTER TABLE sessions ADD COLUMN csat_score INTEGER",
        "ALTER TABLE sessions ADD COLUMN csat_comment TEXT",
        "ALTER TABLE sessions ADD COLUMN csat_at REAL",
        "CREATE INDEX sessions_csat ON sessions(csat_at) WHERE csat_at IS NOT NULL",
    ],
    # 7: the language an operator chose for the console (NULL: the browser's).
    [
        "ALTER TABLE operators ADD COLUMN lang TEXT",
    ],
    # 8: languages (docs/i18n.md): a visitor's session, its ticket, the customer and
    # canned responses; the notice of every system message stored before notices
    # (recognised by its old English text; another text stays text-only).
    [
        "ALTER TABLE sessions ADD COLUMN lang TEXT",
        "ALTER TABLE tickets ADD COLUMN lang TEXT",
        "ALTER TABLE customers ADD COLUMN lang TEXT",
        "ALTER TABLE canned_responses ADD COLUMN lang TEXT",
        fill_notices,
    ],
    # 9: operator lifecycle: token versions (revocation), disabled and removed accounts
    # (removed ones stay as rows so history keeps their names).
    [
        "ALTER TABLE operators ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE operators ADD COLUMN disabled_at REAL",
        "ALTER TABLE operators ADD COLUMN removed_at REAL",
    ],
    # 10: revision-safe chats and signed chain heads (chatserver.audit): the head of
    # each closed chat's message chain and of each ticket's event chain, with its
    # HMAC under a key kept outside the database (NULL: signed by no key).
    [
        "CREATE TABLE chat_seals (session_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL,"
        " messages INTEGER NOT NULL, head TEXT NOT NULL, sig TEXT, key_id TEXT,"
        " sealed_at REAL NOT NULL) WITHOUT ROWID",
        "CREATE TABLE ticket_seals (ticket INTEGER PRIMARY KEY, events INTEGER NOT NULL,"
        " head TEXT NOT NULL, sig TEXT, key_id TEXT, sealed_at REAL NOT NULL)",
    ],
    # 11: inbound mail taken, by Message-ID (else "sha256:" of the raw bytes), so a
    # mail delivered twice (a retry after a crash, a second SMTP delivery) is taken once.
    [
        "CREATE TABLE mail_inbound (key TEXT PRIMARY KEY, received_at REAL NOT NULL,"
        " result TEXT NOT NULL, ticket INTEGER, reason TEXT) WITHOUT ROWID",
    ],
    # 12: canned responses: personal ones (owner: the operator's id; NULL: the team's),
    # a shortcut for the composer's "/" completion, and when one was last edited.
    [
        "ALTER TABLE canned_responses ADD COLUMN owner TEXT",
        "ALTER TABLE canned_responses ADD COLUMN shortcut TEXT",
        "ALTER TABLE canned_responses ADD COLUMN updated_at REAL",
        "CREATE INDEX canned_owner ON canned_responses (owner)",
    ],
    # 13: the knowledge base (chatserver.kb): articles (a slug is unique per language, a
    # translation group holds one article per language), every revision (append-only),
    # counters per hour for the board, one "did this help?" answer per visitor session.
    [
        """CREATE TABLE kb_articles (
            id INTEGER PRIMARY KEY,
            grp INTEGER NOT NULL,
            lang TEXT NOT NULL,
            slug TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            plain TEXT NOT NULL,
            department TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            visibility TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL,
            revision INTEGER NOT NULL,
            views INTEGER NOT NULL DEFAULT 0,
            helped INTEGER NOT NULL DEFAULT 0,
            not_helped INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE UNIQUE INDEX kb_articles_slug ON kb_articles (lang, slug)",
        "CREATE UNIQUE INDEX kb_articles_group ON kb_articles (grp, lang)",
        "CREATE INDEX kb_articles_updated ON kb_articles (updated_at)",
        """CREATE TABLE kb_revisions (
            article_id INTEGER NOT NULL,
            n INTEGER NOT NULL,
            at REAL NOT NULL,
            by_id TEXT NOT NULL,
            by_name TEXT NOT NULL,
            action TEXT NOT NULL,
            grp INTEGER NOT NULL,
            lang TEXT NOT NULL,
            slug TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            department TEXT,
            tags TEXT NOT NULL,
            visibility TEXT NOT NULL,
            status TEXT NOT NULL,
            PRIMARY KEY (article_id, n)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER kb_revisions_append_only_u BEFORE UPDATE ON kb_revisions
            BEGIN SELECT RAISE(ABORT, 'article revisions are append-only'); END""",
        """CREATE TRIGGER kb_revisions_append_only_d BEFORE DELETE ON kb_revisions
            BEGIN SELECT RAISE(ABORT, 'article revisions are append-only'); END""",
        "CREATE TABLE kb_counts (hour INTEGER NOT NULL, counter TEXT NOT NULL,"
        " n INTEGER NOT NULL, PRIMARY KEY (hour, counter)) WITHOUT ROWID",
        "CREATE TABLE kb_feedback (article_id INTEGER NOT NULL, session_key TEXT NOT NULL,"
        " helped INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (article_id, session_key))"
        " WITHOUT ROWID",
    ],
    # 14: the knowledge base's full-text index: the stemmed terms of each article's title
    # and body, each after its language's code (chatserver.kb.store.sqlite; rowid: the
    # article's id), with prefix indexes for the word being typed (code + 3 or 4 letters).
    [
        "CREATE VIRTUAL TABLE kb_fts USING fts5(title, body, tokenize = 'unicode61',"
        " prefix = '5 6')",
    ],
    # 15: attachment bytes in the database (PostgreSQL's attachment_blobs and
    # attachment_chunks, chatserver.attachments.pg_blobs). Nothing here: a SQLite node
    # keeps its attachment files in a directory (chatserver.attachments.files), so the
    # database file and its backups stay small; the step only keeps the numbering.
    [],
    # 16: PostgreSQL's knowledge base terms weighted by column (title A, body B). Nothing
    # here: FTS5 weights its columns when it ranks (bm25); the step keeps the numbering.
    [],
    # 17: a counter that every change to ``operators`` bumps, by any writer (the
    # server, the CLI, migrate-store): a node watching the accounts reads this one
    # number twice a second and every operator only when it moved.
    [
        "CREATE TABLE operators_changed (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " n INTEGER NOT NULL)",
        "INSERT INTO operators_changed (id, n) VALUES (1, 0)",
        *(
            f"CREATE TRIGGER operators_changed_{what.lower()} AFTER {what} ON operators"
            " BEGIN UPDATE operators_changed SET n = n + 1 WHERE id = 1; END"
            for what in ("INSERT", "UPDATE", "DELETE")
        ),
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def connect_sync(path: Path) -> sqlite3.Connection:
    """A plain connection for CLI commands (migrates the schema)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Bring the schema to ``target`` (default ``SCHEMA_VERSION``; a lower one
    only for tests of old schemas); returns the version found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {found} is newer than this chatserver ({SCHEMA_VERSION})"
        )
    for version in range(found, SCHEMA_VERSION if target is None else target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > version:
                conn.execute("COMMIT")
                continue
            step = MIGRATIONS[version]
            for statement in step.split(";") if isinstance(step, str) else step:
                if callable(statement):
                    statement(conn)
                elif statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store migrated to schema version %d", version + 1)
    return found
