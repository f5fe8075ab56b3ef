"""Pure session state machine."""

from __future__ import annotations

import pytest

from chatserver.chat.sessions import ChatSession
from chatserver.errors import ChatClosed, InvalidState
from chatserver.types import OperatorId, SessionId, SessionState


def chat() -> ChatSession:
    return ChatSession(SessionId("s1"), created_at=0.0)


def test_happy_path_and_seq():
    c = chat()
    c.note_seq(2)
    c.note_seq(1)
    assert c.last_seq == 2
    c.start_waiting()
    c.assign(OperatorId("anna"), 5.0)
    assert c.state is SessionState.ASSIGNED and c.assigned_at == 5.0
    assert c.close(9.0) is SessionState.ASSIGNED
    assert c.previous_operator == "anna" and c.closed_at == 9.0 and not c.is_open


def test_requeue_returns_previous_operator():
    c = chat()
    c.start_waiting()
    c.assign(OperatorId("anna"), 1.0)
    assert c.requeue() == "anna"
    assert c.state is SessionState.WAITING and c.operator_id is None
    assert c.previous_operator == "anna"


@pytest.mark.parametrize("action", ["assign", "requeue"])
def test_new_session_cannot_be_assigned_or_requeued(action):
    c = chat()
    with pytest.raises(InvalidState, match="expected"):
        c.assign(OperatorId("x"), 0) if action == "assign" else c.requeue()


def test_closed_is_final():
    c = chat()
    c.close(1.0)
    for act in (
        c.start_waiting,
        c.requeue,
        lambda: c.close(2),
        lambda: c.assign(OperatorId("a"), 1),
    ):
        with pytest.raises(ChatClosed):
            act()


def test_waiting_twice_is_refused():
    c = chat()
    c.start_waiting()
    with pytest.raises(InvalidState, match="chat is waiting, expected new"):
        c.start_waiting()


def test_read_marks_only_move_forward_and_are_clamped():
    c = chat()
    c.note_seq(3)
    assert c.mark_read(True, 2)
    assert not c.mark_read(True, 1)
    assert c.mark_read(True, 99) and c.visitor_read_seq == 3
    assert not c.mark_read(True, 100)
    assert c.mark_read(False, 1) and c.operator_read_seq == 1


def test_a_closed_chat_says_it_has_ended():
    c = chat()
    c.close(1.0)
    with pytest.raises(ChatClosed, match=r"^this chat has ended$"):
        c.start_waiting()


def test_requeue_clears_the_assignment():
    c = chat()
    c.start_waiting()
    c.assign(OperatorId("anna"), 1.0)
    c.requeue()
    assert (c.operator_id, c.assigned_at) == (None, None)
    c.assign(OperatorId("ben"), 7.0)
    assert (c.operator_id, c.assigned_at, c.previous_operator) == ("ben", 7.0, "anna")


@pytest.mark.parametrize("state", [SessionState.NEW, SessionState.WAITING])
def test_an_unassigned_chat_can_be_closed_and_keeps_no_operator(state):
    c = chat()
    if state is SessionState.WAITING:
        c.start_waiting()
    assert c.close(4.0) is state
    assert (c.state, c.closed_at, c.previous_operator) == (SessionState.CLOSED, 4.0, None)


def test_operator_read_marks_only_move_forward():
    c = chat()
    c.note_seq(5)
    assert c.mark_read(False, 3)
    assert not c.mark_read(False, 3)  # the same mark again
    assert not c.mark_read(False, 2)
    assert c.operator_read_seq == 3 and c.visitor_read_seq == 0
    assert c.mark_read(False, 9) and c.operator_read_seq == 5
