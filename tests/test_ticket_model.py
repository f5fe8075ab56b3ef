"""Pure logic: ticket states, numbers, the hash chain; attachment type checks."""

from __future__ import annotations

import pytest

from chatserver import tickets as T
from chatserver.attachments import clean_filename, sniff
from chatserver.errors import BadFrame, InvalidState, UnsupportedType

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
EML = b"From: a@example.ch\r\nTo: b@example.ch\r\nSubject: Hi\r\n\r\nBody\r\n"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32


def test_allowed_transitions_and_refusals() -> None:
    S = T.TicketState
    T.check_transition(S.OPEN, S.IN_PROGRESS)
    T.check_transition(S.IN_PROGRESS, S.FEEDBACK_NEEDED)
    T.check_transition(S.CLOSED, S.OPEN)  # reopen
    with pytest.raises(InvalidState, match="Closed to Answered"):
        T.check_transition(S.CLOSED, S.ANSWERED)
    with pytest.raises(InvalidState, match="already"):
        T.check_transition(S.OPEN, S.OPEN)
    with pytest.raises(InvalidState):
        T.check_transition(S.INFORMATION, S.FEEDBACK_NEEDED)
    # Every state can be closed, and nothing but reopening leaves Closed.
    for state in S:
        if state is not S.CLOSED:
            T.check_transition(state, S.CLOSED)
    assert T.TRANSITIONS[S.CLOSED] == {S.OPEN}


def test_replies_move_the_state() -> None:
    S = T.TicketState
    assert T.state_after_customer_reply(S.FEEDBACK_NEEDED) is S.OPEN
    assert T.state_after_customer_reply(S.CLOSED) is S.OPEN
    assert T.state_after_customer_reply(S.IN_PROGRESS) is S.IN_PROGRESS
    assert T.state_after_operator_reply(S.OPEN) is S.ANSWERED
    assert T.state_after_operator_reply(S.FEEDBACK_NEEDED) is S.FEEDBACK_NEEDED


def test_parsers_refuse_unknown_values() -> None:
    with pytest.raises(BadFrame):
        T.parse_state("reopened")
    with pytest.raises(BadFrame):
        T.parse_priority("urgent!!")
    with pytest.raises(BadFrame):
        T.parse_level(4)
    with pytest.raises(BadFrame):
        T.parse_level(True)
    with pytest.raises(BadFrame):
        T.parse_department("<script>")
    assert T.parse_number("#100042") == 100042
    assert T.parse_number("100042") == 100042
    assert T.parse_number("#42") is None
    assert T.parse_number("#100000") is None
    assert T.parse_number("1e6") is None
    assert [p.rank for p in T.TicketPriority] == [0, 1, 2, 3]


def _chain(n: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    prev = T.GENESIS
    for i in range(1, n + 1):
        event: dict[str, object] = {
            "ticket": 100001,
            "n": i,
            "ts": 1764150000.0 + i,
            "kind": "reply",
            "actor": {"type": "operator", "id": "o_1", "name": "Anna"},
            "internal": False,
            "body": {"text": f"Antwort {i}: Grüsse"},
            "prev_hash": prev,
        }
        event["hash"] = prev = T.event_hash(event)
        events.append(event)
    return events


def test_hash_chain_detects_changes_removals_and_reordering() -> None:
    events = _chain(5)
    assert T.verify_chain(events) == []
    changed = [dict(e) for e in events]
    changed[2]["body"] = {"text": "edited afterwards"}
    assert [p.n for p in T.verify_chain(changed)] == [3]
    removed = events[:2] + events[3:]
    assert T.verify_chain(removed)
    swapped = [events[0], events[2], events[1], *events[3:]]
    assert T.verify_chain(swapped)
    # Re-hashing an edited event does not help: the next one no longer links.
    rehashed = [dict(e) for e in events]
    rehashed[1]["body"] = {"text": "forged"}
    rehashed[1]["hash"] = T.event_hash(rehashed[1])
    problems = T.verify_chain(rehashed)
    assert [p.n for p in problems] == [3]


def test_replay_folds_changes() -> None:
    created = {
        "kind": "created",
        "body": {
            "subject": "Drucker",
            "state": "open",
            "priority": "normal",
            "department": "technical",
            "level": 1,
            "assignee": "o_1",
            "channel": "chat",
        },
    }
    changes = [
        {"kind": "priority", "body": {"from": "normal", "to": "high", "reason": "VIP"}},
        {"kind": "level", "body": {"from": 1, "to": 2, "reason": None}},
        {"kind": "state", "body": {"from": "open", "to": "in_progress"}},
        {"kind": "reply", "body": {"text": "hi"}},
    ]
    view = T.replay(100001, [created, *changes])
    assert (view.priority, view.level, view.state) == (
        T.TicketPriority.HIGH,
        2,
        T.TicketState.IN_PROGRESS,
    )


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (PNG, "screenshot.png", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "foto.JPG", "image/jpeg"),
        (b"GIF89a" + b"\x00" * 20, "x.gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x.webp", "image/webp"),
        (PDF, "Rechnung.pdf", "application/pdf"),
        (EML, "weitergeleitet.eml", "message/rfc822"),
        (OLE, "outlook.msg", "application/vnd.ms-outlook"),
        ("Grüezi\nLogzeile 2\n".encode(), "log.txt", "text/plain"),
        ("Grüezi".encode("latin-1"), "alt.txt", "text/plain"),
        (b"PK\x03\x04" + b"\x00" * 20, "offerte.docx", None),
    ],
)
def test_sniff_accepts_allowlisted_content(
    data: bytes, name: str, content_type: str | None
) -> None:
    kind = sniff(data, name)
    if content_type is not None:
        assert kind.content_type == content_type


@pytest.mark.parametrize(
    ("data", "name", "why"),
    [
        (b"<html><script>alert(1)</script></html>", "invoice.pdf", "markup"),
        (b"<svg onload=alert(1)>", "logo.txt", "markup"),
        (b"<!DOCTYPE html><p>hi", "page.html", "markup"),
        (PNG, "invoice.pdf", "content is image/png"),
        (PDF, "photo.png", "content is application/pdf"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "setup.exe", "not accepted"),
        (b"\x7fELF\x02\x01\x01\x00", "tool", "not accepted"),
        (b"PK\x03\x04" + b"\x00" * 20, "payload.jar", "ZIP"),
        (b"#!/bin/sh\nrm -rf /\n", "run.sh", "ends in"),
    ],
)
def test_sniff_refuses_disguised_or_unlisted_files(data: bytes, name: str, why: str) -> None:
    with pytest.raises(UnsupportedType, match=why):
        sniff(data, name)


def test_clean_filename() -> None:
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\x\\Bild.png") == "Bild.png"
    assert clean_filename('<img src=x onerror="a()">.png') == "_img src=x onerror=_a()__.png"
    assert clean_filename("\x00\x1f") == "attachment"
    assert clean_filename("") == "attachment"
    assert clean_filename(None) == "attachment"
    long = clean_filename("a" * 400 + ".pdf")
    assert len(long) <= 150 and long.endswith(".pdf")
