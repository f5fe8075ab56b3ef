"""SQL statements and row conversions shared by the layers of :class:`SqliteStore`.

Records of :mod:`chatserver.store.base` become rows here and rows become
records: nothing else in the package knows the column order.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from chatserver.store.base import MessageRecord, OperatorRecord, SessionRecord
from chatserver.store.journal import Row
from chatserver.types import OperatorId, Priority, SessionId, SessionState

# The seq is numbered inside the statement, under the write lock: every process
# sharing the file numbers one session's messages without gaps or clashes.
INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, seq, ts, sender, sender_id, author, text,"
    " client_msg_id, event, extra) VALUES (?1,"
    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1),"
    " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq"
)
SESSION_COLUMNS = (
    "id, token_hash, state, created_at, visitor_name, visitor_email, page_url, user_agent,"
    " customer_id, plan, priority, department, operator_id, previous_operator, assigned_at,"
    " enqueued_at, closed_at, visitor_read_seq, operator_read_seq, kind, phone,"
    " preferred_times, level, first_response_at, sla_first_due, sla_first_warn, lang"
)
INSERT_SESSION = f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({', '.join(['?'] * 27)})"
SELECT_SESSION = (
    f"SELECT {SESSION_COLUMNS},"
    " (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.session_id = s.id)"
    " FROM sessions s"
)


OPERATOR_COLUMNS = (
    "id, username, name, password_hash, role, departments, capacity, created_at, levels, lang,"
    " token_version, disabled_at, removed_at"
)


def column_value(value: Any) -> Any:
    if isinstance(value, SessionState):
        return value.value
    if isinstance(value, Priority):
        return int(value)
    return value


def message_row(m: MessageRecord, seq: int) -> Row:
    """``m`` as a ``messages`` row (the columns of :data:`COLUMNS`) with ``seq``."""
    return (
        m.session_id,
        seq,
        m.ts,
        m.sender,
        m.sender_id,
        m.author,
        m.text,
        m.client_msg_id,
        m.event,
        json.dumps(m.extra, separators=(",", ":")) if m.extra else None,
    )


def message_params(m: MessageRecord) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_MESSAGE`: the row without its seq."""
    row = message_row(m, 0)
    return (row[0], *row[2:])


def session_from_row(row: sqlite3.Row | tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        session_id=SessionId(row[0]),
        token_hash=row[1],
        state=SessionState(row[2]),
        created_at=row[3],
        visitor_name=row[4],
        visitor_email=row[5],
        page_url=row[6],
        user_agent=row[7],
        customer_id=row[8],
        plan=row[9],
        priority=Priority(row[10]),
        department=row[11],
        operator_id=OperatorId(row[12]) if row[12] else None,
        previous_operator=OperatorId(row[13]) if row[13] else None,
        assigned_at=row[14],
        enqueued_at=row[15],
        closed_at=row[16],
        visitor_read_seq=row[17],
        operator_read_seq=row[18],
        kind=row[19],
        phone=row[20],
        preferred_times=row[21],
        level=row[22],
        first_response_at=row[23],
        sla_first_due=row[24],
        sla_first_warn=row[25],
        lang=row[26],
        last_seq=row[27],
    )


def operator_from_row(row: tuple[Any, ...]) -> OperatorRecord:
    return OperatorRecord(
        operator_id=OperatorId(row[0]),
        username=row[1],
        name=row[2],
        password_hash=row[3],
        role=row[4],
        departments=tuple(d for d in row[5].split(",") if d),
        capacity=row[6],
        created_at=row[7],
        levels=tuple(int(v) for v in str(row[8]).split(",") if v.isdigit()) or (1,),
        lang=row[9],
        token_version=row[10],
        disabled_at=row[11],
        removed_at=row[12],
    )


def session_params(record: SessionRecord) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_SESSION` for ``record``."""
    return (
        record.session_id,
        record.token_hash,
        record.state.value,
        record.created_at,
        record.visitor_name,
        record.visitor_email,
        record.page_url,
        record.user_agent,
        record.customer_id,
        record.plan,
        int(record.priority),
        record.department,
        record.operator_id,
        record.previous_operator,
        record.assigned_at,
        record.enqueued_at,
        record.closed_at,
        record.visitor_read_seq,
        record.operator_read_seq,
        record.kind,
        record.phone,
        record.preferred_times,
        record.level,
        record.first_response_at,
        record.sla_first_due,
        record.sla_first_warn,
        record.lang,
    )
