"""Checking the seals, exporting the signed heads, checking against an export.

All three read the database through one plain connection and change nothing:

- :func:`verify_seals`: every seal's head must still follow from the messages or events
  it covers, and (with the key) carry a valid signature of that key;
- :func:`export_heads`: the seals as a JSON document an auditor keeps elsewhere;
- :func:`verify_against`: every head in such an export must still follow from the
  history now stored, recomputed from the messages and events themselves (so a
  rewrite that also rewrote the seals shows, signed or not).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

from chatserver.audit.chain import EXPORT_FORMAT, chain_heads, key_id, signature_ok
from chatserver.audit.seals import chat_messages, ticket_events
from chatserver.store.database import Connection, Database, connect
from chatserver.tickets.model import verify_chain


class ExportError(ValueError):
    """An export file that cannot be read or is not an export of heads."""


@dataclasses.dataclass(slots=True)
class SealReport:
    """What :func:`verify_seals` found: ``problems`` fail the check, ``notes`` do not."""

    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    chats: int = 0
    tickets: int = 0


def _check_signature(
    report: list[str], label: str, key: bytes | None, row: tuple[Any, ...], kind: str, ident: str
) -> None:
    """``row``: (count, head, sig, key_id)."""
    count, head, sig, sig_key = row
    if key is None:
        return
    if sig is None:
        report.append(f"{label}: its head is not signed")
    elif sig_key != key_id(key):
        report.append(f"{label}: its head is signed with another key (key id {sig_key})")
    elif not signature_ok(key, kind, ident, count, head, sig):
        report.append(f"{label}: the signature of its head does not match (rewritten)")


def verify_seals(conn: Connection, key: bytes | None) -> SealReport:
    """Check every chat and ticket seal against the stored history (and the key)."""
    report = SealReport()
    chat_seals = conn.execute(
        "SELECT session_id, last_seq, messages, head, sig, key_id FROM chat_seals"
        " ORDER BY session_id"
    ).fetchall()
    for session_id, last_seq, count, head, sig, sig_key in chat_seals:
        label = f"chat {session_id}"
        report.chats += 1
        messages = chat_messages(conn, session_id)
        sealed = [m for m in messages if m["seq"] <= last_seq]
        heads = chain_heads(sealed)
        if len(sealed) != count or not heads or heads[-1] != head:
            report.problems.append(f"{label}: its messages differ from what was sealed")
        _check_signature(
            report.problems, label, key, (last_seq, head, sig, sig_key), "chat", session_id
        )
        if len(messages) > len(sealed):
            report.notes.append(f"{label}: {len(messages) - len(sealed)} message(s) not sealed yet")
    unsealed = conn.execute(
        "SELECT COUNT(*) FROM sessions s LEFT JOIN chat_seals c ON c.session_id = s.id"
        " WHERE s.state = 'closed' AND c.session_id IS NULL"
    ).fetchone()[0]
    if unsealed:
        report.notes.append(
            f"{unsealed} closed chat(s) not sealed yet (the server seals a chat as it"
            " closes; `chatserver audit seal` seals the rest)"
        )
    for number, events_count, head, sig, sig_key in conn.execute(
        "SELECT ticket, events, head, sig, key_id FROM ticket_seals ORDER BY ticket"
    ).fetchall():
        label = f"ticket #{number}"
        report.tickets += 1
        events = ticket_events(conn, number)
        if len(events) < events_count or events[events_count - 1]["hash"] != head:
            report.problems.append(f"{label}: its history differs from what was sealed")
        _check_signature(
            report.problems, label, key, (events_count, head, sig, sig_key), "ticket", str(number)
        )
    if key is None:
        report.notes.append(
            "chain heads are NOT signed: no audit key (CHATSERVER_AUDIT_KEY or"
            " CHATSERVER_AUDIT_KEY_FILE); a consistent rewrite of the database is only"
            " found with `audit verify --against` an export kept elsewhere"
        )
    return report


def export_heads(conn: Connection, key: bytes | None, now: float) -> dict[str, Any]:
    """Every seal, as the JSON document ``chatserver audit export`` writes."""
    chats = [
        {"session_id": r[0], "last_seq": r[1], "messages": r[2], "head": r[3], "sig": r[4]}
        for r in conn.execute(
            "SELECT session_id, last_seq, messages, head, sig FROM chat_seals ORDER BY session_id"
        )
    ]
    tickets = [
        {"ticket": r[0], "events": r[1], "head": r[2], "sig": r[3]}
        for r in conn.execute("SELECT ticket, events, head, sig FROM ticket_seals ORDER BY ticket")
    ]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(),
        "key_id": key_id(key) if key is not None else None,
        "tickets": tickets,
        "chats": chats,
    }


def _need(entry: Any, field: str, kind: type, where: str) -> Any:
    value = entry.get(field) if isinstance(entry, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ExportError(f"{where}: {field} missing or not a {kind.__name__}")
    return value


def load_export(path: Path) -> dict[str, Any]:
    """Read and check an export file; raises :class:`ExportError` saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: not an export of chain heads (format {EXPORT_FORMAT})")
    for section in ("tickets", "chats"):
        if not isinstance(data.get(section), list):
            raise ExportError(f"{path}: {section} missing or not a list")
    for i, entry in enumerate(data["tickets"]):
        where = f"{path}: tickets[{i}]"
        _need(entry, "ticket", int, where)
        if _need(entry, "events", int, where) < 1:
            raise ExportError(f"{where}: events must be at least 1")
        _need(entry, "head", str, where)
    for i, entry in enumerate(data["chats"]):
        where = f"{path}: chats[{i}]"
        _need(entry, "session_id", str, where)
        _need(entry, "last_seq", int, where)
        if _need(entry, "messages", int, where) < 1:
            raise ExportError(f"{where}: messages must be at least 1")
        _need(entry, "head", str, where)
    return data


def verify_against(conn: Connection, data: dict[str, Any], key: bytes | None) -> list[str]:
    """Every way the stored history no longer gives the heads of ``data`` (an export
    checked by :func:`load_export`); with ``key``, also exported signatures that do
    not verify under it."""
    found: list[str] = []
    for entry in data["tickets"]:
        number, count, head = entry["ticket"], entry["events"], entry["head"]
        label = f"ticket #{number}"
        events = ticket_events(conn, number)
        if len(events) < count:
            found.append(f"{label}: {count - len(events)} event(s) gone since the export")
        elif events[count - 1]["hash"] != head or verify_chain(events[:count]):
            found.append(f"{label}: history rewritten since the export")
        if key is not None and isinstance(entry.get("sig"), str):
            row = (count, head, entry["sig"], key_id(key))
            _check_signature(found, f"{label} (export)", key, row, "ticket", str(number))
    for entry in data["chats"]:
        session_id, last_seq, count = entry["session_id"], entry["last_seq"], entry["messages"]
        label = f"chat {session_id}"
        sealed = [m for m in chat_messages(conn, session_id) if m["seq"] <= last_seq]
        heads = chain_heads(sealed)
        if len(sealed) < count:
            found.append(f"{label}: {count - len(sealed)} message(s) gone since the export")
        elif len(sealed) != count or heads[-1] != entry["head"]:
            found.append(f"{label}: messages rewritten since the export")
        if key is not None and isinstance(entry.get("sig"), str):
            row = (last_seq, entry["head"], entry["sig"], key_id(key))
            _check_signature(found, f"{label} (export)", key, row, "chat", session_id)
    return found


def check_database(
    db_path: Path | Database, key: bytes | None, against: dict[str, Any] | None
) -> tuple[SealReport, list[str]]:
    """:func:`verify_seals`, and :func:`verify_against` ``against`` if given, on the
    database ``db_path`` (a path: the SQLite file; one connection, opened and closed here)."""
    conn = connect(db_path)
    try:
        report = verify_seals(conn, key)
        return report, verify_against(conn, against, key) if against is not None else []
    finally:
        conn.close()


def write_export(
    db_path: Path | Database, key: bytes | None, path: Path, now: float
) -> dict[str, Any]:
    """Write :func:`export_heads` to ``path`` (a new file, written whole or not at all);
    raises :class:`ExportError` if ``path`` exists or cannot be written."""
    if path.exists():
        raise ExportError(f"{path}: exists already (an export is never overwritten)")
    conn = connect(db_path)
    try:
        data = export_heads(conn, key, now)
    finally:
        conn.close()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.rename(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{path}: cannot write it ({exc})") from None
    return data
