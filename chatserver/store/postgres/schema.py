"""The PostgreSQL schema: the same numbered migrations as SQLite's, in PostgreSQL's SQL.

:data:`PG_MIGRATIONS` ``[i]`` migrates from version ``i`` to ``i + 1``, exactly
as :data:`chatserver.store.sqlite.schema.MIGRATIONS` ``[i]`` does on SQLite
(``tests/store/test_pg_schema.py`` holds both lists to the same length and the
same tables and columns): each step lands in both lists at once. Types map
``INTEGER`` to ``BIGINT``, ``REAL`` to ``DOUBLE PRECISION``; an ``INTEGER
PRIMARY KEY`` that SQLite numbers becomes ``BIGSERIAL``; append-only triggers
call :func:`refuse_change`; ticket numbers come from the sequence
``ticket_numbers``.

The version is the one row of ``schema_version``. :func:`migrate` runs every
missing step in one transaction under an advisory lock, so nodes starting at
once migrate once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from chatserver.i18n.legacy import notice_of_text
from chatserver.tickets.model import FIRST_NUMBER

log = logging.getLogger("chatserver.store")

FIRST_TICKET = FIRST_NUMBER
# pg_advisory_xact_lock key of migrations (a single bigint, apart from row locks).
MIGRATION_LOCK = 0x4353_4D49_4752  # "CSMIGR"


def fill_notices(conn: psycopg.Connection[Any]) -> None:
    """Step 8's data migration (see :func:`chatserver.store.sqlite.schema.fill_notices`)."""
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
            "UPDATE messages SET extra = %s WHERE session_id = %s AND seq = %s",
            (json.dumps(data, separators=(",", ":")), session_id, seq),
        )


def _append_only(table: str, message: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION refuse_change('{message}')"
    )


PgStep = str | Callable[[psycopg.Connection[Any]], None]

# Never edit a landed entry; add the next one here and in the SQLite list together.
PG_MIGRATIONS: list[list[PgStep]] = [
    # 1
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE operators (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            departments TEXT NOT NULL DEFAULT '',
            capacity BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            visitor_name TEXT,
            visitor_email TEXT,
            page_url TEXT,
            user_agent TEXT,
            customer_id TEXT,
            plan TEXT,
            priority BIGINT NOT NULL DEFAULT 2,
            department TEXT,
            operator_id TEXT,
            previous_operator TEXT,
            assigned_at DOUBLE PRECISION,
            enqueued_at DOUBLE PRECISION,
            closed_at DOUBLE PRECISION,
            visitor_read_seq BIGINT NOT NULL DEFAULT 0,
            operator_read_seq BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX sessions_open ON sessions(state) WHERE state IN ('waiting', 'assigned')",
        # SQLite narrows the board's statistics by rowid; PostgreSQL by this index.
        "CREATE INDEX sessions_enqueued ON sessions(enqueued_at)",
        """CREATE TABLE messages (
            session_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            ts BIGINT NOT NULL,
            sender TEXT NOT NULL,
            sender_id TEXT,
            author TEXT,
            text TEXT NOT NULL,
            client_msg_id TEXT,
            event TEXT,
            PRIMARY KEY (session_id, seq)
        )""",
        "CREATE UNIQUE INDEX messages_client_msg_id"
        " ON messages(session_id, sender, client_msg_id) WHERE client_msg_id IS NOT NULL",
    ],
    # 2
    [
        "ALTER TABLE messages ADD COLUMN extra TEXT",
        """CREATE TABLE attachments (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            storage TEXT NOT NULL,
            uploaded_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX attachments_owner ON attachments(owner)",
        f"CREATE SEQUENCE ticket_numbers START {FIRST_TICKET}",
        """CREATE TABLE tickets (
            number BIGINT PRIMARY KEY,
            subject TEXT NOT NULL,
            state TEXT NOT NULL,
            priority TEXT NOT NULL,
            priority_rank BIGINT NOT NULL,
            department TEXT NOT NULL,
            level BIGINT NOT NULL,
            assignee TEXT,
            channel TEXT NOT NULL,
            requester_name TEXT,
            requester_email TEXT,
            customer_id TEXT,
            session_id TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            events BIGINT NOT NULL,
            head TEXT NOT NULL
        )""",
        "CREATE INDEX tickets_inbox ON tickets(state, priority_rank, created_at)",
        "CREATE INDEX tickets_customer ON tickets(customer_id)",
        "CREATE INDEX tickets_session ON tickets(session_id)",
        "CREATE UNIQUE INDEX tickets_chat ON tickets(session_id) WHERE channel = 'chat'",
        "CREATE INDEX tickets_email ON tickets(requester_email)",
        """CREATE TABLE ticket_events (
            ticket BIGINT NOT NULL,
            n BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            internal BIGINT NOT NULL,
            body TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (ticket, n)
        )""",
        """CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
            END $$""",
        _append_only("ticket_events", "ticket history is append-only"),
        _append_only("attachments", "attachments are append-only"),
        "CREATE TABLE mail_ids (message_id TEXT PRIMARY KEY, ticket BIGINT NOT NULL)",
        """CREATE TABLE mail_outbox (
            id BIGSERIAL PRIMARY KEY,
            ticket BIGINT,
            to_addr TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            message_id TEXT NOT NULL,
            refs TEXT NOT NULL,
            attachments TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt DOUBLE PRECISION NOT NULL,
            sent_at DOUBLE PRECISION,
            last_error TEXT
        )""",
        "CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt) WHERE sent_at IS NULL",
        """CREATE TABLE mail_review (
            id BIGSERIAL PRIMARY KEY,
            received_at DOUBLE PRECISION NOT NULL,
            sender TEXT NOT NULL,
            subject TEXT NOT NULL,
            message_id TEXT,
            ticket BIGINT,
            reason TEXT NOT NULL,
            storage TEXT NOT NULL
        )""",
    ],
    # 3
    [
        "ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'",
        "ALTER TABLE sessions ADD COLUMN phone TEXT",
        "ALTER TABLE sessions ADD COLUMN preferred_times TEXT",
        "ALTER TABLE sessions ADD COLUMN level BIGINT NOT NULL DEFAULT 1",
        "ALTER TABLE sessions ADD COLUMN first_response_at DOUBLE PRECISION",
        "ALTER TABLE sessions ADD COLUMN sla_first_due DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN plan TEXT",
        "ALTER TABLE tickets ADD COLUMN sla_first_due DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN sla_resolution_due DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN first_response_at DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN resolved_at DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN paused_since DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN paused_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
        "ALTER TABLE tickets ADD COLUMN sla_breached TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE chat_notes (
            session_id TEXT NOT NULL,
            n BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            author_id TEXT NOT NULL,
            author_name TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (session_id, n)
        )""",
        """CREATE TABLE time_entries (
            id BIGSERIAL PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            operator_id TEXT NOT NULL,
            customer_id TEXT,
            ticket BIGINT,
            session_id TEXT,
            seconds BIGINT NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX time_entries_customer ON time_entries(customer_id, ts)",
        _append_only("time_entries", "time entries are append-only"),
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT,
            plan TEXT NOT NULL DEFAULT 'free',
            contract TEXT NOT NULL DEFAULT 'hourly',
            package_minutes BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE canned_responses (
            id BIGSERIAL PRIMARY KEY,
            department TEXT,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE TABLE sla_breaches (ref TEXT NOT NULL, kind TEXT NOT NULL,"
        " due DOUBLE PRECISION NOT NULL, recorded_at DOUBLE PRECISION NOT NULL,"
        " PRIMARY KEY (ref, kind))",
    ],
    # 4
    [
        "ALTER TABLE operators ADD COLUMN levels TEXT NOT NULL DEFAULT '1'",
        "ALTER TABLE tickets ADD COLUMN sla_first_warn DOUBLE PRECISION",
        "ALTER TABLE tickets ADD COLUMN sla_resolution_warn DOUBLE PRECISION",
        "ALTER TABLE sessions ADD COLUMN sla_first_warn DOUBLE PRECISION",
    ],
    # 5
    [
        "ALTER TABLE chat_notes ADD COLUMN to_id TEXT",
        "ALTER TABLE chat_notes ADD COLUMN to_name TEXT",
        "CREATE INDEX chat_notes_to ON chat_notes(to_id, session_id) WHERE to_id IS NOT NULL",
    ],
    # 6
    [
        "ALTER TABLE sessions ADD COLUMN csat_score BIGINT",
        "ALTER TABLE sessions ADD COLUMN csat_comment TEXT",
        "ALTER TABLE sessions ADD COLUMN csat_at DOUBLE PRECISION",
        "CREATE INDEX sessions_csat ON sessions(csat_at) WHERE csat_at IS NOT NULL",
    ],
    # 7
    ["ALTER TABLE operators ADD COLUMN lang TEXT"],
    # 8
    [
        "ALTER TABLE sessions ADD COLUMN lang TEXT",
        "ALTER TABLE tickets ADD COLUMN lang TEXT",
        "ALTER TABLE customers ADD COLUMN lang TEXT",
        "ALTER TABLE canned_responses ADD COLUMN lang TEXT",
        fill_notices,
    ],
    # 9
    [
        "ALTER TABLE operators ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE operators ADD COLUMN disabled_at DOUBLE PRECISION",
        "ALTER TABLE operators ADD COLUMN removed_at DOUBLE PRECISION",
    ],
    # 10
    [
        "CREATE TABLE chat_seals (session_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL,"
        " messages BIGINT NOT NULL, head TEXT NOT NULL, sig TEXT, key_id TEXT,"
        " sealed_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE ticket_seals (ticket BIGINT PRIMARY KEY, events BIGINT NOT NULL,"
        " head TEXT NOT NULL, sig TEXT, key_id TEXT, sealed_at DOUBLE PRECISION NOT NULL)",
    ],
    # 11
    [
        "CREATE TABLE mail_inbound (key TEXT PRIMARY KEY, received_at DOUBLE PRECISION NOT NULL,"
        " result TEXT NOT NULL, ticket BIGINT, reason TEXT)",
    ],
    # 12
    [
        "ALTER TABLE canned_responses ADD COLUMN owner TEXT",
        "ALTER TABLE canned_responses ADD COLUMN shortcut TEXT",
        "ALTER TABLE canned_responses ADD COLUMN updated_at DOUBLE PRECISION",
        "CREATE INDEX canned_owner ON canned_responses (owner)",
    ],
    # 13: the knowledge base (SQLite's step 13).
    [
        """CREATE TABLE kb_articles (
            id BIGSERIAL PRIMARY KEY,
            grp BIGINT NOT NULL,
            lang TEXT NOT NULL,
            slug TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            plain TEXT NOT NULL,
            department TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            visibility TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            updated_by TEXT NOT NULL,
            revision BIGINT NOT NULL,
            views BIGINT NOT NULL DEFAULT 0,
            helped BIGINT NOT NULL DEFAULT 0,
            not_helped BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE UNIQUE INDEX kb_articles_slug ON kb_articles (lang, slug)",
        "CREATE UNIQUE INDEX kb_articles_group ON kb_articles (grp, lang)",
        "CREATE INDEX kb_articles_updated ON kb_articles (updated_at)",
        """CREATE TABLE kb_revisions (
            article_id BIGINT NOT NULL,
            n BIGINT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            by_id TEXT NOT NULL,
            by_name TEXT NOT NULL,
            action TEXT NOT NULL,
            grp BIGINT NOT NULL,
            lang TEXT NOT NULL,
            slug TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            department TEXT,
            tags TEXT NOT NULL,
            visibility TEXT NOT NULL,
            status TEXT NOT NULL,
            PRIMARY KEY (article_id, n)
        )""",
        _append_only("kb_revisions", "article revisions are append-only"),
        "CREATE TABLE kb_counts (hour BIGINT NOT NULL, counter TEXT NOT NULL,"
        " n BIGINT NOT NULL, PRIMARY KEY (hour, counter))",
        "CREATE TABLE kb_feedback (article_id BIGINT NOT NULL, session_key TEXT NOT NULL,"
        " helped BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,"
        " PRIMARY KEY (article_id, session_key))",
    ],
    # 14: the knowledge base's full-text index (SQLite: an FTS5 table whose rowid is
    # the article's id; here a table keyed by it, with a GIN index on its terms).
    [
        "CREATE TABLE kb_fts (rowid BIGINT PRIMARY KEY, title TEXT, body TEXT,"
        " terms tsvector GENERATED ALWAYS AS (to_tsvector('simple',"
        " coalesce(title, '') || ' ' || coalesce(body, ''))) STORED)",
        "CREATE INDEX kb_fts_terms ON kb_fts USING GIN (terms)",
    ],
    # 15: attachment bytes in the database (chatserver.attachments.pg_blobs): a blob is
    # its chunks (at most CHUNK_BYTES each) plus one row written last, in the same
    # transaction. Chunks are stored out of line, uncompressed (EXTERNAL: uploads are
    # mostly compressed formats already). IF NOT EXISTS: PgBlobStore.open() created
    # these tables itself before this step existed. SQLite has no twin (files there).
    [
        "CREATE TABLE IF NOT EXISTS attachment_blobs (blob_id TEXT PRIMARY KEY,"
        " size BIGINT NOT NULL, sha256 TEXT NOT NULL, chunks INTEGER NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE IF NOT EXISTS attachment_chunks (blob_id TEXT NOT NULL,"
        " n INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (blob_id, n))",
        "ALTER TABLE attachment_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
    ],
    # 16: the knowledge base's terms weighted: the title's A, the body's B, so that
    # ts_rank_cd ranks a title match above a body match, and the title's terms on their
    # own (chatserver.kb.store.postgres; SQLite's FTS5 weights its columns in bm25 and
    # matches one column by itself: it needs nothing).
    [
        "DROP INDEX IF EXISTS kb_fts_terms",
        "ALTER TABLE kb_fts DROP COLUMN terms",
        "ALTER TABLE kb_fts ADD COLUMN terms tsvector GENERATED ALWAYS AS"
        " (setweight(to_tsvector('simple', coalesce(title, '')), 'A')"
        " || setweight(to_tsvector('simple', coalesce(body, '')), 'B')) STORED",
        "CREATE INDEX kb_fts_terms ON kb_fts USING GIN (terms)",
        # The title's terms alone: the search's "any word in a title" step matches and
        # ranks on this small vector instead of reading every match's whole body.
        "ALTER TABLE kb_fts ADD COLUMN title_terms tsvector GENERATED ALWAYS AS"
        " (to_tsvector('simple', coalesce(title, ''))) STORED",
        "CREATE INDEX kb_fts_title_terms ON kb_fts USING GIN (title_terms)",
    ],
    # 17: a counter that every change to ``operators`` bumps (a row trigger: a
    # statement that changes no row moves nothing), so a node watching the accounts
    # reads one number instead of every operator.
    [
        "CREATE TABLE operators_changed (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " n BIGINT NOT NULL)",
        "INSERT INTO operators_changed (id, n) VALUES (1, 0)",
        """CREATE FUNCTION count_operators_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN UPDATE operators_changed SET n = n + 1 WHERE id = 1; RETURN NULL;
            END $$""",
        "CREATE TRIGGER operators_changed AFTER INSERT OR UPDATE OR DELETE ON operators"
        " FOR EACH ROW EXECUTE FUNCTION count_operators_change()",
    ],
]

PG_SCHEMA_VERSION = len(PG_MIGRATIONS)


def version(conn: psycopg.Connection[Any], schema: str | None) -> int:
    """The schema version of the database (0: no schema yet)."""
    row = conn.execute(
        "SELECT 1 FROM pg_tables WHERE tablename = 'schema_version'"
        " AND schemaname = COALESCE(%s, current_schema())",
        (schema,),
    ).fetchone()
    if row is None:
        return 0
    found = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(found[0]) if found else 0


def migrate(
    conn: psycopg.Connection[Any], schema: str | None, target: int | None = None
) -> tuple[int, int]:
    """Bring the schema to ``target`` (default: the latest) in one transaction
    under an advisory lock; returns (version before, version after). Raises
    ``RuntimeError`` if the database is newer than this code."""
    goal = PG_SCHEMA_VERSION if target is None else target
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        found = version(conn, schema)
        if found > PG_SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {found} is newer than this chatserver"
                f" ({PG_SCHEMA_VERSION})"
            )
        if found == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (0)")
        for step in range(found, goal):
            for statement in PG_MIGRATIONS[step]:
                if callable(statement):
                    statement(conn)
                else:
                    conn.execute(statement)
            log.info("store migrated to schema version %d", step + 1)
        after = max(found, goal)
        conn.execute("UPDATE schema_version SET version = %s", (after,))
    return found, after


def reset_sequences(conn: psycopg.Connection[Any]) -> None:
    """After rows were copied in with their ids (``migrate-store``): let each
    ``BIGSERIAL`` and the ticket numbers continue after the highest copied."""
    for table in ("mail_outbox", "mail_review", "time_entries", "canned_responses", "kb_articles"):
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({t}, 'id'),"
                " GREATEST(COALESCE((SELECT MAX(id) FROM {i}), 0), 1),"
                " (SELECT MAX(id) FROM {i}) IS NOT NULL)"
            ).format(t=sql.Literal(table), i=sql.Identifier(table))
        )
    conn.execute(
        "SELECT setval('ticket_numbers', GREATEST(COALESCE((SELECT MAX(number) FROM tickets),"
        " 0) + 1, %s), false)",
        (FIRST_TICKET,),
    )
