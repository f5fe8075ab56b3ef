"""Pure logic: ticket states, numbers, the hash chain; attachment type checks."""

from __future__ import annotations

import pytest

from chatserver.attachments.files import clean_filename, sniff
from chatserver.errors import BadFrame, InvalidState, UnsupportedType
from chatserver.tickets import model as T

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


def test_parsers_return_the_value_and_say_what_is_allowed() -> None:
    assert T.parse_state("feedback_needed") is T.TicketState.FEEDBACK_NEEDED
    assert T.parse_priority("high") is T.TicketPriority.HIGH
    assert T.parse_department("billing") == "billing"
    assert T.parse_level(3) == 3
    with pytest.raises(BadFrame) as err:
        T.parse_state("reopened")
    assert err.value.message == (
        "state must be one of open, in_progress, feedback_needed, information, answered, closed"
    )
    with pytest.raises(BadFrame) as err:
        T.parse_priority("urgent")
    assert err.value.message == "priority must be critical, high, normal or low"
    with pytest.raises(BadFrame) as err:
        T.parse_department("sales")
    assert err.value.message == "department must be one of technical, billing"
    with pytest.raises(BadFrame) as err:
        T.parse_level(0)
    assert err.value.message == "level must be 1, 2 or 3"


def test_ticket_numbers_start_at_100001() -> None:
    assert T.parse_number(" #100001 ") == T.FIRST_NUMBER == 100001
    assert T.parse_number("100000") is None
    assert T.ref(100042) == "#100042"


# An event as stored: its hash must verify for as long as the ticket is kept, so the bytes
# the hash covers must never change (sorted keys, no spaces, UTF-8 as is, no "hash").
STORED_EVENT: dict[str, object] = {
    "ticket": 100001,
    "n": 1,
    "ts": 1764150000.5,
    "kind": "reply",
    "actor": {"type": "operator", "id": "o_1", "name": "Anna"},
    "internal": False,
    "body": {"text": "Grüezi, alles klar?"},
    "prev_hash": T.GENESIS,
    "hash": "fdf24abe3563cf2d9fb8a42923c51480a1d18b09e720163d25565923be9cc0f1",
}


def test_the_hashed_form_of_an_event_is_fixed() -> None:
    assert T.canonical(STORED_EVENT) == (
        '{"actor":{"id":"o_1","name":"Anna","type":"operator"},'
        '"body":{"text":"Grüezi, alles klar?"},"internal":false,"kind":"reply","n":1,'
        f'"prev_hash":"{"0" * 64}","ticket":100001,"ts":1764150000.5}}'
    ).encode()
    assert T.event_hash(STORED_EVENT) == STORED_EVENT["hash"]
    assert T.verify_chain([STORED_EVENT]) == []


def test_chain_problems_name_the_event_and_what_is_wrong() -> None:
    events = _chain(5)
    removed = events[:2] + events[3:]
    assert T.verify_chain(removed) == [
        T.ChainProblem(4, "event 3 is missing (found 4)"),
        T.ChainProblem(4, "does not link to the event before it"),
    ]
    changed = [dict(e) for e in events]
    changed[2]["body"] = {"text": "edited afterwards"}
    assert T.verify_chain(changed) == [T.ChainProblem(3, "content does not match its hash")]
    # An event without a number is reported as number -1.
    unnumbered = {k: v for k, v in events[0].items() if k != "n"}
    unnumbered["hash"] = T.event_hash(unnumbered)
    assert T.verify_chain([unnumbered]) == [T.ChainProblem(-1, "event 1 is missing (found -1)")]


def test_replay_keeps_every_field_of_the_created_event() -> None:
    created = {
        "kind": "created",
        "body": {
            "subject": "Rechnung doppelt",
            "state": "feedback_needed",
            "priority": "low",
            "department": "billing",
            "level": 2,
            "assignee": "o_2",
            "channel": "email",
            "requester_name": "Vera Muster",
            "requester_email": "vera@kunde.ch",
            "customer_id": "K-17",
            "session_id": "s_abc",
        },
    }
    assert T.replay(100077, [created]) == T.TicketView(
        number=100077,
        subject="Rechnung doppelt",
        state=T.TicketState.FEEDBACK_NEEDED,
        priority=T.TicketPriority.LOW,
        department="billing",
        level=2,
        assignee="o_2",
        channel="email",
        requester_name="Vera Muster",
        requester_email="vera@kunde.ch",
        customer_id="K-17",
        session_id="s_abc",
    )
    required = ("subject", "state", "priority", "department", "level", "channel")
    bare = {"kind": "created", "body": {k: created["body"][k] for k in required}}
    view = T.replay(100078, [bare])
    assert (view.assignee, view.requester_name, view.requester_email) == (None, None, None)
    assert (view.customer_id, view.session_id) == (None, None)


def test_replay_applies_department_and_assignee_changes() -> None:
    created = {
        "kind": "created",
        "body": {
            "subject": "Drucker",
            "state": "open",
            "priority": "normal",
            "department": "technical",
            "level": 1,
            "channel": "form",
        },
    }
    changes = [
        {"kind": "department", "body": {"from": "technical", "to": "billing"}},
        {"kind": "assignee", "body": {"from": None, "to": "o_7"}},
        {"kind": "priority", "body": {"from": "normal", "to": "critical"}},
        {"kind": "state", "body": {"from": "open", "to": "closed"}},
    ]
    view = T.replay(100079, [created, *changes])
    assert (view.department, view.assignee, view.priority, view.state) == (
        "billing",
        "o_7",
        T.TicketPriority.CRITICAL,
        T.TicketState.CLOSED,
    )
    unassigned = T.replay(100079, [created, *changes, {"kind": "assignee", "body": {"to": None}}])
    assert unassigned.assignee is None
